/* SPDX-License-Identifier: MIT */
#include "rd_prom_pb.h"

#include <string.h>

enum { VARINT = 0, I64 = 1, LEN = 2 };

static void varint(struct rd_buf *b, uint64_t v)
{
	char *w = rd_buf_room(b, 10), *s = w;

	while (v >= 0x80) {
		*w++ = (char)(v | 0x80);
		v >>= 7;
	}
	*w++ = (char)v;
	b->len += (size_t)(w - s);
}

static void tag(struct rd_buf *b, unsigned field, unsigned type)
{
	varint(b, (uint64_t)field << 3 | type);
}

static void dbl(struct rd_buf *b, unsigned field, double d)
{
	tag(b, field, I64);
	rd_buf_put(b, &d, 8); /* little-endian hosts only, as rtm is */
}

static void bytes(struct rd_buf *b, unsigned field, const char *s, size_t n)
{
	tag(b, field, LEN);
	varint(b, n);
	rd_buf_put(b, s, n);
}

/* A length-delimited field whose length is known once its content is
 * written: five bytes kept for it, the content moved up to its varint. */
static size_t open_len(struct rd_buf *b, unsigned field)
{
	size_t at;

	tag(b, field, LEN);
	at = b->len;
	rd_buf_room(b, 5);
	b->len += 5;
	return at;
}

static void close_len(struct rd_buf *b, size_t at)
{
	size_t n = b->len - at - 5, k = 0;
	unsigned char v[5];

	for (uint64_t x = n; ; x >>= 7) {
		v[k++] = (unsigned char)(x < 0x80 ? x : (x & 0x7f) | 0x80);
		if (x < 0x80)
			break;
	}
	memmove(b->p + at + k, b->p + at + 5, n);
	memcpy(b->p + at, v, k);
	b->len = at + k + n;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

void rd_prom_pb_labels(struct rd_buf *b, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end) {
		const char *eq = memchr(s, '=', (size_t)(end - s)), *v, *q;
		size_t name, raw, esc = 0, val;

		if (*s == ',' || *s == '{') {
			s++;
			continue;
		}
		if (!eq || eq + 1 >= end || eq[1] != '"')
			return; /* not what the renderer writes */
		/* The value's extent and its length unescaped first, so the
		 * pair's lengths are written before its bytes, not moved. */
		v = eq + 2;
		for (q = v; q < end && *q != '"'; q++)
			if (*q == '\\' && q + 1 < end) {
				q++;
				esc++;
			}
		name = (size_t)(eq - s);
		raw = (size_t)(q - v);
		val = raw - esc;
		tag(b, 1, LEN);
		varint(b, 1 + varint_len(name) + name + 1 + varint_len(val) + val);
		bytes(b, 1, s, name);
		tag(b, 2, LEN);
		varint(b, val);
		if (!esc) {
			rd_buf_put(b, v, raw);
		} else {
			for (const char *run = v; v <= q; v++) {
				if (v == q || (*v == '\\' && v + 1 < end)) {
					rd_buf_put(b, run, (size_t)(v - run));
					if (v == q)
						break;
					v++;
					rd_buf_putc(b, *v == 'n' ? '\n' : *v);
					run = v + 1;
				}
			}
		}
		s = q + 1; /* past the closing quote */
	}
}

/* A Metric's labels: pre, already LabelPair fields, then the pairs of
 * text. */
static void labels(struct rd_buf *b, const struct rd_pb_labels *l)
{
	if (l->pre_len)
		rd_buf_put(b, l->pre, l->pre_len);
	rd_prom_pb_labels(b, l->text, l->text_len);
}

void rd_prom_pb_number(struct rd_buf *b, const struct rd_pb_labels *l, bool counter, double v)
{
	size_t m = open_len(b, 4), k;

	labels(b, l);
	k = open_len(b, counter ? 3 : 2);
	dbl(b, 1, v);
	close_len(b, k);
	close_len(b, m);
}

void rd_prom_pb_classic(struct rd_buf *b, const struct rd_pb_labels *l, const double *bounds,
			const uint64_t *cum, size_t n, uint64_t count, double sum)
{
	size_t m = open_len(b, 4), h;

	labels(b, l);
	h = open_len(b, 7);
	tag(b, 1, VARINT);
	varint(b, count);
	if (sum == sum) /* NaN: no sum known, none sent */
		dbl(b, 2, sum);
	for (size_t i = 0; i < n; i++) {
		size_t k = open_len(b, 3);

		tag(b, 1, VARINT);
		varint(b, cum[i]);
		dbl(b, 2, bounds[i]);
		close_len(b, k);
	}
	close_len(b, h);
	close_len(b, m);
}

static uint64_t zigzag32(int32_t v)
{
	return (uint32_t)v << 1 ^ (uint32_t)(v >> 31);
}

static uint64_t zigzag64(int64_t v)
{
	return (uint64_t)v << 1 ^ (uint64_t)(v >> 63);
}

/* One side: a span over the whole window (zero buckets inside it are
 * allowed), then each bucket as the difference from the one before. */
static void side(struct rd_buf *b, unsigned span_field, unsigned delta_field,
		 const otlp_ebuckets *e)
{
	size_t k;
	int64_t prev = 0;

	if (!e || !e->n_bucket_counts)
		return;
	k = open_len(b, span_field);
	tag(b, 1, VARINT);
	varint(b, zigzag32(e->offset + 1));
	tag(b, 2, VARINT);
	varint(b, e->n_bucket_counts);
	close_len(b, k);
	for (size_t i = 0; i < e->n_bucket_counts; i++) {
		tag(b, delta_field, VARINT);
		varint(b, zigzag64((int64_t)e->bucket_counts[i] - prev));
		prev = (int64_t)e->bucket_counts[i];
	}
}

void rd_prom_pb_native(struct rd_buf *b, const struct rd_pb_labels *l, const otlp_ehdp *p)
{
	size_t m = open_len(b, 4), h;
	bool any = (p->positive && p->positive->n_bucket_counts) ||
		   (p->negative && p->negative->n_bucket_counts);

	labels(b, l);
	h = open_len(b, 7);
	tag(b, 1, VARINT);
	varint(b, p->count);
	if (p->_sum_case)
		dbl(b, 2, p->sum);
	tag(b, 5, VARINT);
	varint(b, zigzag32(p->scale));
	tag(b, 7, VARINT);
	varint(b, p->zero_count);
	side(b, 9, 10, p->negative);
	side(b, 12, 13, p->positive);
	/* Nothing yet in any bucket: an empty span still says "native", as
	 * client_golang does, or Prometheus would take it for a classic one. */
	if (!any && !p->zero_count) {
		size_t k = open_len(b, 12);

		tag(b, 1, VARINT);
		varint(b, 0);
		tag(b, 2, VARINT);
		varint(b, 0);
		close_len(b, k);
	}
	close_len(b, h);
	close_len(b, m);
}

void rd_prom_pb_family_head(struct rd_buf *out, const char *name, const char *suffix,
			    const char *help, int type, size_t n)
{
	size_t nl = strlen(name), sl = strlen(suffix), hl = help ? strlen(help) : 0;
	/* The delimiting length (a bare varint) first: every part's size is
	 * known, so the family's megabytes are copied once, never moved. */
	size_t total = 1 + varint_len(nl + sl) + nl + sl +
		       (hl ? 1 + varint_len(hl) + hl : 0) +
		       (type ? 1 + varint_len((uint64_t)type) : 0) + n;

	rd_buf_room(out, total - n + 10);
	varint(out, total);
	tag(out, 1, LEN);
	varint(out, nl + sl);
	rd_buf_put(out, name, nl);
	rd_buf_put(out, suffix, sl);
	if (hl)
		bytes(out, 2, help, hl);
	if (type) {
		tag(out, 3, VARINT);
		varint(out, (uint64_t)type);
	}
}

void rd_prom_pb_family(struct rd_buf *out, const char *name, const char *suffix, const char *help,
		       int type, const char *metrics, size_t n)
{
	rd_prom_pb_family_head(out, name, suffix, help, type, n);
	rd_buf_put(out, metrics, n);
}
