/* SPDX-License-Identifier: MIT */
/* Reading values: sum each metric over the shards that hold data. */
#define _GNU_SOURCE
#include "rd_segment.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rd_guard.h"
#include "rtm_shm_exp.h"

/* A record is a few dozen instructions, so a running writer settles within
 * a few spins.  A writer preempted mid-record needs the CPU back: yield a few
 * times before giving up.  A writer that died mid-record costs at most
 * SEQ_SPINS + SEQ_YIELDS attempts per snapshot, then counts as torn. */
#define SEQ_SPINS  64
#define SEQ_YIELDS 16

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __atomic_signal_fence(__ATOMIC_SEQ_CST)
#endif

struct snap_ctx {
	struct rd_segment *seg;
	struct rd_snapshot *snap;
};

static uint64_t load64(const unsigned char *p)
{
	/* Relaxed: each word is written with one atomic store by its writer;
	 * the cast drops const only because the builtin wants a pointer. */
	return __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_RELAXED);
}

static void sum_words(const unsigned char *shard0, uint32_t stride,
		      uint32_t shards, const struct rd_slot_plan *m,
		      struct rd_value *v)
{
	const unsigned char *p = shard0 + m->slot_offset;
	uint64_t isum = 0;
	double dsum = 0;

	if (m->value_type == RTM_SHM_VALUE_INT) {
		for (uint32_t s = 0; s < shards; s++, p += stride)
			isum += load64(p);
		v->i = (int64_t)isum;
	} else {
		for (uint32_t s = 0; s < shards; s++, p += stride)
			dsum += rtm_shm_bits_f64(load64(p));
		v->d = dsum;
	}
	v->torn = 0;
}

/* Words 1..n of a slot (all that follows its seq) into dst, under the
 * slot's seqlock: both histogram slots are words after seq, the
 * exponential one laid out as struct rtm_shm_exphist.  Returns false if
 * torn (dst then holds the last try). */
static bool read_slot(const unsigned char *slot, uint64_t *dst, uint32_t n)
{
	const uint64_t *seq = (const uint64_t *)(const void *)slot;

	for (int attempt = 0; attempt < SEQ_SPINS + SEQ_YIELDS; attempt++) {
		uint64_t start = rtm_shm_seq_read_begin(seq);

		for (uint32_t i = 0; i < n; i++)
			dst[i] = load64(slot + 8u + 8u * i);
		if (!rtm_shm_seq_read_retry(seq, start))
			return true;
		if (attempt < SEQ_SPINS)
			cpu_relax();
		else
			sched_yield();
	}
	return false;
}

/* A histogram's count, sum, min and max before any shard is added. */
static void dist_reset(struct rd_value *v)
{
	v->count = 0;
	v->sum = 0;
	v->torn = 0;
	v->min = INFINITY;
	v->max = -INFINITY;
}

/* Adds one shard's n observations with their sum, min and max; an empty
 * shard's sum/min/max say nothing. */
static void dist_add(struct rd_value *v, uint64_t n, double sum, double mn, double mx)
{
	if (!n)
		return;
	v->count += n;
	v->sum += sum;
	if (mn < v->min)
		v->min = mn;
	if (mx > v->max)
		v->max = mx;
}

static void sum_hist(const unsigned char *shard0, uint32_t stride,
		     uint32_t shards, const struct rd_slot_plan *m,
		     struct rd_value *v)
{
	uint64_t w[3 + RTM_SHM_BOUNDS_MAX + 1]; /* sum, min, max, buckets */
	const uint64_t *tmp = w + 3;

	memset(v->buckets, 0, (m->n_bounds + 1) * sizeof *v->buckets);
	dist_reset(v);
	for (uint32_t s = 0; s < shards; s++) {
		double sum, mn, mx;
		uint64_t n = 0;

		if (!read_slot(shard0 + (size_t)s * stride + m->slot_offset, w, 3u + m->n_bounds + 1u))
			v->torn++;
		sum = rtm_shm_bits_f64(w[0]);
		mn = rtm_shm_bits_f64(w[1]);
		mx = rtm_shm_bits_f64(w[2]);
		for (uint32_t b = 0; b <= m->n_bounds; b++) {
			v->buckets[b] += tmp[b];
			n += tmp[b];
		}
		dist_add(v, n, sum, mn, mx);
	}
}

/* Whether a shard's window is one a producer could have written: a scale
 * in range, each side's used buckets inside its window and indices a
 * double has. */
static bool exp_shard_valid(const struct rtm_shm_exphist *x, uint32_t size)
{
	if (x->scale < RTM_SHM_EXP_SCALE_MIN || x->scale > RTM_SHM_EXP_SCALE_MAX)
		return false;
	for (int neg = 0; neg < 2; neg++) {
		int32_t b = neg ? x->neg_base : x->pos_base, top = neg ? x->neg_top : x->pos_top;

		/* Indices no double has at this scale: merging them could
		 * not fit any window (rtm_shm_exp_add's -ERANGE). */
		int32_t lo = (-1074 * 256 - 1) >> (8 - x->scale), hi = (1024 * 256 - 1) >> (8 - x->scale);

		if (top >= b && ((int64_t)top - b >= (int64_t)size || b < lo || top > hi))
			return false;
	}
	return true;
}

/* Merges the shards' exponential slots at the finest scale that holds
 * them all in size buckets a side (rtm_shm_exp_add coarsens as needed).
 * A shard that is torn or impossible is left out and counted as torn. */
static void sum_exp(const unsigned char *shard0, uint32_t stride, uint32_t shards,
		    const struct rd_slot_plan *m, struct rd_value *v, struct rtm_shm_exphist *tmp)
{
	uint32_t size = m->n_bounds;
	struct rtm_shm_exphist *acc = v->exp;

	memset(acc, 0, RTM_SHM_EXPHIST_FIXED + 16u * size);
	acc->scale = RTM_SHM_EXP_SCALE_MAX;
	acc->pos_top = acc->neg_top = -1;
	dist_reset(v);
	for (uint32_t s = 0; s < shards; s++) {
		uint64_t n = 0;
		bool bad = false, copied = false;

		/* The slot is laid out as the struct: its words after seq. */
		if (!read_slot(shard0 + (size_t)s * stride + m->slot_offset, (uint64_t *)(void *)tmp + 1,
			       RTM_SHM_EXPHIST_FIXED / 8 - 1 + 2 * size) ||
		    !exp_shard_valid(tmp, size)) {
			v->torn++;
			continue;
		}
		if (acc->pos_top < acc->pos_base && acc->neg_top < acc->neg_base) {
			/* The first shard with buckets (often the only one): its
			 * windows as they are, nothing outside them. */
			acc->scale = tmp->scale;
			for (int neg = 0; neg < 2; neg++) {
				int32_t b = neg ? tmp->neg_base : tmp->pos_base;
				int32_t top = neg ? tmp->neg_top : tmp->pos_top;
				const uint64_t *c = rtm_shm_exphist_counts(tmp, size, neg);
				uint64_t *to = rtm_shm_exphist_counts(acc, size, neg);

				if (top < b)
					continue;
				memcpy(to, c, ((size_t)(top - b) + 1) * 8);
				for (int32_t i = 0; i <= top - b; i++)
					n += c[i];
				*(neg ? &acc->neg_base : &acc->pos_base) = b;
				*(neg ? &acc->neg_top : &acc->pos_top) = top;
			}
			copied = true;
		}
		for (int neg = 0; neg < 2 && !bad && !copied; neg++) {
			const uint64_t *c = rtm_shm_exphist_counts(tmp, size, neg);
			int32_t b = neg ? tmp->neg_base : tmp->pos_base;
			int32_t top = neg ? tmp->neg_top : tmp->pos_top;

			for (int32_t i = 0; top >= b && i <= top - b; i++) {
				if (!c[i])
					continue;
				if (rtm_shm_exp_add(acc, size, neg, b + i, tmp->scale, c[i])) {
					bad = true;
					break;
				}
				n += c[i];
			}
		}
		if (bad) {
			v->torn++;
			continue;
		}
		n += tmp->zero_count;
		acc->zero_count += tmp->zero_count;
		dist_add(v, n, rtm_shm_bits_f64(tmp->sum_bits), rtm_shm_bits_f64(tmp->min_bits),
			 rtm_shm_bits_f64(tmp->max_bits));
	}
}

static int snapshot(void *arg)
{
	struct snap_ctx *c = arg;
	struct rd_segment *seg = c->seg;
	struct rd_snapshot *snap = c->snap;
	const struct rtm_shm_header *sh = (const struct rtm_shm_header *)(const void *)seg->base;
	const unsigned char *shard0 = seg->base + seg->hdr.data_offset;
	uint32_t hwm, first;

	/* Acquire: pairs with the producer's release store of CLOSED, so a
	 * snapshot that sees CLOSED holds the producer's final values. */
	snap->state = __atomic_load_n(&sh->state, __ATOMIC_ACQUIRE);
	snap->heartbeat_unix_nano = __atomic_load_n(&sh->heartbeat_unix_nano, __ATOMIC_RELAXED);
	snap->closed_unix_nano = __atomic_load_n(&sh->closed_unix_nano, __ATOMIC_RELAXED);
	snap->dropped_metrics = __atomic_load_n(&sh->dropped_metrics, __ATOMIC_RELAXED);
	/* Relaxed: statistics for display, ordered against nothing. */
	snap->shard_fallbacks = __atomic_load_n(&sh->shard_fallbacks, __ATOMIC_RELAXED);
	/* Acquire: pairs with the producer's release store of a new mark, so
	 * a newly claimed shard's histogram slots read as initialised. */
	hwm = __atomic_load_n(&sh->shard_hwm, __ATOMIC_ACQUIRE);
	/* A lying high-water mark only costs reading zeroed shards. */
	if (hwm < 1 || hwm > seg->hdr.shard_count)
		hwm = seg->hdr.shard_count;
	/* Shard 0 holds sums only once some thread fell back to it; until then
	 * only gauges live there, and skipping it halves the memory we touch.
	 * Acquire: pairs with the producer's release increment before its
	 * first shard-0 update (see FORMAT.md, "Shards and slots"). */
	first = __atomic_load_n(&sh->shard_fallbacks, __ATOMIC_ACQUIRE) ? 0 : 1;
	if (first >= hwm)
		first = hwm; /* nothing but shard 0: sums are zero */
	for (uint32_t i = 0; i < snap->n; i++) {
		const struct rd_slot_plan *m = &snap->plan[i];
		struct rd_value *v = &snap->values[i];

		if (m->kind == RTM_SHM_KIND_HISTOGRAM)
			sum_hist(shard0 + (size_t)first * seg->hdr.shard_size,
				 seg->hdr.shard_size, hwm - first, m, v);
		else if (m->kind == RD_KIND_EXPHIST)
			sum_exp(shard0 + (size_t)first * seg->hdr.shard_size,
				seg->hdr.shard_size, hwm - first, m, v, snap->exp_tmp);
		else if (m->kind == RTM_SHM_KIND_GAUGE)
			sum_words(shard0, seg->hdr.shard_size, 1, m, v);
		else
			sum_words(shard0 + (size_t)first * seg->hdr.shard_size,
				  seg->hdr.shard_size, hwm - first, m, v);
		snap->torn += v->torn;
	}
	return 0;
}

static int size_snapshot(struct rd_segment *seg, struct rd_snapshot *snap)
{
	size_t nbuckets = 0, pos = 0;

	/* Same table as last time: the arrays fit; snapshot() overwrites every
	 * value it reports. */
	if (snap->values && snap->n == seg->n_metrics && snap->generation == seg->generation)
		return 0;
	size_t xmax = 0;

	/* An exponential histogram's merged slot: its fixed part, then both
	 * sides; and one shard's copy, as large as the largest. */
	for (uint32_t i = 0; i < seg->n_metrics; i++)
		if (seg->metrics[i].kind == RTM_SHM_KIND_HISTOGRAM) {
			nbuckets += seg->metrics[i].n_bounds + 1;
		} else if (seg->metrics[i].kind == RD_KIND_EXPHIST) {
			nbuckets += RTM_SHM_EXPHIST_FIXED / 8 + 2u * seg->metrics[i].exp_size;
			if (seg->metrics[i].exp_size > xmax)
				xmax = seg->metrics[i].exp_size;
		}
	rd_snapshot_free(snap);
	snap->values = calloc(seg->n_metrics ? seg->n_metrics : 1, sizeof *snap->values);
	snap->plan = calloc(seg->n_metrics ? seg->n_metrics : 1, sizeof *snap->plan);
	snap->bucket_store = calloc(nbuckets ? nbuckets : 1, sizeof(uint64_t));
	snap->exp_tmp = xmax ? calloc(1, RTM_SHM_EXPHIST_FIXED + 16 * xmax) : NULL;
	if (!snap->values || !snap->plan || !snap->bucket_store || (xmax && !snap->exp_tmp)) {
		rd_snapshot_free(snap);
		return -ENOMEM;
	}
	snap->n = seg->n_metrics;
	snap->n_buckets = nbuckets;
	snap->generation = seg->generation;
	for (uint32_t i = 0; i < seg->n_metrics; i++) {
		const struct rd_metric *m = &seg->metrics[i];

		snap->plan[i] = (struct rd_slot_plan){ m->slot_offset, m->kind, m->value_type,
						       (uint16_t)(m->kind == RD_KIND_EXPHIST ?
								  m->exp_size : m->n_bounds) };
		if (m->kind == RTM_SHM_KIND_HISTOGRAM) {
			snap->values[i].buckets = snap->bucket_store + pos;
			pos += m->n_bounds + 1;
		} else if (m->kind == RD_KIND_EXPHIST) {
			snap->values[i].exp = (struct rtm_shm_exphist *)(void *)(snap->bucket_store + pos);
			pos += RTM_SHM_EXPHIST_FIXED / 8 + 2u * m->exp_size;
		}
	}
	return 0;
}

int rd_segment_snapshot(struct rd_segment *seg, struct rd_snapshot *snap)
{
	struct snap_ctx c = { seg, snap };
	int rc = size_snapshot(seg, snap);

	if (rc) {
		snprintf(seg->err, sizeof seg->err, "out of memory");
		return rc;
	}
	snap->torn = 0;
	rc = rd_guard_run(snapshot, &c);
	if (rc == -EFAULT)
		snprintf(seg->err, sizeof seg->err,
			 "segment shrank while being read (SIGBUS)");
	return rc;
}

void rd_snapshot_free(struct rd_snapshot *snap)
{
	free(snap->values);
	free(snap->plan);
	free(snap->bucket_store);
	free(snap->exp_tmp);
	memset(snap, 0, sizeof *snap);
}
