/* SPDX-License-Identifier: MIT */
/*
 * librtm-preload.so: opens this process's segment before main() and starts
 * the allocator metrics (the interposer itself is rtm_alloc_hooks.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "rtm.h"
#include "rtm_alloc.h"

/* ---- lifecycle ---- */

static struct rtm_segment *seg;

static const char *service_name(char *buf, size_t n)
{
	const char *v = getenv("RTM_SERVICE_NAME");

	if (v && *v)
		return v;
	v = getenv("OTEL_SERVICE_NAME");
	if (v && *v)
		return v;
	snprintf(buf, n, "%s", program_invocation_short_name);
	return *buf ? buf : "unknown";
}

__attribute__((constructor)) static void preload_start(void)
{
	char name[64];
	const char *iv = getenv("RTM_SAMPLE_INTERVAL_MS");
	long ms = iv ? atol(iv) : 10000;

	const char *tv = getenv("RTM_MAX_THREADS");
	unsigned long threads = 0;
	char *end = NULL;
	int rc;

	rtm__alloc_guard(1);
	if (tv && *tv) {
		errno = 0;
		threads = strtoul(tv, &end, 10);
		if (errno || *end || !threads || threads > 1023) {
			fprintf(stderr, "librtm-preload: RTM_MAX_THREADS=%.32s is not a number "
				"from 1 to 1023; using the default (256)\n", tv);
			threads = 0;
		}
	}
	rc = rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = service_name(name, sizeof name),
		.max_threads = (uint32_t)threads });
	if (rc == 0 && rtm_alloc_metrics_start(seg, ms > 0 ? (unsigned)ms : 10000) != 0) {
		rtm_segment_close(seg);
		seg = NULL;
	}
	/* The user asked for metrics: an unsafe directory is worth one line
	 * (other failures, a full tmpfs say, stay as quiet as the program). */
	if (rc == -EPERM || rc == -ELOOP)
		fprintf(stderr, "librtm-preload: not publishing: the segment directory is %s\n",
			rc == -ELOOP ? "a symbolic link" :
			"writable by other users but not sticky (chmod +t it)");
	rtm__alloc_guard(0);
}

__attribute__((destructor)) static void preload_stop(void)
{
	if (!seg)
		return;
	rtm__alloc_guard(1);
	rtm_alloc_metrics_stop();
	rtm_segment_close(seg);
	rtm__alloc_guard(0);
}
