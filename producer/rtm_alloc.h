/* SPDX-License-Identifier: MIT */
/* rtm_alloc.h - allocator metrics shared by librtm-preload.so and
 * librtm-alloc.a (internal; apps use rtm_alloc_metrics_start in rtm.h). */
#ifndef RTM_ALLOC_H
#define RTM_ALLOC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rtm.h"

/* Marks this thread's code as rtm's own, whose allocations are not counted
 * (on = 1), or not; returns the previous setting.  (The real allocator is
 * resolved at the first allocator call.) */
int rtm__alloc_guard(int on);

/* Records allocator activity (slow path: first use in a thread, before the
 * metrics start, or if the five words are not adjacent). */
void rtm__alloc_count_slow(uint64_t mallocs, uint64_t frees, uint64_t bytes,
			   int64_t live_delta);

/* This process will not publish (the preload's RTM_PUBLISH): allocations
 * are not counted at all. */
void rtm__alloc_disable(void);

/* Samples the heap on the calling thread if it is due: because its live
 * heap bytes left the band around the last sample, or by the clock (w:
 * this thread's five words).  The allocator hooks call it when
 * rtm__alloc_words_alloc/free say so, with their own allocations guarded. */
void rtm__alloc_look(uint64_t *w);

/* The program is starting a thread (the pthread_create and thrd_create
 * interposers, before they create it): a deferred segment opens, the
 * heap's sampler thread starts now, and the program's allocator calls
 * stop sampling. */
void rtm__alloc_threads_begin(void);

/* Non-zero while the program's one thread is all that would open a
 * deferred segment or sample the heap (before its segment opens, or while
 * the heap is sampled inline): the blocking-call interposers then call
 * rtm__alloc_may_idle().  Relaxed loads; a stale value only costs a call. */
extern int rtm__alloc_idle_watch;

/* The program's one thread is about to wait up to timeout_ns (UINT64_MAX:
 * with no limit) in a blocking call (rtm_idle_hooks.c).  An idle program
 * makes no allocator call that would open its deferred segment or sample
 * its heap, so if the wait may outlast the delay, the segment opens now,
 * and if it may outlast the next inline sample, the heap is sampled now:
 * while its only thread waits, the heap cannot change, so its gauges stay
 * current, and the program keeps its one thread. */
void rtm__alloc_may_idle(uint64_t timeout_ns);

/* The preload's lazy start: no segment yet; the program's one thread
 * counts into process memory through the same fast path, and open(how)
 * is called — to open the segment and rtm_alloc_metrics_start() it, which
 * folds those counts in — delay_ms after its first look (the clock is
 * first read there: RTM__ALLOC_LOOK_EVERY allocator calls into the run),
 * before the program's first thread (RTM__OPEN_LIVE), before an exec
 * (RTM__OPEN_IF_READER) and at exit (rtm__alloc_at_exit, RTM__OPEN_FINAL).
 * open returns 0, -ENOTCONN when it does not open for want of a reader
 * (asked again later), or another -errno (not asked again).  Never in a
 * forked child.  Call once, single-threaded, before main(). */
/* What the program's one thread counted before its segment existed:
 * mallocs, frees, bytes, live bytes, live objects (rtm_final.c).  Returns
 * the pid that counted them (the caller's: a forked child never asks). */
pid_t rtm__alloc_early(uint64_t out[5]);

/* A short command's final values to the reader's socket (rtm_final.c):
 * 0 when sent; else -errno, and they go the file's way. */
int rtm__final_send(const char *dir, const char *service);

#define RTM__OPEN_LIVE      0 /* a published segment, now */
#define RTM__OPEN_IF_READER 1 /* the same, if a reader is attached */
#define RTM__OPEN_FINAL     2 /* the process ends: for a reader only */
void rtm__alloc_defer(unsigned delay_ms, int (*open)(int how));

/* This image is about to be replaced (the exec interposers): a deferred
 * segment opens if a reader is attached, so what the image counted is
 * exported; the next image's segment marks it closed. */
void rtm__alloc_before_exec(void);

/* The process is ending (the preload's destructor): a deferred segment
 * opens if a reader is attached, to be closed at once. */
void rtm__alloc_at_exit(void);

/* The next definition of name after ours (dlsym(RTLD_NEXT)), cached in
 * *cache: what an interposer calls on to.  NULL when there is none.
 * rtm_thread_hooks.c. */
void *rtm__next_symbol(void **cache, const char *name);

/* In an interposer: `real`, of function pointer type `type`, the next
 * definition of name; the interposer returns `missing` when there is
 * none.  dlsym returns an object pointer, which POSIX lets become a
 * function pointer through a copy. */
#define RTM__REAL(type, name, missing)                          \
	static void *real_cache_;                               \
	void *real_sym_ = rtm__next_symbol(&real_cache_, name); \
	type real;                                              \
	if (!real_sym_)                                         \
		return (missing);                               \
	memcpy(&real, &real_sym_, sizeof real)

/* glibc's pthread_create, past the interposer (rtm_thread_hooks.c): how
 * rtm starts its own thread. */
int rtm__real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
			     void *arg);

/* Set by rtm_alloc_metrics_start(): the five allocation series are created
 * back to back, so in every shard their words are adjacent. */
extern const struct rtm_segment *rtm__alloc_seg;
extern uint32_t rtm__alloc_off;
extern uint32_t rtm__alloc_way;

/* The common cases below need no guard (pure memory operations); NULL
 * sends the caller to the guarded slow path. */

/* This thread's five words: mallocs, frees, bytes, live bytes, live
 * objects; NULL until its shard in the allocator's segment is claimed. */
static inline uint64_t *rtm__alloc_words(void)
{
	uint64_t *w = rtm__tls.alloc_words;
	const struct rtm__tls_way *t;

	if (__builtin_expect(w != NULL, 1))
		return w;
	/* Found once through the segment's way, then kept: the shard is
	 * this thread's until it exits (rtm_shard.c clears the pointer), and
	 * stays writable memory after a fork (private) or a close (blank). */
	t = rtm__way(rtm__alloc_way);
	if (t->seg != rtm__alloc_seg || !t->shard)
		return NULL;
	w = rtm__word(t->shard, rtm__alloc_off);
	rtm__tls.alloc_words = w;
	return w;
}

/* Adds v to a word of this thread's shard; the new value. */
static inline uint64_t rtm__alloc_bump(uint64_t *w, uint64_t v)
{
	uint64_t n = __atomic_load_n(w, __ATOMIC_RELAXED) + v;

	/* Relaxed store: this thread owns the shard; see rtm_counter_add(). */
	__atomic_store_n(w, n, __ATOMIC_RELAXED);
	return n;
}

/* Every this many allocations, and every this many frees, of a thread, a
 * look at whether the heap is due a sample (rtm__alloc_look): out of line,
 * so the counted call itself only tests its count (a band check on every
 * call cost rtm-bench-alloc 0.06x). */
#define RTM__ALLOC_LOOK_EVERY 64u

/* Counts one allocation in this thread's words w: true when it is time
 * for rtm__alloc_look(w). */
static inline bool rtm__alloc_words_alloc(uint64_t *w, uint64_t bytes, int64_t usable)
{
	bool look = !(rtm__alloc_bump(&w[0], 1) & (RTM__ALLOC_LOOK_EVERY - 1));

	rtm__own_add(&w[2], bytes);
	rtm__own_add(&w[3], (uint64_t)usable);
	rtm__own_add(&w[4], 1);
	return look;
}

/* Counts one free; as rtm__alloc_words_alloc(). */
static inline bool rtm__alloc_words_free(uint64_t *w, int64_t usable)
{
	bool look = !(rtm__alloc_bump(&w[1], 1) & (RTM__ALLOC_LOOK_EVERY - 1));

	rtm__own_add(&w[3], (uint64_t)-usable);
	rtm__own_add(&w[4], (uint64_t)-1);
	return look;
}

/* Records allocator activity: called by the interposed functions with
 * this thread's rtm code guarded against recursion.  One thread-local
 * check, then five unlocked adds on this thread's shard (rtm__own_add). */
static inline void rtm_alloc_count(uint64_t mallocs, uint64_t frees, uint64_t bytes,
				   int64_t live_delta)
{
	uint64_t *w = rtm__alloc_words();

	if (__builtin_expect(w != NULL, 1)) {
		rtm__own_add(&w[0], mallocs);
		rtm__own_add(&w[1], frees);
		rtm__own_add(&w[2], bytes);
		rtm__own_add(&w[3], (uint64_t)live_delta);
		rtm__own_add(&w[4], mallocs - frees);
		return;
	}
	rtm__alloc_count_slow(mallocs, frees, bytes, live_delta);
}

#endif /* RTM_ALLOC_H */
