/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_prom.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rd_prom_name.h"
#include "rtm_shm_text.h"

#define NONE UINT32_MAX

/* One Prometheus family: every series of one name, from all producers. */
struct pfam {
	uint32_t name_off, name_len, unit_off; /* in r->names */
	enum rd_prom_type type;
	const char *help;
	uint32_t head, tail; /* entries, in arrival order */
	uint64_t hash;
};

/* One OTel metric of one producer and scope, queued under its family. */
struct entry {
	const otlp_metric *m;
	uint32_t prefix_off, prefix_len; /* job, instance and scope labels */
	uint32_t next;
};

/* OTel (name, unit, type) -> Prometheus family: the name mapping runs once
 * per distinct metric, not once per producer. */
struct ofam {
	const char *name, *unit;
	uint64_t hash;
	enum rd_prom_type type;
	uint32_t pf;
};

/* One attribute of the point being rendered, with its label name. */
struct label {
	const otlp_kv *kv;
	uint32_t off, len; /* label name in r->keys */
};

/* A histogram bound as its "le" label value, formatted once. */
struct le_str {
	uint64_t bits; /* of the double; 0 marks a free slot, so 0.0 is stored as ~0 */
	uint32_t off, len;
};

struct rd_prom_renderer {
	struct pfam *pf;
	uint32_t n_pf, cap_pf;
	uint32_t *pf_slots, pf_mask;    /* hash of Prometheus name -> pf index */
	struct ofam *of;
	uint32_t of_mask, n_of;          /* open addressing, of_mask + 1 slots */
	struct entry *e;
	uint32_t n_e, cap_e;
	struct label *labels;
	size_t cap_labels;
	struct rd_buf names, prefix, keys, pt;
	struct le_str *le;   /* kept across renderings: bounds rarely change */
	uint32_t le_mask, n_le;
	struct rd_buf les;
};

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void *grow(void *p, size_t n, size_t size)
{
	p = realloc(p, n * size);
	if (!p)
		abort();
	return p;
}

struct rd_prom_renderer *rd_prom_renderer_new(void)
{
	struct rd_prom_renderer *r = calloc(1, sizeof *r);

	if (!r)
		abort();
	return r;
}

void rd_prom_renderer_free(struct rd_prom_renderer *r)
{
	if (!r)
		return;
	free(r->pf);
	free(r->pf_slots);
	free(r->of);
	free(r->e);
	free(r->labels);
	rd_buf_free(&r->names);
	rd_buf_free(&r->prefix);
	rd_buf_free(&r->keys);
	rd_buf_free(&r->pt);
	rd_buf_free(&r->les);
	free(r->le);
	free(r);
}

/* ---- escaping ---- */

enum esc { ESC_LABEL, ESC_HELP_TEXT, ESC_HELP_OM };

/* Length of the valid UTF-8 sequence at p (a lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3 :
		   p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
	return n && rtm_shm_utf8_valid((const char *)p, n) ? n : 0;
}

/* s escaped for where it goes: backslash and newline always, the double
 * quote inside label values and OpenMetrics HELP; bytes that are not UTF-8
 * as U+FFFD. */
static void put_escaped(struct rd_buf *b, const char *s, enum esc how)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;

	for (;;) {
		unsigned char c = *p;
		size_t n;

		if (c >= 0x20 && c < 0x80 && c != '\\' && c != '"') {
			p++;
			continue;
		}
		rd_buf_put(b, run, (size_t)(p - run));
		if (!c)
			return;
		if (c == '\\') {
			rd_buf_put(b, "\\\\", 2);
			p++;
		} else if (c == '\n') {
			rd_buf_put(b, "\\n", 2);
			p++;
		} else if (c == '"') {
			if (how == ESC_HELP_TEXT)
				rd_buf_putc(b, '"');
			else
				rd_buf_put(b, "\\\"", 2);
			p++;
		} else if (c < 0x80) {
			rd_buf_putc(b, (char)c); /* other controls are legal here */
			p++;
		} else if ((n = utf8_len(p))) {
			rd_buf_put(b, p, n);
			p += n;
		} else {
			rd_buf_put(b, "\xef\xbf\xbd", 3);
			p++;
		}
		run = p;
	}
}

static void put_value_label(struct rd_buf *b, const otlp_any *v)
{
	if (!v)
		return;
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
		put_escaped(b, v->string_value ? v->string_value : "", ESC_LABEL);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		rd_buf_i64(b, v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		rd_buf_double(b, v->double_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		rd_buf_puts(b, v->bool_value ? "true" : "false");
		break;
	default: /* rtm sends no other kinds */
		break;
	}
}

/* ---- labels ---- */

static const char *str_attr(const otlp_resource *res, const char *key)
{
	for (size_t i = 0; res && i < res->n_attributes; i++) {
		const otlp_kv *kv = res->attributes[i];

		if (!strcmp(kv->key, key) && kv->value &&
		    kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
			return kv->value->string_value;
	}
	return NULL;
}

/* job="ns/name",instance="id": the labels that name a producer. */
static void put_identity(struct rd_buf *b, const otlp_resource *res)
{
	const char *name = str_attr(res, "service.name"), *ns = str_attr(res, "service.namespace"),
		   *id = str_attr(res, "service.instance.id");

	rd_buf_puts(b, "job=\"");
	if (ns && *ns) {
		put_escaped(b, ns, ESC_LABEL);
		rd_buf_putc(b, '/');
	}
	put_escaped(b, name ? name : "unknown_service", ESC_LABEL);
	rd_buf_puts(b, "\",instance=\"");
	put_escaped(b, id ? id : "", ESC_LABEL);
	rd_buf_putc(b, '"');
}

static bool reserved(const char *s, size_t n)
{
	switch (n) {
	case 2: return !memcmp(s, "le", 2);
	case 3: return !memcmp(s, "job", 3);
	case 8: return !memcmp(s, "instance", 8);
	case 15: return !memcmp(s, "otel_scope_name", 15);
	case 18: return !memcmp(s, "otel_scope_version", 18);
	default: return false;
	}
}

/* A key that is a label name as it stands: a letter, then letters,
 * digits and '_'.  Returns its length, or 0. */
static size_t clean_key(const char *k)
{
	size_t n = 0;

	if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z')))
		return 0;
	for (; k[n]; n++)
		if (!((k[n] >= 'a' && k[n] <= 'z') || (k[n] >= 'A' && k[n] <= 'Z') ||
		      (k[n] >= '0' && k[n] <= '9') || k[n] == '_'))
			return 0;
	return n;
}

static bool identity_attr(const char *key)
{
	return !strcmp(key, "service.name") || !strcmp(key, "service.namespace") ||
	       !strcmp(key, "service.instance.id");
}

static const char *key_of(const struct rd_prom_renderer *r, const struct label *l)
{
	return r->keys.p + l->off;
}

static int cmp_label(const void *a, const void *b, void *ctx)
{
	const struct rd_prom_renderer *r = ctx;
	const struct label *x = a, *y = b;
	int c = strcmp(key_of(r, x), key_of(r, y));

	return c ? c : strcmp(x->kv->key, y->kv->key);
}

/* Appends ",name=\"value\"" for each attribute to r->pt (identity
 * attributes left out when skip_identity), merging keys that sanitise to
 * the same label name. */
static void put_attrs(struct rd_prom_renderer *r, otlp_kv *const *kv, size_t n,
		      bool skip_identity)
{
	size_t k = 0, len;

	if (!n)
		return;
	/* The common case: one attribute whose key needs no work. */
	if (n == 1 && !(skip_identity && identity_attr(kv[0]->key)) &&
	    (len = clean_key(kv[0]->key)) && !reserved(kv[0]->key, len)) {
		rd_buf_putc(&r->pt, ',');
		rd_buf_put(&r->pt, kv[0]->key, len);
		rd_buf_put(&r->pt, "=\"", 2);
		put_value_label(&r->pt, kv[0]->value);
		rd_buf_putc(&r->pt, '"');
		return;
	}
	if (n > r->cap_labels) {
		r->cap_labels = n;
		r->labels = grow(r->labels, n, sizeof *r->labels);
	}
	r->keys.len = 0;
	for (size_t i = 0; i < n; i++) {
		char name[RD_PROM_NAME_MAX];

		if (skip_identity && identity_attr(kv[i]->key))
			continue;
		len = rd_prom_label_name(kv[i]->key, name);
		r->labels[k].kv = kv[i];
		r->labels[k].off = (uint32_t)r->keys.len;
		if (reserved(name, len))
			rd_buf_put(&r->keys, "exported_", 9);
		rd_buf_put(&r->keys, name, len + 1);
		r->labels[k].len = (uint32_t)(r->keys.len - r->labels[k].off - 1);
		k++;
	}
	if (k > 1)
		qsort_r(r->labels, k, sizeof *r->labels, cmp_label, r);
	for (size_t i = 0; i < k; i++) {
		const struct label *l = &r->labels[i];

		if (i && !strcmp(key_of(r, l), key_of(r, l - 1))) {
			/* Same label name as the one before: one label, values
			 * joined.  Reopen its closing quote. */
			r->pt.len--;
			rd_buf_putc(&r->pt, ';');
		} else {
			rd_buf_putc(&r->pt, ',');
			rd_buf_put(&r->pt, key_of(r, l), l->len);
			rd_buf_put(&r->pt, "=\"", 2);
		}
		put_value_label(&r->pt, l->kv->value);
		rd_buf_putc(&r->pt, '"');
	}
}

/* ---- families ---- */

static enum rd_prom_type type_of(const otlp_metric *m)
{
	switch (m->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
		return m->sum->is_monotonic ? RD_PROM_COUNTER : RD_PROM_GAUGE;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
		return RD_PROM_HISTOGRAM;
	default:
		return RD_PROM_GAUGE;
	}
}

/* Both hash tables start small and double at half full: their size
 * follows the number of distinct metrics, not of series. */
static void reset_tables(struct rd_prom_renderer *r)
{
	if (!r->of) {
		r->of_mask = r->pf_mask = 255;
		r->of = calloc(r->of_mask + 1, sizeof *r->of);
		r->pf_slots = malloc((r->pf_mask + 1) * sizeof *r->pf_slots);
		if (!r->of || !r->pf_slots)
			abort();
	}
	memset(r->of, 0, (r->of_mask + 1) * sizeof *r->of);
	memset(r->pf_slots, 0xff, (r->pf_mask + 1) * sizeof *r->pf_slots);
	r->n_pf = r->n_e = r->n_of = 0;
	r->names.len = 0;
}

static void grow_of(struct rd_prom_renderer *r)
{
	uint32_t mask = r->of_mask * 2 + 1;
	struct ofam *of = calloc((size_t)mask + 1, sizeof *of);

	if (!of)
		abort();
	for (uint32_t i = 0; i <= r->of_mask; i++) {
		uint32_t slot;

		if (!r->of[i].name)
			continue;
		for (slot = (uint32_t)r->of[i].hash & mask; of[slot].name; slot = (slot + 1) & mask)
			;
		of[slot] = r->of[i];
	}
	free(r->of);
	r->of = of;
	r->of_mask = mask;
}

static void grow_pf(struct rd_prom_renderer *r)
{
	uint32_t mask = r->pf_mask * 2 + 1;
	uint32_t *slots = malloc(((size_t)mask + 1) * sizeof *slots);

	if (!slots)
		abort();
	memset(slots, 0xff, ((size_t)mask + 1) * sizeof *slots);
	for (uint32_t f = 0; f < r->n_pf; f++) {
		uint32_t slot;

		for (slot = (uint32_t)r->pf[f].hash & mask; slots[slot] != NONE; slot = (slot + 1) & mask)
			;
		slots[slot] = f;
	}
	free(r->pf_slots);
	r->pf_slots = slots;
	r->pf_mask = mask;
}

/* The Prometheus family of a new OTel (name, unit, type), or NONE when the
 * name is taken by a family of another type. */
static uint32_t prom_family(struct rd_prom_renderer *r, const otlp_metric *m,
			    enum rd_prom_type type)
{
	char name[RD_PROM_NAME_MAX], unit[RD_PROM_NAME_MAX];
	size_t len = rd_prom_family_name(m->name, m->unit, type, name, unit);
	uint64_t h = hash_str(1469598103934665603ull, name);
	uint32_t slot;
	struct pfam *f;

	if (r->n_pf * 2 >= r->pf_mask)
		grow_pf(r);
	slot = (uint32_t)h & r->pf_mask;

	for (; r->pf_slots[slot] != NONE; slot = (slot + 1) & r->pf_mask) {
		f = &r->pf[r->pf_slots[slot]];
		if (f->hash == h && f->name_len == len && !memcmp(r->names.p + f->name_off, name, len))
			return f->type == type ? r->pf_slots[slot] : NONE;
	}
	if (r->n_pf == r->cap_pf) {
		r->cap_pf = r->cap_pf ? r->cap_pf * 2 : 64;
		r->pf = grow(r->pf, r->cap_pf, sizeof *r->pf);
	}
	f = &r->pf[r->n_pf];
	*f = (struct pfam){ .type = type, .head = NONE, .tail = NONE, .hash = h,
			    .name_len = (uint32_t)len };
	f->name_off = (uint32_t)r->names.len;
	rd_buf_put(&r->names, name, len + 1);
	f->unit_off = (uint32_t)r->names.len;
	rd_buf_put(&r->names, unit, strlen(unit) + 1);
	r->pf_slots[slot] = r->n_pf;
	return r->n_pf++;
}

static uint32_t family_of(struct rd_prom_renderer *r, const otlp_metric *m)
{
	enum rd_prom_type type = type_of(m);
	uint64_t h = hash_str(hash_str(1469598103934665603ull ^ type, m->name), m->unit ? m->unit : "");
	uint32_t slot;
	struct ofam *o;

	if (r->n_of * 2 >= r->of_mask)
		grow_of(r);
	slot = (uint32_t)h & r->of_mask;

	for (; (o = &r->of[slot])->name; slot = (slot + 1) & r->of_mask)
		if (o->hash == h && o->type == type && !strcmp(o->name, m->name) &&
		    !strcmp(o->unit, m->unit ? m->unit : ""))
			return o->pf;
	*o = (struct ofam){ .name = m->name, .unit = m->unit ? m->unit : "", .hash = h,
			    .type = type, .pf = prom_family(r, m, type) };
	r->n_of++;
	return o->pf;
}

static void queue(struct rd_prom_renderer *r, const otlp_metric *m, uint32_t off, uint32_t len,
		  struct rd_prom_stats *st)
{
	uint32_t pf = family_of(r, m);
	struct pfam *f;

	if (pf == NONE) {
		st->dropped++;
		return;
	}
	if (r->n_e == r->cap_e) {
		r->cap_e = r->cap_e ? r->cap_e * 2 : 1024;
		r->e = grow(r->e, r->cap_e, sizeof *r->e);
	}
	r->e[r->n_e] = (struct entry){ .m = m, .prefix_off = off, .prefix_len = len, .next = NONE };
	f = &r->pf[pf];
	if (f->tail == NONE)
		f->head = r->n_e;
	else
		r->e[f->tail].next = r->n_e;
	f->tail = r->n_e++;
	if (!f->help && m->description && *m->description)
		f->help = m->description;
}

/* ---- histogram bounds ---- */

static void le_reset(struct rd_prom_renderer *r, uint32_t slots)
{
	free(r->le);
	r->le = calloc(slots, sizeof *r->le);
	if (!r->le)
		abort();
	r->le_mask = slots - 1;
	r->n_le = 0;
	r->les.len = 0;
}

/* Appends bound's "le" spelling, formatted on first sight only: a page
 * holds the same few bounds thousands of times. */
static void put_le(struct rd_prom_renderer *r, struct rd_buf *b, double bound)
{
	uint64_t bits;
	uint32_t slot;
	struct le_str *e;

	memcpy(&bits, &bound, sizeof bits);
	bits = bits ? bits : ~0ull;
	if (!r->le || r->n_le * 2 >= r->le_mask)
		le_reset(r, r->le && r->le_mask < 65535 ? (r->le_mask + 1) * 2 : 256);
	for (slot = (uint32_t)((bits * 0x9e3779b97f4a7c15ull) >> 40) & r->le_mask;
	     (e = &r->le[slot])->bits; slot = (slot + 1) & r->le_mask)
		if (e->bits == bits) {
			rd_buf_put(b, r->les.p + e->off, e->len);
			return;
		}
	e->bits = bits;
	e->off = (uint32_t)r->les.len;
	rd_buf_go_float(&r->les, bound);
	e->len = (uint32_t)(r->les.len - e->off);
	r->n_le++;
	rd_buf_put(b, r->les.p + e->off, e->len);
}

/* ---- output ---- */

struct out {
	struct rd_buf *b;
	enum rd_prom_format fmt;
	struct rd_prom_stats *st;
};

static void meta(struct out *o, const char *name, const char *suffix, const char *type,
		 const char *unit, const char *help)
{
	struct rd_buf *b = o->b;

	if (o->fmt == RD_PROM_OPENMETRICS) {
		rd_buf_puts(b, "# TYPE ");
		rd_buf_puts(b, name);
		rd_buf_putc(b, ' ');
		rd_buf_puts(b, type);
		if (unit && *unit) {
			rd_buf_puts(b, "\n# UNIT ");
			rd_buf_puts(b, name);
			rd_buf_putc(b, ' ');
			rd_buf_puts(b, unit);
		}
		if (help) {
			rd_buf_puts(b, "\n# HELP ");
			rd_buf_puts(b, name);
			rd_buf_putc(b, ' ');
			put_escaped(b, help, ESC_HELP_OM);
		}
		rd_buf_putc(b, '\n');
		return;
	}
	if (help) {
		rd_buf_puts(b, "# HELP ");
		rd_buf_puts(b, name);
		rd_buf_puts(b, suffix);
		rd_buf_putc(b, ' ');
		put_escaped(b, help, ESC_HELP_TEXT);
		rd_buf_putc(b, '\n');
	}
	rd_buf_puts(b, "# TYPE ");
	rd_buf_puts(b, name);
	rd_buf_puts(b, suffix);
	rd_buf_putc(b, ' ');
	rd_buf_puts(b, type);
	rd_buf_putc(b, '\n');
}

/* name+suffix{prefix<point labels>: the caller closes the braces (the
 * prefix always holds job and instance, so more labels follow a comma). */
static void series(struct out *o, const char *name, size_t len, const char *suffix,
		   const struct rd_buf *pre, const struct entry *e, const struct rd_buf *pt)
{
	struct rd_buf *b = o->b;

	rd_buf_put(b, name, len);
	rd_buf_puts(b, suffix);
	rd_buf_putc(b, '{');
	rd_buf_put(b, pre->p + e->prefix_off, e->prefix_len);
	rd_buf_put(b, pt->p, pt->len);
	o->st->series++;
}

static void created(struct out *o, const char *name, size_t len, const struct rd_buf *pre,
		    const struct entry *e, const struct rd_buf *pt, uint64_t start)
{
	if (o->fmt != RD_PROM_OPENMETRICS || !start)
		return;
	series(o, name, len, "_created", pre, e, pt);
	rd_buf_put(o->b, "} ", 2);
	/* Seconds, exactly: the nanoseconds as a decimal fraction. */
	rd_buf_u64(o->b, start / 1000000000u);
	if (start % 1000000000u) {
		char frac[10];
		uint64_t f = start % 1000000000u;
		int last = 8;

		for (int i = 8; i >= 0; i--, f /= 10)
			frac[i] = (char)('0' + f % 10);
		while (frac[last] == '0')
			last--;
		frac[last + 1] = '\n';
		rd_buf_putc(o->b, '.');
		rd_buf_put(o->b, frac, (size_t)last + 2);
	} else {
		rd_buf_putc(o->b, '\n');
	}
}

static void number_points(struct rd_prom_renderer *r, struct out *o, const char *name,
			  size_t len, const struct entry *e, otlp_ndp *const *pts, size_t n,
			  bool counter)
{
	for (size_t i = 0; i < n; i++) {
		const otlp_ndp *p = pts[i];

		if (p->flags & OTLP_NO_RECORDED_VALUE)
			continue;
		r->pt.len = 0;
		put_attrs(r, p->attributes, p->n_attributes, false);
		series(o, name, len, counter ? "_total" : "", &r->prefix, e, &r->pt);
		rd_buf_put(o->b, "} ", 2);
		if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
			rd_buf_i64(o->b, p->as_int);
		else
			rd_buf_double(o->b, p->as_double);
		rd_buf_putc(o->b, '\n');
		if (counter)
			created(o, name, len, &r->prefix, e, &r->pt, p->start_time_unix_nano);
	}
}

static void histogram_points(struct rd_prom_renderer *r, struct out *o, const char *name,
			     size_t len, const struct entry *e, otlp_hdp *const *pts, size_t n)
{
	struct rd_buf *b = o->b;

	for (size_t i = 0; i < n; i++) {
		const otlp_hdp *p = pts[i];
		uint64_t cum = 0;

		if (p->flags & OTLP_NO_RECORDED_VALUE)
			continue;
		r->pt.len = 0;
		put_attrs(r, p->attributes, p->n_attributes, false);
		for (size_t k = 0; k < p->n_explicit_bounds && k < p->n_bucket_counts; k++) {
			cum += p->bucket_counts[k];
			series(o, name, len, "_bucket", &r->prefix, e, &r->pt);
			rd_buf_put(b, ",le=\"", 5);
			put_le(r, b, p->explicit_bounds[k]);
			rd_buf_put(b, "\"} ", 3);
			rd_buf_u64(b, cum);
			rd_buf_putc(b, '\n');
		}
		series(o, name, len, "_bucket", &r->prefix, e, &r->pt);
		rd_buf_puts(b, ",le=\"+Inf\"} ");
		rd_buf_u64(b, p->count);
		rd_buf_putc(b, '\n');
		series(o, name, len, "_sum", &r->prefix, e, &r->pt);
		rd_buf_put(b, "} ", 2);
		rd_buf_double(b, p->sum);
		rd_buf_putc(b, '\n');
		series(o, name, len, "_count", &r->prefix, e, &r->pt);
		rd_buf_put(b, "} ", 2);
		rd_buf_u64(b, p->count);
		rd_buf_putc(b, '\n');
		created(o, name, len, &r->prefix, e, &r->pt, p->start_time_unix_nano);
	}
}

static void family(struct rd_prom_renderer *r, struct out *o, const struct pfam *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	const char *name = r->names.p + f->name_off;

	if (f->head == NONE)
		return;
	o->st->families++;
	meta(o, name, f->type == RD_PROM_COUNTER ? "_total" : "", types[f->type],
	     r->names.p + f->unit_off, f->help);
	for (uint32_t i = f->head; i != NONE; i = r->e[i].next) {
		const struct entry *e = &r->e[i];
		const otlp_metric *m = e->m;

		switch (m->data_case) {
		case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
			number_points(r, o, name, f->name_len, e, m->sum->data_points,
				      m->sum->n_data_points, f->type == RD_PROM_COUNTER);
			break;
		case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
			number_points(r, o, name, f->name_len, e, m->gauge->data_points,
				      m->gauge->n_data_points, false);
			break;
		case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
			histogram_points(r, o, name, f->name_len, e, m->histogram->data_points,
					 m->histogram->n_data_points);
			break;
		default: /* rtm builds no other kinds */
			break;
		}
	}
}

/* One target_info series per resource: its attributes as labels. */
static void target_info(struct rd_prom_renderer *r, struct out *o, otlp_rm *const *rms,
			size_t n)
{
	if (!n)
		return;
	o->st->families++;
	meta(o, o->fmt == RD_PROM_OPENMETRICS ? "target" : "target_info", "",
	     o->fmt == RD_PROM_OPENMETRICS ? "info" : "gauge", NULL, "Target metadata");
	for (size_t i = 0; i < n; i++) {
		const otlp_resource *res = rms[i]->resource;

		rd_buf_puts(o->b, "target_info{");
		put_identity(o->b, res);
		r->pt.len = 0;
		if (res)
			put_attrs(r, res->attributes, res->n_attributes, true);
		rd_buf_put(o->b, r->pt.p, r->pt.len);
		rd_buf_put(o->b, "} 1\n", 4);
		o->st->series++;
	}
}

void rd_prom_render(struct rd_prom_renderer *r, otlp_rm *const *rms, size_t n,
		    enum rd_prom_format fmt, struct rd_buf *out, struct rd_prom_stats *st)
{
	struct out o = { .b = out, .fmt = fmt, .st = st };

	memset(st, 0, sizeof *st);
	reset_tables(r);
	r->prefix.len = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < rms[i]->n_scope_metrics; k++) {
			const otlp_sm *sm = rms[i]->scope_metrics[k];
			uint32_t off = (uint32_t)r->prefix.len;

			/* job, instance and scope: the same for all its metrics. */
			put_identity(&r->prefix, rms[i]->resource);
			if (sm->scope && sm->scope->name && *sm->scope->name) {
				rd_buf_puts(&r->prefix, ",otel_scope_name=\"");
				put_escaped(&r->prefix, sm->scope->name, ESC_LABEL);
				rd_buf_putc(&r->prefix, '"');
			}
			if (sm->scope && sm->scope->version && *sm->scope->version) {
				rd_buf_puts(&r->prefix, ",otel_scope_version=\"");
				put_escaped(&r->prefix, sm->scope->version, ESC_LABEL);
				rd_buf_putc(&r->prefix, '"');
			}
			for (size_t m = 0; m < sm->n_metrics; m++)
				queue(r, sm->metrics[m], off, (uint32_t)(r->prefix.len - off), st);
		}
	}
	target_info(r, &o, rms, n);
	for (uint32_t f = 0; f < r->n_pf; f++)
		family(r, &o, &r->pf[f]);
	if (fmt == RD_PROM_OPENMETRICS)
		rd_buf_puts(out, "# EOF\n");
}
