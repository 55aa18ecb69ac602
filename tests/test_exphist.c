/* SPDX-License-Identifier: MIT */
/*
 * Exponential histograms end to end: the index from a double's bits against
 * the definition, records across threads and shard 0 merged by the reader
 * library, the slot a 1.2 reader would see, OTLP decoded by the
 * OpenTelemetry JS schema, and the Prometheus text page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtm_shm_exp.h"
#include "test_util.h"

/* The definition, in long double: 2^(i/256) < v <= 2^((i+1)/256).  Values
 * closer to a boundary than long double can tell are not judged. */
static bool index8_is_right(double v, int32_t i)
{
	long double lo = exp2l((long double)i / 256.0L), hi = exp2l((long double)(i + 1) / 256.0L);
	long double x = v, eps = x * 0x1p-60L;

	if (fabsl(x - lo) < eps || fabsl(x - hi) < eps)
		return true;
	return lo < x && x <= hi;
}

static uint64_t rnd64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void index_follows_the_definition(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	(void)state;
	/* Exact powers of two close the bucket below them. */
	for (int e = -1074; e <= 1023; e++) {
		double v = ldexp(1, e);

		assert_int_equal(rtm_shm_exp_index8(rtm_shm_f64_bits(v)), e * 256 - 1);
	}
	/* Every bit pattern of a positive finite double, normal or not. */
	for (int k = 0; k < 2000000; k++) {
		uint64_t b = rnd64(&seed) & 0x7fffffffffffffffull;
		double v = rtm_shm_bits_f64(b);

		if (!b || !isfinite(v))
			continue;
		if (!index8_is_right(v, rtm_shm_exp_index8(b)))
			fail_msg("%a: index %d", v, rtm_shm_exp_index8(b));
	}
	/* Right beside each boundary of an octave, both sides. */
	for (int j = 1; j < 256; j++) {
		double at = (double)exp2l((long double)j / 256.0L);

		for (int d = -3; d <= 3; d++) {
			double v = nextafter(at, d < 0 ? 0 : 4);

			for (int s = 1; s < abs(d); s++)
				v = nextafter(v, d < 0 ? 0 : 4);
			assert_true(index8_is_right(v, rtm_shm_exp_index8(rtm_shm_f64_bits(v))));
		}
	}
	/* Coarser scales nest: scale 0 is the binary exponent. */
	assert_int_equal(rtm_shm_exp_rescale(rtm_shm_exp_index8(rtm_shm_f64_bits(3.0)), 0), 1);
	assert_int_equal(rtm_shm_exp_rescale(rtm_shm_exp_index8(rtm_shm_f64_bits(4.0)), 0), 1);
	assert_int_equal(rtm_shm_exp_rescale(rtm_shm_exp_index8(rtm_shm_f64_bits(0.75)), -1), -1);
}

/* What the reader library merged, checked value by value: every recorded
 * value counted in the bucket the definition gives it at the final scale. */
struct recorded {
	double *v;
	size_t n;
};

static void check_merged(const struct rd_metric *m, const struct rd_value *got,
			 const struct recorded *r)
{
	const struct rtm_shm_exphist *x = got->exp;
	uint64_t zero = 0, total = 0;
	double sum = 0, mn = INFINITY, mx = -INFINITY;
	uint64_t *want[2];
	int32_t base[2] = { x->pos_base, x->neg_base }, top[2] = { x->pos_top, x->neg_top };

	assert_int_equal(got->torn, 0);
	for (int s = 0; s < 2; s++) {
		want[s] = calloc(m->exp_size, sizeof **want);
		assert_true(top[s] < base[s] || top[s] - base[s] < (int32_t)m->exp_size);
	}
	for (size_t i = 0; i < r->n; i++) {
		double v = r->v[i];
		int neg = v < 0;
		int32_t idx;

		sum += v;
		mn = v < mn ? v : mn;
		mx = v > mx ? v : mx;
		if (v == 0) {
			zero++;
			continue;
		}
		idx = rtm_shm_exp_rescale(rtm_shm_exp_index8(rtm_shm_f64_bits(fabs(v))), x->scale);
		if (idx < base[neg] || idx > top[neg])
			fail_msg("%g: bucket %d outside [%d, %d] at scale %d", v, idx, base[neg],
				 top[neg], x->scale);
		want[neg][idx - base[neg]]++;
	}
	assert_int_equal(x->zero_count, zero);
	for (int s = 0; s < 2; s++) {
		const uint64_t *c = rtm_shm_exphist_counts((struct rtm_shm_exphist *)x, m->exp_size, s);

		for (int32_t k = 0; top[s] >= base[s] && k <= top[s] - base[s]; k++) {
			if (c[k] != want[s][k])
				fail_msg("side %d bucket %d: %llu, want %llu", s, base[s] + k,
					 (unsigned long long)c[k], (unsigned long long)want[s][k]);
			total += c[k];
		}
		free(want[s]);
	}
	assert_int_equal(got->count, total + zero);
	assert_int_equal(got->count, r->n);
	assert_true(fabs(got->sum - sum) <= 1e-9 * fabs(sum) + 1e-12);
	assert_true(got->min == mn && got->max == mx);
}

struct worker {
	rtm_hist_t *h;
	double *v;
	size_t n;
	pthread_barrier_t *all_in;
};

/* Every thread holds its shard (or shard 0) before any goes on. */
static void *record_all(void *arg)
{
	struct worker *w = arg;

	rtm_hist_record(w->h, w->v[0]);
	pthread_barrier_wait(w->all_in);
	for (size_t i = 1; i < w->n; i++)
		rtm_hist_record(w->h, w->v[i]);
	return NULL;
}

/* Threads on their own shards and, past max_threads, on shard 0, with
 * values over a range wide enough to coarsen the scale many times. */
static void threads_and_shard0_merge_exactly(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = NULL;
	enum { THREADS = 4, PER = 20000 };
	static double vals[THREADS * PER];
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct recorded all = { vals, THREADS * PER };
	struct rd_segment rd;
	struct rd_snapshot snap = { 0 };
	rtm_hist_t h;
	uint64_t seed = 42;
	pthread_barrier_t all_in;
	int i;

	(void)state;
	/* Two private shards for four threads: two share shard 0. */
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "exp", .dir = dir, .max_threads = 2 }), 0);
	assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){
		.name = "app.latency", .unit = "s" }, 20, 0), 0);
	for (i = 0; i < THREADS * PER; i++) {
		uint64_t r = rnd64(&seed);

		/* Mostly around a millisecond, some far out on both sides, zeros. */
		vals[i] = r % 97 == 0 ? 0 : (r % 89 == 0 ? -1 : 1) *
			ldexp(1.0 + (double)(r >> 12 & 0xffff) / 65536.0,
			      (int)(r % 13 == 0 ? (r >> 40) % 120 - 60 : (r >> 40) % 6 - 12));
	}
	pthread_barrier_init(&all_in, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ &h, vals + i * PER, PER, &all_in };
		assert_int_equal(pthread_create(&t[i], NULL, record_all, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
	i = tu_find(&rd, "app.latency", NULL, NULL);
	assert_int_equal(rd.metrics[i].kind, RD_KIND_EXPHIST);
	assert_int_equal(rd.metrics[i].exp_size, 20);
	/* 120 octaves in 20 buckets: scale -3 at least. */
	assert_true(snap.values[i].exp->scale <= -3);
	check_merged(&rd.metrics[i], &snap.values[i], &all);
	assert_true(snap.shard_fallbacks > 0);
	pthread_barrier_destroy(&all_in);
	rd_snapshot_free(&snap);
	rd_segment_close(&rd);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

/* Values that only grow, then only shrink: the window moves both ways
 * before it must coarsen; NaN and infinities are not recorded. */
static void the_window_moves_before_the_scale_drops(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = tu_open(dir, "exp");
	static double vals[64];
	struct recorded r = { vals, 0 };
	struct rd_segment rd;
	struct rd_snapshot snap = { 0 };
	rtm_hist_t h;
	int i;

	(void)state;
	assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "x" }, 8, 2),
			 0);
	for (i = 0; i < 8; i++)
		vals[r.n++] = 1.0 + i * 0.19; /* scale 2: 1..2.33, buckets 0..4 */
	for (i = 0; i < 3; i++)
		vals[r.n++] = 0.8 - i * 0.05; /* below: the window moves down */
	for (size_t k = 0; k < r.n; k++)
		rtm_hist_record(&h, vals[k]);
	rtm_hist_record(&h, NAN);
	rtm_hist_record(&h, INFINITY);
	rtm_hist_record(&h, -INFINITY);
	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
	assert_int_equal(snap.values[0].exp->scale, 2);
	check_merged(&rd.metrics[0], &snap.values[0], &r);
	rd_snapshot_free(&snap);
	rd_segment_close(&rd);
	/* Then 1000: seven more octaves do not fit 8 buckets at scale 2. */
	vals[r.n++] = 1000;
	rtm_hist_record(&h, 1000);
	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
	assert_true(snap.values[0].exp->scale < 2);
	check_merged(&rd.metrics[0], &snap.values[0], &r);
	rd_snapshot_free(&snap);
	rd_segment_close(&rd);
	/* A bad size or scale is refused, and the handle stays harmless. */
	assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "y" }, 3, 0),
			 -EINVAL);
	rtm_hist_record(&h, 1);
	assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "y" }, 0, 9),
			 -EINVAL);
	/* Same name, other shape: the existing series is not another's. */
	assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "x" }, 8, 1),
			 -EEXIST);
	assert_int_equal(rtm_hist_create(seg, &h, &(struct rtm_metric_def){ .name = "x" }), -EEXIST);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

/* The descriptor is a histogram without bounds, and the word where a 1.2
 * reader takes its one bucket holds the count. */
static void a_1_2_reader_still_reads_count_sum_min_max(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = tu_open(dir, "exp");
	struct rd_segment rd;
	rtm_hist_t h;
	const struct rtm_shm_header *hd;
	const struct rtm_shm_desc *d;
	uint64_t count = 0;
	double sum = 0;

	(void)state;
	assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "x" }, 0, 0), 0);
	for (int i = 1; i <= 100; i++)
		rtm_hist_record(&h, i * 0.5);
	tu_read(seg, &rd);
	hd = (const struct rtm_shm_header *)(const void *)rd.base;
	assert_int_equal(hd->minor, 3);
	d = (const struct rtm_shm_desc *)(const void *)(rd.base + hd->desc_offset);
	assert_int_equal(d->kind, RTM_SHM_KIND_HISTOGRAM);
	assert_int_equal(d->bound_count, 0);
	assert_int_equal(d->flags, RTM_SHM_DESC_EXPONENTIAL);
	assert_int_equal(d->exp_size, RTM_SHM_EXP_SIZE_DEFAULT);
	assert_int_equal(d->exp_max_scale, RTM_SHM_EXP_SCALE_MAX);
	assert_true(d->slot_size >= RTM_SHM_HIST_SLOT_SIZE(0));
	for (uint32_t s = 1; s < hd->shard_hwm; s++) {
		const unsigned char *slot = rd.base + hd->data_offset + (size_t)s * hd->shard_size +
					    d->slot_offset;
		uint64_t c, sb;

		memcpy(&c, slot + RTM_SHM_HIST_FIXED, 8);
		memcpy(&sb, slot + 8, 8);
		count += c;
		if (c)
			sum += rtm_shm_bits_f64(sb);
	}
	assert_int_equal(count, 100);
	assert_true(sum == 2525.0);
	rd_segment_close(&rd);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

/* A slot a producer could not have written is left out (torn), never
 * merged: a scale out of range, a window wider than the slot, indices no
 * double has, counts outside the window. */
static void hostile_slots_are_left_out(void **state)
{
	static const struct { size_t off; int32_t v[2]; size_t n; } bad[] = {
		{ 48, { 9 }, 1 }, { 48, { -11 }, 1 },               /* scale */
		{ 60, { 1000 }, 1 },                                /* pos_top - pos_base >= size */
		{ 56, { 2000000000, 2000000005 }, 2 },              /* no double's index */
		{ 64, { -2000000005, -2000000000 }, 2 },
	};
	char *dir = tu_mkdir();

	(void)state;
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		struct rtm_segment *seg = tu_open(dir, "exp");
		struct rd_segment rd;
		struct rd_snapshot snap = { 0 };
		const struct rtm_shm_header *hd;
		const struct rtm_shm_desc *d;
		rtm_hist_t h;
		uint64_t sum = 0;
		int fd;

		assert_int_equal(rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "x" }, 16, 0), 0);
		rtm_hist_record(&h, 1.5);
		rtm_hist_record(&h, -3);
		rtm_hist_record(&h, 0);
		tu_read(seg, &rd);
		hd = (const struct rtm_shm_header *)(const void *)rd.base;
		d = (const struct rtm_shm_desc *)(const void *)(rd.base + hd->desc_offset);
		fd = open(rtm_segment_path(seg), O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, bad[k].v, 4 * bad[k].n,
					(off_t)(hd->data_offset + hd->shard_size + d->slot_offset +
						bad[k].off)), (ssize_t)(4 * bad[k].n));
		if (k == 0) { /* and a count outside the window */
			uint64_t junk = 77;

			assert_int_equal(pwrite(fd, &junk, 8, (off_t)(hd->data_offset + hd->shard_size +
						      d->slot_offset + RTM_SHM_EXPHIST_FIXED + 8 * 9)), 8);
		}
		close(fd);
		assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
		if (snap.values[0].torn != 1)
			fail_msg("case %zu: %u torn shards", k, snap.values[0].torn);
		for (int neg = 0; neg < 2; neg++) {
			const struct rtm_shm_exphist *x = snap.values[0].exp;
			int32_t b = neg ? x->neg_base : x->pos_base, top = neg ? x->neg_top : x->pos_top;

			for (int32_t i = 0; top >= b && i <= top - b; i++)
				sum += rtm_shm_exphist_counts((struct rtm_shm_exphist *)x, 16, neg)[i];
		}
		assert_int_equal(snap.values[0].count, snap.values[0].exp->zero_count + sum);
		rd_snapshot_free(&snap);
		rd_segment_close(&rd);
		rtm_segment_close(seg);
	}
	tu_rmdir(dir);
}

/* The OTel SDKs' switch: histograms without bounds of their own become
 * exponential; with bounds they stay explicit. */
static void the_default_aggregation_variable_is_honoured(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = tu_open(dir, "exp");
	struct rd_segment rd;
	rtm_hist_t a, b, c;

	(void)state;
	setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
	       "base2_exponential_bucket_histogram", 1);
	assert_int_equal(rtm_hist_create(seg, &a, &(struct rtm_metric_def){ .name = "a" }), 0);
	assert_int_equal(rtm_hist_create(seg, &b, &(struct rtm_metric_def){
		.name = "b", .bounds = (const double[]){ 1, 2 }, .n_bounds = 2 }), 0);
	setenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "explicit_bucket_histogram", 1);
	assert_int_equal(rtm_hist_create(seg, &c, &(struct rtm_metric_def){ .name = "c" }), 0);
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION");
	tu_read(seg, &rd);
	assert_int_equal(rd.metrics[tu_find(&rd, "a", NULL, NULL)].kind, RD_KIND_EXPHIST);
	assert_int_equal(rd.metrics[tu_find(&rd, "b", NULL, NULL)].kind, RTM_SHM_KIND_HISTOGRAM);
	assert_int_equal(rd.metrics[tu_find(&rd, "c", NULL, NULL)].kind, RTM_SHM_KIND_HISTOGRAM);
	rd_segment_close(&rd);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

/* The producer for the export tests: 1000 latencies from 10 us to 10 s,
 * three zeros and two negative values. */
static void produce_latencies(struct rtm_segment *seg, int k)
{
	rtm_hist_t h;

	(void)k;
	rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "app.latency", .unit = "s",
				.description = "Request latency" }, 0, 0);
	for (int i = 0; i < 1000; i++)
		rtm_hist_record(&h, 1e-5 * pow(1e6, i / 999.0));
	for (int i = 0; i < 3; i++)
		rtm_hist_record(&h, 0);
	rtm_hist_record(&h, -0.5);
	rtm_hist_record(&h, -2);
}

/* A uint64 of OTLP/JSON (a string; absent when 0). */
static uint64_t u64(json_object *o)
{
	return o ? strtoull(json_object_get_string(o), NULL, 10) : 0;
}

static uint64_t sum_counts(json_object *side)
{
	json_object *c = tu_json_get(side, "bucketCounts");
	uint64_t n = 0;

	for (size_t i = 0; c && i < json_object_array_length(c); i++)
		n += strtoull(json_object_get_string(json_object_array_get_idx(c, i)), NULL, 10);
	return n;
}

/* Over OTLP/HTTP (protobuf), and over gRPC (grpc true): the receivers
 * decode with the OpenTelemetry JS project's schema. */
static void otlp_exponential(bool grpc)
{
	char *dir = tu_mkdir(), cmd[4096];
	struct tu_producer p;
	struct tu_recv r;
	json_object *reqs, *pt = NULL;
	int status;

	tu_spawn(&p, dir, "svc-exp", produce_latencies, 0, false);
	tu_recv_start(&r, grpc ? "RTM_GRPC_RECEIVER" : "RTM_RECEIVER", (const char *[]){ NULL });
	if (grpc)
		snprintf(cmd, sizeof cmd, "env RTM_DIR=%s OTEL_EXPORTER_OTLP_PROTOCOL=grpc "
			 "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d %s --once 2>&1", dir, r.port,
			 tu_prog("RTM_READER"));
	else
		snprintf(cmd, sizeof cmd, "env RTM_DIR=%s OTEL_EXPORTER_OTLP_ENDPOINT=%s %s --once 2>&1",
			 dir, r.url, tu_prog("RTM_READER"));
	free(tu_run(cmd, &status, NULL));
	assert_int_equal(status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	{
		json_object *mo = tu_otlp_metric(reqs, 0, "svc-exp", "app.latency");

		assert_non_null(mo);
		assert_int_equal(json_object_get_int(tu_json_get(tu_json_get(mo, "exponentialHistogram"),
								 "aggregationTemporality")), 2);
		pt = json_object_array_get_idx(tu_json_get(tu_json_get(mo, "exponentialHistogram"),
							   "dataPoints"), 0);
	}
	assert_non_null(pt);
	{
		uint64_t count = strtoull(json_object_get_string(tu_json_get(pt, "count")), NULL, 10);
		uint64_t zero = strtoull(json_object_get_string(tu_json_get(pt, "zeroCount")), NULL, 10);
		uint64_t pos = sum_counts(tu_json_get(pt, "positive"));
		uint64_t neg = sum_counts(tu_json_get(pt, "negative"));
		int scale = json_object_get_int(tu_json_get(pt, "scale"));

		assert_int_equal(count, 1005);
		assert_int_equal(zero, 3);
		assert_int_equal(neg, 2);
		assert_int_equal(count, zero + pos + neg);
		/* 19.9 octaves in 160 buckets: scale 3 (8 an octave). */
		assert_int_equal(scale, 3);
		assert_true(json_object_get_double(tu_json_get(pt, "min")) == -2);
		assert_true(json_object_get_double(tu_json_get(pt, "max")) > 9.99);
	}
	json_object_put(reqs);
	tu_recv_stop(&r);
	tu_reap(&p);
	tu_rmdir(dir);
}

static void otlp_carries_an_exponential_histogram(void **state)
{
	(void)state;
	otlp_exponential(false);
}

static void grpc_carries_an_exponential_histogram(void **state)
{
	(void)state;
	otlp_exponential(true);
}

/* /metrics in the text format: a classic histogram whose bounds are
 * powers of two, cumulative, ending in +Inf = count; promtool parses it. */
static void the_text_page_shows_powers_of_two(void **state)
{
	char *dir = tu_mkdir(), *body = NULL, *at;
	struct tu_producer p;
	struct tu_reader r;
	uint64_t last = 0;
	int lines = 0;

	(void)state;
	tu_spawn(&p, dir, "svc-exp", produce_latencies, 0, false);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	for (int i = 0; i < 300 && !body; i++) {
		struct tu_http h;

		tu_http_get(r.url, NULL, false, &h);
		if (h.status == 200 && strstr(h.body, "app_latency_seconds_count"))
			body = h.body;
		else
			tu_http_free(&h);
		if (!body)
			usleep(100000);
	}
	assert_non_null(body);
	assert_non_null(strstr(body, "# TYPE app_latency_seconds histogram\n"));
	for (at = strstr(body, "app_latency_seconds_bucket{"); at;
	     at = strstr(at + 1, "app_latency_seconds_bucket{")) {
		char *le = strstr(at, "le=\""), *end = le ? strchr(le + 4, '"') : NULL;
		uint64_t n;
		double b;
		int e;

		assert_non_null(end);
		n = strtoull(end + 3, NULL, 10);
		assert_true(n >= last);
		last = n;
		lines++;
		if (!strncmp(le + 4, "+Inf", 4))
			continue;
		b = strtod(le + 4, NULL);
		assert_true(b == 0 || frexp(fabs(b), &e) == 0.5);
	}
	assert_true(lines > 20);
	assert_int_equal(last, 1005);
	assert_non_null(strstr(body, "app_latency_seconds_bucket{job=\"svc-exp\""));
	assert_non_null(strstr(body, ",le=\"0\"} 5\n"));
	tu_promtool_parses(body);
	free(body);
	tu_reader_stop(&r);
	tu_reap(&p);
	tu_rmdir(dir);
}

/* A producer that records 100 values, then 50 more once the file named
 * by the note exists: a delta reader must send each exactly once. */
static rtm_hist_t later_h;
static char later_flag[256];

static void *record_later(void *arg)
{
	(void)arg;
	while (access(later_flag, F_OK))
		usleep(20000);
	for (int i = 0; i < 50; i++)
		rtm_hist_record(&later_h, 1.0 + i * 0.01);
	return NULL;
}

static void produce_in_two_parts(struct rtm_segment *seg, int k)
{
	pthread_t t;

	(void)k;
	rtm_exphist_create(seg, &later_h, &(struct rtm_metric_def){ .name = "app.latency", .unit = "s" },
			   0, 0);
	for (int i = 0; i < 100; i++)
		rtm_hist_record(&later_h, 0.001 * (1 + i * 0.01));
	pthread_create(&t, NULL, record_later, NULL);
}

/* Every delta point of the stream: their counts and buckets add up to
 * what was recorded, and each point's count is its zero and buckets. */
static void delta_points_add_up_to_what_was_recorded(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct tu_reader rd;
	char env[256];
	uint64_t total = 0, buckets = 0;
	json_object *reqs = NULL;
	size_t n = 0;

	(void)state;
	snprintf(later_flag, sizeof later_flag, "%s.go", dir);
	tu_recv_start(&r, "RTM_RECEIVER", (const char *[]){ NULL });
	snprintf(env, sizeof env, "%s/v1/metrics", r.url);
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", env, 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta", 1);
	tu_reader_start(&rd, dir, (const char *[]){ "--interval", "1s", NULL });
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	free(tu_reader_await_log(&rd, "started"));
	tu_spawn(&p, dir, "svc-delta", produce_in_two_parts, 0, false);
	for (int i = 0; i < 100 && n < 3; i++, usleep(100000)) {
		json_object_put(reqs);
		reqs = tu_recv_requests(&r);
		n = json_object_array_length(reqs);
	}
	assert_true(tu_write_file(later_flag, "go"));
	for (int i = 0; i < 100 && n < 6; i++, usleep(100000)) {
		json_object_put(reqs);
		reqs = tu_recv_requests(&r);
		n = json_object_array_length(reqs);
	}
	assert_true(n >= 6);
	for (size_t q = 0; q < n; q++) {
		json_object *mo = tu_otlp_metric(reqs, (int)q, "svc-delta", "app.latency"), *eh, *pt;
		uint64_t c, b;

		if (!mo)
			continue; /* a request of the reader's own metrics only */
		eh = tu_json_get(mo, "exponentialHistogram");
		assert_int_equal(json_object_get_int(tu_json_get(eh, "aggregationTemporality")), 1);
		pt = json_object_array_get_idx(tu_json_get(eh, "dataPoints"), 0);
		c = u64(tu_json_get(pt, "count"));
		b = sum_counts(tu_json_get(pt, "positive"));
		assert_int_equal(c, b);
		assert_null(tu_json_get(pt, "min"));
		total += c;
		buckets += b;
	}
	assert_int_equal(total, 150);
	assert_int_equal(buckets, 150);
	json_object_put(reqs);
	tu_reader_stop(&rd);
	tu_recv_stop(&r);
	tu_reap(&p);
	unlink(later_flag);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(index_follows_the_definition),
		cmocka_unit_test(threads_and_shard0_merge_exactly),
		cmocka_unit_test(the_window_moves_before_the_scale_drops),
		cmocka_unit_test(a_1_2_reader_still_reads_count_sum_min_max),
		cmocka_unit_test(hostile_slots_are_left_out),
		cmocka_unit_test(the_default_aggregation_variable_is_honoured),
		cmocka_unit_test(otlp_carries_an_exponential_histogram),
		cmocka_unit_test(grpc_carries_an_exponential_histogram),
		cmocka_unit_test(delta_points_add_up_to_what_was_recorded),
		cmocka_unit_test(the_text_page_shows_powers_of_two),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
