/* SPDX-License-Identifier: MIT */
#include "rd_buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
	/* Fewer than 15 significant digits may not tell doubles apart; 17
	 * always do.  The first that reads back as v is the shortest. */
	for (int digits = 15;; digits++) {
		n = snprintf(tmp, sizeof tmp, "%.*g", digits, v);
		if (digits == 17 || strtod(tmp, NULL) == v)
			break;
	}
	rd_buf_put(b, tmp, (size_t)n);
}
