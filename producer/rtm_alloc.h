/* SPDX-License-Identifier: MIT */
/* rtm_alloc.h - allocator metrics shared by librtm-preload.so and
 * librtm-alloc.a (internal; apps use rtm_alloc_metrics_start in rtm.h). */
#ifndef RTM_ALLOC_H
#define RTM_ALLOC_H

#include <stdint.h>

#include "rtm.h"

/* Records allocator activity (slow path: first use in a thread, before the
 * metrics start, or if the five words are not adjacent). */
void rtm__alloc_count_slow(uint64_t mallocs, uint64_t frees, uint64_t bytes,
			   int64_t live_delta);

/* Set by rtm_alloc_metrics_start(): the five allocation series are created
 * back to back, so in every shard their words are adjacent. */
extern const struct rtm_segment *rtm__alloc_seg;
extern uint32_t rtm__alloc_off;

static inline void rtm__alloc_add(unsigned char *shard, uint32_t off, uint64_t v)
{
	uint64_t *w = rtm__word(shard, off);

	/* Relaxed store: this thread owns the shard; see rtm_counter_add(). */
	__atomic_store_n(w, __atomic_load_n(w, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* Records allocator activity: called by the interposed functions with
 * this thread's rtm code guarded against recursion.  One thread-local
 * check, then five plain adds on this thread's shard. */
static inline void rtm_alloc_count(uint64_t mallocs, uint64_t frees, uint64_t bytes,
				   int64_t live_delta)
{
	if (__builtin_expect(rtm__tls.seg == rtm__alloc_seg, 1)) {
		unsigned char *sh = rtm__tls.shard;
		uint32_t off = rtm__alloc_off;

		rtm__alloc_add(sh, off, mallocs);
		rtm__alloc_add(sh, off + 8, frees);
		rtm__alloc_add(sh, off + 16, bytes);
		rtm__alloc_add(sh, off + 24, (uint64_t)live_delta);
		rtm__alloc_add(sh, off + 32, mallocs - frees);
		return;
	}
	rtm__alloc_count_slow(mallocs, frees, bytes, live_delta);
}

#endif /* RTM_ALLOC_H */
