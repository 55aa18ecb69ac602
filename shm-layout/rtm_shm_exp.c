/* SPDX-License-Identifier: MIT */
/*
 * Adding counts to an exponential histogram slot (rtm_shm.h, struct
 * rtm_shm_exphist): the producer's path for a value outside the slot's
 * window, and the reader's for merging shards.  The window moves, or the
 * scale coarsens until the range fits.
 */
#include "rtm_shm_exp.h"

#include <errno.h>

#include "rtm_shm.h"

static int32_t ld32(const int32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Relaxed: in a segment, the writer holds the slot's seqlock, which orders
 * these for a reader (rtm_shm.h); elsewhere nobody else looks. */
static void st32(int32_t *p, int32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static uint64_t ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void st64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Halves one sign's resolution k times: bucket i goes to i >> k.  In
 * place, lowest first: a count only ever moves down the array, onto a
 * place already visited. */
static void downscale_sign(struct rtm_shm_exphist *s, uint32_t size, int neg, int k)
{
	int32_t *base = neg ? &s->neg_base : &s->pos_base;
	int32_t b = ld32(base), top = ld32(base + 1), nb = b >> k;
	uint64_t *c = rtm_shm_exphist_counts(s, size, neg);

	if (top < b)
		return;
	for (int32_t i = 0; i <= top - b; i++) {
		uint64_t n = ld64(&c[i]);
		uint32_t to = (uint32_t)(((b + i) >> k) - nb);

		if (!n || to == (uint32_t)i)
			continue;
		st64(&c[i], 0);
		st64(&c[to], ld64(&c[to]) + n);
	}
	st32(base, nb);
	st32(base + 1, top >> k);
}

void rtm_shm_exp_downscale(struct rtm_shm_exphist *s, uint32_t size, int k)
{
	if (k <= 0)
		return;
	downscale_sign(s, size, 0, k);
	downscale_sign(s, size, 1, k);
	st32(&s->scale, ld32(&s->scale) - k);
}

int rtm_shm_exp_add(struct rtm_shm_exphist *s, uint32_t size, int neg, int32_t index,
		    int32_t at_scale, uint64_t n)
{
	int32_t scale = ld32(&s->scale);
	int32_t *base = neg ? &s->neg_base : &s->pos_base;
	uint64_t *c = rtm_shm_exphist_counts(s, size, neg);
	int32_t idx, b, top, lo, hi;
	int k = 0;

	if (at_scale < scale) {
		rtm_shm_exp_downscale(s, size, scale - at_scale);
		scale = at_scale;
	}
	idx = index >> (at_scale - scale);
	b = ld32(base);
	top = ld32(base + 1);
	lo = top < b || idx < b ? idx : b;
	hi = top < b || idx > top ? idx : top;
	while ((int64_t)(hi >> k) - (lo >> k) >= (int64_t)size && scale - k > RTM_SHM_EXP_SCALE_MIN)
		k++;
	/* Past the coarsest scale every double fits in three buckets: an
	 * index that still does not fit is not one of a double's. */
	if ((int64_t)(hi >> k) - (lo >> k) >= (int64_t)size)
		return -ERANGE;
	if (k) {
		rtm_shm_exp_downscale(s, size, k);
		idx >>= k;
		b = ld32(base);
		top = ld32(base + 1);
	}
	if (top < b) {
		st32(base, idx);
		st32(base + 1, idx);
		b = idx;
	} else if (idx < b) {
		/* Move the window down: the counts up by the difference. */
		uint32_t by = (uint32_t)(b - idx);

		for (int32_t i = top - b; i >= 0; i--) {
			st64(&c[(uint32_t)i + by], ld64(&c[i]));
			st64(&c[i], 0);
		}
		st32(base, idx);
		b = idx;
	} else if (idx > top) {
		st32(base + 1, idx);
	}
	st64(&c[idx - b], ld64(&c[idx - b]) + n);
	return 0;
}
