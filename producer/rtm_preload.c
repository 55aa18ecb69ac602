/* SPDX-License-Identifier: MIT */
/*
 * librtm-preload.so: opens this process's segment when it pays (see
 * RTM_PUBLISH_DELAY_MS) and starts the allocator metrics (the interposer
 * itself is rtm_alloc_hooks.c, the exec family's rtm_exec_hooks.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "rtm.h"
#include "rtm_alloc.h"
#include "rtm_segment_priv.h"
#include "rtm_shm_presence.h"

/* ---- lifecycle ---- */

static struct rtm_segment *seg;

/* RTM_SERVICE_NAME is this preload's own, explicit name; without it librtm
 * takes the OTel variables, then the program's name (rtm_segment_open()). */
static const char *service_name(void)
{
	const char *v = rtm__env_get("RTM_SERVICE_NAME");

	return v && *v ? v : NULL;
}

/*
 * RTM_PUBLISH: which processes under the preload publish a segment.
 *   all (default)  every process that loads it: what LD_PRELOAD users
 *                  expect (prefork servers' workers are children), and
 *                  cheap now (a short command has no segment unless a
 *                  reader takes it at exit: RTM_PUBLISH_DELAY_MS)
 *   top            only the process the preload was first loaded into,
 *                  through its execs; its children do not publish (known
 *                  by RTM_PUBLISH_TOP, which it sets to its pid)
 *   exe:GLOB       processes whose executable name, path or argv[0] name
 *                  matches GLOB (fnmatch), e.g. exe:python3*
 */
static bool should_publish(void)
{
	const char *v = rtm__env_get("RTM_PUBLISH"), *top;
	char self[32], exe[PATH_MAX];
	ssize_t n;

	if (!v || !*v || !strcmp(v, "all"))
		return true;
	if (!strcmp(v, "top")) {
		/* Every child of the top process asks: no stdio. */
		*rtm__put_decimal(self, (uint64_t)rtm__pid_now()) = '\0';
		top = rtm__env_get("RTM_PUBLISH_TOP");
		if (top && *top)
			return !strcmp(top, self);
		setenv("RTM_PUBLISH_TOP", self, 1);
		return true;
	}
	if (!strncmp(v, "exe:", 4) && v[4]) {
		if (!fnmatch(v + 4, program_invocation_short_name, 0))
			return true;
		n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (n <= 0)
			return false;
		exe[n] = '\0';
		return !fnmatch(v + 4, exe, 0) || !fnmatch(v + 4, strrchr(exe, '/') + 1, 0);
	}
	fprintf(stderr, "librtm-preload: RTM_PUBLISH=%.64s is not all, top or exe:GLOB; "
		"publishing (all)\n", v);
	return true;
}

/*
 * RTM_SAMPLE_INTERVAL_MS: how often the sampler thread samples the heap
 * (default 10000); 0 starts no thread, and the heap is sampled when the
 * segment opens and at exit only: a single-threaded program then stays
 * single-threaded, which keeps glibc malloc's single-thread fast path
 * (rtm-bench-alloc).
 */
static unsigned sample_interval(void)
{
	unsigned long ms = 10000;

	rtm__env_number("RTM_SAMPLE_INTERVAL_MS", 0, 86400000, "10000 ms", &ms);
	return ms ? (unsigned)ms : RTM_ALLOC_SAMPLE_NO_THREAD;
}

/*
 * RTM_PUBLISH_DELAY_MS: how long a process runs before it has a segment
 * (default 1000; 0: at start).  Until then its one thread counts into
 * process memory and nothing touches the directory: most processes under
 * a preload are short commands, and one that ends first costs no file, no
 * /proc read and no cleanup.  It opens earlier before its first thread
 * starts, and before an exec or at exit only when a reader is attached to
 * take its final values (without one its file would just be removed).
 * A program already threaded at start, or one that lets the sampler trim
 * its heap (RTM_TRIM_IDLE_RATIO: the trim must come while it sleeps),
 * opens at once.
 */
static unsigned publish_delay(void)
{
	const char *trim = rtm__env_get("RTM_TRIM_IDLE_RATIO");
	unsigned long ms = 1000;

	rtm__env_number("RTM_PUBLISH_DELAY_MS", 0, 86400000, "1000 ms", &ms);
	return __libc_single_threaded && !(trim && *trim) ? (unsigned)ms : 0;
}

static unsigned sample_ms;
static struct rtm_segment_opts opts;
static char dir[PATH_MAX], service[1024];

/* v (else fallback) into buf; one too long for it is cut to an empty
 * string, which rtm_segment_open() refuses or replaces, as it would the
 * value itself. */
static void copy_setting(char *buf, size_t cap, const char *v, const char *fallback)
{
	size_t n;

	if (!v || !*v)
		v = fallback;
	n = strlen(v);
	if (n >= cap)
		n = 0;
	memcpy(buf, v, n);
	buf[n] = '\0';
}

/* Opens the segment and starts the metrics (rtm__alloc_defer's open). */
static int open_now(int how)
{
	int rc;

	if (how != RTM__OPEN_LIVE &&
	    !rtm_shm_presence_attached(AT_FDCWD, opts.dir))
		return -ENOTCONN;
	/* At exit, one datagram to the reader when it takes one. */
	if (how == RTM__OPEN_FINAL && !rtm__final_send(opts.dir, opts.service_name))
		return 0;
	/* At exit, built in memory and written once, closed. */
	rc = how == RTM__OPEN_FINAL ? rtm__segment_open_deferred(&seg, &opts) :
				       rtm_segment_open(&seg, &opts);
	if (rc == 0 && (rc = rtm_alloc_metrics_start(seg, sample_ms)) != 0) {
		rtm_segment_close(seg);
		seg = NULL;
	}
	/* The user asked for metrics: an unsafe directory is worth one line
	 * (other failures, a full tmpfs say, stay as quiet as the program). */
	if (rc == -EPERM || rc == -ELOOP || rc == -ENOENT)
		fprintf(stderr, "librtm-preload: not publishing: the segment directory %s %s\n", opts.dir,
			rc == -ELOOP ? "is a symbolic link" :
			rc == -ENOENT ? "does not exist (rtm-reader or systemd-tmpfiles creates it)" :
			"is writable by other users but not sticky (chmod +t it)");
	return rc;
}

__attribute__((constructor)) static void preload_start(void)
{
	unsigned long threads = 0; /* librtm's default */
	unsigned delay;

	rtm__alloc_guard(1);
	sample_ms = sample_interval();
	if (!should_publish()) {
		rtm__alloc_disable();
		rtm__alloc_guard(0);
		return;
	}
	rtm__env_number("RTM_MAX_THREADS", 1, 1023, "the default (256)", &threads);
	/* As they are now: the program may change its environment before
	 * its segment opens. */
	copy_setting(dir, sizeof dir, rtm__env_get("RTM_DIR"), RTM__DEFAULT_DIR);
	copy_setting(service, sizeof service, service_name(), "");
	opts.dir = dir;
	opts.service_name = *service ? service : NULL;
	opts.max_threads = (uint32_t)threads;
	delay = publish_delay();
	if (delay)
		rtm__alloc_defer(delay, open_now);
	else if (open_now(RTM__OPEN_LIVE))
		rtm__alloc_disable(); /* no segment: count nothing */
	rtm__alloc_guard(0);
}

__attribute__((destructor)) static void preload_stop(void)
{
	rtm__alloc_guard(1);
	if (!seg)
		rtm__alloc_at_exit();
	if (seg) {
		rtm_alloc_metrics_stop();
		rtm_segment_close(seg);
	}
	rtm__alloc_guard(0);
}
