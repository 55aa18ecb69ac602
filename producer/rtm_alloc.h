/* SPDX-License-Identifier: MIT */
/* rtm_alloc.h - allocator metrics shared by librtm-preload.so and
 * librtm-alloc.a (internal; apps use rtm_alloc_metrics_start in rtm.h). */
#ifndef RTM_ALLOC_H
#define RTM_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "rtm.h"

/* Marks this thread's code as rtm's own, whose allocations are not counted
 * (on = 1), or not; returns the previous setting.  The first call also
 * resolves the real allocator. */
int rtm__alloc_guard(int on);

/* Records allocator activity (slow path: first use in a thread, before the
 * metrics start, or if the five words are not adjacent). */
void rtm__alloc_count_slow(uint64_t mallocs, uint64_t frees, uint64_t bytes,
			   int64_t live_delta);

/* This process will not publish (the preload's RTM_PUBLISH): allocations
 * are not counted at all. */
void rtm__alloc_disable(void);

/* Set by rtm_alloc_metrics_start(): the five allocation series are created
 * back to back, so in every shard their words are adjacent. */
extern const struct rtm_segment *rtm__alloc_seg;
extern uint32_t rtm__alloc_off;
extern uint32_t rtm__alloc_way;


/* The common cases, with no guard needed (pure memory operations): false
 * when the caller must take the guarded slow path instead. */
/* The five words: mallocs, frees, bytes, live bytes, live objects.  One
 * pointer, computed once, so the compiler need not reload the globals
 * between the relaxed stores. */
static inline uint64_t *rtm__alloc_words(void)
{
	const struct rtm__tls_way *t = rtm__way(rtm__alloc_way);

	if (__builtin_expect(t->seg != rtm__alloc_seg, 0))
		return NULL;
	return rtm__word(t->shard, rtm__alloc_off);
}

static inline void rtm__alloc_bump(uint64_t *w, uint64_t v)
{
	/* Relaxed store: this thread owns the shard; see rtm_counter_add(). */
	__atomic_store_n(w, __atomic_load_n(w, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static inline bool rtm__alloc_fast_alloc(uint64_t bytes, int64_t usable)
{
	uint64_t *w = rtm__alloc_words();

	if (!w)
		return false;
	rtm__alloc_bump(&w[0], 1);
	rtm__alloc_bump(&w[2], bytes);
	rtm__alloc_bump(&w[3], (uint64_t)usable);
	rtm__alloc_bump(&w[4], 1);
	return true;
}

static inline bool rtm__alloc_fast_free(int64_t usable)
{
	uint64_t *w = rtm__alloc_words();

	if (!w)
		return false;
	rtm__alloc_bump(&w[1], 1);
	rtm__alloc_bump(&w[3], (uint64_t)-usable);
	rtm__alloc_bump(&w[4], (uint64_t)-1);
	return true;
}

/* Records allocator activity: called by the interposed functions with
 * this thread's rtm code guarded against recursion.  One thread-local
 * check, then five plain adds on this thread's shard. */
static inline void rtm_alloc_count(uint64_t mallocs, uint64_t frees, uint64_t bytes,
				   int64_t live_delta)
{
	uint64_t *w = rtm__alloc_words();

	if (__builtin_expect(w != NULL, 1)) {
		rtm__alloc_bump(&w[0], mallocs);
		rtm__alloc_bump(&w[1], frees);
		rtm__alloc_bump(&w[2], bytes);
		rtm__alloc_bump(&w[3], (uint64_t)live_delta);
		rtm__alloc_bump(&w[4], mallocs - frees);
		return;
	}
	rtm__alloc_count_slow(mallocs, frees, bytes, live_delta);
}

#endif /* RTM_ALLOC_H */
