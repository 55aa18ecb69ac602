/* SPDX-License-Identifier: MIT */
/*
 * rd_buf.h - a growable byte buffer for the text renderers.  Appends are
 * inline because a /metrics page of 200 000 series is a few million of them;
 * growth aborts on out-of-memory, like the arena (the daemon can do nothing
 * useful without memory).
 */
#ifndef RD_BUF_H
#define RD_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct rd_buf {
	char *p;
	size_t len, cap;
};

/* Makes room for n more bytes. */
void rd_buf_grow(struct rd_buf *b, size_t n);
void rd_buf_free(struct rd_buf *b);
/* Takes the bytes out of b (the caller frees them); b is empty after. */
char *rd_buf_take(struct rd_buf *b, size_t *len);

static inline void rd_buf_put(struct rd_buf *b, const void *s, size_t n)
{
	if (b->cap - b->len < n)
		rd_buf_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void rd_buf_puts(struct rd_buf *b, const char *s)
{
	rd_buf_put(b, s, strlen(s));
}

static inline void rd_buf_putc(struct rd_buf *b, char c)
{
	if (b->cap == b->len)
		rd_buf_grow(b, 1);
	b->p[b->len++] = c;
}

/* Room for n more bytes at the end, to write directly and then advance
 * len past what was written. */
static inline char *rd_buf_room(struct rd_buf *b, size_t n)
{
	if (b->cap - b->len < n)
		rd_buf_grow(b, n);
	return b->p + b->len;
}

extern const char rd_buf_digit_pairs[200];

/* v in decimal at dst (at most 20 bytes), without a locale or printf's
 * cost: two digits a step.  Returns the length. */
static inline size_t rd_fmt_u64(char *dst, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	while (v >= 100) {
		n += 2;
		memcpy(tmp + sizeof tmp - n, rd_buf_digit_pairs + (v % 100) * 2, 2);
		v /= 100;
	}
	if (v >= 10) {
		n += 2;
		memcpy(tmp + sizeof tmp - n, rd_buf_digit_pairs + v * 2, 2);
	} else {
		tmp[sizeof tmp - ++n] = (char)('0' + v);
	}
	memcpy(dst, tmp + sizeof tmp - n, n);
	return n;
}

/* ... and with a sign (at most 20 bytes too). */
static inline size_t rd_fmt_i64(char *dst, int64_t v)
{
	if (v >= 0)
		return rd_fmt_u64(dst, (uint64_t)v);
	dst[0] = '-';
	return 1 + rd_fmt_u64(dst + 1, (uint64_t)0 - (uint64_t)v);
}

static inline void rd_buf_u64(struct rd_buf *b, uint64_t v)
{
	b->len += rd_fmt_u64(rd_buf_room(b, 20), v);
}

static inline void rd_buf_i64(struct rd_buf *b, int64_t v)
{
	b->len += rd_fmt_i64(rd_buf_room(b, 20), v);
}

/* A decimal that reads back as v, short for the common cases ("0.1", not
 * "0.10000000000000001"; whole numbers as integers); NaN and infinities as
 * Prometheus spells them. */
void rd_buf_double(struct rd_buf *b, double v);

/* v as Go's strconv.FormatFloat(v, 'g', -1, 64) spells it ("1e-06",
 * "0.005", "1e+06"), which is how Prometheus clients write histogram "le"
 * labels: a label value is compared as a string, so the spelling matters. */
void rd_buf_go_float(struct rd_buf *b, double v);

#endif /* RD_BUF_H */
