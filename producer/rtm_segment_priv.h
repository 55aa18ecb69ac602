/* SPDX-License-Identifier: MIT */
/* Producer internals shared by the cold-path files of librtm. */
#ifndef RTM_SEGMENT_PRIV_H
#define RTM_SEGMENT_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "rtm.h"

struct rtm_segment {
	struct rtm__seg_head head; /* must stay first: rtm.h reads it */
	unsigned char *base;
	size_t size;
	struct rtm_shm_header *hdr;
	int fd;
	bool closed;
	pthread_mutex_t lock;      /* registration only; never on a hot path */
	uint32_t strings_used;     /* absolute end of used string space */
	uint32_t data_used;        /* bytes used in each shard */
	uint8_t *shard_busy;       /* [shard_count]: owned by a live thread */
	struct rtm_segment *next;  /* process registry, for fork and exit */
	char path[PATH_MAX];
};

/* Never updated: handles from a failed create point here. */
extern struct rtm_segment rtm__null_segment;

/* The registry of open segments; rtm_shard.c walks it at thread exit. */
extern pthread_mutex_t rtm__registry_lock;
extern struct rtm_segment *rtm__registry;

uint64_t rtm__now_ns(clockid_t clk);
void rtm__shard_forget(const struct rtm_segment *seg);

#endif /* RTM_SEGMENT_PRIV_H */
