/* SPDX-License-Identifier: MIT */
/* The fast protobuf writer must produce exactly protobuf-c's bytes, and
 * request splitting must keep every series exactly once. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_config.h"
#include "rd_encode.h"
#include "rd_pb.h"
#include "rd_source.h"
#include "test_util.h"

static struct rd_source *make_source(const char *dir, int series)
{
	struct rtm_segment *seg = tu_open(dir, "enc");
	const double bounds[] = { -1, 0, 2.5, 1e9 };
	struct rd_source *s;
	char name[32];

	for (int i = 0; i < series; i++) {
		struct rtm_metric_def d = { .name = name, .unit = i % 2 ? "By" : "",
			.description = i % 3 ? "described" : NULL,
			.attrs = (struct rtm_attr[]){ { "k", "v" }, { "é", "ü" } },
			.n_attrs = (size_t)(i % 3) };
		rtm_counter_t c;
		rtm_gauge_t g;
		rtm_hist_t h;

		snprintf(name, sizeof name, "enc.m%d", i / 2);
		switch (i % 5) {
		case 0:
			rtm_counter_create(seg, &c, &d);
			rtm_counter_add(&c, (uint64_t)i * 123456789u);
			break;
		case 1:
			d.is_double = 1;
			rtm_updown_create(seg, &c, &d);
			rtm_updown_add_f64(&c, -0.5 * i);
			break;
		case 2:
			rtm_gauge_create(seg, &g, &d);
			rtm_gauge_set(&g, -i);
			break;
		case 3:
			d.bounds = bounds;
			d.n_bounds = 4;
			rtm_hist_create(seg, &h, &d);
			for (int r = 0; r < i; r++)
				rtm_hist_record(&h, r * 0.7 - 1);
			break;
		default:
			rtm_hist_create(seg, &h, &d); /* empty: no min/max */
			break;
		}
	}
	assert_int_equal(rd_source_open(&s, AT_FDCWD, rtm_segment_path(seg), false), 0);
	s->stat_ok = true;
	assert_int_equal(rd_source_collect(s), 0);
	return s;
}

static int compare(const struct rd_request *r, void *ctx)
{
	size_t n = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(r->req);
	uint8_t *ref = malloc(n + 1);
	struct rd_pb pb = { 0 };

	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(r->req, ref);
	assert_int_equal(r->pb_len, n);
	assert_memory_equal(r->pb, ref, n);
	/* The standalone packer agrees too. */
	assert_int_equal(rd_pb_pack_request(&pb, r->req), 0);
	assert_int_equal(rd_pb_len(&pb), n);
	assert_memory_equal(rd_pb_data(&pb), ref, n);
	rd_pb_free(&pb);
	free(ref);
	(*(int *)ctx)++;
	return 0;
}

static void fast_writer_matches_protobuf_c_byte_for_byte(void **state)
{
	char *dir = tu_mkdir();
	struct rd_source *s = make_source(dir, 60);
	struct rd_encode_env env;
	struct rd_batch b = { 0 };
	struct rd_config cfg = { .service_name = (char *)"rtm-reader" };
	struct rd_self_stats st = { .start_unix_nano = 1, .segments = 1, .cycles = 2,
				    .cycle_sum = 0.5, .cycle_min = 0.1, .cycle_max = 0.4 };
	int requests = 0;

	(void)state;
	rd_encode_env_init(&env, false);
	rd_encode_source(&b, &env, s, false, 99);
	rd_encode_source(&b, &env, s, true, 100); /* NO_RECORDED_VALUE points */
	rd_encode_self(&b, &env, &cfg, &st, 101);
	assert_int_equal(rd_batch_requests(&b, 4u << 20, compare, &requests), 0);
	assert_int_equal(requests, 1);
	rd_batch_free(&b);
	rd_encode_env_free(&env);
	unlink(s->seg.path);
	rd_source_free(s);
	tu_rmdir(dir);
}

/* Series a producer registers after the reader first encoded its segment
 * (a preloaded command is read while it still registers): the next encode
 * rebuilds the cache, freeing the old one by the count it was built for. */
static void a_segment_that_grows_between_cycles_is_encoded_whole(void **state)
{
	char *dir = tu_mkdir(), name[32];
	struct rtm_segment *seg = tu_open(dir, "grow");
	const struct rtm_attr attrs[] = { { "k", "v" }, { "k2", "v2" } };
	struct rd_encode_env env;
	struct rd_source *s;
	rtm_counter_t c;
	int requests = 0;

	(void)state;
	rd_encode_env_init(&env, false);
	for (int round = 0, made = 0; round < 3; round++) {
		struct rd_batch b = { 0 };

		for (int stop = made + 1 + round * 4; made < stop; made++) {
			snprintf(name, sizeof name, "grow.m%d", made);
			assert_int_equal(rtm_counter_create(seg, &c, &(struct rtm_metric_def){
				.name = name, .attrs = attrs, .n_attrs = 2 }), 0);
		}
		if (round == 0) {
			assert_int_equal(rd_source_open(&s, AT_FDCWD, rtm_segment_path(seg), false), 0);
			s->stat_ok = true;
		}
		assert_int_equal(rd_source_collect(s), 0);
		assert_int_equal(s->seg.n_metrics, (uint32_t)made);
		rd_encode_source(&b, &env, s, false, 99);
		assert_int_equal(rd_batch_requests(&b, 4u << 20, compare, &requests), 0);
		rd_batch_free(&b);
	}
	assert_int_equal(requests, 3);
	assert_int_equal(rd_encode_env_producers(&env), 1);
	rd_encode_env_free(&env);
	rd_source_free(s);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

/* When only protobuf leaves, metrics come from per-group templates filled
 * in place: the bytes must be the tree's, cycle after cycle, whatever the
 * values do, with a value left out (a counter past INT64_MAX), an empty
 * histogram that later fills, and the allocator group on and off. */
static void templates_encode_what_the_tree_does(void **state)
{
	char *dir = tu_mkdir();
	struct rd_source *s = make_source(dir, 60);
	struct rtm_segment *seg = tu_open(dir, "tmpl");
	struct rd_source *t;
	const double bounds[] = { 0.5, 1, 10 };
	rtm_counter_t big, many[3], alloc;
	rtm_hist_t h, late;
	rtm_gauge_t g;
	struct rd_encode_env env;

	(void)state;
	rd_encode_env_init(&env, false);
	rtm_counter_create(seg, &big, &(struct rtm_metric_def){ .name = "tmpl.big" });
	for (int i = 0; i < 3; i++) /* one metric of three points */
		rtm_counter_create(seg, &many[i], &(struct rtm_metric_def){ .name = "tmpl.many",
			.attrs = (struct rtm_attr[]){ { "i", i == 0 ? "0" : i == 1 ? "1" : "2" } },
			.n_attrs = 1 });
	rtm_counter_create(seg, &alloc, &(struct rtm_metric_def){
		.name = "runtime.native.mem.alloc.mallocs" });
	rtm_gauge_create(seg, &g, &(struct rtm_metric_def){ .name = "tmpl.gauge", .is_double = 1 });
	rtm_hist_create(seg, &h, &(struct rtm_metric_def){ .name = "tmpl.hist", .bounds = bounds,
		.n_bounds = 3, .attrs = (struct rtm_attr[]){ { "k", "v" } }, .n_attrs = 1 });
	rtm_hist_create(seg, &late, &(struct rtm_metric_def){ .name = "tmpl.late" });
	assert_int_equal(rd_source_open(&t, AT_FDCWD, rtm_segment_path(seg), false), 0);
	t->stat_ok = true;
	for (int cycle = 0; cycle < 6; cycle++) {
		struct rd_batch tree = { 0 }, tmpl = { .wire_only = true, .max_bytes = 4u << 20 };
		uint64_t now = 1000 + (uint64_t)cycle * 977, invalid = 0;

		/* Cycle 2 pushes tmpl.big past INT64_MAX (left out in cycles 2
		 * and 3), cycle 4 back to a valid value by wrapping. */
		rtm_counter_add(&big, cycle == 2 ? UINT64_MAX / 2 + 7 : cycle == 4 ? UINT64_MAX / 2 : 3);
		for (int i = 0; i < 3; i++)
			rtm_counter_add(&many[i], (uint64_t)(cycle * 10 + i));
		rtm_counter_add(&alloc, 5);
		rtm_gauge_set_f64(&g, cycle * -1.25);
		for (int r = 0; r <= cycle; r++)
			rtm_hist_record(&h, r * 3.3 - cycle);
		if (cycle >= 3) /* empty (no count, min or max) until cycle 3 */
			rtm_hist_record(&late, cycle * 100.0);
		assert_int_equal(rd_source_collect(s), 0);
		assert_int_equal(rd_source_collect(t), 0);
		env.groups_due = cycle % 3 ? ~0u : ~(1u << RD_GROUP_ALLOCATOR);
		for (int k = 0; k < 2; k++) {
			struct rd_batch *b = k ? &tmpl : &tree;

			/* Both batches start from the same count of left-out
			 * points, which each reports. */
			if (k == 0)
				invalid = t->invalid_points;
			t->invalid_points = invalid;
			rd_encode_source(b, &env, s, false, now);
			rd_encode_source(b, &env, t, false, now);
			rd_encode_source(b, &env, t, false, now + 1);
		}
		assert_int_equal(tmpl.points, tree.points);
		assert_int_equal(tmpl.wire_len, tree.wire_len);
		assert_memory_equal(tmpl.wire, tree.wire, tree.wire_len);
		/* The tree was freed for the templated batch, kept for the other. */
		assert_null(tmpl.rms[0]);
		assert_non_null(tree.rms[0]);
		rd_batch_free(&tree);
		rd_batch_free(&tmpl);
		rd_encode_env_sweep(&env); /* the cycle's end: both kept */
		assert_int_equal(rd_encode_env_producers(&env), 2);
	}
	assert_int_equal(t->invalid_points, 4); /* tmpl.big in cycles 2 and 3, twice each */
	rd_encode_env_free(&env);
	rd_source_free(t);
	rtm_segment_close(seg);
	unlink(s->seg.path);
	rd_source_free(s);
	tu_rmdir(dir);
}

/* The encoder keeps a producer's data while it is encoded each cycle and
 * lets it go at the end of the first cycle without it; a source freed
 * after that and another allocated in its place are strangers to it (under
 * ASan, a mix-up would read the freed segment's strings). */
static void the_encoder_forgets_a_producer_it_no_longer_sees(void **state)
{
	char *dir[2] = { tu_mkdir(), tu_mkdir() };
	struct rd_source *s = make_source(dir[0], 60), *n;
	struct rd_encode_env env, fresh;
	struct rd_batch a = { .wire_only = true, .max_bytes = 4u << 20 }, b = a;
	uint64_t old_seq = s->seq;

	(void)state;
	rd_encode_env_init(&env, false);
	rd_encode_env_init(&fresh, false);
	for (int cycle = 0; cycle < 3; cycle++) {
		struct rd_batch x = { .wire_only = true, .max_bytes = 4u << 20 };

		rd_encode_source(&x, &env, s, false, 99);
		rd_batch_free(&x);
		rd_encode_env_sweep(&env);
		assert_int_equal(rd_encode_env_producers(&env), 1);
	}
	rd_encode_env_sweep(&env); /* a cycle without it */
	assert_int_equal(rd_encode_env_producers(&env), 0);
	unlink(s->seg.path);
	rd_source_free(s);

	n = make_source(dir[1], 30);
	assert_true(n->seq > old_seq);
	rd_encode_source(&a, &env, n, false, 99);
	rd_encode_source(&b, &fresh, n, false, 99);
	assert_int_equal(a.wire_len, b.wire_len);
	assert_memory_equal(a.wire, b.wire, a.wire_len);
	assert_int_equal(rd_encode_env_producers(&env), 1);
	rd_batch_free(&a);
	rd_batch_free(&b);
	rd_encode_env_free(&env);
	rd_encode_env_free(&fresh);
	assert_int_equal(rd_encode_env_producers(&env), 0);
	unlink(n->seg.path);
	rd_source_free(n);
	tu_rmdir(dir[0]);
	tu_rmdir(dir[1]);
}

struct count_ctx {
	int requests;
	size_t max;
	size_t points;
};

static int count_points(const struct rd_request *r, void *ctx)
{
	struct count_ctx *c = ctx;
	const otlp_req *q = r->req;

	c->requests++;
	compare(r, &(int){ 0 });
	if (q->n_resource_metrics > 1 || q->resource_metrics[0]->scope_metrics[0]->n_metrics > 1)
		assert_true(r->pb_len <= c->max);
	for (size_t i = 0; i < q->n_resource_metrics; i++)
	for (size_t k = 0; k < q->resource_metrics[i]->n_scope_metrics; k++) {
		const otlp_sm *sm = q->resource_metrics[i]->scope_metrics[k];

		for (size_t m = 0; m < sm->n_metrics; m++) {
			const otlp_metric *mt = sm->metrics[m];

			c->points += mt->sum ? mt->sum->n_data_points :
				     mt->gauge ? mt->gauge->n_data_points :
						 mt->histogram->n_data_points;
		}
	}
	return 0;
}

static void splitting_keeps_every_point_once_under_the_cap(void **state)
{
	char *dir = tu_mkdir();
	struct rd_source *s = make_source(dir, 60);
	struct rd_encode_env env;
	struct rd_batch b = { 0 };
	struct count_ctx c = { .max = 1500 };

	(void)state;
	rd_encode_env_init(&env, false);
	for (int k = 0; k < 3; k++)
		rd_encode_source(&b, &env, s, false, 99);
	assert_true(s->seg.n_metrics > 40);
	assert_true(b.points >= 3 * s->seg.n_metrics); /* plus process metrics */
	assert_int_equal(rd_batch_requests(&b, c.max, count_points, &c), 0);
	assert_true(c.requests > 3);
	assert_int_equal(c.points, b.points);
	rd_batch_free(&b);
	rd_encode_env_free(&env);
	unlink(s->seg.path);
	rd_source_free(s);
	tu_rmdir(dir);
}

/* A source keeps the name it was opened by as its segment's path: one too
 * long for the directory is refused with a reason, never cut short (which
 * would open another file). */
static void a_name_too_long_is_refused_not_cut(void **state)
{
	char name[NAME_MAX + 40];
	struct rd_source *s = NULL;

	(void)state;
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	assert_int_equal(rd_source_open(&s, AT_FDCWD, name, false), -ENAMETOOLONG);
	assert_non_null(s);
	assert_non_null(strstr(s->seg.err, "longer than"));
	rd_source_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fast_writer_matches_protobuf_c_byte_for_byte),
		cmocka_unit_test(a_segment_that_grows_between_cycles_is_encoded_whole),
		cmocka_unit_test(templates_encode_what_the_tree_does),
		cmocka_unit_test(splitting_keeps_every_point_once_under_the_cap),
		cmocka_unit_test(the_encoder_forgets_a_producer_it_no_longer_sees),
		cmocka_unit_test(a_name_too_long_is_refused_not_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
