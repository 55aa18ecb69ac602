/* SPDX-License-Identifier: MIT */
/* rtm_sync.h - lock contention in librtm-preload.so (rtm_sync.c). */
#ifndef RTM_SYNC_H
#define RTM_SYNC_H

#include "rtm.h"

/* Creates the runtime.native.sync.* series in seg and starts counting
 * contended lock acquisitions.  Cold path; 0 or -ENOSPC. */
int rtm__sync_metrics_start(struct rtm_segment *seg);

#endif /* RTM_SYNC_H */
