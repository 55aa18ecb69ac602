/* SPDX-License-Identifier: MIT */
#include "rd_pb.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

enum { VARINT = 0, I64 = 1, LEN = 2 };

struct ctx {
	uint8_t *buf, *pos, *end; /* output is [pos, end) */
	jmp_buf oom;              /* allocation failure unwinds the pack */
	/* rd_pb_metric_template(): where each number point's start time,
	 * time and value went, as used() right after each was written. */
	uint32_t *rec;
	/* rd_pb_rm_field_size_raw(): the scope whose NULL metrics are raw[i]. */
	const otlp_sm *raw_sm;
	const struct rd_pb_raw_metric *raw;
};

static inline size_t used(const struct ctx *c)
{
	return (size_t)(c->end - c->pos);
}

/* Room for n more bytes in front of pos: grow, keeping the tail at the end. */
static __attribute__((noinline)) void grow(struct ctx *c, size_t n)
{
	size_t have = used(c), cap = (size_t)(c->end - c->buf);
	uint8_t *nb;

	cap = cap ? cap * 2 : 1u << 16;
	while (cap - have < n)
		cap *= 2;
	nb = malloc(cap);
	if (!nb)
		longjmp(c->oom, 1);
	if (have) /* pos is NULL before the first allocation */
		memcpy(nb + cap - have, c->pos, have);
	free(c->buf);
	c->buf = nb;
	c->end = nb + cap;
	c->pos = c->end - have;
}

static inline void room(struct ctx *c, size_t n)
{
	if (__builtin_expect((size_t)(c->pos - c->buf) < n, 0))
		grow(c, n);
}

static inline void varint(struct ctx *c, uint64_t v)
{
	unsigned n = 1;

	room(c, 10);
	if (v < 0x80) {
		*--c->pos = (uint8_t)v;
		return;
	}
	for (uint64_t t = v >> 7; t; t >>= 7)
		n++;
	c->pos -= n;
	for (unsigned i = 0; i + 1 < n; i++, v >>= 7)
		c->pos[i] = (uint8_t)(v | 0x80);
	c->pos[n - 1] = (uint8_t)v;
}

static inline void tag(struct ctx *c, unsigned field, unsigned type)
{
	varint(c, (uint64_t)field << 3 | type);
}

static void fixed64(struct ctx *c, unsigned field, uint64_t v)
{
	room(c, 8);
	c->pos -= 8;
	memcpy(c->pos, &v, 8); /* little-endian hosts only, as rtm is */
	tag(c, field, I64);
}

static void dbl(struct ctx *c, unsigned field, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	fixed64(c, field, v);
}

static void uvarint_field(struct ctx *c, unsigned field, uint64_t v)
{
	varint(c, v);
	tag(c, field, VARINT);
}

/* proto3 strings: absent when NULL or empty. */
static void string(struct ctx *c, unsigned field, const char *s)
{
	size_t n;

	if (!s || !*s)
		return;
	n = strlen(s);
	room(c, n);
	c->pos -= n;
	memcpy(c->pos, s, n);
	varint(c, n);
	tag(c, field, LEN);
}

/* Closes a length-delimited field whose content ended at `end` bytes. */
static void close_len(struct ctx *c, unsigned field, size_t end)
{
	varint(c, used(c) - end);
	tag(c, field, LEN);
}

static void any_value(struct ctx *c, unsigned field, const otlp_any *v)
{
	size_t end = used(c);

	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
		/* A oneof member is present even when empty. */
		size_t n = strlen(v->string_value);

		room(c, n);
		c->pos -= n;
		memcpy(c->pos, v->string_value, n);
		varint(c, n);
		tag(c, 1, LEN);
		break;
	}
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		uvarint_field(c, 2, v->bool_value ? 1 : 0);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		uvarint_field(c, 3, (uint64_t)v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		dbl(c, 4, v->double_value);
		break;
	default: /* arrays, kvlists, bytes: rtm never builds them */
		break;
	}
	close_len(c, field, end);
}

static void key_values(struct ctx *c, unsigned field, otlp_kv *const *kv, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		size_t end = used(c);

		if (kv[i]->value)
			any_value(c, 2, kv[i]->value);
		string(c, 1, kv[i]->key);
		close_len(c, field, end);
	}
}

/* Notes in rec[slot] (when recording) where a payload just written is,
 * followed by `prefix` bytes written since (its tag, its length): its
 * distance from the end, turned into an offset once the template's length
 * is known. */
static inline void note(struct ctx *c, uint32_t *rec, unsigned slot, size_t prefix)
{
	if (rec)
		rec[slot] = (uint32_t)(used(c) - prefix);
}

/* rec: this point's three slots (start, time, value), or NULL. */
static void ndp(struct ctx *c, const otlp_ndp *p, uint32_t *rec)
{
	if (p->flags)
		uvarint_field(c, 8, p->flags);
	key_values(c, 7, p->attributes, p->n_attributes);
	if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
		fixed64(c, 6, (uint64_t)p->as_int);
		note(c, rec, 2, 1);
	} else if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
		dbl(c, 4, p->as_double);
		note(c, rec, 2, 1);
	}
	if (p->time_unix_nano) {
		fixed64(c, 3, p->time_unix_nano);
		note(c, rec, 1, 1);
	}
	if (p->start_time_unix_nano) {
		fixed64(c, 2, p->start_time_unix_nano);
		note(c, rec, 0, 1);
	}
}

static void packed64(struct ctx *c, unsigned field, const void *v, size_t n)
{
	if (!n)
		return;
	room(c, n * 8);
	c->pos -= n * 8;
	memcpy(c->pos, v, n * 8);
	varint(c, n * 8);
	tag(c, field, LEN);
}

/* rec: this point's seven slots (start, time, count, sum, bucket counts,
 * min, max), or NULL. */
static void hdp(struct ctx *c, const otlp_hdp *p, uint32_t *rec)
{
	size_t before;

	if (p->_max_case) {
		dbl(c, 12, p->max);
		note(c, rec, 6, 1);
	}
	if (p->_min_case) {
		dbl(c, 11, p->min);
		note(c, rec, 5, 1);
	}
	if (p->flags)
		uvarint_field(c, 10, p->flags);
	key_values(c, 9, p->attributes, p->n_attributes);
	packed64(c, 7, p->explicit_bounds, p->n_explicit_bounds);
	before = used(c);
	packed64(c, 6, p->bucket_counts, p->n_bucket_counts);
	if (p->n_bucket_counts) /* the counts' 8-byte words follow tag and length */
		note(c, rec, 4, used(c) - before - p->n_bucket_counts * 8);
	if (p->_sum_case) {
		dbl(c, 5, p->sum);
		note(c, rec, 3, 1);
	}
	if (p->count) {
		fixed64(c, 4, p->count);
		note(c, rec, 2, 1);
	}
	if (p->time_unix_nano) {
		fixed64(c, 3, p->time_unix_nano);
		note(c, rec, 1, 1);
	}
	if (p->start_time_unix_nano) {
		fixed64(c, 2, p->start_time_unix_nano);
		note(c, rec, 0, 1);
	}
}

static void sint32_field(struct ctx *c, unsigned field, int32_t v)
{
	uvarint_field(c, field, (uint32_t)v << 1 ^ (uint32_t)(v >> 31)); /* zigzag */
}

/* One side of an exponential point (field 8 or 9): absent when empty. */
static void ebuckets(struct ctx *c, unsigned field, const otlp_ebuckets *b)
{
	size_t end = used(c);

	if (!b || !b->n_bucket_counts)
		return;
	for (size_t i = b->n_bucket_counts; i-- > 0;)
		varint(c, b->bucket_counts[i]);
	close_len(c, 2, end); /* packed repeated uint64 */
	if (b->offset)
		sint32_field(c, 1, b->offset);
	close_len(c, field, end);
}

static void ehdp(struct ctx *c, const otlp_ehdp *p)
{
	if (p->zero_threshold != 0)
		dbl(c, 14, p->zero_threshold);
	if (p->_max_case)
		dbl(c, 13, p->max);
	if (p->_min_case)
		dbl(c, 12, p->min);
	if (p->flags)
		uvarint_field(c, 10, p->flags);
	ebuckets(c, 9, p->negative);
	ebuckets(c, 8, p->positive);
	if (p->zero_count)
		fixed64(c, 7, p->zero_count);
	if (p->scale)
		sint32_field(c, 6, p->scale);
	if (p->_sum_case)
		dbl(c, 5, p->sum);
	if (p->count)
		fixed64(c, 4, p->count);
	if (p->time_unix_nano)
		fixed64(c, 3, p->time_unix_nano);
	if (p->start_time_unix_nano)
		fixed64(c, 2, p->start_time_unix_nano);
	key_values(c, 1, p->attributes, p->n_attributes);
}

static void ndps(struct ctx *c, otlp_ndp *const *p, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		size_t end = used(c);

		ndp(c, p[i], c->rec ? &c->rec[3 * i] : NULL);
		close_len(c, 1, end);
	}
}

/* A metric's Gauge, Sum, Histogram or ExponentialHistogram field (5, 7,
 * 9, 10): what a template holds. */
static void metric_data(struct ctx *c, const otlp_metric *m)
{
	size_t end = used(c);

	switch (m->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
		ndps(c, m->gauge->data_points, m->gauge->n_data_points);
		close_len(c, 5, end);
		break;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
		if (m->sum->is_monotonic)
			uvarint_field(c, 3, 1);
		if (m->sum->aggregation_temporality)
			uvarint_field(c, 2, (uint64_t)m->sum->aggregation_temporality);
		ndps(c, m->sum->data_points, m->sum->n_data_points);
		close_len(c, 7, end);
		break;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
		if (m->histogram->aggregation_temporality)
			uvarint_field(c, 2, (uint64_t)m->histogram->aggregation_temporality);
		for (size_t i = m->histogram->n_data_points; i-- > 0;) {
			size_t pend = used(c);

			hdp(c, m->histogram->data_points[i], c->rec ? &c->rec[7 * i] : NULL);
			close_len(c, 1, pend);
		}
		close_len(c, 9, end);
		break;
	case OTLP_DATA_EXPHIST:
		if (m->exponential_histogram->aggregation_temporality)
			uvarint_field(c, 2, (uint64_t)m->exponential_histogram->aggregation_temporality);
		for (size_t i = m->exponential_histogram->n_data_points; i-- > 0;) {
			size_t pend = used(c);

			ehdp(c, m->exponential_histogram->data_points[i]);
			close_len(c, 1, pend);
		}
		close_len(c, 10, end);
		break;
	default:
		break;
	}
}

static void metric(struct ctx *c, const otlp_metric *m)
{
	key_values(c, 12, m->metadata, m->n_metadata);
	metric_data(c, m);
	string(c, 3, m->unit);
	string(c, 2, m->description);
	string(c, 1, m->name);
}

static void scope(struct ctx *c, const otlp_scope *s)
{
	size_t end = used(c);

	if (s->dropped_attributes_count)
		uvarint_field(c, 4, s->dropped_attributes_count);
	key_values(c, 3, s->attributes, s->n_attributes);
	string(c, 2, s->version);
	string(c, 1, s->name);
	close_len(c, 1, end);
}

static void rm_field(struct ctx *c, const otlp_rm *rm)
{
	size_t end = used(c);

	string(c, 3, rm->schema_url);
	for (size_t s = rm->n_scope_metrics; s-- > 0;) {
		const otlp_sm *sm = rm->scope_metrics[s];
		size_t send = used(c);

		string(c, 3, sm->schema_url);
		for (size_t m = sm->n_metrics; m-- > 0;) {
			size_t mend = used(c);

			if (!sm->metrics[m] && sm == c->raw_sm) {
				const struct rd_pb_raw_metric *r = &c->raw[m];

				/* As metric(), its data a filled template. */
				room(c, r->n);
				c->pos -= r->n;
				memcpy(c->pos, r->data, r->n);
				string(c, 3, r->unit);
				string(c, 2, r->description);
				string(c, 1, r->name);
			} else {
				metric(c, sm->metrics[m]);
			}
			close_len(c, 2, mend);
		}
		if (sm->scope)
			scope(c, sm->scope);
		close_len(c, 2, send);
	}
	if (rm->resource) {
		size_t rend = used(c);

		if (rm->resource->dropped_attributes_count)
			uvarint_field(c, 2, rm->resource->dropped_attributes_count);
		key_values(c, 1, rm->resource->attributes, rm->resource->n_attributes);
		close_len(c, 1, rend);
	}
	close_len(c, 1, end);
}

static void start(struct ctx *c, const struct rd_pb *w)
{
	c->rec = NULL;
	c->raw_sm = NULL;
	c->raw = NULL;
	c->buf = w->buf;
	/* No buffer yet: NULL + 0 is undefined behaviour in C. */
	c->end = w->buf ? w->buf + w->cap : NULL;
	c->pos = c->end; /* empty */
}

static void finish(const struct ctx *c, struct rd_pb *w)
{
	w->buf = c->buf;
	w->cap = (size_t)(c->end - c->buf);
	w->pos = c->pos;
}

int rd_pb_pack_request(struct rd_pb *w, const otlp_req *req)
{
	struct ctx c;

	start(&c, w);
	if (setjmp(c.oom)) {
		finish(&c, w);
		return -ENOMEM;
	}
	for (size_t i = req->n_resource_metrics; i-- > 0;)
		rm_field(&c, req->resource_metrics[i]);
	finish(&c, w);
	return 0;
}

size_t rd_pb_rm_field_size_raw(struct rd_pb *w, const otlp_rm *rm, const otlp_sm *raw_sm,
			       const struct rd_pb_raw_metric *raw)
{
	struct ctx c;

	start(&c, w);
	c.raw_sm = raw_sm;
	c.raw = raw;
	if (setjmp(c.oom)) {
		finish(&c, w);
		return SIZE_MAX;
	}
	rm_field(&c, rm);
	finish(&c, w);
	return used(&c);
}

size_t rd_pb_rm_field_size(struct rd_pb *w, const otlp_rm *rm)
{
	return rd_pb_rm_field_size_raw(w, rm, NULL, NULL);
}

size_t rd_pb_metric_template(struct rd_pb *w, const otlp_metric *m, uint32_t *off)
{
	size_t n = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM ?
			   3 * m->sum->n_data_points :
		   m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ?
			   3 * m->gauge->n_data_points :
		   m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM ?
			   7 * m->histogram->n_data_points : 0;
	size_t total;
	struct ctx c;

	for (size_t i = 0; i < n; i++)
		off[i] = UINT32_MAX;
	start(&c, w);
	c.rec = off;
	if (setjmp(c.oom)) {
		finish(&c, w);
		return SIZE_MAX;
	}
	metric_data(&c, m);
	finish(&c, w);
	total = used(&c);
	/* Distances from the end, into offsets from the start. */
	for (size_t i = 0; i < n; i++)
		if (off[i] != UINT32_MAX)
			off[i] = (uint32_t)(total - off[i]);
	return total;
}

void rd_pb_free(struct rd_pb *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}
