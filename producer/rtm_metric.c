/* SPDX-License-Identifier: MIT */
/* Metric registration: descriptors, strings and slots. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtm_segment_priv.h"
#include "rtm_shm_text.h"

const double rtm_default_seconds_bounds[RTM_DEFAULT_SECONDS_BOUNDS_N] = {
	1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0,
};

/* A fixed zero page that failed creates point at; never published. */
static unsigned char null_shard[RTM_SHM_CACHELINE]
	__attribute__((aligned(RTM_SHM_CACHELINE)));
struct rtm_segment rtm__null_segment = { .head = { .shard0 = null_shard } };

struct def_bytes {
	uint32_t name_len, unit_len, desc_len;
	uint32_t attrs_len;
	char attrs[RTM_SHM_ATTRS_MAX];
};

static int cmp_attr(const void *a, const void *b)
{
	return strcmp(((const struct rtm_attr *)a)->key,
		      ((const struct rtm_attr *)b)->key);
}

/* Validates a definition and encodes its attribute set, sorted by key so
 * that the same set given in another order names the same series. */
static int encode_def(const struct rtm_metric_def *d, struct def_bytes *b)
{
	struct rtm_attr sorted[RTM_SHM_ATTR_COUNT_MAX];
	uint32_t used = 0;

	if (!d || !d->name || d->n_attrs > RTM_SHM_ATTR_COUNT_MAX ||
	    (d->n_attrs && !d->attrs))
		return -EINVAL;
	b->name_len = (uint32_t)strnlen(d->name, RTM_SHM_NAME_MAX + 1);
	b->unit_len = d->unit ? (uint32_t)strnlen(d->unit, RTM_SHM_UNIT_MAX + 1) : 0;
	b->desc_len = d->description ?
		(uint32_t)strnlen(d->description, RTM_SHM_DESCRIPTION_MAX + 1) : 0;
	if (!rtm_shm_name_valid(d->name, b->name_len) ||
	    (d->unit && !rtm_shm_unit_valid(d->unit, b->unit_len)) ||
	    b->desc_len > RTM_SHM_DESCRIPTION_MAX ||
	    (d->description && !rtm_shm_utf8_valid(d->description, b->desc_len)))
		return -EINVAL;
	if (d->n_attrs)
		memcpy(sorted, d->attrs, d->n_attrs * sizeof *sorted);
	for (size_t i = 0; i < d->n_attrs; i++)
		if (!sorted[i].key || !*sorted[i].key || !sorted[i].value)
			return -EINVAL;
	qsort(sorted, d->n_attrs, sizeof *sorted, cmp_attr);
	for (size_t i = 0; i < d->n_attrs; i++) {
		size_t kl = strlen(sorted[i].key), vl = strlen(sorted[i].value);

		if ((i && !strcmp(sorted[i - 1].key, sorted[i].key)) ||
		    !rtm_shm_utf8_valid(sorted[i].key, kl) ||
		    !rtm_shm_utf8_valid(sorted[i].value, vl))
			return -EINVAL;
		if (used + kl + vl + 2 > RTM_SHM_ATTRS_MAX)
			return -EINVAL;
		memcpy(b->attrs + used, sorted[i].key, kl + 1);
		memcpy(b->attrs + used + kl + 1, sorted[i].value, vl + 1);
		used += (uint32_t)(kl + vl + 2);
	}
	b->attrs_len = used;
	return 0;
}

static int check_bounds(const double *bounds, size_t n)
{
	if (n > RTM_SHM_BOUNDS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
			return -EINVAL;
	return 0;
}

static const char *seg_str(const struct rtm_segment *s, uint32_t off)
{
	return (const char *)s->base + off;
}

/* The existing descriptor for this series, if any.  Caller holds lock. */
static const struct rtm_shm_desc *find_series(const struct rtm_segment *s,
					      const struct rtm_metric_def *d,
					      const struct def_bytes *b)
{
	const struct rtm_shm_header *h = s->hdr;

	for (uint32_t i = 0; i < h->desc_count; i++) {
		const struct rtm_shm_desc *e = (const struct rtm_shm_desc *)(const void *)
			(s->base + h->desc_offset + (size_t)i * h->desc_size);

		if (e->name_len == b->name_len && e->attrs_len == b->attrs_len &&
		    !memcmp(seg_str(s, e->name_off), d->name, b->name_len) &&
		    !memcmp(seg_str(s, e->attrs_off), b->attrs, b->attrs_len))
			return e;
	}
	return NULL;
}

static uint32_t put_bytes(struct rtm_segment *s, const void *p, uint32_t n,
			  uint32_t align)
{
	uint32_t off = (s->strings_used + align - 1) & ~(align - 1);

	if (n) /* p may be NULL for an empty run (no bounds) */
		memcpy(s->base + off, p, n);
	s->strings_used = off + n;
	return off;
}

static void null_handle(rtm_hist_t *out)
{
	out->seg = &rtm__null_segment;
	out->off = 0;
	out->way = 0;
	out->n_bounds = 0;
	out->bounds = NULL;
}

static int refuse(struct rtm_segment *s, int rc)
{
	if (rc == -ENOSPC)
		/* Relaxed: a statistic, ordered against nothing. */
		__atomic_fetch_add(&s->hdr->dropped_metrics, 1, __ATOMIC_RELAXED);
	return rc;
}

/* Shards at or above the high-water mark, and shard 0 until it is used,
 * are unreserved holes: they get their slots initialised when they are
 * reserved (rtm__reserve_shard, rtm__reserve_shard0). */
static void init_hist_slots(struct rtm_segment *s, uint32_t off, const struct rtm_shm_desc *e)
{
	const struct rtm_shm_header *h = s->hdr;

	for (uint32_t i = s->shard0_ready ? 0 : 1; i < h->shard_hwm; i++)
		rtm__hist_slot_init(rtm__shard_base(s, i) + off, e);
}

/* A handle to the histogram at off: an exponential one's seg is odd
 * (rtm.h), so inline code built before them takes the library's path. */
static void hist_handle(rtm_hist_t *out, struct rtm_segment *s, uint32_t off,
			const struct rtm_shm_desc *e)
{
	bool x = e->flags & RTM_SHM_DESC_EXPONENTIAL;

	out->seg = x ? (struct rtm_segment *)(void *)((char *)s + 1) : s;
	out->off = off;
	out->way = (uint16_t)s->way;
	out->n_bounds = x ? e->exp_size : e->bound_count;
	out->bounds = x ? NULL : (const double *)(const void *)(s->base + e->bounds_off);
}

/* Registers one series; the caller holds s->lock.  xsize: an exponential
 * histogram's buckets per sign (0: explicit), xscale its scale. */
static int create_locked(struct rtm_segment *s, uint8_t kind,
			 const struct rtm_metric_def *d, rtm_hist_t *out,
			 uint32_t xsize, int xscale)
{
	struct rtm_shm_header *h = s->hdr;
	const struct rtm_shm_desc *old;
	struct rtm_shm_desc *e;
	struct def_bytes b;
	const double *bounds = d->bounds;
	size_t nb = d->n_bounds;
	uint32_t slot_size, align, off, need, slot_end;
	int rc;

	if (xsize) {
		if (bounds || nb)
			return -EINVAL;
	} else if (kind == RTM_SHM_KIND_HISTOGRAM && (!bounds || !nb)) {
		bounds = rtm_default_seconds_bounds;
		nb = RTM_DEFAULT_SECONDS_BOUNDS_N;
	} else if (kind != RTM_SHM_KIND_HISTOGRAM) {
		nb = 0;
	}
	rc = encode_def(d, &b);
	if (!rc && kind == RTM_SHM_KIND_HISTOGRAM)
		rc = check_bounds(bounds, nb);
	if (rc)
		return rc;
	old = find_series(s, d, &b);
	if (old) {
		if (old->kind != kind ||
		    old->value_type != (d->is_double || kind == RTM_SHM_KIND_HISTOGRAM ?
					RTM_SHM_VALUE_DOUBLE : RTM_SHM_VALUE_INT) ||
		    old->unit_len != b.unit_len ||
		    memcmp(seg_str(s, old->unit_off), d->unit ? d->unit : "", b.unit_len) ||
		    old->bound_count != nb ||
		    (nb && memcmp(s->base + old->bounds_off, bounds, nb * 8)) ||
		    !(old->flags & RTM_SHM_DESC_EXPONENTIAL) != !xsize ||
		    (xsize && (old->exp_size != xsize || old->exp_max_scale != xscale)))
			return -EEXIST;
		if (kind == RTM_SHM_KIND_HISTOGRAM) {
			hist_handle(out, s, old->slot_offset, old);
		} else {
			out->off = old->slot_offset;
			out->way = (uint16_t)s->way;
			out->n_bounds = 0;
			out->bounds = NULL;
			out->seg = s;
		}
		return 0;
	}
	if (h->desc_count >= h->desc_capacity)
		return refuse(s, -ENOSPC);
	need = b.name_len + 1 + b.unit_len + 1 + b.desc_len + 1 + b.attrs_len +
	       8 + (uint32_t)nb * 8;
	if (s->strings_used + need > h->strings_offset + h->strings_size)
		return refuse(s, -ENOSPC);
	if (xsize) {
		slot_size = RTM_SHM_EXPHIST_SLOT_SIZE(xsize);
		align = RTM_SHM_CACHELINE;
	} else if (kind == RTM_SHM_KIND_HISTOGRAM) {
		slot_size = RTM_SHM_HIST_SLOT_SIZE(nb);
		align = RTM_SHM_CACHELINE;
	} else {
		slot_size = 8;
		/* A gauge in shard 0 is written by any thread: give it its own
		 * line so it does not false-share with overflow counters. */
		align = kind == RTM_SHM_KIND_GAUGE ? RTM_SHM_CACHELINE : 8;
	}
	off = (s->data_used + align - 1) & ~(align - 1);
	if (off + slot_size > h->shard_size)
		return refuse(s, -ENOSPC);
	/* Pages for the descriptor, its strings (+8: the bounds' alignment)
	 * and its slot in every claimed shard, before anything is stored. */
	slot_end = off + (kind == RTM_SHM_KIND_GAUGE ? RTM_SHM_CACHELINE : slot_size);
	rc = rtm__reserve(s, &s->res_meta,
			  h->desc_offset + (uint64_t)(h->desc_count + 1) * h->desc_size);
	if (!rc)
		rc = rtm__reserve(s, &s->res_strings, (uint64_t)s->strings_used + need + 8);
	/* A gauge lives in shard 0: its pages now, before the slot's. */
	if (!rc && kind == RTM_SHM_KIND_GAUGE)
		rc = rtm__reserve_shard0(s);
	if (!rc)
		rc = rtm__reserve_data(s, slot_end);
	if (rc)
		return refuse(s, rc);
	s->data_used = slot_end;

	e = (struct rtm_shm_desc *)(void *)
		(s->base + h->desc_offset + (size_t)h->desc_count * h->desc_size);
	e->kind = kind;
	e->value_type = d->is_double || kind == RTM_SHM_KIND_HISTOGRAM ?
		RTM_SHM_VALUE_DOUBLE : RTM_SHM_VALUE_INT;
	e->bound_count = (uint16_t)nb;
	if (xsize) {
		e->flags = RTM_SHM_DESC_EXPONENTIAL;
		e->exp_size = (uint16_t)xsize;
		e->exp_max_scale = (int8_t)xscale;
	}
	e->slot_offset = off;
	e->slot_size = slot_size;
	e->name_off = put_bytes(s, d->name, b.name_len + 1, 1);
	e->name_len = (uint16_t)b.name_len;
	e->unit_off = put_bytes(s, d->unit ? d->unit : "", b.unit_len + 1, 1);
	e->unit_len = (uint16_t)b.unit_len;
	e->description_off = put_bytes(s, d->description ? d->description : "",
				       b.desc_len + 1, 1);
	e->description_len = b.desc_len;
	e->attrs_off = put_bytes(s, b.attrs, b.attrs_len, 1);
	e->attrs_len = b.attrs_len;
	e->attr_count = (uint16_t)d->n_attrs;
	e->bounds_off = put_bytes(s, bounds, (uint32_t)nb * 8, 8);
	e->start_unix_nano = rtm__now_ns(CLOCK_REALTIME);
	if (kind == RTM_SHM_KIND_HISTOGRAM)
		init_hist_slots(s, off, e);

	/* Relaxed: informational; the release store of desc_count below
	 * publishes everything a reader relies on. */
	__atomic_store_n(&h->strings_used, s->strings_used - h->strings_offset,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&h->data_used, s->data_used, __ATOMIC_RELAXED);
	/* Release: the descriptor, its strings and its initialised slots are
	 * visible to a reader whose acquire load sees the new count. */
	__atomic_store_n(&h->desc_count, h->desc_count + 1, __ATOMIC_RELEASE);
	/* Release, paired with the reader's acquire load: a reader that sees
	 * the new generation re-reads the table and finds the new entry. */
	__atomic_fetch_add(&h->generation, 1, __ATOMIC_RELEASE);

	if (kind == RTM_SHM_KIND_HISTOGRAM) {
		hist_handle(out, s, off, e);
	} else {
		out->seg = s;
		out->off = off;
		out->way = (uint16_t)s->way;
	}
	return 0;
}

static int create(struct rtm_segment *s, uint8_t kind,
		  const struct rtm_metric_def *d, rtm_hist_t *out, uint32_t xsize, int xscale)
{
	int rc;

	if (!out)
		return -EINVAL;
	null_handle(out);
	if (!s || s == &rtm__null_segment || !d)
		return -EINVAL;
	rtm__lock(s);
	rc = s->closed ? -EINVAL : create_locked(s, kind, d, out, xsize, xscale);
	if (!s->closed)
		rtm_segment_heartbeat(s);
	rtm__unlock(s);
	if (rc)
		null_handle(out);
	return rc;
}

static int create_word(struct rtm_segment *s, uint8_t kind,
		       const struct rtm_metric_def *d, rtm_counter_t *out)
{
	rtm_hist_t h;
	int rc = create(s, kind, d, &h, 0, 0);

	if (out) {
		out->seg = h.seg;
		out->off = h.off;
		out->way = h.way;
	}
	return rc;
}

int rtm_counter_create(struct rtm_segment *s, rtm_counter_t *out,
		       const struct rtm_metric_def *d)
{
	return create_word(s, RTM_SHM_KIND_COUNTER, d, out);
}

int rtm_updown_create(struct rtm_segment *s, rtm_updown_t *out,
		      const struct rtm_metric_def *d)
{
	return create_word(s, RTM_SHM_KIND_UPDOWN, d, out);
}

int rtm_gauge_create(struct rtm_segment *s, rtm_gauge_t *out,
		     const struct rtm_metric_def *d)
{
	return create_word(s, RTM_SHM_KIND_GAUGE, d, out);
}

/* OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION, as the OTel
 * SDKs read it: histograms without bounds of their own become
 * exponential.  Read at each create (a cold path). */
bool rtm__default_exponential(void)
{
	const char *v = rtm__env_get("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION");

	return v && !strcmp(v, "base2_exponential_bucket_histogram");
}

int rtm_hist_create(struct rtm_segment *s, rtm_hist_t *out,
		    const struct rtm_metric_def *d)
{
	if (d && (!d->bounds || !d->n_bounds) && rtm__default_exponential())
		return rtm_exphist_create(s, out, &(struct rtm_metric_def){
			.name = d->name, .unit = d->unit, .description = d->description,
			.attrs = d->attrs, .n_attrs = d->n_attrs }, 0, 0);
	return create(s, RTM_SHM_KIND_HISTOGRAM, d, out, 0, 0);
}

int rtm_exphist_create(struct rtm_segment *s, rtm_hist_t *out,
		       const struct rtm_metric_def *d, uint32_t max_size, int max_scale)
{
	uint32_t size = max_size ? max_size : RTM_SHM_EXP_SIZE_DEFAULT;
	int scale = max_scale ? max_scale : RTM_SHM_EXP_SCALE_MAX;

	if (size < 4 || size > RTM_SHM_EXP_SIZE_MAX || scale < RTM_SHM_EXP_SCALE_MIN ||
	    scale > RTM_SHM_EXP_SCALE_MAX) {
		if (out)
			null_handle(out);
		return -EINVAL;
	}
	return create(s, RTM_SHM_KIND_HISTOGRAM, d, out, size, scale);
}
