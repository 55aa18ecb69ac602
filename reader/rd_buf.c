/* SPDX-License-Identifier: MIT */
#include "rd_buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char rd_buf_digit_pairs[200] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

void rd_buf_grow(struct rd_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		abort();
	b->p = p;
	b->cap = cap;
}

void rd_buf_free(struct rd_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *rd_buf_take(struct rd_buf *b, size_t *len)
{
	char *p = b->p;

	*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void rd_buf_double(struct rd_buf *b, double v)
{
	char tmp[32];
	int n;

	if (isnan(v)) {
		rd_buf_put(b, "NaN", 3);
		return;
	}
	if (isinf(v)) {
		rd_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Whole numbers (most values here) print exactly as integers. */
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		if (v == 0 && signbit(v))
			rd_buf_put(b, "-0", 2);
		else
			rd_buf_i64(b, (int64_t)v);
		return;
	}
	/* Most fractional values are short decimals (0.25, 12.5): when v is
	 * exactly the double nearest some k / 10^6, "k / 10^6" written out
	 * reads back as v, so print it with integer arithmetic. */
	if (fabs(v) < 1e12) {
		double scaled = nearbyint(v * 1e6);

		if (scaled / 1e6 == v) {
			uint64_t k = (uint64_t)fabs(scaled), frac = k % 1000000;
			char digits[7];
			int last = 5;

			if (v < 0)
				rd_buf_putc(b, '-');
			rd_buf_u64(b, k / 1000000);
			for (int i = 5; i >= 0; i--, frac /= 10)
				digits[i] = (char)('0' + frac % 10);
			while (last > 0 && digits[last] == '0')
				last--;
			rd_buf_putc(b, '.');
			rd_buf_put(b, digits, (size_t)last + 1);
			return;
		}
	}
	/* Fewer than 15 significant digits may not tell doubles apart; 17
	 * always do.  The first that reads back as v is the shortest. */
	for (int digits = 15;; digits++) {
		n = snprintf(tmp, sizeof tmp, "%.*g", digits, v);
		if (digits == 17 || strtod(tmp, NULL) == v)
			break;
	}
	rd_buf_put(b, tmp, (size_t)n);
}

void rd_buf_go_float(struct rd_buf *b, double v)
{
	char tmp[40];
	int digits, exp, n;

	if (isnan(v) || isinf(v) || v == 0) {
		rd_buf_double(b, v);
		return;
	}
	/* The fewest significant digits that read back as v. */
	for (digits = 1; digits < 17; digits++) {
		snprintf(tmp, sizeof tmp, "%.*e", digits - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	n = snprintf(tmp, sizeof tmp, "%.*e", digits - 1, v);
	exp = atoi(strchr(tmp, 'e') + 1);
	/* Go's %g rule for the shortest form: exponent notation below 1e-4
	 * and from 1e+06 up, plain decimals between. */
	if (exp < -4 || exp >= 6) {
		rd_buf_put(b, tmp, (size_t)n);
		return;
	}
	n = snprintf(tmp, sizeof tmp, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, v);
	rd_buf_put(b, tmp, (size_t)n);
}
