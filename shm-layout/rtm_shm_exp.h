/* SPDX-License-Identifier: MIT */
/*
 * rtm_shm_exp.h - where a value falls in a base-2 exponential histogram
 * (rtm_shm.h, struct rtm_shm_exphist; FORMAT.md §7), from the bits of the
 * double alone: no log(), no division, one table lookup.
 *
 * At scale s, v > 0 falls in bucket index i with 2^(i/2^s) < v <=
 * 2^((i+1)/2^s).  Buckets of scale 8 nest exactly inside those of every
 * coarser scale, so the index at scale s is the index at scale 8 shifted
 * right (arithmetically) by 8 - s.
 */
#ifndef RTM_SHM_EXP_H
#define RTM_SHM_EXP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* bounds[j], j < 256: the largest 52-bit mantissa fraction f with
 * 1 + f/2^52 < 2^(j/256); bounds[256] = 2^52.  cells[c]: the bucket (of
 * 256 in an octave) holding fraction c * 2^42. */
extern const uint64_t rtm_shm_exp_bounds[257];
extern const uint8_t rtm_shm_exp_cells[1024];

/*
 * rtm_shm_exp_index8 - the scale-8 bucket index of the positive finite
 * double whose bits (sign cleared) are mag, mag != 0.
 */
static inline int32_t rtm_shm_exp_index8(uint64_t mag)
{
	int32_t e = (int32_t)(mag >> 52);
	uint64_t f = mag & ((1ull << 52) - 1);
	uint32_t j;

	if (e == 0) { /* subnormal: normalise the fraction */
		int top = 63 - __builtin_clzll(f);

		e = top - 51;
		f = (f << (52 - top)) & ((1ull << 52) - 1);
	}
	e -= 1023;
	if (!f) /* an exact power of two closes the bucket below it */
		return e * 256 - 1;
	j = rtm_shm_exp_cells[f >> 42];
	j += f > rtm_shm_exp_bounds[j + 1];
	return e * 256 + (int32_t)j;
}

/* The index at scale (RTM_SHM_EXP_SCALE_MIN..8) of a scale-8 index. */
static inline int32_t rtm_shm_exp_rescale(int32_t index8, int32_t scale)
{
	return index8 >> (8 - scale); /* arithmetic shift: GNU C */
}

struct rtm_shm_exphist;

/*
 * rtm_shm_exp_add - add n to the bucket of index (at scale at_scale) in
 * the slot s of size buckets per sign (neg: the negative side), moving the
 * window or coarsening the slot's scale as needed.  The producer calls it
 * holding the slot's seqlock, for a value outside the window; the reader
 * on its own copy, merging shards.  Returns 0, or -ERANGE for an index no
 * double has (nothing changed).
 */
int rtm_shm_exp_add(struct rtm_shm_exphist *s, uint32_t size, int neg, int32_t index,
		    int32_t at_scale, uint64_t n);

/* rtm_shm_exp_downscale - the slot's scale k steps coarser. */
void rtm_shm_exp_downscale(struct rtm_shm_exphist *s, uint32_t size, int k);

#ifdef __cplusplus
}
#endif

#endif /* RTM_SHM_EXP_H */
