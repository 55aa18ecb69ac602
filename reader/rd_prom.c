/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_prom.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_prom_name.h"
#include "rd_prom_pb.h"
#include "rtm_shm_text.h"

#define NONE UINT32_MAX

/* The sample names of one family, each with its opening brace: a line is
 * then a head, the point's labels and its value. */
enum { H_PLAIN, H_TOTAL, H_CREATED, H_BUCKET, H_SUM, H_COUNT, H_N };

struct heads {
	char s[H_N][RD_PROM_NAME_MAX + 16];
	size_t len[H_N];
};

/* One Prometheus family: every series of one name, from all producers.
 * Its lines collect in a buffer of its own while the producers are walked
 * in order (reading the model where it lies, one producer after another),
 * and the page lists the buffers under their TYPE lines at the end. */
struct pfam {
	uint32_t name_off, name_len, unit_off; /* in r->names */
	enum rd_prom_type type;
	const char *help;
	uint64_t hash;
	struct heads h;
	/* The last scope that put series in it: two metrics of one scope in
	 * one family would repeat its series. */
	uint64_t scope_stamp;
};

/* OTel (name, unit, type) -> Prometheus family: the name mapping runs once
 * per distinct metric, not once per producer. */
struct ofam {
	const char *name, *unit;
	uint32_t otel_name_len, otel_unit_len;
	uint64_t hash;
	enum rd_prom_type type;
	uint32_t pf;           /* its family under its own name, or NONE */
	uint32_t name_off, name_len, unit_off, unit_len; /* Prometheus name, unit word: in r->names */
	bool readers;          /* rtm_reader_*: only the reader's own may have it */
	bool blocked;          /* its name is another family's, or reserved */
};

/* The family found for the metric at one position of the last scope
 * rendered: the next producer of the same program has the same metric
 * there, and comparing its name with this one's costs less than hashing
 * it and probing r->of.  Valid while gen is r->memo_gen (a rendering, and
 * no rehash of r->of since). */
struct memo {
	const char *name, *unit;
	struct ofam *o;
	enum rd_prom_type type;
	uint64_t gen;
};

/* A name some family puts on the page (or a reserved one). */
struct taken {
	uint64_t hash;
	uint32_t off, len; /* in r->taken_s; len 0: a free slot */
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
	struct memo *memo;               /* by a metric's position in its scope */
	size_t cap_memo;
	uint64_t memo_gen;
	/* [cap_lines]: each family's samples; the page's buffers, lent to
	 * the renderer while it renders into that page. */
	struct rd_buf *lines;
	uint32_t cap_lines;
	struct rd_prom_page scratch;     /* rd_prom_render()'s page */
	struct label *labels;
	size_t cap_labels;
	struct rd_buf names, prefix, keys, pt;
	struct le_str *le;   /* kept across renderings: bounds rarely change */
	uint32_t le_mask, n_le;
	struct rd_buf les;
	struct taken *taken; /* every name on the page so far */
	uint32_t taken_mask, n_taken;
	struct rd_buf taken_s;
	uint32_t *order;     /* producers in the order they claim names */
	size_t cap_order;
	void (*on_conflict)(void *ctx, const char *line);
	void *on_conflict_ctx;
	uint64_t *logged;    /* conflicts told (first_report) */
	uint32_t n_logged;
	uint64_t stamp;      /* counts the scopes rendered */
	bool created;        /* OpenMetrics _created samples (rd_prom_renderer_created) */
	/* The protobuf format's classic buckets of one point. */
	double *pb_bounds;
	uint64_t *pb_cum;
	size_t n_pb, cap_pb;
	struct rd_buf pb_tmp;
	struct rd_buf pb_pre; /* the scope's labels as LabelPair fields */
};

/* The renderer's one hash, a word at a time: every metric of every
 * producer is looked up by its name and unit, and a byte-wise hash's chain
 * of multiplies was a tenth of a page's rendering. */
static uint64_t hash_words(uint64_t h, const char *s, size_t n)
{
	uint64_t w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, s, n);
	/* The tail's length in the top byte: "a" and "a\0" differ. */
	h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 32);
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
	free(r->pb_bounds);
	free(r->pb_cum);
	rd_buf_free(&r->pb_tmp);
	rd_buf_free(&r->pb_pre);
	free(r->pf);
	free(r->pf_slots);
	free(r->of);
	free(r->memo);
	rd_prom_page_free(&r->scratch);
	free(r->labels);
	rd_buf_free(&r->names);
	rd_buf_free(&r->prefix);
	rd_buf_free(&r->keys);
	rd_buf_free(&r->pt);
	rd_buf_free(&r->les);
	free(r->le);
	free(r->taken);
	rd_buf_free(&r->taken_s);
	free(r->order);
	free(r->logged);
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

/* Whom a scope's metrics are rendered for: when two families want one
 * name, this decides which keeps it (rd_prom.h, "Name conflicts"). */
struct claim {
	bool reader;  /* the reader's own resource, or a scope it built */
	uint32_t uid; /* else the producer's user */
};

static void make_heads(struct heads *h, const char *name, size_t len)
{
	static const char *const suffix[H_N] = { "{", "_total{", "_created{", "_bucket{", "_sum{",
						 "_count{" };

	for (int i = 0; i < H_N; i++) {
		size_t k = strlen(suffix[i]);

		memcpy(h->s[i], name, len);
		memcpy(h->s[i] + len, suffix[i], k);
		h->len[i] = len + k;
	}
}


static enum rd_prom_type type_of(const otlp_metric *m)
{
	switch (m->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
		return m->sum->is_monotonic ? RD_PROM_COUNTER : RD_PROM_GAUGE;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
	case OTLP_DATA_EXPHIST:
		return RD_PROM_HISTOGRAM;
	default:
		return RD_PROM_GAUGE;
	}
}

/* The names a family of this type puts on the page in either format: the
 * family's own (OpenMetrics' TYPE line, a gauge's samples) and those of
 * its samples.  Checking all of them in both formats keeps the rule the
 * same whichever format a scraper asks for. */
static size_t page_suffixes(enum rd_prom_type type, const char *const **out)
{
	static const char *const counter[] = { "", "_total", "_created" };
	static const char *const gauge[] = { "" };
	static const char *const histogram[] = { "", "_bucket", "_sum", "_count", "_created" };

	switch (type) {
	case RD_PROM_COUNTER:
		*out = counter;
		return 3;
	case RD_PROM_HISTOGRAM:
		*out = histogram;
		return 5;
	default:
		*out = gauge;
		return 1;
	}
}

/* Names the reader puts on the page itself or Prometheus adds to every
 * target when it scrapes: no producer's family may take them. */
static const char *const reserved_names[] = {
	"target", "target_info", "up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added",
};

/* Slot of name in the taken-names table: its entry, or the free one. */
static struct taken *taken_slot(struct rd_prom_renderer *r, const char *name, size_t len,
				uint64_t h)
{
	struct taken *t;

	for (uint32_t slot = (uint32_t)h & r->taken_mask;; slot = (slot + 1) & r->taken_mask) {
		t = &r->taken[slot];
		if (!t->len || (t->hash == h && t->len == len &&
				!memcmp(r->taken_s.p + t->off, name, len)))
			return t;
	}
}

static void take(struct rd_prom_renderer *r, const char *name, size_t len)
{
	uint64_t h = hash_words(1469598103934665603ull, name, len);
	struct taken *t;

	if (r->n_taken * 2 >= r->taken_mask) {
		struct taken *old = r->taken;
		uint32_t old_mask = r->taken_mask;

		r->taken_mask = old_mask * 2 + 1;
		r->taken = calloc((size_t)r->taken_mask + 1, sizeof *r->taken);
		if (!r->taken)
			abort();
		for (uint32_t i = 0; i <= old_mask; i++)
			if (old[i].len)
				*taken_slot(r, r->taken_s.p + old[i].off, old[i].len, old[i].hash) = old[i];
		free(old);
	}
	t = taken_slot(r, name, len, h);
	if (t->len)
		return;
	*t = (struct taken){ .hash = h, .off = (uint32_t)r->taken_s.len, .len = (uint32_t)len };
	rd_buf_put(&r->taken_s, name, len);
	r->n_taken++;
}

/* Whether every name a family (name, type) puts on the page is free; with
 * claim, takes them. */
static bool page_names(struct rd_prom_renderer *r, const char *name, size_t len,
		       enum rd_prom_type type, bool claim)
{
	const char *const *suffix;
	size_t n = page_suffixes(type, &suffix);
	char buf[RD_PROM_NAME_MAX + 16];

	memcpy(buf, name, len);
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(suffix[i]);

		memcpy(buf + len, suffix[i], k);
		if (claim)
			take(r, buf, len + k);
		else if (taken_slot(r, buf, len + k,
				    hash_words(1469598103934665603ull, buf, len + k))->len)
			return false;
	}
	return true;
}

/* Both hash tables start small and double at half full: their size
 * follows the number of distinct metrics, not of series. */
static void reset_tables(struct rd_prom_renderer *r)
{
	if (!r->of) {
		r->of_mask = r->pf_mask = r->taken_mask = 255;
		r->of = calloc(r->of_mask + 1, sizeof *r->of);
		r->pf_slots = malloc((r->pf_mask + 1) * sizeof *r->pf_slots);
		r->taken = calloc(r->taken_mask + 1, sizeof *r->taken);
		if (!r->of || !r->pf_slots || !r->taken)
			abort();
	}
	memset(r->of, 0, (r->of_mask + 1) * sizeof *r->of);
	r->memo_gen++;
	memset(r->pf_slots, 0xff, (r->pf_mask + 1) * sizeof *r->pf_slots);
	memset(r->taken, 0, (r->taken_mask + 1) * sizeof *r->taken);
	r->n_pf = r->n_of = r->n_taken = 0;
	r->names.len = r->taken_s.len = 0;
	for (size_t i = 0; i < sizeof reserved_names / sizeof reserved_names[0]; i++)
		take(r, reserved_names[i], strlen(reserved_names[i]));
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
	r->memo_gen++; /* the memo's pointers were into the old table */
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

/* The family (name, type) on the page: the one there, else a new one when
 * none of its names is taken, else NONE.  name must not point into
 * r->names (a new family's name is appended there). */
static uint32_t admit(struct rd_prom_renderer *r, const char *name, size_t len,
		      uint32_t unit_off, enum rd_prom_type type)
{
	uint64_t h = hash_words(1469598103934665603ull ^ type, name, len);
	uint32_t slot;
	struct pfam *f;

	if (r->n_pf * 2 >= r->pf_mask)
		grow_pf(r);
	slot = (uint32_t)h & r->pf_mask;
	for (; r->pf_slots[slot] != NONE; slot = (slot + 1) & r->pf_mask) {
		f = &r->pf[r->pf_slots[slot]];
		if (f->hash == h && f->type == type && f->name_len == len &&
		    !memcmp(r->names.p + f->name_off, name, len))
			return r->pf_slots[slot];
	}
	if (!page_names(r, name, len, type, false))
		return NONE;
	page_names(r, name, len, type, true);
	if (r->n_pf == r->cap_pf) {
		uint32_t cap = r->cap_pf ? r->cap_pf * 2 : 64;

		r->pf = grow(r->pf, cap, sizeof *r->pf);
		r->cap_pf = cap;
	}
	if (r->n_pf == r->cap_lines) {
		uint32_t cap = r->cap_lines ? r->cap_lines * 2 : 64;

		r->lines = grow(r->lines, cap, sizeof *r->lines);
		memset(r->lines + r->cap_lines, 0, (cap - r->cap_lines) * sizeof *r->lines);
		r->cap_lines = cap;
	}
	f = &r->pf[r->n_pf];
	*f = (struct pfam){ .type = type, .hash = h, .name_len = (uint32_t)len,
			    .unit_off = unit_off };
	make_heads(&f->h, name, len);
	r->lines[r->n_pf].len = 0;
	f->name_off = (uint32_t)r->names.len;
	rd_buf_put(&r->names, name, len);
	rd_buf_putc(&r->names, '\0');
	r->pf_slots[slot] = r->n_pf;
	return r->n_pf++;
}

/* The OTel (name, unit, type) with its Prometheus name, mapped once per
 * rendering whatever the number of producers. */
static struct ofam *ofam_of(struct rd_prom_renderer *r, const otlp_metric *m)
{
	enum rd_prom_type type = type_of(m);
	const char *u = m->unit ? m->unit : "";
	size_t nl = strlen(m->name), ul = strlen(u);
	uint64_t h = hash_words(hash_words(1469598103934665603ull ^ type, m->name, nl), u, ul);
	char name[RD_PROM_NAME_MAX], unit[RD_PROM_NAME_MAX];
	uint32_t slot;
	struct ofam *o;
	size_t len;

	if (r->n_of * 2 >= r->of_mask)
		grow_of(r);
	slot = (uint32_t)h & r->of_mask;
	for (; (o = &r->of[slot])->name; slot = (slot + 1) & r->of_mask)
		if (o->hash == h && o->type == type && o->otel_name_len == nl &&
		    o->otel_unit_len == ul && !memcmp(o->name, m->name, nl) && !memcmp(o->unit, u, ul))
			return o;
	len = rd_prom_family_name(m->name, m->unit, type, name, unit);
	*o = (struct ofam){ .name = m->name, .unit = u, .hash = h,
			    .otel_name_len = (uint32_t)nl, .otel_unit_len = (uint32_t)ul,
			    .type = type, .pf = NONE, .name_len = (uint32_t)len,
			    .unit_len = (uint32_t)strlen(unit),
			    .readers = len >= 11 && !memcmp(name, "rtm_reader_", 11) };
	o->name_off = (uint32_t)r->names.len;
	rd_buf_put(&r->names, name, len + 1);
	o->unit_off = (uint32_t)r->names.len;
	rd_buf_put(&r->names, unit, o->unit_len + 1);
	r->n_of++;
	return o;
}

/* ofam_of() for the metric at position i of its scope, through r->memo. */
static struct ofam *ofam_at(struct rd_prom_renderer *r, const otlp_metric *m, size_t i)
{
	enum rd_prom_type type = type_of(m);
	const char *u = m->unit ? m->unit : "";
	struct memo *e;
	struct ofam *o;

	if (i >= r->cap_memo) {
		size_t cap = i < 64 ? 128 : 2 * i;

		r->memo = grow(r->memo, cap, sizeof *r->memo);
		memset(r->memo + r->cap_memo, 0, (cap - r->cap_memo) * sizeof *r->memo);
		r->cap_memo = cap;
	}
	e = &r->memo[i];
	if (e->gen == r->memo_gen && e->type == type &&
	    (e->name == m->name || !strcmp(e->name, m->name)) &&
	    (e->unit == u || !strcmp(e->unit, u)))
		return e->o;
	o = ofam_of(r, m);
	*e = (struct memo){ .name = m->name, .unit = u, .o = o, .type = type, .gen = r->memo_gen };
	return o;
}

/* Conflicts already logged: a set of hashes, kept across renderings and
 * never emptied, so a conflict is told once for the reader's life; full at
 * 3/4 of CONFLICTS_LOGGED, after which they are only counted. */
#define CONFLICTS_LOGGED 4096

static bool first_report(struct rd_prom_renderer *r, uint64_t h)
{
	uint32_t slot;

	if (!r->logged) {
		r->logged = calloc(CONFLICTS_LOGGED, sizeof *r->logged);
		if (!r->logged)
			abort();
	}
	h |= 1; /* 0 marks a free slot */
	for (slot = (uint32_t)h & (CONFLICTS_LOGGED - 1); r->logged[slot];
	     slot = (slot + 1) & (CONFLICTS_LOGGED - 1))
		if (r->logged[slot] == h)
			return false;
	if (r->n_logged >= CONFLICTS_LOGGED / 4 * 3)
		return false;
	r->logged[slot] = h;
	r->n_logged++;
	return true;
}

static void report(struct rd_prom_renderer *r, const struct ofam *o, const struct claim *c,
		   uint32_t pf, bool alias)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	const char *name = r->names.p + o->name_off;
	/* o->hash is of its type, name and unit already. */
	uint64_t h = hash_words(o->hash, (const char *)&c->uid, sizeof c->uid);
	char line[2 * RD_PROM_NAME_MAX + 200];

	if (!r->on_conflict ||
	    !first_report(r, h ^ (pf == NONE ? 0x9e3779b97f4a7c15ull : 0) ^ (alias ? 0xbf58476d1ce4e5b9ull : 0)))
		return;
	if (alias)
		snprintf(line, sizeof line,
			 "/metrics: %s %s (from %s) of %s%u: another metric of the same producer has "
			 "that name; left out of the page (OTLP still carries it)",
			 types[o->type], name, o->name, c->reader ? "the reader, euid " : "uid ", c->uid);
	else if (pf == NONE)
		snprintf(line, sizeof line,
			 "/metrics: %s %s of %s%u wants a name the reader keeps or another family has; "
			 "left out of the page (OTLP still carries it)",
			 types[o->type], name, c->reader ? "the reader, euid " : "uid ", c->uid);
	else
		snprintf(line, sizeof line,
			 "/metrics: %s %s of uid %u wants a name the reader keeps or another family has; "
			 "shown as %s",
			 types[o->type], name, c->uid, r->names.p + r->pf[pf].name_off);
	r->on_conflict(r->on_conflict_ctx, line);
}

/* The family a metric's series go to for this claim: its own name when
 * that is free or its family is already there; else, for a producer, its
 * name tagged with its uid ("__uid<N>" before the unit: no OTel name maps
 * to a name with "__" in it, so only this uid's own families can take
 * that one); else NONE (left out, counted). */
static uint32_t resolve(struct rd_prom_renderer *r, struct ofam *o, const struct claim *c,
			struct rd_prom_stats *st)
{
	bool may = c->reader || !o->readers;
	char name[RD_PROM_NAME_MAX + 32];
	uint32_t pf = NONE;
	size_t len = o->name_len, base;

	if (may && o->pf != NONE)
		return o->pf;
	memcpy(name, r->names.p + o->name_off, len);
	if (may && !o->blocked) {
		o->pf = admit(r, name, len, o->unit_off, o->type);
		if (o->pf != NONE)
			return o->pf;
		o->blocked = true;
	}
	if (!c->reader) {
		/* OpenMetrics wants the unit last: the tag goes before it. */
		base = o->unit_len && len > o->unit_len ? len - o->unit_len - 1 : len;
		len = base + (size_t)snprintf(name + base, sizeof name - base, "__uid%u", c->uid);
		if (o->unit_len) {
			name[len++] = '_';
			memcpy(name + len, r->names.p + o->unit_off, o->unit_len);
			len += o->unit_len;
		}
		pf = admit(r, name, len, o->unit_off, o->type);
	}
	if (pf == NONE)
		st->dropped++;
	else
		st->renamed++;
	report(r, o, c, pf, false);
	return pf;
}

/* resolve(), and then: another metric of the same scope already in that
 * family (two OTel names that map to one, "a.total" and "a" counters, or
 * one name twice) would repeat its series, so the later is left out. */
static uint32_t family_of(struct rd_prom_renderer *r, const otlp_metric *m, size_t at,
			  const struct claim *c, struct rd_prom_stats *st)
{
	struct ofam *o = ofam_at(r, m, at);
	uint32_t pf = resolve(r, o, c, st);
	struct pfam *f;

	if (pf == NONE)
		return NONE;
	f = &r->pf[pf];
	if (f->scope_stamp == r->stamp) {
		st->dropped++;
		report(r, o, c, NONE, true);
		return NONE;
	}
	f->scope_stamp = r->stamp;
	return pf;
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

/* bound's "le" spelling (in r->les), formatted on first sight only: a
 * page holds the same few bounds thousands of times. */
static const struct le_str *le_of(struct rd_prom_renderer *r, double bound)
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
		if (e->bits == bits)
			return e;
	e->bits = bits;
	e->off = (uint32_t)r->les.len;
	rd_buf_go_float(&r->les, bound);
	e->len = (uint32_t)(r->les.len - e->off);
	r->n_le++;
	return e;
}

/* ---- output ---- */

struct out {
	struct rd_buf *b;
	enum rd_prom_format fmt;
	bool created; /* OpenMetrics _created samples */
	struct rd_prom_stats *st;
	/* The protobuf format: the scope's labels as LabelPair fields, and
	 * how much of a point's text labels (r->pt) they are. */
	const struct rd_buf *pb_pre;
	size_t pre_len;
};

/* A point's labels for the protobuf format: the scope's, encoded once,
 * and the rest of its text labels. */
static struct rd_pb_labels pb_labels(const struct out *o, const struct rd_buf *labels)
{
	return (struct rd_pb_labels){ .pre = o->pb_pre->p, .pre_len = o->pb_pre->len,
				      .text = labels->p + o->pre_len,
				      .text_len = labels->len - o->pre_len };
}

static void meta(struct out *o, const char *name, const char *suffix, const char *type,
		 const char *unit, const char *help)
{
	struct rd_buf *b = o->b;

	if (o->fmt == RD_PROM_PROTOBUF)
		return; /* the family's message, at the end (rd_prom_render) */
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

/* Opens a sample line in o->b: head, then the point's labels (r->pt: job,
 * instance, scope and attributes), with room for extra more bytes.
 * Returns where to write them; close_line() ends the line there. */
static char *open_line(struct out *o, const struct heads *h, int which,
		       const struct rd_buf *labels, size_t extra)
{
	char *w = rd_buf_room(o->b, h->len[which] + labels->len + extra);

	memcpy(w, h->s[which], h->len[which]);
	w += h->len[which];
	memcpy(w, labels->p, labels->len);
	o->st->series++;
	return w + labels->len;
}

static void close_line(struct out *o, char *w)
{
	*w++ = '\n';
	o->b->len = (size_t)(w - o->b->p);
}

/* "} " and an integer value: the common line. */
static void int_line(struct out *o, const struct heads *h, int which,
		     const struct rd_buf *labels, const char *pre, size_t pre_len, int64_t v)
{
	char *w;

	if (o->fmt == RD_PROM_PROTOBUF) { /* a counter's or gauge's value */
		struct rd_pb_labels l = pb_labels(o, labels);

		rd_prom_pb_number(o->b, &l, which == H_TOTAL, (double)v);
		o->st->series++;
		return;
	}
	w = open_line(o, h, which, labels, pre_len + 2 + 20 + 1);

	memcpy(w, pre, pre_len);
	w += pre_len;
	*w++ = '}';
	*w++ = ' ';
	close_line(o, w + rd_fmt_i64(w, v));
}

static void double_line(struct out *o, const struct heads *h, int which,
			const struct rd_buf *labels, double v)
{
	char *w;

	if (o->fmt == RD_PROM_PROTOBUF) {
		struct rd_pb_labels l = pb_labels(o, labels);

		rd_prom_pb_number(o->b, &l, which == H_TOTAL, v);
		o->st->series++;
		return;
	}
	w = open_line(o, h, which, labels, 2);

	*w++ = '}';
	*w++ = ' ';
	o->b->len = (size_t)(w - o->b->p);
	rd_buf_double(o->b, v);
	rd_buf_putc(o->b, '\n');
}

/* The point's label block: its producer's and scope's labels (r->prefix),
 * then its attributes. */
static void point_labels(struct rd_prom_renderer *r, otlp_kv *const *kv, size_t n)
{
	r->pt.len = 0;
	rd_buf_put(&r->pt, r->prefix.p, r->prefix.len);
	put_attrs(r, kv, n, false);
}

static void created(struct out *o, const struct heads *h, const struct rd_buf *labels,
		    uint64_t start)
{
	char *w;
	uint64_t f = start % 1000000000u;

	if (o->fmt != RD_PROM_OPENMETRICS || !o->created || !start)
		return;
	w = open_line(o, h, H_CREATED, labels, 2 + 20 + 10 + 1);
	*w++ = '}';
	*w++ = ' ';
	/* Seconds, exactly: the nanoseconds as a decimal fraction,
	 * ".ddddddddd" with the zeros at its end dropped. */
	w += rd_fmt_u64(w, start / 1000000000u);
	if (f) {
		char *frac = w;
		int last = 9;

		frac[0] = '.';
		frac[9] = (char)('0' + f % 10);
		f /= 10;
		for (int i = 7; i >= 1; i -= 2, f /= 100)
			memcpy(frac + i, rd_buf_digit_pairs + (f % 100) * 2, 2);
		while (frac[last] == '0')
			last--;
		w = frac + last + 1;
	}
	close_line(o, w);
}

static void number_points(struct rd_prom_renderer *r, struct out *o, const struct heads *h,
			  otlp_ndp *const *pts, size_t n, bool counter)
{
	for (size_t i = 0; i < n; i++) {
		const otlp_ndp *p = pts[i];

		if (p->flags & OTLP_NO_RECORDED_VALUE)
			continue;
		point_labels(r, p->attributes, p->n_attributes);
		if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
			int_line(o, h, counter ? H_TOTAL : H_PLAIN, &r->pt, "", 0, p->as_int);
		else
			double_line(o, h, counter ? H_TOTAL : H_PLAIN, &r->pt, p->as_double);
		if (counter)
			created(o, h, &r->pt, p->start_time_unix_nano);
	}
}

/* The protobuf format's buckets of one point, collected. */
static void pb_bucket(struct rd_prom_renderer *r, double bound, uint64_t cum)
{
	if (r->n_pb == r->cap_pb) {
		r->cap_pb = r->cap_pb ? 2 * r->cap_pb : 64;
		r->pb_bounds = grow(r->pb_bounds, r->cap_pb, sizeof *r->pb_bounds);
		r->pb_cum = grow(r->pb_cum, r->cap_pb, sizeof *r->pb_cum);
	}
	r->pb_bounds[r->n_pb] = bound;
	r->pb_cum[r->n_pb++] = cum;
}

/* One cumulative _bucket line of the text formats: the point's labels
 * (r->pt), le="bound" (formatted once a page, le_of), the count. */
static void bucket_line(struct rd_prom_renderer *r, struct out *o, const struct heads *h,
			double bound, uint64_t cum)
{
	const struct le_str *le = le_of(r, bound);
	char *w = open_line(o, h, H_BUCKET, &r->pt, 5 + le->len + 3 + 20 + 1);

	memcpy(w, ",le=\"", 5);
	memcpy(w + 5, r->les.p + le->off, le->len);
	w += 5 + le->len;
	memcpy(w, "\"} ", 3);
	close_line(o, w + 3 + rd_fmt_u64(w + 3, cum));
}

static void histogram_points(struct rd_prom_renderer *r, struct out *o, const struct heads *h,
			     otlp_hdp *const *pts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const otlp_hdp *p = pts[i];
		uint64_t cum = 0;

		if (p->flags & OTLP_NO_RECORDED_VALUE)
			continue;
		point_labels(r, p->attributes, p->n_attributes);
		if (o->fmt == RD_PROM_PROTOBUF) {
			struct rd_pb_labels l = pb_labels(o, &r->pt);

			r->n_pb = 0;
			for (size_t k = 0; k < p->n_explicit_bounds && k < p->n_bucket_counts; k++)
				pb_bucket(r, p->explicit_bounds[k], cum += p->bucket_counts[k]);
			rd_prom_pb_classic(o->b, &l, r->pb_bounds, r->pb_cum, r->n_pb, p->count, p->sum);
			o->st->series++;
			continue;
		}
		for (size_t k = 0; k < p->n_explicit_bounds && k < p->n_bucket_counts; k++)
			bucket_line(r, o, h, p->explicit_bounds[k], cum += p->bucket_counts[k]);
		int_line(o, h, H_BUCKET, &r->pt, ",le=\"+Inf\"", 10, (int64_t)p->count);
		double_line(o, h, H_SUM, &r->pt, p->sum);
		int_line(o, h, H_COUNT, &r->pt, "", 0, (int64_t)p->count);
		created(o, h, &r->pt, p->start_time_unix_nano);
	}
}

/* One cumulative "le" line of an exponential histogram, when its bound
 * is above the last one written (*last) and finite: at the coarsest
 * scales a power of two can overflow to +Inf (the +Inf line has it) or
 * underflow to 0. */
static void le_line(struct rd_prom_renderer *r, struct out *o, const struct heads *h, double bound,
		    uint64_t cum, double *last)
{
	if (!(bound > *last) || isinf(bound))
		return;
	*last = bound;
	if (o->fmt == RD_PROM_PROTOBUF) {
		pb_bucket(r, bound, cum);
		return;
	}
	bucket_line(r, o, h, bound, cum);
}

/* The text formats have no exponential histogram: each becomes a classic
 * one whose bounds are powers of two (its buckets at scale 0, or at its own
 * scale when that is coarser), so the set of "le" values stays the same
 * however the producer's scale moves (docs/prometheus.md).  A negative
 * side's edges are approximate by the edge value itself: "le" includes
 * it, an exponential bucket's lower edge does not. */
static void exponential_points(struct rd_prom_renderer *r, struct out *o, const struct heads *h,
			       otlp_ehdp *const *pts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const otlp_ehdp *p = pts[i];
		int32_t out = p->scale < 0 ? p->scale : 0, d = p->scale - out;
		int mul = 1 << -out; /* an index at scale out, in octaves */
		uint64_t cum = 0;
		double last = -INFINITY;

		if (p->flags & OTLP_NO_RECORDED_VALUE)
			continue;
		point_labels(r, p->attributes, p->n_attributes);
		/* Prometheus's native histograms take schemas -4..8. */
		if (o->fmt == RD_PROM_PROTOBUF && p->scale >= -4) {
			struct rd_pb_labels l = pb_labels(o, &r->pt);

			rd_prom_pb_native(o->b, &l, p);
			o->st->series++;
			continue;
		}
		r->n_pb = 0;
		if (p->negative && p->negative->n_bucket_counts) {
			const otlp_ebuckets *b = p->negative;
			int32_t j = (b->offset + (int32_t)b->n_bucket_counts - 1) >> d;

			for (size_t k = b->n_bucket_counts; k-- > 0;) {
				int32_t at = (b->offset + (int32_t)k) >> d;

				if (at != j) {
					le_line(r, o, h, -ldexp(1, j * mul), cum, &last);
					j = at;
				}
				cum += b->bucket_counts[k];
			}
			le_line(r, o, h, -ldexp(1, j * mul), cum, &last);
		}
		cum += p->zero_count;
		if (cum)
			le_line(r, o, h, 0, cum, &last);
		if (p->positive && p->positive->n_bucket_counts) {
			const otlp_ebuckets *b = p->positive;
			int32_t j = b->offset >> d;

			for (size_t k = 0; k < b->n_bucket_counts; k++) {
				int32_t at = (b->offset + (int32_t)k) >> d;

				if (at != j) {
					le_line(r, o, h, ldexp(1, (j + 1) * mul), cum, &last);
					j = at;
				}
				cum += b->bucket_counts[k];
			}
			le_line(r, o, h, ldexp(1, (j + 1) * mul), cum, &last);
		}
		if (o->fmt == RD_PROM_PROTOBUF) {
			struct rd_pb_labels l = pb_labels(o, &r->pt);

			rd_prom_pb_classic(o->b, &l, r->pb_bounds, r->pb_cum, r->n_pb, p->count,
					   p->_sum_case ? p->sum : NAN);
			o->st->series++;
			continue;
		}
		int_line(o, h, H_BUCKET, &r->pt, ",le=\"+Inf\"", 10, (int64_t)p->count);
		if (p->_sum_case) /* a producer that knows no sum sends none */
			double_line(o, h, H_SUM, &r->pt, p->sum);
		int_line(o, h, H_COUNT, &r->pt, "", 0, (int64_t)p->count);
		created(o, h, &r->pt, p->start_time_unix_nano);
	}
}

/* One producer's metric, into its family's lines. */
static void metric(struct rd_prom_renderer *r, struct out *o, const otlp_metric *m, size_t at,
		   const struct claim *c)
{
	uint32_t pf = family_of(r, m, at, c, o->st);
	struct pfam *f;

	if (pf == NONE)
		return;
	f = &r->pf[pf];
	if (!f->help && m->description && *m->description)
		f->help = m->description;
	o->b = &r->lines[pf];
	switch (m->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
		number_points(r, o, &f->h, m->sum->data_points, m->sum->n_data_points,
			      f->type == RD_PROM_COUNTER);
		break;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
		number_points(r, o, &f->h, m->gauge->data_points, m->gauge->n_data_points, false);
		break;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
		histogram_points(r, o, &f->h, m->histogram->data_points, m->histogram->n_data_points);
		break;
	case OTLP_DATA_EXPHIST:
		exponential_points(r, o, &f->h, m->exponential_histogram->data_points,
				   m->exponential_histogram->n_data_points);
		break;
	default: /* rtm builds no other kinds */
		break;
	}
}

/* One target_info series per resource: its attributes as labels. */
static void target_info(struct rd_prom_renderer *r, struct out *o, otlp_rm *const *rms,
			size_t n)
{
	if (!n)
		return;
	o->st->families++;
	if (o->fmt == RD_PROM_PROTOBUF) {
		r->pb_tmp.len = 0;
		for (size_t i = 0; i < n; i++) {
			const otlp_resource *res = rms[i]->resource;

			r->prefix.len = 0;
			put_identity(&r->prefix, res);
			r->pt.len = 0;
			if (res)
				put_attrs(r, res->attributes, res->n_attributes, true);
			rd_buf_put(&r->prefix, r->pt.p, r->pt.len);
			rd_prom_pb_number(&r->pb_tmp, &(struct rd_pb_labels){ .text = r->prefix.p,
					  .text_len = r->prefix.len }, false, 1);
			o->st->series++;
		}
		rd_prom_pb_family(o->b, "target_info", "", "Target metadata", RD_PB_GAUGE,
				  r->pb_tmp.p, r->pb_tmp.len);
		return;
	}
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

/* One scope's metrics, with its producer's and its own labels. */
static void render_scope(struct rd_prom_renderer *r, struct out *o, const otlp_rm *rm,
			 const otlp_sm *sm, const struct claim *c)
{
	r->stamp++;
	/* job, instance and scope: the same for all its metrics. */
	r->prefix.len = 0;
	put_identity(&r->prefix, rm->resource);
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
	if (o->fmt == RD_PROM_PROTOBUF) {
		r->pb_pre.len = 0;
		rd_prom_pb_labels(&r->pb_pre, r->prefix.p, r->prefix.len);
		o->pb_pre = &r->pb_pre;
		o->pre_len = r->prefix.len;
	}
	for (size_t m = 0; m < sm->n_metrics; m++)
		metric(r, o, sm->metrics[m], m, c);
}

/* Producers claim names root's first, then in the order the reader
 * found them: a later producer never displaces an earlier one. */
static int cmp_claim(const void *a, const void *b, void *ctx)
{
	const struct rd_rm_owner *w = ctx, *x = &w[*(const uint32_t *)a],
				 *y = &w[*(const uint32_t *)b];

	if ((x->uid != 0) != (y->uid != 0))
		return x->uid != 0 ? 1 : -1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void rd_prom_renderer_created(struct rd_prom_renderer *r, bool on)
{
	r->created = on;
}

void rd_prom_renderer_on_conflict(struct rd_prom_renderer *r,
				  void (*fn)(void *ctx, const char *line), void *ctx)
{
	r->on_conflict = fn;
	r->on_conflict_ctx = ctx;
}

void rd_prom_page_free(struct rd_prom_page *p)
{
	for (uint32_t i = 0; p->lines && i < p->cap_lines; i++)
		rd_buf_free(&p->lines[i]);
	free(p->lines);
	free(p->iov);
	rd_buf_free(&p->meta);
	*p = (struct rd_prom_page){ 0 };
}

void rd_prom_page_join(const struct rd_prom_page *p, struct rd_buf *out)
{
	char *w;

	if (!p->len)
		return;
	w = rd_buf_room(out, p->len);

	for (size_t i = 0; i < p->n_iov; i++) {
		memcpy(w, p->iov[i].iov_base, p->iov[i].iov_len);
		w += p->iov[i].iov_len;
	}
	out->len += p->len;
}

/* The next piece of the page: what meta gained since *mark (its address
 * is set at the end, meta may still move), then b's bytes. */
static void add_pieces(struct rd_prom_page *pg, size_t *mark, const struct rd_buf *b)
{
	if (pg->n_iov + 2 > pg->cap_iov) {
		pg->cap_iov = pg->cap_iov ? pg->cap_iov * 2 : 256;
		pg->iov = grow(pg->iov, pg->cap_iov, sizeof *pg->iov);
	}
	if (pg->meta.len > *mark) {
		pg->iov[pg->n_iov++] = (struct iovec){ NULL, pg->meta.len - *mark };
		*mark = pg->meta.len;
	}
	if (b && b->len)
		pg->iov[pg->n_iov++] = (struct iovec){ b->p, b->len };
}

void rd_prom_render_page(struct rd_prom_renderer *r, otlp_rm *const *rms,
			 const struct rd_rm_owner *owners, size_t n, enum rd_prom_format fmt,
			 struct rd_prom_page *page, struct rd_prom_stats *st)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	struct out o = { .b = &page->meta, .fmt = fmt, .created = r->created, .st = st };
	const struct claim reader = { .reader = true, .uid = (uint32_t)geteuid() };
	size_t k = 0, mark = 0, off = 0;

	memset(st, 0, sizeof *st);
	reset_tables(r);
	/* The page's buffers take the families' lines. */
	r->lines = page->lines;
	r->cap_lines = page->cap_lines;
	page->meta.len = page->n_iov = page->len = 0;
	/* What the reader says itself first, its names before any producer's. */
	for (size_t i = 0; i < n; i++)
		for (size_t s = 0; s < rms[i]->n_scope_metrics; s++)
			if (!owners || owners[i].reader ||
			    rms[i]->scope_metrics[s] != owners[i].own)
				render_scope(r, &o, rms[i], rms[i]->scope_metrics[s], &reader);
	if (owners && n > r->cap_order) {
		r->cap_order = n;
		r->order = grow(r->order, n, sizeof *r->order);
	}
	for (size_t i = 0; owners && i < n; i++)
		if (!owners[i].reader && owners[i].own)
			r->order[k++] = (uint32_t)i;
	if (k > 1)
		qsort_r(r->order, k, sizeof *r->order, cmp_claim, (void *)owners);
	for (size_t j = 0; j < k; j++) {
		const struct rd_rm_owner *w = &owners[r->order[j]];

		render_scope(r, &o, rms[r->order[j]], w->own, &(struct claim){ .uid = w->uid });
	}
	o.b = &page->meta;
	target_info(r, &o, rms, n);
	for (uint32_t f = 0; f < r->n_pf; f++) {
		const struct pfam *pf = &r->pf[f];

		if (!r->lines[f].len)
			continue; /* every point of it was NO_RECORDED_VALUE */
		st->families++;
		if (fmt == RD_PROM_PROTOBUF) {
			static const int pb_types[] = { RD_PB_COUNTER, RD_PB_GAUGE, RD_PB_HISTOGRAM };

			rd_prom_pb_family_head(&page->meta, r->names.p + pf->name_off,
					       pf->type == RD_PROM_COUNTER ? "_total" : "", pf->help,
					       pb_types[pf->type], r->lines[f].len);
		} else {
			meta(&o, r->names.p + pf->name_off, pf->type == RD_PROM_COUNTER ? "_total" : "",
			     types[pf->type], r->names.p + pf->unit_off, pf->help);
		}
		add_pieces(page, &mark, &r->lines[f]);
	}
	if (fmt == RD_PROM_OPENMETRICS)
		rd_buf_puts(&page->meta, "# EOF\n");
	add_pieces(page, &mark, NULL);
	/* meta is written: its pieces' addresses, in order. */
	for (size_t i = 0; i < page->n_iov; i++) {
		if (!page->iov[i].iov_base) {
			page->iov[i].iov_base = page->meta.p + off;
			off += page->iov[i].iov_len;
		}
		page->len += page->iov[i].iov_len;
	}
	page->lines = r->lines;
	page->cap_lines = r->cap_lines;
	r->lines = NULL;
	r->cap_lines = 0;
}

void rd_prom_render(struct rd_prom_renderer *r, otlp_rm *const *rms,
		    const struct rd_rm_owner *owners, size_t n, enum rd_prom_format fmt,
		    struct rd_buf *out, struct rd_prom_stats *st)
{
	rd_prom_render_page(r, rms, owners, n, fmt, &r->scratch, st);
	rd_prom_page_join(&r->scratch, out);
}
