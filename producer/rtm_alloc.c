/* SPDX-License-Identifier: MIT */
/*
 * Allocator and heap metrics: counters fed by the malloc interposer
 * (rtm_alloc_hooks.c) and samples of glibc's mallinfo2().
 * Names mirror the seed's runtime.go.mem.* under runtime.native.mem.*.
 *
 * Who samples the heap.  A thread of ours would turn a single-threaded
 * program multi-threaded, which costs glibc's malloc its single-thread fast
 * path (rtm-bench-alloc: +20..30 % a call).  So while the program has one
 * thread, its own allocator calls sample: a heap changes only through the
 * allocator, and every call is counted here anyway.  Every
 * RTM__ALLOC_LOOK_EVERY allocations, and as many frees, a look out of line:
 *  - By the bytes: a sample when the live heap has moved a quarter (at
 *    least BAND_MIN) from the last one, so a burst of frees followed by
 *    silence (an idle heap, the state the idle-ratio hint is for) is seen
 *    within RTM__ALLOC_LOOK_EVERY calls, not at the next interval.  The
 *    band doubles each time the heap turns back on itself until the next
 *    sample by the clock, so a loop allocating and freeing one big block
 *    samples a few times per interval, not per call.
 *  - By the clock: every fourth look, a clock read; a sample when the
 *    interval has passed.
 * The program's first pthread_create or thrd_create starts the SCHED_IDLE
 * sampler thread (rtm_thread_hooks.c): the program is paying for threads
 * by then.  RTM_TRIM_IDLE_RATIO, which must act while the program sleeps,
 * starts it at once; RTM_ALLOC_SAMPLE_NO_THREAD samples at start and stop
 * only.
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
#include <sys/single_threaded.h>
#include <time.h>
#include <unistd.h>

#include "rtm.h"
#include "rtm_alloc.h"
#include "rtm_shm_final.h"
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
static struct rtm_segment *sampled; /* whose heartbeat each sample beats */
static unsigned interval_ms;

/* How the heap is sampled (see the top of this file). */
enum sampler_mode { SAMPLE_EDGES, SAMPLE_INLINE, SAMPLE_THREAD };
static int mode; /* atomic: enum sampler_mode */
static int threads_begun; /* atomic: the program started a thread */

/* SAMPLE_INLINE's state, touched only by the thread holding `sampling`:
 * the band around the live heap bytes of the last sample, in the shard
 * whose words armed it (another thread's look arms it for its own). */
#define BAND_MIN (1u << 20)
static struct {
	uint64_t *words;
	uint64_t low, span;
} band;
static uint64_t next_due_ns; /* CLOCK_MONOTONIC of the next sample by the clock */
static uint64_t band_min = BAND_MIN;
static int band_dir; /* the way the last sample by the bytes went: -1, 0, 1 */
static unsigned looks; /* the clock is read every fourth */

/* Before the segment exists (rtm__alloc_defer): the program's one thread
 * counts into these five words, through the same fast path as into a
 * shard, and they are folded in when the segment opens. */
static uint64_t early_words[5];
static int (*opener)(int how);
static int deferred;     /* atomic: waiting to open */
static pid_t owner;      /* a forked child's copy never opens, and a vfork
			  * child shares this memory: both are told by pid */
static uint64_t open_due_ns; /* CLOCK_MONOTONIC; 0 until the first look */
static unsigned open_delay_ms;
int rtm__alloc_idle_watch;

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
static int sampling; /* atomic: see sampling_begin() */

/* `sampling` is held by one thread at a time: the one taking a sample,
 * or deciding whether one is due (SAMPLE_INLINE's state).  Acquire: pairs
 * with the release in sampling_end(), so the holder sees what the previous
 * one left. */
static bool sampling_begin(void)
{
	return !__atomic_exchange_n(&sampling, 1, __ATOMIC_ACQUIRE);
}

static void sampling_end(void)
{
	/* Release: pairs with the acquire in sampling_begin(). */
	__atomic_store_n(&sampling, 0, __ATOMIC_RELEASE);
}

/* One sample of the heap, by the holder of `sampling`.  Counting arenas
 * means malloc_info() (~50 us the first time in a process, XML through
 * stdio), so only the sampler thread does it: at start a process has its
 * main arena alone, a program sampling its own heap has one thread, and
 * at stop the last count stands. */
static void take_sample(bool arenas)
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
	/* A sample is a sign of life: HEARTBEAT in rtm-shmdump is its age. */
	if (sampled)
		rtm_segment_heartbeat(sampled);
}

/* One sample, unless another thread is taking one. */
static void sample(bool arenas)
{
	if (!sampling_begin())
		return;
	take_sample(arenas);
	sampling_end();
}

/* A sample on the calling thread (start, stop), its allocations rtm's. */
static void sample_here(void)
{
	int was = rtm__alloc_guard(1);

	sample(false);
	rtm__alloc_guard(was);
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

static void start_thread(void)
{
	int was = rtm__alloc_guard(1); /* its stack and TLS are rtm's */

	if (rtm__real_pthread_create(&sampler, NULL, sample_loop, NULL) == 0)
		pthread_detach(sampler);
	rtm__alloc_guard(was);
}

/* A band of a quarter of live, at least band_min, each way. */
static void arm_band(uint64_t *w, uint64_t live)
{
	uint64_t half = (uint64_t)((int64_t)live > 0 ? (int64_t)live : 0) / 4;

	if (half < band_min)
		half = band_min;
	band.words = w;
	band.low = live - half;
	band.span = 2 * half;
}

/* A forked child (its memory a copy of its parent's) or a vfork child
 * (sharing it, so nothing may be written to tell it apart): not the
 * process whose counts these are. */
static bool not_owner(void)
{
	return rtm__pid_now() != owner;
}

/* Opens the segment through the opener, if it is still waiting.  The
 * opener's allocations are rtm's.  -ENOTCONN (no reader, for how !=
 * RTM__OPEN_LIVE) leaves it waiting; -ESRCH in a forked child, which
 * never publishes what its parent counted. */
static int open_deferred(int how)
{
	int was, rc;

	/* Relaxed: set before main(), cleared by the program's one thread. */
	if (!__atomic_load_n(&deferred, __ATOMIC_RELAXED) || not_owner())
		return -ESRCH;
	was = rtm__alloc_guard(1);
	rc = opener(how);
	if (rc != -ENOTCONN)
		__atomic_store_n(&deferred, 0, __ATOMIC_RELAXED);
	/* Never to open: what other threads would count is for nobody. */
	if (rc && rc != -ENOTCONN)
		rtm__alloc_disable();
	rtm__alloc_guard(was);
	return rc;
}

/* No clock is read here, and no atfork handler registered: a short
 * command would pay for both (~3 us each, the first call of a libc
 * function), so the delay runs from the first look and a forked child is
 * told by its pid. */
void rtm__alloc_defer(unsigned delay_ms, int (*open)(int how))
{
	opener = open;
	owner = rtm__pid_now();
	open_delay_ms = delay_ms;
	rtm__tls.alloc_words = early_words;
	__atomic_store_n(&deferred, 1, __ATOMIC_RELAXED);
	/* Relaxed: read by the blocking-call hooks of this one thread. */
	__atomic_store_n(&rtm__alloc_idle_watch, 1, __ATOMIC_RELAXED);
}

pid_t rtm__alloc_early(uint64_t out[5])
{
	/* Read by the program's one thread, which wrote them. */
	memcpy(out, early_words, sizeof early_words);
	return owner;
}

void rtm__alloc_before_exec(void)
{
	open_deferred(RTM__OPEN_IF_READER);
}

void rtm__alloc_at_exit(void)
{
	open_deferred(RTM__OPEN_FINAL);
}

void rtm__alloc_look(uint64_t *w)
{
	uint64_t live;
	bool armed, due = false;

	/* Still counting before the segment exists: is it time? */
	if (__builtin_expect(w == early_words, 0)) {
		uint64_t now = rtm__now_ns(CLOCK_MONOTONIC);

		/* The program's one thread, or a vfork child borrowing its
		 * memory while that thread waits: no race on open_due_ns.
		 * Not opened (a forked child): asked again a delay later, not
		 * at every look; a vfork child's parent, sharing this, then
		 * opens up to one delay later than it would have. */
		if (!open_due_ns ||
		    (now >= open_due_ns && open_deferred(RTM__OPEN_LIVE) == -ESRCH))
			open_due_ns = now + (uint64_t)open_delay_ms * 1000000u;
		return;
	}
	/* Relaxed: the mode changes once, before the program's second
	 * thread exists (rtm__alloc_threads_begin) or at stop; a sample more
	 * or less around that is harmless. */
	if (__atomic_load_n(&mode, __ATOMIC_RELAXED) != SAMPLE_INLINE || !sampling_begin())
		return;
	/* Relaxed: this thread's own word. */
	live = __atomic_load_n(&w[3], __ATOMIC_RELAXED);
	armed = band.words == w;
	if (armed && live - band.low > band.span) {
		/* Signed: below the band, live - low wraps. */
		int dir = (int64_t)(live - band.low) > (int64_t)(band.span / 2) ? 1 : -1;

		/* Turned back on itself: a loop, not a trend. */
		if (band_dir && dir != band_dir && band_min < (UINT64_C(1) << 40))
			band_min *= 2;
		band_dir = dir;
		due = true;
	} else if (!(++looks & 3) || !armed) {
		uint64_t now = rtm__now_ns(CLOCK_MONOTONIC);

		if (now >= next_due_ns) {
			band_min = BAND_MIN;
			band_dir = 0;
			next_due_ns = now + (uint64_t)interval_ms * 1000000u;
			due = true;
		}
	}
	if (due)
		take_sample(false);
	/* Around each sample; and at a thread's first look, a band to watch. */
	if (due || !armed)
		arm_band(w, live);
	sampling_end();
}

void rtm__alloc_threads_begin(void)
{
	int m = SAMPLE_INLINE;

	/* Relaxed: nothing is left for the blocking-call hooks to start. */
	__atomic_store_n(&rtm__alloc_idle_watch, 0, __ATOMIC_RELAXED);
	/* Relaxed: once per process, before the program's first thread;
	 * the exchange alone decides who starts ours. */
	if (__atomic_exchange_n(&threads_begun, 1, __ATOMIC_RELAXED))
		return;
	/* The segment now, while one thread counts into early_words (its
	 * start sees threads_begun and starts the sampler thread).  In a
	 * forked child (no vfork child starts threads), whose segment will
	 * never open, its threads count nothing: no atomics on a slow path
	 * for nobody; its one thread's words stay. */
	if (open_deferred(RTM__OPEN_LIVE) == -ESRCH &&
	    __atomic_load_n(&deferred, __ATOMIC_RELAXED))
		rtm__alloc_disable();
	/* Relaxed: SAMPLE_INLINE to SAMPLE_THREAD happens once, here. */
	if (__atomic_compare_exchange_n(&mode, &m, SAMPLE_THREAD, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
		start_thread();
}

/* The program's thread's counts at its last sample taken for a wait
 * (rtm__alloc_may_idle: the one thread's). */
static uint64_t idle_mallocs = UINT64_MAX, idle_frees;

void rtm__alloc_may_idle(uint64_t timeout_ns)
{
	uint64_t now = rtm__now_ns(CLOCK_MONOTONIC), *w;
	uint64_t until = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
	int was;

	/* The program's one thread (a forked child's copy opens nothing):
	 * open_due_ns and next_due_ns are its own, as in rtm__alloc_look(). */
	if (__atomic_load_n(&deferred, __ATOMIC_RELAXED)) {
		if (not_owner())
			return;
		if (!open_due_ns)
			open_due_ns = now + (uint64_t)open_delay_ms * 1000000u;
		/* Back before it is due: maybe still a short command.  Else it
		 * opens now, and samples the heap as it does: the heap cannot
		 * change while its only thread waits. */
		if (until >= open_due_ns)
			open_deferred(RTM__OPEN_LIVE);
		return;
	}
	/* Sampled inline: the sample the wait would delay, now.  The
	 * program keeps its one thread (and glibc malloc its fast path). */
	if (__atomic_load_n(&mode, __ATOMIC_RELAXED) != SAMPLE_INLINE) {
		/* Relaxed: a sampler thread, or none wanted: nothing to do. */
		__atomic_store_n(&rtm__alloc_idle_watch, 0, __ATOMIC_RELAXED);
		return;
	}
	w = rtm__tls.alloc_words;
	if (until < next_due_ns || !w || w == early_words)
		return;
	/* Relaxed: this thread's own words.  No allocator call since the last
	 * wait's sample (a shell reaping child after child): nothing new. */
	if (__atomic_load_n(&w[0], __ATOMIC_RELAXED) == idle_mallocs &&
	    __atomic_load_n(&w[1], __ATOMIC_RELAXED) == idle_frees)
		return;
	if (!sampling_begin())
		return;
	was = rtm__alloc_guard(1); /* a sample's own allocations are rtm's */
	take_sample(false);
	next_due_ns = now + (uint64_t)interval_ms * 1000000u;
	idle_mallocs = __atomic_load_n(&w[0], __ATOMIC_RELAXED);
	idle_frees = __atomic_load_n(&w[1], __ATOMIC_RELAXED);
	/* Relaxed: this thread's own word. */
	arm_band(w, __atomic_load_n(&w[3], __ATOMIC_RELAXED));
	rtm__alloc_guard(was);
	sampling_end();
}

/* RTM_TRIM_IDLE_RATIO, a ratio in (0, 1); anything else is said once on
 * stderr (the user asked for something we will not do) and means off. */
static double trim_setting(void)
{
	const char *v = rtm__env_get("RTM_TRIM_IDLE_RATIO");
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

/* Series i of the shared table (rtm_shm_final.h), a counter or an
 * up-down counter as the table says. */
static int def(struct rtm_segment *seg, rtm_counter_t *h, enum rtm_shm_alloc_series i)
{
	const struct rtm_shm_series_def *s = &rtm_shm_alloc_series[i];
	struct rtm_metric_def d = { .name = s->name, .unit = s->unit, .description = s->desc };

	return s->kind == RTM_SHM_KIND_UPDOWN ? rtm_updown_create(seg, h, &d) :
						rtm_counter_create(seg, h, &d);
}

int rtm_alloc_metrics_start(struct rtm_segment *seg, unsigned every_ms)
{
	int rc = 0;

	/* Relaxed: only refuses a second start; the release below publishes. */
	if (!seg || __atomic_load_n(&ready, __ATOMIC_RELAXED))
		return -EINVAL;
	rc |= def(seg, &c_mallocs, RTM_SHM_ALLOC_MALLOCS);
	rc |= def(seg, &c_frees, RTM_SHM_ALLOC_FREES);
	rc |= def(seg, &c_bytes, RTM_SHM_ALLOC_BYTES);
	rc |= def(seg, &u_live_bytes, RTM_SHM_ALLOC_LIVE);
	rc |= def(seg, &u_live_objects, RTM_SHM_ALLOC_OBJECTS);
	rc |= def(seg, &u_inuse, RTM_SHM_ALLOC_INUSE);
	rc |= def(seg, &u_idle, RTM_SHM_ALLOC_IDLE);
	rc |= def(seg, &u_releasable, RTM_SHM_ALLOC_RELEASABLE);
	rc |= def(seg, &u_mmapped, RTM_SHM_ALLOC_MMAPPED);
	rc |= def(seg, &u_arenas, RTM_SHM_ALLOC_ARENAS);
	{
		const struct rtm_shm_series_def *r = &rtm_shm_alloc_series[RTM_SHM_ALLOC_IDLE_RATIO];

		rc |= rtm_gauge_create(seg, &g_idle_ratio, &(struct rtm_metric_def){
			.name = r->name, .unit = r->unit, .is_double = 1, .description = r->desc });
	}
	rc |= def(seg, &c_trims, RTM_SHM_ALLOC_TRIMS);
	if (rc)
		return -ENOSPC;
	trim_ratio = trim_setting();
	sampled = seg;
	rtm__alloc_off = c_mallocs.off;
	rtm__alloc_way = c_mallocs.way;
	if (c_frees.off == rtm__alloc_off + 8 && c_bytes.off == rtm__alloc_off + 16 &&
	    u_live_bytes.off == rtm__alloc_off + 24 && u_live_objects.off == rtm__alloc_off + 32)
		/* Relaxed: a thread that still sees NULL takes the slow path,
		 * which is correct too. */
		__atomic_store_n(&rtm__alloc_seg, seg, __ATOMIC_RELAXED);
	/* Release: pairs with the acquire load in rtm__alloc_count_slow(). */
	__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	/* What this thread counted before (rtm__alloc_defer), folded in
	 * below: from now on it finds its shard. */
	if (rtm__tls.alloc_words == early_words) {
		rtm__tls.alloc_words = NULL;
		rtm__alloc_count_slow(early_words[0], early_words[1], early_words[2],
				      (int64_t)early_words[3]);
	}
	rtm__alloc_count_slow(__atomic_exchange_n(&early_mallocs, 0, __ATOMIC_RELAXED),
			__atomic_exchange_n(&early_frees, 0, __ATOMIC_RELAXED),
			__atomic_exchange_n(&early_bytes, 0, __ATOMIC_RELAXED),
			__atomic_exchange_n(&early_live, 0, __ATOMIC_RELAXED));
	interval_ms = every_ms && every_ms != RTM_ALLOC_SAMPLE_NO_THREAD ? every_ms : 10000;
	sample_here(); /* the first sample, now */
	next_due_ns = rtm__now_ns(CLOCK_MONOTONIC) + (uint64_t)interval_ms * 1000000u;

	/* RTM_TRIM_IDLE_RATIO acts while the program sleeps, and a program
	 * that has threads already gains nothing by waiting: the thread now.
	 * Relaxed: the program's threads see the mode through their own
	 * cold path; a late look only samples once more or once less. */
	if (trim_ratio > 0 || (every_ms != RTM_ALLOC_SAMPLE_NO_THREAD &&
			       (__atomic_load_n(&threads_begun, __ATOMIC_RELAXED) ||
				!__libc_single_threaded))) {
		__atomic_store_n(&mode, SAMPLE_THREAD, __ATOMIC_RELAXED);
		start_thread();
	} else if (every_ms != RTM_ALLOC_SAMPLE_NO_THREAD) {
		__atomic_store_n(&mode, SAMPLE_INLINE, __ATOMIC_RELAXED);
		/* Relaxed: the hooks' hint that an idle wait needs the thread. */
		__atomic_store_n(&rtm__alloc_idle_watch, 1, __ATOMIC_RELAXED);
	}
	/* Lock contention comes with the interposers (a full segment only
	 * leaves it out). */
	rtm__sync_metrics_start(seg);
	return 0;
}

void rtm_alloc_metrics_stop(void)
{
	/* Relaxed: flags the sampler and the hooks poll; nothing is ordered
	 * by them. */
	__atomic_store_n(&sampler_stop, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&mode, SAMPLE_EDGES, __ATOMIC_RELAXED);
	/* The final values: the heap as the program ends (a short one's
	 * sampler may not have run at all). */
	if (__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
		sample_here();
}
