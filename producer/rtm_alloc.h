/* SPDX-License-Identifier: MIT */
/* rtm_alloc.h - allocator metrics shared by librtm-preload.so and
 * librtm-alloc.a (internal; apps use rtm_alloc_metrics_start in rtm.h). */
#ifndef RTM_ALLOC_H
#define RTM_ALLOC_H

#include <stdint.h>

/* Records allocator activity: called by the interposed functions with
 * this thread's rtm code guarded against recursion.  Before the metrics
 * are started, counts accumulate in process-wide atomics. */
void rtm_alloc_count(uint64_t mallocs, uint64_t frees, uint64_t bytes,
		     int64_t live_delta);

#endif /* RTM_ALLOC_H */
