/* SPDX-License-Identifier: MIT */
/*
 * Pay for what is used: a segment file is created at its full size but
 * sparse, and tmpfs pages are reserved (posix_fallocate) only for what the
 * process registers and for the shards its threads claim.  Every reservation
 * happens on a cold path (open, metric creation, a thread's first update to
 * the segment) and before any store into the range, so a full tmpfs still
 * fails that cold call with -ENOSPC and never raises SIGBUS on an update.
 *
 * The reader never touches a page outside the ranges reserved here: it
 * reads descriptors below desc_count, strings they point at and slots below
 * data_used in shards below shard_hwm (FORMAT.md, "Sparse segments").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>

#include "rtm_segment_priv.h"

#define PAGE 4096u

static uint64_t down(uint64_t v)
{
	return v & ~(uint64_t)(PAGE - 1);
}

static uint64_t up(uint64_t v)
{
	return (v + PAGE - 1) & ~(uint64_t)(PAGE - 1);
}

static int fallocate_range(struct rtm_segment *seg, uint64_t start, uint64_t end)
{
	int rc;

	/* A deferred segment has no file: its marks still advance, and its
	 * close writes the ranges they cover (rtm_segment.c). */
	if (end <= start || seg->deferred)
		return 0;
	if (seg->fd < 0)
		return -EBADF;
	rc = posix_fallocate(seg->fd, (off_t)down(start), (off_t)(up(end) - down(start)));
	return -rc;
}

int rtm__reserve(struct rtm_segment *seg, uint64_t *mark, uint64_t end)
{
	int rc;

	if (end <= *mark)
		return 0;
	rc = fallocate_range(seg, *mark, end);
	if (!rc)
		*mark = up(end);
	return rc;
}

static int reserve_shard0_if_low(struct rtm_segment *seg);

int rtm__reserve_data(struct rtm_segment *seg, uint32_t need)
{
	const struct rtm_shm_header *h = seg->hdr;
	uint32_t hwm = __atomic_load_n(&h->shard_hwm, __ATOMIC_RELAXED);
	uint32_t want;
	int rc;

	if (need <= seg->res_data)
		return 0;
	/* Whole pages, capped at the shard: the next registrations are free. */
	want = (uint32_t)up(need);
	if (want > h->shard_size)
		want = h->shard_size;
	/* Shard 0 only once it is in use (rtm__reserve_shard0). */
	for (uint32_t i = seg->shard0_ready ? 0 : 1; i < hwm; i++) {
		uint64_t base = (uint64_t)(rtm__shard_base(seg, i) - seg->base);

		rc = fallocate_range(seg, base + seg->res_data, base + want);
		if (rc)
			return rc;
	}
	seg->res_data = want;
	return reserve_shard0_if_low(seg);
}

int rtm__reserve_shard(struct rtm_segment *seg, uint32_t i)
{
	const struct rtm_shm_header *h = seg->hdr;
	uint64_t base = (uint64_t)(rtm__shard_base(seg, i) - seg->base);
	int rc = fallocate_range(seg, base, base + seg->res_data);

	if (rc)
		return rc;
	/* A fresh shard's histogram slots start empty: min +inf, max -inf. */
	for (uint32_t d = 0; d < h->desc_count; d++) {
		const struct rtm_shm_desc *e = (const struct rtm_shm_desc *)(const void *)
			(seg->base + h->desc_offset + (size_t)d * h->desc_size);

		if (e->kind == RTM_SHM_KIND_HISTOGRAM)
			rtm__hist_slot_init(rtm__shard_base(seg, i) + e->slot_offset, e);
	}
	/* The claimed shard stands whatever shard 0 gets. */
	if (i)
		reserve_shard0_if_low(seg);
	return 0;
}

/* Below this much free space in the segment's filesystem, shard 0 gets
 * its pages at once: a thread that later finds the tmpfs full and no
 * private shard to claim must still have shard 0 to count into.  Checked
 * whenever data pages are taken (a registration that needs more slot
 * space, a shard's claim), which is when the space runs out, and not on
 * every registration. */
#define LOW_SPACE (4u << 20)

static int reserve_shard0_if_low(struct rtm_segment *seg)
{
	struct statvfs sv;

	if (seg->shard0_ready || seg->fd < 0 || fstatvfs(seg->fd, &sv))
		return 0;
	if ((uint64_t)sv.f_bavail * sv.f_frsize >= LOW_SPACE)
		return 0;
	return rtm__reserve_shard0(seg);
}

int rtm__reserve_shard0(struct rtm_segment *seg)
{
	int rc;

	if (seg->shard0_ready)
		return 0;
	rc = rtm__reserve_shard(seg, 0);
	/* Release: the pages and empty histogram slots come before any
	 * thread's write to shard 0; pairs with rtm__shard0_ready(). */
	if (!rc)
		__atomic_store_n(&seg->shard0_ready, true, __ATOMIC_RELEASE);
	return rc;
}
