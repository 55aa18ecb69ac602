/* SPDX-License-Identifier: MIT */
/* Reading a segment's lock-site table (FORMAT.md, "Lock sites"). */
#define _GNU_SOURCE
#include "rd_segment.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rd_guard.h"

struct sites_ctx {
	struct rd_segment *seg;
	struct rd_lock_sites *out; /* sites preallocated to the capacity */
};

static uint64_t load64(const uint64_t *p)
{
	/* Relaxed: every field of an entry stands alone (rtm_lock_sites.c). */
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int copy_sites(void *arg)
{
	struct sites_ctx *c = arg;
	const struct rtm_shm_header *live = (const struct rtm_shm_header *)(const void *)c->seg->base;
	const struct rtm_shm_lock_site *t = (const struct rtm_shm_lock_site *)(const void *)
		(c->seg->base + c->seg->hdr.sites_offset);
	struct rd_lock_sites *o = c->out;

	/* Acquire: the table's pages exist once this is set; pairs with the
	 * release store in rtm__lock_sites_start(). */
	o->sample = __atomic_load_n(&live->sites_sample, __ATOMIC_ACQUIRE);
	if (!o->sample)
		return 0; /* never reserved: reading it would allocate its pages */
	o->dropped = load64(&live->sites_dropped);
	for (uint32_t i = 0; i < c->seg->hdr.sites_capacity; i++) {
		struct rd_lock_site *d = &o->sites[o->n];

		d->address = load64(&t[i].address);
		if (!d->address)
			continue;
		d->contentions = load64(&t[i].contentions);
		d->wait_ns = load64(&t[i].wait_ns);
		d->max_wait_ns = load64(&t[i].max_wait_ns);
		d->kind = __atomic_load_n(&t[i].kind, __ATOMIC_RELAXED);
		if (d->kind != RTM_SHM_LOCK_MUTEX && d->kind != RTM_SHM_LOCK_RWLOCK)
			d->kind = 0;
		o->n++;
	}
	return 0;
}

static int by_wait(const void *a, const void *b)
{
	const struct rd_lock_site *x = a, *y = b;

	if (x->wait_ns != y->wait_ns)
		return x->wait_ns < y->wait_ns ? 1 : -1;
	return x->address < y->address ? -1 : x->address > y->address;
}

int rd_segment_lock_sites(struct rd_segment *seg, struct rd_lock_sites *out)
{
	struct sites_ctx c = { seg, out };
	int rc;

	memset(out, 0, sizeof *out);
	if (!seg->base || !(seg->hdr.compat_features & RTM_SHM_COMPAT_LOCK_SITES))
		return 0;
	/* Capacity was validated at open (<= RTM_SHM_LOCK_SITES_MAX). */
	out->sites = calloc(seg->hdr.sites_capacity, sizeof *out->sites);
	if (!out->sites)
		return -ENOMEM;
	rc = rd_guard_run(copy_sites, &c);
	if (rc) {
		rd_lock_sites_free(out);
		return rc;
	}
	qsort(out->sites, out->n, sizeof *out->sites, by_wait);
	return 0;
}

void rd_lock_sites_free(struct rd_lock_sites *l)
{
	free(l->sites);
	memset(l, 0, sizeof *l);
}
