/* SPDX-License-Identifier: MIT */
#include "rd_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct rd_json *j, const char *s, size_t n)
{
	if (j->oom)
		return;
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 4096;
		char *p;

		while (j->len + n + 1 > cap)
			cap *= 2;
		p = realloc(j->buf, cap);
		if (!p) {
			j->oom = true;
			return;
		}
		j->buf = p;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void puts_(struct rd_json *j, const char *s)
{
	put(j, s, strlen(s));
}

static void escaped(struct rd_json *j, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	put(j, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7] = "\\u00";

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(j, run, (size_t)(s - run));
		run = s + 1;
		switch (c) {
		case '"': puts_(j, "\\\""); break;
		case '\\': puts_(j, "\\\\"); break;
		case '\n': puts_(j, "\\n"); break;
		case '\r': puts_(j, "\\r"); break;
		case '\t': puts_(j, "\\t"); break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put(j, esc, 6);
		}
	}
	put(j, run, (size_t)(s - run));
	put(j, "\"", 1);
}

static void key(struct rd_json *j, const char *k)
{
	if (j->depth > 0 && j->depth <= RD_JSON_DEPTH) {
		if (j->need_comma[j->depth - 1])
			put(j, ",", 1);
		j->need_comma[j->depth - 1] = true;
	}
	if (k) {
		escaped(j, k);
		put(j, ":", 1);
	}
}

static void open_(struct rd_json *j, const char *k, const char *c)
{
	key(j, k);
	puts_(j, c);
	if (j->depth < RD_JSON_DEPTH)
		j->need_comma[j->depth] = false;
	j->depth++;
}

void rd_json_obj_open(struct rd_json *j, const char *k) { open_(j, k, "{"); }
void rd_json_arr_open(struct rd_json *j, const char *k) { open_(j, k, "["); }

void rd_json_obj_close(struct rd_json *j)
{
	j->depth--;
	put(j, "}", 1);
}

void rd_json_arr_close(struct rd_json *j)
{
	j->depth--;
	put(j, "]", 1);
}

void rd_json_str(struct rd_json *j, const char *k, const char *v)
{
	key(j, k);
	escaped(j, v ? v : "");
}

static void number(struct rd_json *j, const char *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void number(struct rd_json *j, const char *k, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	key(j, k);
	put(j, tmp, (size_t)n);
}

void rd_json_int(struct rd_json *j, const char *k, int64_t v)
{
	number(j, k, "%" PRId64, v);
}

void rd_json_uint(struct rd_json *j, const char *k, uint64_t v)
{
	number(j, k, "%" PRIu64, v);
}

void rd_json_uint_str(struct rd_json *j, const char *k, uint64_t v)
{
	number(j, k, "\"%" PRIu64 "\"", v);
}

void rd_json_int_str(struct rd_json *j, const char *k, int64_t v)
{
	number(j, k, "\"%" PRId64 "\"", v);
}

void rd_json_double(struct rd_json *j, const char *k, double v)
{
	if (isnan(v))
		rd_json_str(j, k, "NaN");
	else if (isinf(v))
		rd_json_str(j, k, v > 0 ? "Infinity" : "-Infinity");
	else {
		/* The shortest of 15, 16 or 17 significant digits that reads
		 * back as the same double: 0.1 stays "0.1", and every value
		 * still round-trips. */
		char tmp[32];

		for (int prec = 15; prec <= 17; prec++) {
			snprintf(tmp, sizeof tmp, "%.*g", prec, v);
			if (strtod(tmp, NULL) == v || prec == 17)
				break;
		}
		number(j, k, "%s", tmp);
	}
}

void rd_json_bool(struct rd_json *j, const char *k, bool v)
{
	key(j, k);
	puts_(j, v ? "true" : "false");
}

void rd_json_null(struct rd_json *j, const char *k)
{
	key(j, k);
	puts_(j, "null");
}

void rd_json_reset(struct rd_json *j)
{
	j->len = 0;
	j->depth = 0;
	j->oom = false;
	if (j->buf)
		j->buf[0] = '\0';
}

void rd_json_free(struct rd_json *j)
{
	free(j->buf);
	memset(j, 0, sizeof *j);
}
