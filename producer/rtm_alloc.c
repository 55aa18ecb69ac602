/* SPDX-License-Identifier: MIT */
/*
 * Allocator and heap metrics: counters fed by the malloc interposer
 * (rtm_preload.c) and a low-priority thread sampling glibc's mallinfo2().
 * Names mirror the seed's runtime.go.mem.* under runtime.native.mem.*.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtm.h"
#include "rtm_alloc.h"
#include "rtm_sync.h"
#include "rtm_segment_priv.h"

static rtm_counter_t c_mallocs, c_frees, c_bytes;
static rtm_updown_t u_live_bytes, u_live_objects;
static rtm_updown_t u_inuse, u_idle, u_releasable, u_mmapped, u_arenas;
static rtm_gauge_t g_idle_ratio;
static rtm_counter_t c_trims;
static int ready; /* handles above are valid */
static int disabled; /* this process does not publish: count nothing */

/* RTM_TRIM_IDLE_RATIO: give idle heap back to the system (malloc_trim(0),
 * the analogue of Go's debug.FreeOSMemory) once the idle share of the heap
 * has stayed above this for two samples, and again at most every ten
 * samples while it stays there.  0: never. */
static double trim_ratio;
#define TRIM_MIN_IDLE (1u << 20) /* below this, trimming is not worth a lock */
#define TRIM_EVERY 10

/* Activity before the segment existed, folded in at start. */
static uint64_t early_mallocs, early_frees, early_bytes;
static int64_t early_live;

static pthread_t sampler;
static int sampler_stop;
static unsigned interval_ms;

/* A segment no thread ever caches (cache ways start NULL, so NULL
 * would match) until the fast path is valid. */
const struct rtm_segment *rtm__alloc_seg = &rtm__null_segment;
uint32_t rtm__alloc_off;
uint32_t rtm__alloc_way; /* any value is safe: a way matches only its segment */

void rtm__alloc_count_slow(uint64_t mallocs, uint64_t frees, uint64_t bytes,
			   int64_t live_delta)
{
	/* Acquire: pairs with the release in rtm_alloc_metrics_start(), so
	 * the handles are complete when ready reads 1. */
	if (__builtin_expect(!__atomic_load_n(&ready, __ATOMIC_ACQUIRE), 0)) {
		/* Relaxed: set once, before main(); a late reader only counts
		 * a few allocations nobody will read. */
		if (__atomic_load_n(&disabled, __ATOMIC_RELAXED))
			return;
		/* Relaxed: only the totals matter, read once at start. */
		__atomic_fetch_add(&early_mallocs, mallocs, __ATOMIC_RELAXED);
		__atomic_fetch_add(&early_frees, frees, __ATOMIC_RELAXED);
		__atomic_fetch_add(&early_bytes, bytes, __ATOMIC_RELAXED);
		__atomic_fetch_add(&early_live, live_delta, __ATOMIC_RELAXED);
		return;
	}
	if (mallocs)
		rtm_counter_add(&c_mallocs, mallocs);
	if (frees)
		rtm_counter_add(&c_frees, frees);
	if (bytes)
		rtm_counter_add(&c_bytes, bytes);
	rtm_updown_add(&u_live_bytes, live_delta);
	rtm_updown_add(&u_live_objects, (int64_t)mallocs - (int64_t)frees);
}

void rtm__alloc_disable(void)
{
	__atomic_store_n(&disabled, 1, __ATOMIC_RELAXED);
}

/* Arenas: glibc reports them only in malloc_info()'s XML. */
static int64_t count_arenas(void)
{
	char *buf = NULL;
	size_t len = 0;
	int64_t n = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return 0;
	malloc_info(0, f);
	fclose(f);
	for (char *p = buf; p && (p = strstr(p, "<heap nr=")); p++)
		n++;
	free(buf);
	return n;
}

/* The idle share of the heap, and the opt-in trim (see trim_ratio). */
static void idle_and_trim(int64_t inuse, int64_t idle, unsigned *above, unsigned *since_trim)
{
	double ratio = inuse + idle > 0 ? (double)idle / (double)(inuse + idle) : 0;

	rtm_gauge_set_f64(&g_idle_ratio, ratio);
	if (!(trim_ratio > 0) || ratio <= trim_ratio || idle < TRIM_MIN_IDLE) {
		*above = 0;
		return;
	}
	(*since_trim)++;
	if (++*above >= 2 && *since_trim >= TRIM_EVERY) {
		malloc_trim(0);
		rtm_counter_add(&c_trims, 1);
		*since_trim = 0;
	}
}

/* The sampled values last added (up-down counters hold them by deltas),
 * and the trim state; only the thread holding `sampling` touches them. */
static int64_t last[5];
static unsigned trim_above, trim_since = TRIM_EVERY;
static int sampling; /* atomic: a sample is being taken */

/* One sample of the heap: at start, by the sampler thread, at stop.
 * Counting arenas means malloc_info() (~50 us the first time in a
 * process, XML through stdio), so only the sampler thread does it: at
 * start a process has its main arena alone, and at stop the last count
 * stands. */
static void sample(bool arenas)
{
	/* Acquire: pairs with the release below, so this thread sees the
	 * previous sampler's `last`. */
	if (__atomic_exchange_n(&sampling, 1, __ATOMIC_ACQUIRE))
		return; /* another thread is at it */
	{
		struct mallinfo2 mi = mallinfo2();
		int64_t now[5] = { (int64_t)mi.uordblks, (int64_t)mi.fordblks,
				   (int64_t)mi.keepcost, (int64_t)mi.hblkhd,
				   arenas ? count_arenas() : last[4] ? last[4] : 1 };
		rtm_updown_t *u[5] = { &u_inuse, &u_idle, &u_releasable, &u_mmapped, &u_arenas };

		/* Up-down counters hold the sampled value: add the change. */
		for (int i = 0; i < 5; i++) {
			rtm_updown_add(u[i], now[i] - last[i]);
			last[i] = now[i];
		}
		idle_and_trim(now[0], now[1], &trim_above, &trim_since);
	}
	/* Release: this sample's `last` before the next sampler's acquire. */
	__atomic_store_n(&sampling, 0, __ATOMIC_RELEASE);
}

static void *sample_loop(void *arg)
{
	struct sched_param sp = { 0 };

	(void)arg;
	/* Never compete with the program for a CPU. */
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	rtm__alloc_guard(1); /* this thread's allocations are rtm's own */
	while (!__atomic_load_n(&sampler_stop, __ATOMIC_RELAXED)) {
		struct timespec ts = { (time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000 };

		nanosleep(&ts, NULL);
		sample(true);
	}
	return NULL;
}

/* RTM_TRIM_IDLE_RATIO, a ratio in (0, 1); anything else is said once on
 * stderr (the user asked for something we will not do) and means off. */
static double trim_setting(void)
{
	const char *v = getenv("RTM_TRIM_IDLE_RATIO");
	char *end;
	double r;

	if (!v || !*v)
		return 0;
	r = strtod(v, &end);
	if (*end || !(r > 0 && r < 1)) {
		fprintf(stderr, "rtm: RTM_TRIM_IDLE_RATIO: '%s' is not a ratio between 0 and 1; "
				"not trimming\n", v);
		return 0;
	}
	return r;
}

static int def(struct rtm_segment *seg, int kind, rtm_counter_t *h, const char *name,
	       const char *unit, const char *desc)
{
	struct rtm_metric_def d = { .name = name, .unit = unit, .description = desc };

	return kind ? rtm_updown_create(seg, h, &d) : rtm_counter_create(seg, h, &d);
}

int rtm_alloc_metrics_start(struct rtm_segment *seg, unsigned every_ms)
{
	int rc = 0;

	/* Relaxed: only refuses a second start; the release below publishes. */
	if (!seg || __atomic_load_n(&ready, __ATOMIC_RELAXED))
		return -EINVAL;
	rc |= def(seg, 0, &c_mallocs, "runtime.native.mem.alloc.mallocs", "{allocation}",
		  "Cumulative count of heap allocations");
	rc |= def(seg, 0, &c_frees, "runtime.native.mem.alloc.frees", "{allocation}",
		  "Cumulative count of heap frees");
	rc |= def(seg, 0, &c_bytes, "runtime.native.mem.alloc.total", "By",
		  "Cumulative bytes requested from the heap allocator");
	rc |= def(seg, 1, &u_live_bytes, "runtime.native.mem.heap.alloc", "By",
		  "Bytes of live heap objects (usable size)");
	rc |= def(seg, 1, &u_live_objects, "runtime.native.mem.heap.objects", "{object}",
		  "Live heap objects");
	rc |= def(seg, 1, &u_inuse, "runtime.native.mem.heap.inuse", "By",
		  "Bytes in use in malloc arenas (mallinfo2 uordblks)");
	rc |= def(seg, 1, &u_idle, "runtime.native.mem.heap.idle", "By",
		  "Free bytes held in malloc arenas (mallinfo2 fordblks)");
	rc |= def(seg, 1, &u_releasable, "runtime.native.mem.heap.releasable", "By",
		  "Releasable free space at the top of the heap (mallinfo2 keepcost)");
	rc |= def(seg, 1, &u_mmapped, "runtime.native.mem.heap.mmapped", "By",
		  "Bytes in chunks allocated with mmap (mallinfo2 hblkhd)");
	rc |= def(seg, 1, &u_arenas, "runtime.native.mem.heap.arenas", "{arena}",
		  "malloc arenas");
	rc |= rtm_gauge_create(seg, &g_idle_ratio, &(struct rtm_metric_def){
		.name = "runtime.native.mem.heap.idle_ratio", .unit = "1", .is_double = 1,
		.description = "Idle share of the heap: idle / (in use + idle); above 0.5 with "
			       "much idle, malloc_trim(0) could give memory back" });
	rc |= def(seg, 0, &c_trims, "runtime.native.mem.heap.trims", "{trim}",
		  "malloc_trim(0) calls made because of RTM_TRIM_IDLE_RATIO");
	if (rc)
		return -ENOSPC;
	trim_ratio = trim_setting();
	rtm__alloc_off = c_mallocs.off;
	rtm__alloc_way = c_mallocs.way;
	if (c_frees.off == rtm__alloc_off + 8 && c_bytes.off == rtm__alloc_off + 16 &&
	    u_live_bytes.off == rtm__alloc_off + 24 && u_live_objects.off == rtm__alloc_off + 32)
		/* Relaxed: a thread that still sees NULL takes the slow path,
		 * which is correct too. */
		__atomic_store_n(&rtm__alloc_seg, seg, __ATOMIC_RELAXED);
	/* Release: pairs with the acquire load in rtm__alloc_count_slow(). */
	__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	rtm__alloc_count_slow(__atomic_exchange_n(&early_mallocs, 0, __ATOMIC_RELAXED),
			__atomic_exchange_n(&early_frees, 0, __ATOMIC_RELAXED),
			__atomic_exchange_n(&early_bytes, 0, __ATOMIC_RELAXED),
			__atomic_exchange_n(&early_live, 0, __ATOMIC_RELAXED));
	interval_ms = every_ms && every_ms != RTM_ALLOC_SAMPLE_NO_THREAD ? every_ms : 10000;
	/* The first sample now, on this thread (its allocations are rtm's). */
	{
		int was = rtm__alloc_guard(1);

		sample(false);
		rtm__alloc_guard(was);
	}
	/* RTM_TRIM_IDLE_RATIO acts while the program sleeps: it keeps the
	 * thread even when asked for none. */
	if ((every_ms != RTM_ALLOC_SAMPLE_NO_THREAD || trim_ratio > 0) &&
	    pthread_create(&sampler, NULL, sample_loop, NULL) == 0)
		pthread_detach(sampler);
	/* Lock contention comes with the interposers (a full segment only
	 * leaves it out). */
	rtm__sync_metrics_start(seg);
	return 0;
}

void rtm_alloc_metrics_stop(void)
{
	/* Relaxed: a flag the sampler polls; nothing is ordered by it. */
	__atomic_store_n(&sampler_stop, 1, __ATOMIC_RELAXED);
	/* The final values: the heap as the program ends (a short one's
	 * sampler may not have run at all). */
	if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		int was = rtm__alloc_guard(1);

		sample(false);
		rtm__alloc_guard(was);
	}
}
