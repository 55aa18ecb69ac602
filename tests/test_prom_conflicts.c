/* SPDX-License-Identifier: MIT */
/*
 * Family-name conflicts on /metrics (rd_prom.h, "Name conflicts"): the
 * rule case by case, then a fuzzer that renders random names and kinds from
 * producers of several users in both formats and checks each page as
 * promtool's parser does (one TYPE per name, no sample outside its family,
 * families in one group, no duplicate series, valid UTF-8), that the
 * reader's families never move and that no producer's metric is missing
 * unless its own user's other family took its tagged name.  Where promtool
 * is installed (RTM_PROMTOOL), it parses the pages too.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pb_check.h"
#include "rd_encode.h"
#include "rd_prom.h"
#include "rd_prom_name.h"
#include "rtm_shm_text.h"
#include "test_util.h"

/* ---- a model of P producers with M metrics each, built on the heap ---- */

#define MAX_P 8
#define MAX_M 12

struct fmetric {
	const char *name, *unit;
	int kind; /* 0 counter, 1 up-down (gauge), 2 gauge, 3 histogram */
};

struct fmodel {
	size_t n;
	otlp_rm rm[MAX_P], *rms[MAX_P];
	struct rd_rm_owner own[MAX_P];
	otlp_resource res[MAX_P];
	otlp_kv res_kv[MAX_P][2], *res_kvp[MAX_P][2];
	otlp_any res_any[MAX_P][2];
	otlp_scope scope[2];
	otlp_sm sm[MAX_P][2], *smp[MAX_P][2];
	otlp_metric m[MAX_P][MAX_M], *mp[MAX_P][MAX_M];
	otlp_sum sum[MAX_P][MAX_M];
	otlp_gauge gauge[MAX_P][MAX_M];
	otlp_hist hist[MAX_P][MAX_M];
	otlp_ndp ndp[MAX_P][MAX_M], *ndpp[MAX_P][MAX_M];
	otlp_hdp hdp[MAX_P][MAX_M], *hdpp[MAX_P][MAX_M];
	uint64_t buckets[2];
	double bound;
	char svc[MAX_P][16], inst[MAX_P][16];
	struct fmetric fm[MAX_P][MAX_M];
	int scope_of[MAX_P][MAX_M]; /* 0 the producer's own, 1 the reader's */
	size_t n_m[MAX_P];
};

static void fm_init(struct fmodel *f)
{
	memset(f, 0, sizeof *f);
	for (int s = 0; s < 2; s++) {
		opentelemetry__proto__common__v1__instrumentation_scope__init(&f->scope[s]);
		f->scope[s].name = (char *)(s ? "rtm/process" : "rtm");
	}
	f->bound = 1;
	f->buckets[0] = 1, f->buckets[1] = 2;
}

/* Producer k of user uid (reader: the reader's own resource), found
 * seq-th, with the metrics ms: in its own scope, or (procs) in a scope the
 * reader built. */
static size_t fm_producer(struct fmodel *f, uint32_t uid, bool reader, uint64_t seq,
			  const struct fmetric *ms, size_t n, const struct fmetric *procs,
			  size_t n_procs)
{
	size_t k = f->n++;

	assert_true(k < MAX_P && n + n_procs <= MAX_M);
	snprintf(f->svc[k], sizeof f->svc[k], reader ? "rtm-reader" : "p%zu", k);
	snprintf(f->inst[k], sizeof f->inst[k], "i%zu", k);
	opentelemetry__proto__metrics__v1__resource_metrics__init(&f->rm[k]);
	opentelemetry__proto__resource__v1__resource__init(&f->res[k]);
	rd_kv_str(&f->res_kv[k][0], &f->res_any[k][0], "service.name", f->svc[k]);
	rd_kv_str(&f->res_kv[k][1], &f->res_any[k][1], "service.instance.id", f->inst[k]);
	f->res_kvp[k][0] = &f->res_kv[k][0];
	f->res_kvp[k][1] = &f->res_kv[k][1];
	f->res[k].attributes = f->res_kvp[k];
	f->res[k].n_attributes = 2;
	f->rm[k].resource = &f->res[k];
	f->rm[k].scope_metrics = f->smp[k];
	for (size_t i = 0; i < n + n_procs; i++) {
		const struct fmetric *x = i < n ? &ms[i] : &procs[i - n];
		otlp_metric *m = &f->m[k][i];

		f->fm[k][i] = *x;
		f->scope_of[k][i] = i >= n;
		opentelemetry__proto__metrics__v1__metric__init(m);
		m->name = (char *)x->name;
		m->unit = (char *)x->unit;
		opentelemetry__proto__metrics__v1__number_data_point__init(&f->ndp[k][i]);
		f->ndpp[k][i] = &f->ndp[k][i];
		f->ndp[k][i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
		f->ndp[k][i].as_int = (int64_t)(k * 100 + i);
		f->ndp[k][i].start_time_unix_nano = 1700000000000000000ull;
		if (x->kind <= 1) {
			opentelemetry__proto__metrics__v1__sum__init(&f->sum[k][i]);
			f->sum[k][i].is_monotonic = x->kind == 0;
			f->sum[k][i].data_points = &f->ndpp[k][i];
			f->sum[k][i].n_data_points = 1;
			m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
			m->sum = &f->sum[k][i];
		} else if (x->kind == 2) {
			opentelemetry__proto__metrics__v1__gauge__init(&f->gauge[k][i]);
			f->gauge[k][i].data_points = &f->ndpp[k][i];
			f->gauge[k][i].n_data_points = 1;
			m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
			m->gauge = &f->gauge[k][i];
		} else {
			opentelemetry__proto__metrics__v1__histogram__init(&f->hist[k][i]);
			opentelemetry__proto__metrics__v1__histogram_data_point__init(&f->hdp[k][i]);
			f->hdpp[k][i] = &f->hdp[k][i];
			f->hdp[k][i].bucket_counts = f->buckets;
			f->hdp[k][i].n_bucket_counts = 2;
			f->hdp[k][i].explicit_bounds = &f->bound;
			f->hdp[k][i].n_explicit_bounds = 1;
			f->hdp[k][i].count = 3;
			f->hdp[k][i].sum = 2.5;
			f->hist[k][i].data_points = &f->hdpp[k][i];
			f->hist[k][i].n_data_points = 1;
			m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
			m->histogram = &f->hist[k][i];
		}
		f->mp[k][i] = m;
	}
	for (int s = 0; s < 2; s++) {
		size_t cnt = s ? n_procs : n;

		if (!cnt)
			continue;
		opentelemetry__proto__metrics__v1__scope_metrics__init(&f->sm[k][s]);
		f->sm[k][s].scope = &f->scope[s];
		f->sm[k][s].metrics = s ? &f->mp[k][n] : f->mp[k];
		f->sm[k][s].n_metrics = cnt;
		f->smp[k][f->rm[k].n_scope_metrics++] = &f->sm[k][s];
	}
	f->n_m[k] = n + n_procs;
	f->own[k] = (struct rd_rm_owner){ .uid = uid, .reader = reader, .seq = seq,
					  .own = !reader && n ? &f->sm[k][0] : NULL };
	f->rms[k] = &f->rm[k];
	return k;
}

struct lines {
	char text[64][400];
	int n;
};

static void keep_line(void *ctx, const char *line)
{
	struct lines *l = ctx;

	if (l->n < 64)
		snprintf(l->text[l->n++], sizeof l->text[0], "%s", line);
}

static char *fm_render(struct fmodel *f, enum rd_prom_format fmt, struct rd_prom_stats *st,
		       struct lines *log)
{
	struct rd_prom_renderer *r = rd_prom_renderer_new();
	struct rd_buf out = { 0 };
	size_t len;

	if (log)
		rd_prom_renderer_on_conflict(r, keep_line, log);
	rd_prom_render(r, f->rms, f->own, f->n, fmt, &out, st);
	rd_buf_putc(&out, '\0');
	rd_prom_renderer_free(r);
	return rd_buf_take(&out, &len);
}

/* ---- the protobuf page ---- */

/* The protobuf page of model md: delimited MetricFamily messages, each
 * well formed, no name twice, and the same families, by name, as the
 * text page has TYPE lines. */
static void check_pb_page(struct fmodel *md, const char *text)
{
	struct rd_prom_renderer *r = rd_prom_renderer_new();
	struct rd_buf out = { 0 };
	struct rd_prom_stats st;
	const unsigned char *p, *end;
	size_t n = 0, types = 0;
	char (*names)[RD_PROM_NAME_MAX + 16];

	rd_prom_render(r, md->rms, md->own, md->n, RD_PROM_PROTOBUF, &out, &st);
	rd_prom_renderer_free(r);
	p = (const unsigned char *)out.p;
	end = p + out.len;
	names = calloc(out.len + 1, sizeof *names);
	while (p < end) {
		uint64_t len, tag, nl;
		const unsigned char *m;

		assert_true(pb_varint(&p, end, &len) && len <= (uint64_t)(end - p));
		assert_true(pb_message_ok(p, p + len, PB_FAMILY));
		/* The name comes first. */
		m = p;
		assert_true(pb_varint(&m, p + len, &tag) && tag == (1 << 3 | 2));
		assert_true(pb_varint(&m, p + len, &nl) && nl < sizeof names[0]);
		memcpy(names[n], m, nl);
		for (size_t k = 0; k < n; k++)
			if (!strcmp(names[k], names[n]))
				fail_msg("family %s twice in the protobuf page", names[n]);
		if (strcmp(names[n], "target_info")) {
			char type_line[RD_PROM_NAME_MAX + 32];

			snprintf(type_line, sizeof type_line, "# TYPE %s ", names[n]);
			if (!strstr(text, type_line))
				fail_msg("family %s in the protobuf page, not the text one", names[n]);
		}
		n++;
		p += len;
	}
	for (const char *t = strstr(text, "# TYPE "); t; t = strstr(t + 1, "# TYPE "))
		types++;
	assert_int_equal(n, types);
	free(names);
	rd_buf_free(&out);
}

/* ---- the page, checked as promtool's parser checks it ---- */

struct fam {
	char name[RD_PROM_NAME_MAX + 32];
	char type[16];
	bool had_samples, closed;
};

static bool has_suffix(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);

	return n >= k && !memcmp(s + n - k, suf, k);
}

/* Whether sample name s (n bytes) belongs to family f in fmt. */
static bool belongs(const struct fam *f, const char *s, size_t n, enum rd_prom_format fmt)
{
	size_t k = strlen(f->name);
	static const char *const hist[] = { "_bucket", "_sum", "_count", "_created" };

	if (n == k && !memcmp(s, f->name, k))
		return fmt == RD_PROM_TEXT || !strcmp(f->type, "gauge");
	if (n <= k || memcmp(s, f->name, k))
		return false;
	if (!strcmp(f->type, "histogram")) {
		for (int i = 0; i < 4; i++)
			if (!strcmp(s + k, hist[i]) || (n - k == strlen(hist[i]) &&
							 !memcmp(s + k, hist[i], n - k)))
				return fmt == RD_PROM_OPENMETRICS || i < 3;
		return false;
	}
	if (fmt == RD_PROM_OPENMETRICS && !strcmp(f->type, "counter"))
		return (n - k == 6 && !memcmp(s + k, "_total", 6)) ||
		       (n - k == 8 && !memcmp(s + k, "_created", 8));
	if (fmt == RD_PROM_OPENMETRICS && !strcmp(f->type, "info"))
		return n - k == 5 && !memcmp(s + k, "_info", 5);
	return false;
}

static void check_page(const char *page, enum rd_prom_format fmt)
{
	struct fam *fams = calloc(4096, sizeof *fams);
	char **series = calloc(65536, sizeof *series);
	size_t nf = 0, ns = 0;
	struct fam *cur = NULL;
	const char *p = page;

	assert_true(rtm_shm_utf8_valid(page, strlen(page)));
	if (fmt == RD_PROM_OPENMETRICS)
		assert_true(has_suffix(page, strlen(page), "\n# EOF\n") || !strcmp(page, "# EOF\n"));
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len;

		assert_non_null(nl);
		len = (size_t)(nl - p);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x20)
				fail_msg("a control byte in line: %.*s", (int)len, p);
		if (!strncmp(p, "# TYPE ", 7)) {
			const char *sp = memchr(p + 7, ' ', len - 7);

			assert_non_null(sp);
			for (size_t i = 0; i < nf; i++)
				if (strlen(fams[i].name) == (size_t)(sp - p - 7) &&
				    !memcmp(fams[i].name, p + 7, (size_t)(sp - p - 7)))
					fail_msg("a second TYPE line for %.*s", (int)len, p);
			assert_true(nf < 4096);
			if (cur)
				cur->closed = true;
			cur = &fams[nf++];
			snprintf(cur->name, sizeof cur->name, "%.*s", (int)(sp - p - 7), p + 7);
			snprintf(cur->type, sizeof cur->type, "%.*s", (int)(nl - sp - 1), sp + 1);
			assert_true(!strcmp(cur->type, "counter") || !strcmp(cur->type, "gauge") ||
				    !strcmp(cur->type, "histogram") ||
				    (fmt == RD_PROM_OPENMETRICS && !strcmp(cur->type, "info")));
		} else if (!strncmp(p, "# UNIT ", 7)) {
			/* OpenMetrics: the family name ends in _<unit>. */
			const char *sp = memchr(p + 7, ' ', len - 7);
			char unit[RD_PROM_NAME_MAX + 2];

			assert_non_null(sp);
			assert_non_null(cur);
			snprintf(unit, sizeof unit, "_%.*s", (int)(nl - sp - 1), sp + 1);
			if (!has_suffix(cur->name, strlen(cur->name), unit))
				fail_msg("family %s does not end in its unit %s", cur->name, unit);
		} else if (p[0] == '#') {
			assert_true(!strncmp(p, "# HELP ", 7) || !strncmp(p, "# EOF", 5));
		} else {
			const char *brace = memchr(p, '{', len);
			size_t n = brace ? (size_t)(brace - p) : (size_t)(strchr(p, ' ') - p);
			char *key;

			if (!cur || !belongs(cur, p, n, fmt))
				fail_msg("a sample outside its family (%s): %.*s",
					 cur ? cur->name : "none", (int)len, p);
			cur->had_samples = true;
			/* No series twice: name and labels. */
			key = strndup(p, (size_t)((const char *)memrchr(p, ' ', len) - p));
			for (size_t i = 0; i < ns; i++)
				if (!strcmp(series[i], key))
					fail_msg("series twice: %s", key);
			assert_true(ns < 65536);
			series[ns++] = key;
		}
		p = nl + 1;
	}
	for (size_t i = 0; i < ns; i++)
		free(series[i]);
	free(series);
	free(fams);
}

static void promtool_parses(const char *page, enum rd_prom_format fmt)
{
	if (fmt == RD_PROM_TEXT) /* promtool reads no other */
		tu_promtool_parses(page);
}

static bool on_page(const char *page, const char *line)
{
	return strstr(page, line) != NULL;
}

/* ---- the rule, case by case ---- */

/* Root's counter rel.count and a user's gauge of that name: root keeps
 * rel_count_total whichever the reader found first; the user's gauge is
 * shown as rel_count__uid1000, and that is said once. */
static void another_users_family_never_displaces_roots(void **state)
{
	static const struct fmetric root_m[] = { { "rel.count", "", 0 } };
	static const struct fmetric user_m[] = { { "rel.count", "", 2 } };

	(void)state;
	for (int order = 0; order < 2; order++) {
		for (int f = 0; f <= RD_PROM_OPENMETRICS; f++) {
			struct fmodel *md = malloc(sizeof *md);
			struct rd_prom_stats st;
			struct lines log = { .n = 0 };
			char *s;

			fm_init(md);
			fm_producer(md, 1000, false, order ? 1 : 2, user_m, 1, NULL, 0);
			fm_producer(md, 0, false, order ? 2 : 1, root_m, 1, NULL, 0);
			s = fm_render(md, (enum rd_prom_format)f, &st, &log);
			check_page(s, (enum rd_prom_format)f);
			assert_true(on_page(s, "rel_count_total{job=\"p1\",instance=\"i1\",otel_scope_name=\"rtm\"} 100\n"));
			assert_true(on_page(s, "rel_count__uid1000{job=\"p0\",instance=\"i0\",otel_scope_name=\"rtm\"} 0\n"));
			assert_false(on_page(s, "\nrel_count{"));
			assert_int_equal(st.renamed, 1);
			assert_int_equal(st.dropped, 0);
			assert_int_equal(log.n, 1);
			assert_non_null(strstr(log.text[0], "gauge rel_count of uid 1000"));
			assert_non_null(strstr(log.text[0], "shown as rel_count__uid1000"));
			free(s);
			free(md);
		}
	}
}

/* One producer of a case: fm_producer()'s arguments. */
struct spec {
	uint32_t uid;
	bool reader;
	uint64_t seq;
	const struct fmetric *ms, *procs;
	size_t n, n_procs;
};

/* Renders the producers in both formats: valid pages (promtool parses the
 * text one), each of want (NULL-ended) on both, renamed as counted. */
static void renders_as(const struct spec *sp, size_t n_sp, const char *const *want,
		       size_t renamed)
{
	for (int f = 0; f <= RD_PROM_OPENMETRICS; f++) {
		struct fmodel *md = malloc(sizeof *md);
		struct rd_prom_stats st;
		char *s;

		fm_init(md);
		for (size_t i = 0; i < n_sp; i++)
			fm_producer(md, sp[i].uid, sp[i].reader, sp[i].seq, sp[i].ms, sp[i].n,
				    sp[i].procs, sp[i].n_procs);
		s = fm_render(md, (enum rd_prom_format)f, &st, NULL);
		check_page(s, (enum rd_prom_format)f);
		promtool_parses(s, (enum rd_prom_format)f);
		for (const char *const *w = want; *w; w++)
			if (!on_page(s, *w))
				fail_msg("not on the page: %s\n%s", *w, s);
		assert_int_equal(st.renamed, renamed);
		free(s);
		free(md);
	}
}

/* target_info, target, up and scrape_* are never a producer's, nor
 * rtm_reader_*: a root producer's are tagged too, the reader's own stay. */
static void reserved_and_reader_names_stay_the_readers(void **state)
{
	static const struct fmetric reader_m[] = { { "rtm.reader.segments", "{segment}", 1 } };
	static const struct fmetric bad[] = {
		{ "target.info", "", 2 }, { "target", "", 0 }, { "up", "", 2 },
		{ "scrape.duration", "s", 2 }, { "rtm.reader.segments", "{segment}", 1 },
		{ "rtm.reader.other", "", 0 },
	};
	static const struct spec sp[] = { { .uid = 0, .seq = 1, .ms = bad, .n = 6 },
					  { .reader = true, .ms = reader_m, .n = 1 } };
	static const char *const want[] = {
		"rtm_reader_segments{job=\"rtm-reader\",instance=\"i1\",otel_scope_name=\"rtm\"} 100\n",
		"target_info__uid0{job=\"p0\"", "target__uid0_total{job=\"p0\"", "up__uid0{job=\"p0\"",
		"scrape_duration__uid0_seconds{job=\"p0\"", "rtm_reader_segments__uid0{job=\"p0\"",
		"rtm_reader_other__uid0_total{job=\"p0\"", NULL,
	};

	(void)state;
	renders_as(sp, 2, want, 6);
}

/* Names that meet only once the format's suffixes are added: a gauge
 * x_total against a counter x, a gauge h_bucket against a histogram h. */
static void suffixes_are_checked_too(void **state)
{
	static const struct fmetric a[] = { { "x", "", 0 }, { "h", "", 3 } };
	static const struct fmetric b[] = { { "x.total", "", 2 }, { "h.bucket", "", 2 },
					    { "h.count", "", 1 }, { "x.created", "", 2 } };
	static const struct spec sp[] = { { .uid = 1000, .seq = 1, .ms = a, .n = 2 },
					  { .uid = 1001, .seq = 2, .ms = b, .n = 4 } };
	static const char *const want[] = {
		"x_total{job=\"p0\"", "h_bucket{job=\"p0\"", "x_total__uid1001{job=\"p1\"",
		"h_bucket__uid1001{job=\"p1\"", "h_count__uid1001{job=\"p1\"",
		"x_created__uid1001{job=\"p1\"", NULL,
	};

	(void)state;
	renders_as(sp, 2, want, 4);
}

/* The process metrics the reader builds for every producer claim their
 * names as the reader's: a user's gauge process.cpu.time is the one moved,
 * for every producer alike. */
static void the_readers_process_metrics_keep_their_names(void **state)
{
	static const struct fmetric proc[] = { { "process.cpu.time", "s", 0 } };
	static const struct fmetric bad[] = { { "process.cpu.time", "s", 2 } };
	static const struct spec sp[] = {
		{ .uid = 1000, .seq = 1, .ms = bad, .n = 1, .procs = proc, .n_procs = 1 },
		{ .uid = 1001, .seq = 2, .procs = proc, .n_procs = 1 },
	};
	static const char *const want[] = {
		"process_cpu_time_seconds_total{job=\"p0\",instance=\"i0\",otel_scope_name=\"rtm/process\"} 1\n",
		"process_cpu_time_seconds_total{job=\"p1\",instance=\"i1\",otel_scope_name=\"rtm/process\"} 100\n",
		"process_cpu_time__uid1000_seconds{job=\"p0\"", NULL,
	};

	(void)state;
	renders_as(sp, 2, want, 1);
}

/* One user's two families of one name: the later is tagged, and a third
 * that wants the tagged name too is left out — that user's own. */
static void a_users_own_conflicts_stay_its_own(void **state)
{
	static const struct fmetric a[] = { { "y", "", 2 }, { "y", "", 0 }, { "y", "", 3 } };
	struct fmodel *md = malloc(sizeof *md);
	struct rd_prom_stats st;
	struct lines log = { .n = 0 };
	char *s;

	(void)state;
	fm_init(md);
	fm_producer(md, 1000, false, 1, a, 3, NULL, 0);
	s = fm_render(md, RD_PROM_TEXT, &st, &log);
	check_page(s, RD_PROM_TEXT);
	assert_true(on_page(s, "\ny{job=\"p0\""));
	assert_true(on_page(s, "\ny__uid1000_total{job=\"p0\""));
	assert_int_equal(st.renamed, 1);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(log.n, 2);
	assert_non_null(strstr(log.text[1], "histogram y of uid 1000"));
	assert_non_null(strstr(log.text[1], "left out"));
	free(s);
	free(md);
}

/* Whether the text page's family (name, type) holds a series of
 * producer k from one of its scopes. */
static bool in_family(const char *page, const char *name, enum rd_prom_type t, size_t k)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	char type_line[RD_PROM_NAME_MAX + 64], want[96];
	const char *p;

	snprintf(type_line, sizeof type_line, "# TYPE %s%s %s\n", name,
		 t == RD_PROM_COUNTER ? "_total" : "", types[t]);
	snprintf(want, sizeof want, "{job=\"p%zu\",instance=\"i%zu\",otel_scope_name=\"rtm", k, k);
	p = strstr(page, type_line);
	if (!p)
		return false;
	for (p += strlen(type_line); *p && *p != '#'; p = strchr(p, '\n') + 1) {
		const char *brace = strchr(p, '{');

		if (brace && brace < strchr(p, '\n') && !strncmp(brace, want, strlen(want)))
			return true;
	}
	return false;
}

/* ---- the fuzzer ---- */

static uint64_t rng;
static size_t fuzz_renamed, fuzz_dropped; /* over the run: the rule was exercised */

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* Names from a small vocabulary, so that they meet often: bare, with the
 * format's suffixes, reserved, the reader's, units that add suffixes. */
static const char *const vocab[] = {
	"a", "b", "a.total", "a.created", "a.bucket", "a.sum", "a.count", "a.info", "target",
	"target.info", "up", "rtm.reader.segments", "rtm.reader.z", "a.bytes", "a__uid1000",
	"a.uid1000", "process.cpu.time", "b.total.total", "_", "1a", "a:b", "scrape.series.added",
};
static const char *const units[] = { "", "By", "s", "1", "{x}" };

static void fuzz_one(void)
{
	struct fmodel *md = malloc(sizeof *md);
	static const uint32_t uids[] = { 0, 1000, 1001, 1002 };
	static const struct fmetric reader_m[] = { { "rtm.reader.segments", "{segment}", 1 },
						   { "rtm.reader.cycle.duration", "s", 3 } };
	static const struct fmetric proc[] = { { "process.cpu.time", "s", 0 },
					       { "process.thread.count", "{thread}", 2 } };
	struct fmetric ms[MAX_P][MAX_M];
	size_t np = 2 + rnd(MAX_P - 2);

	fm_init(md);
	fm_producer(md, 0, true, 0, reader_m, 2, NULL, 0);
	for (size_t k = 1; k < np; k++) {
		size_t n = rnd(MAX_M - 2);

		for (size_t i = 0; i < n; i++)
			ms[k][i] = (struct fmetric){ vocab[rnd(sizeof vocab / sizeof vocab[0])],
						     units[rnd(sizeof units / sizeof units[0])],
						     (int)rnd(4) };
		fm_producer(md, uids[rnd(4)], false, 1 + rnd(1000), ms[k], n, proc, rnd(3));
	}
	for (int f = 0; f <= RD_PROM_OPENMETRICS; f++) {
		struct rd_prom_stats st;
		size_t missing = 0;
		bool text = f == RD_PROM_TEXT;
		char *s = fm_render(md, (enum rd_prom_format)f, &st, NULL);

		check_page(s, (enum rd_prom_format)f);
		if (rnd(50) == 0)
			promtool_parses(s, (enum rd_prom_format)f);
		if (text)
			check_pb_page(md, s);
		/* The reader's own never move. */
		assert_true(on_page(s, "rtm_reader_segments{job=\"rtm-reader\",instance=\"i0\""));
		assert_true(on_page(s, "rtm_reader_cycle_duration_seconds_count{job=\"rtm-reader\""));
		/* Every producer's metric is on the page under its name or its
		 * tagged one; one that is not lost its tagged name to its own
		 * user's other family. */
		for (size_t k = 1; text && k < md->n; k++) {
			for (size_t i = 0; i < md->n_m[k]; i++) {
				const struct fmetric *x = &md->fm[k][i];
				char name[RD_PROM_NAME_MAX], unit[RD_PROM_NAME_MAX];
				enum rd_prom_type t = x->kind == 0 ? RD_PROM_COUNTER :
						      x->kind == 3 ? RD_PROM_HISTOGRAM : RD_PROM_GAUGE;
				bool found = false;

				size_t len = rd_prom_family_name(x->name, x->unit, t, name, unit);
				size_t ul = strlen(unit), base = ul && len > ul ? len - ul - 1 : len;
				char tagged[RD_PROM_NAME_MAX + 32];

				snprintf(tagged, sizeof tagged, "%.*s__uid%u%s%s", (int)base, name,
					 md->own[k].uid, ul ? "_" : "", ul ? unit : "");
				found = in_family(s, name, t, k) || in_family(s, tagged, t, k);
				/* Missing: its tagged name must be its own user's
				 * other family's (or another metric of its scope
				 * already fills the family: counted, not checked). */
				if (!found) {
					char type_line[RD_PROM_NAME_MAX + 64];

					snprintf(type_line, sizeof type_line, "# TYPE %s", tagged);
					if (!strstr(s, type_line) &&
					    !in_family(s, name, t, k)) {
						tu_write_file("/tmp/rtm-fuzz-page.txt", s);
						fail_msg("p%zu's %s [%s] is missing, and its tagged name %s "
							 "is not its user's; the page is in "
							 "/tmp/rtm-fuzz-page.txt", k, x->name, x->unit, tagged);
					}
				}
				if (!found)
					missing++;
			}
		}
		assert_true(missing <= st.dropped);
		fuzz_renamed += st.renamed;
		fuzz_dropped += st.dropped;
		free(s);
	}
	free(md);
}

static void random_names_from_many_users_make_valid_pages(void **state)
{
	const char *seed = getenv("RTM_FUZZ_SEED");

	(void)state;
	rng = seed ? strtoull(seed, NULL, 0) : 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 2000; i++)
		fuzz_one();
	print_message("2000 models: %zu metrics renamed, %zu left out\n", fuzz_renamed, fuzz_dropped);
	assert_true(fuzz_renamed > 1000 && fuzz_dropped > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(another_users_family_never_displaces_roots),
		cmocka_unit_test(reserved_and_reader_names_stay_the_readers),
		cmocka_unit_test(suffixes_are_checked_too),
		cmocka_unit_test(the_readers_process_metrics_keep_their_names),
		cmocka_unit_test(a_users_own_conflicts_stay_its_own),
		cmocka_unit_test(random_names_from_many_users_make_valid_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
