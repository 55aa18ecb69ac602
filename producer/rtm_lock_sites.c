/* SPDX-License-Identifier: MIT */
/*
 * The lock-site table: where this process waits for locks, the native
 * counterpart of Go's mutex profile.  rtm_sync.c records a contended wait
 * here under its call site (the return address into the caller of
 * pthread_mutex_lock & co.); rtm-shmdump --locks resolves the addresses
 * against the live process's mappings and symbol tables, so nothing here
 * ever looks up a symbol.
 *
 * The table is a fixed open-addressed hash of 64 cache-line entries in the
 * segment (FORMAT.md, "Lock sites"): a site takes an entry with one
 * compare-and-swap and keeps it, so recording is lock-free, allocates
 * nothing and makes no system call.  When all are taken, a new site is
 * counted in sites_dropped instead.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "rtm_segment_priv.h"

int rtm__lock_sites_start(struct rtm_segment *seg, uint32_t every)
{
	struct rtm_shm_header *h;
	int rc;

	if (!seg || seg == &rtm__null_segment || !every)
		return -EINVAL;
	h = seg->hdr;
	rtm__lock(seg);
	rc = seg->closed ? -EINVAL : h->sites_sample ? 0 :
		rtm__reserve(seg, &seg->res_sites, (uint64_t)h->sites_offset +
			     (uint64_t)h->sites_capacity * sizeof(struct rtm_shm_lock_site));
	/* Release: the reserved (zero) pages come before the field that lets
	 * readers look at them; pairs with the reader's acquire load. */
	if (!rc)
		__atomic_store_n(&h->sites_sample, every, __ATOMIC_RELEASE);
	rtm__unlock(seg);
	return rc;
}

static void add_max(uint64_t *p, uint64_t v)
{
	/* Relaxed: a lone high-water mark, ordered against nothing. */
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (v > cur && !__atomic_compare_exchange_n(p, &cur, v, true, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
}

void rtm__lock_site_record(struct rtm_segment *seg, uintptr_t addr, uint32_t kind,
			   uint64_t wait_ns, uint32_t scale)
{
	struct rtm_shm_header *h = seg->hdr;
	struct rtm_shm_lock_site *t;
	uint32_t cap = h->sites_capacity, i;

	/* Relaxed: only this library sets it (rtm__lock_sites_start), before
	 * the caller's own acquire of its ready flag. */
	if (!addr || !cap || !__atomic_load_n(&h->sites_sample, __ATOMIC_RELAXED))
		return;
	t = (struct rtm_shm_lock_site *)(void *)(seg->base + h->sites_offset);
	/* Fibonacci hashing of the address (code is at least 2-aligned). */
	i = (uint32_t)(((uint64_t)(addr >> 1) * 0x9E3779B97F4A7C15ull) >> 40) % cap;
	for (uint32_t probe = 0; probe < cap; probe++, i = (i + 1) % cap) {
		struct rtm_shm_lock_site *e = &t[i];
		/* Relaxed: an address, once set, never changes, and every
		 * other field stands alone (no reader relies on an order). */
		uint64_t a = __atomic_load_n(&e->address, __ATOMIC_RELAXED);

		if (!a) {
			if (__atomic_compare_exchange_n(&e->address, &a, (uint64_t)addr, false,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
				a = addr;
			/* else a is the address another thread put there */
		}
		if (a != addr)
			continue;
		/* Relaxed, all: independent totals (see above). */
		__atomic_store_n(&e->kind, kind, __ATOMIC_RELAXED);
		__atomic_fetch_add(&e->contentions, scale, __ATOMIC_RELAXED);
		__atomic_fetch_add(&e->wait_ns, wait_ns * scale, __ATOMIC_RELAXED);
		add_max(&e->max_wait_ns, wait_ns);
		return;
	}
	/* Relaxed: a lone counter. */
	__atomic_fetch_add(&h->sites_dropped, scale, __ATOMIC_RELAXED);
}
