/* SPDX-License-Identifier: MIT */
#include "rd_delta.h"

#include <stdlib.h>
#include <string.h>


/* One stream's values: a number point's, or a histogram's.  An
 * exponential one's buckets are its positive side's npos, then its
 * negative side's. */
struct val {
	int64_t i;
	double d;
	uint64_t count;
	double sum;
	size_t nb;
	uint64_t *buckets;
	int32_t scale, pos_off, neg_off;
	size_t npos;
	uint64_t zero;
};

struct stream {
	uint64_t key;          /* 0: empty slot */
	bool has_base, has_sent;
	struct val base, sent; /* last delivered; latest sent */
	uint64_t base_time, sent_time, sent_epoch;
};

struct rd_delta {
	struct stream *s;
	size_t cap, n; /* cap a power of two */
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull; /* FNV-1a */
	return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
	return mix(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* A stream is its scope, its metric's name and its attribute set. */
static uint64_t stream_key(const otlp_sm *sm, const otlp_metric *m, otlp_kv *const *kv, size_t n)
{
	uint64_t h = mix_str(1469598103934665603ull, sm->scope ? sm->scope->name : NULL);

	h = mix_str(h, m->name);
	for (size_t i = 0; i < n; i++) {
		const otlp_any *v = kv[i]->value;

		h = mix_str(h, kv[i]->key);
		if (!v)
			continue;
		h = mix(h, &v->value_case, sizeof v->value_case);
		if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			h = mix_str(h, v->string_value);
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
			h = mix(h, &v->int_value, sizeof v->int_value);
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
			h = mix(h, &v->double_value, sizeof v->double_value);
		else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE)
			h = mix(h, &v->bool_value, sizeof v->bool_value);
	}
	return h ? h : 1;
}

static struct stream *find(struct rd_delta *d, uint64_t key)
{
	size_t i;

	if (2 * (d->n + 1) > d->cap) {
		struct rd_delta old = *d;

		d->cap = d->cap ? d->cap * 2 : 64;
		d->s = calloc(d->cap, sizeof *d->s);
		if (!d->s)
			abort(); /* as the arena: the daemon cannot go on without memory */
		d->n = 0;
		for (size_t k = 0; k < old.cap; k++)
			if (old.s[k].key) {
				for (i = old.s[k].key & (d->cap - 1); d->s[i].key; i = (i + 1) & (d->cap - 1))
					;
				d->s[i] = old.s[k];
				d->n++;
			}
		free(old.s);
	}
	for (i = key & (d->cap - 1); d->s[i].key && d->s[i].key != key; i = (i + 1) & (d->cap - 1))
		;
	if (!d->s[i].key) {
		d->s[i].key = key;
		d->n++;
	}
	return &d->s[i];
}

/* A bucket array of want entries, reusing b (of have). */
static uint64_t *fit(uint64_t *b, size_t have, size_t want)
{
	if (have == want && (b || !want))
		return b;
	if (!want) {
		free(b);
		return NULL;
	}
	b = realloc(b, want * sizeof *b);
	if (!b)
		abort();
	return b;
}

/* dst = src, buckets copied into dst's own array. */
static void set_val(struct val *dst, const struct val *src)
{
	uint64_t *b = fit(dst->buckets, dst->nb, src->nb);

	*dst = *src;
	dst->buckets = b;
	if (src->nb)
		memcpy(b, src->buckets, src->nb * sizeof *b);
}

static void zero_val(struct val *v, size_t nb)
{
	uint64_t *b = fit(v->buckets, v->nb, nb);

	*v = (struct val){ .nb = nb, .buckets = b };
	if (nb)
		memset(b, 0, nb * sizeof *b);
}

/* One point: false when it is to be left out (a stream's first sight). */
static bool delta_point(struct stream *st, struct val *cur, uint64_t start, uint64_t time,
			uint64_t *out_start, bool hist, bool dbl, uint64_t epoch, uint64_t since)
{
	bool reset;

	if (!st->has_base) {
		st->has_base = true;
		if (start < since) {
			/* It existed before this reader: begin now. */
			set_val(&st->base, cur);
			st->base_time = time;
			return false;
		}
		zero_val(&st->base, cur->nb);
		st->base_time = start;
	}
	/* A cumulative value below the base means the stream restarted. */
	reset = hist ? cur->count < st->base.count || cur->nb != st->base.nb :
		dbl ? cur->d < st->base.d : cur->i < st->base.i;
	if (reset) {
		zero_val(&st->base, cur->nb);
		st->base_time = start;
	}
	set_val(&st->sent, cur);
	st->sent_time = time;
	st->sent_epoch = epoch;
	st->has_sent = true;
	*out_start = st->base_time < time ? st->base_time : time;
	return true;
}

static bool number_points(struct rd_delta *d, const otlp_sm *sm, const otlp_metric *m,
			  otlp_ndp **p, size_t *n, uint64_t epoch, uint64_t since)
{
	size_t keep = 0;

	for (size_t k = 0; k < *n; k++) {
		otlp_ndp *pt = p[k];
		bool dbl = pt->value_case ==
			OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
		struct stream *st;
		struct val cur = { .i = pt->as_int, .d = pt->as_double };

		if (pt->flags & OTLP_NO_RECORDED_VALUE) {
			p[keep++] = pt;
			continue;
		}
		st = find(d, stream_key(sm, m, pt->attributes, pt->n_attributes));
		if (!delta_point(st, &cur, pt->start_time_unix_nano, pt->time_unix_nano,
				 &pt->start_time_unix_nano, false, dbl, epoch, since))
			continue;
		if (dbl)
			pt->as_double -= st->base.d;
		else
			pt->as_int -= st->base.i;
		p[keep++] = pt;
	}
	*n = keep;
	return keep > 0;
}

static bool hist_points(struct rd_delta *d, const otlp_sm *sm, const otlp_metric *m,
			otlp_hdp **p, size_t *n, struct rd_arena *a, uint64_t epoch, uint64_t since)
{
	size_t keep = 0;

	for (size_t k = 0; k < *n; k++) {
		otlp_hdp *pt = p[k];
		struct stream *st;
		struct val cur = { .count = pt->count, .sum = pt->sum, .nb = pt->n_bucket_counts,
				   .buckets = pt->bucket_counts };
		uint64_t *b;

		if (pt->flags & OTLP_NO_RECORDED_VALUE) {
			p[keep++] = pt;
			continue;
		}
		st = find(d, stream_key(sm, m, pt->attributes, pt->n_attributes));
		if (!delta_point(st, &cur, pt->start_time_unix_nano, pt->time_unix_nano,
				 &pt->start_time_unix_nano, true, false, epoch, since))
			continue;
		/* The buckets belong to the snapshot: the deltas go in the arena. */
		b = rd_arena_raw(a, (pt->n_bucket_counts ? pt->n_bucket_counts : 1) * sizeof *b);
		for (size_t i = 0; i < pt->n_bucket_counts; i++)
			b[i] = pt->bucket_counts[i] - st->base.buckets[i];
		pt->bucket_counts = b;
		pt->count -= st->base.count;
		pt->sum -= st->base.sum;
		/* The interval's extremes are unknown: min and max are of all time. */
		pt->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN__NOT_SET;
		pt->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX__NOT_SET;
		p[keep++] = pt;
	}
	*n = keep;
	return keep > 0;
}

/* The exponential point cur less base (at base's scale, no finer than
 * cur's), into out (cur's buckets' shape).  false: base does not fit
 * inside cur, so the stream restarted. */
static bool exp_minus(const struct val *cur, const struct val *base, uint64_t *out)
{
	int k = base->scale - cur->scale;

	if (cur->count < base->count || cur->zero < base->zero || k < 0)
		return false;
	memcpy(out, cur->buckets, cur->nb * sizeof *out);
	for (size_t i = 0; i < base->nb; i++) {
		bool neg = i >= base->npos;
		int64_t idx = ((int64_t)(neg ? base->neg_off : base->pos_off) +
			       (int64_t)(neg ? i - base->npos : i)) >> k;
		int64_t at = idx - (neg ? cur->neg_off : cur->pos_off);
		size_t have = neg ? cur->nb - cur->npos : cur->npos;

		if (!base->buckets[i])
			continue;
		if (at < 0 || (size_t)at >= have)
			return false;
		at += neg ? (int64_t)cur->npos : 0;
		if (out[at] < base->buckets[i])
			return false;
		out[at] -= base->buckets[i];
	}
	return true;
}

/* A side of a delta point without its zero buckets at either end (a quiet
 * interval sends none at all). */
static void trim(otlp_ebuckets *b, uint64_t *c, size_t n)
{
	size_t lo = 0, hi = n;

	if (!b)
		return;
	while (lo < hi && !c[lo])
		lo++;
	while (hi > lo && !c[hi - 1])
		hi--;
	b->offset += (int32_t)lo;
	b->bucket_counts = c + lo;
	b->n_bucket_counts = hi - lo;
}

static bool exp_points(struct rd_delta *d, const otlp_sm *sm, const otlp_metric *m,
		       otlp_ehdp **p, size_t *n, struct rd_arena *a, uint64_t epoch, uint64_t since)
{
	size_t keep = 0;

	for (size_t k = 0; k < *n; k++) {
		otlp_ehdp *pt = p[k];
		size_t np = pt->positive ? pt->positive->n_bucket_counts : 0;
		size_t nn = pt->negative ? pt->negative->n_bucket_counts : 0;
		uint64_t *flat = rd_arena_raw(a, (np + nn ? np + nn : 1) * sizeof *flat);
		uint64_t *out = rd_arena_raw(a, (np + nn ? np + nn : 1) * sizeof *out);
		struct val cur = { .count = pt->count, .sum = pt->sum, .nb = np + nn, .buckets = flat,
				   .scale = pt->scale, .npos = np, .zero = pt->zero_count,
				   .pos_off = np ? pt->positive->offset : 0,
				   .neg_off = nn ? pt->negative->offset : 0 };
		struct stream *st;

		if (pt->flags & OTLP_NO_RECORDED_VALUE) {
			p[keep++] = pt;
			continue;
		}
		if (np)
			memcpy(flat, pt->positive->bucket_counts, np * sizeof *flat);
		if (nn)
			memcpy(flat + np, pt->negative->bucket_counts, nn * sizeof *flat);
		st = find(d, stream_key(sm, m, pt->attributes, pt->n_attributes));
		if (!st->has_base) {
			st->has_base = true;
			if (pt->start_time_unix_nano < since) {
				/* It existed before this reader: begin now. */
				set_val(&st->base, &cur);
				st->base_time = pt->time_unix_nano;
				continue;
			}
			zero_val(&st->base, 0);
			st->base.scale = cur.scale;
			st->base_time = pt->start_time_unix_nano;
		}
		if (!exp_minus(&cur, &st->base, out)) {
			/* Restarted: the whole cumulative value is the delta. */
			zero_val(&st->base, 0);
			st->base.scale = cur.scale;
			st->base_time = pt->start_time_unix_nano;
			memcpy(out, flat, cur.nb * sizeof *out);
		}
		set_val(&st->sent, &cur);
		st->sent_time = pt->time_unix_nano;
		st->sent_epoch = epoch;
		st->has_sent = true;
		pt->start_time_unix_nano = st->base_time < pt->time_unix_nano ? st->base_time :
										 pt->time_unix_nano;
		/* The buckets belong to the snapshot: the deltas are the arena's. */
		trim(np ? pt->positive : NULL, out, np);
		trim(nn ? pt->negative : NULL, out + np, nn);
		pt->count -= st->base.count;
		pt->sum -= st->base.sum;
		pt->zero_count -= st->base.zero;
		/* The interval's extremes are unknown: min and max are of all time. */
		pt->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN__NOT_SET;
		pt->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX__NOT_SET;
		p[keep++] = pt;
	}
	*n = keep;
	return keep > 0;
}

void rd_delta_apply(struct rd_delta **dp, otlp_rm *rm, struct rd_arena *a, enum rd_temporality t,
		    uint64_t epoch, uint64_t since)
{
	struct rd_delta *d = *dp;

	if (t == RD_TEMP_CUMULATIVE)
		return;
	if (!d && !(d = *dp = calloc(1, sizeof *d)))
		abort();
	for (size_t s = 0; s < rm->n_scope_metrics; s++) {
		otlp_sm *sm = rm->scope_metrics[s];
		/* A producer's own instruments are synchronous; rtm/process and
		 * the reader's are observed (asynchronous). */
		bool sync = sm->scope && sm->scope->name && !strcmp(sm->scope->name, "rtm");
		size_t keep = 0;

		for (size_t i = 0; i < sm->n_metrics; i++) {
			otlp_metric *m = sm->metrics[i];
			bool any = true;

			if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM &&
			    m->sum->is_monotonic && (sync || t == RD_TEMP_DELTA)) {
				m->sum->aggregation_temporality =
					OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
				any = number_points(d, sm, m, m->sum->data_points, &m->sum->n_data_points,
						    epoch, since);
			} else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM) {
				m->histogram->aggregation_temporality =
					OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
				any = hist_points(d, sm, m, m->histogram->data_points,
						  &m->histogram->n_data_points, a, epoch, since);
			} else if (m->data_case == OTLP_DATA_EXPHIST) {
				m->exponential_histogram->aggregation_temporality =
					OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
				any = exp_points(d, sm, m, m->exponential_histogram->data_points,
						 &m->exponential_histogram->n_data_points, a, epoch, since);
			}
			if (any)
				sm->metrics[keep++] = m;
		}
		sm->n_metrics = keep;
	}
}

void rd_delta_delivered(struct rd_delta *d, uint64_t delivered)
{
	for (size_t i = 0; d && i < d->cap; i++) {
		struct stream *st = &d->s[i];

		if (st->key && st->has_sent && st->sent_epoch <= delivered) {
			set_val(&st->base, &st->sent);
			st->base_time = st->sent_time;
			st->has_sent = false;
		}
	}
}

void rd_delta_free(struct rd_delta *d)
{
	for (size_t i = 0; d && i < d->cap; i++) {
		free(d->s[i].base.buckets);
		free(d->s[i].sent.buckets);
	}
	if (d)
		free(d->s);
	free(d);
}
