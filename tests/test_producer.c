/* SPDX-License-Identifier: MIT */
/* The producer API, observed through the reader library. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rd_dir.h"
#include "rd_proc.h"
#include "rtm_segment_priv.h"
#include "test_util.h"

struct fx {
	char *dir;
	struct rtm_segment *seg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	f->dir = tu_mkdir();
	f->seg = tu_open(f->dir, "svc");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rtm_segment_close(f->seg);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static void snap(struct fx *f, struct rd_segment *rd, struct rd_snapshot *s)
{
	tu_read(f->seg, rd);
	memset(s, 0, sizeof *s);
	assert_int_equal(rd_segment_snapshot(rd, s), 0);
}

static void done(struct rd_segment *rd, struct rd_snapshot *s)
{
	rd_snapshot_free(s);
	rd_segment_close(rd);
}

static void every_kind_reads_back_exactly(void **state)
{
	struct fx *f = *state;
	rtm_counter_t c, cd;
	rtm_updown_t u;
	rtm_gauge_t g, gd;
	rtm_hist_t h;
	struct rd_segment rd;
	struct rd_snapshot s;
	int i;

	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "t.count", .unit = "{op}", .description = "ops" }), 0);
	assert_int_equal(rtm_counter_create(f->seg, &cd, &(struct rtm_metric_def){
		.name = "t.seconds", .unit = "s", .is_double = 1 }), 0);
	assert_int_equal(rtm_updown_create(f->seg, &u, &(struct rtm_metric_def){
		.name = "t.active" }), 0);
	assert_int_equal(rtm_gauge_create(f->seg, &g, &(struct rtm_metric_def){
		.name = "t.level" }), 0);
	assert_int_equal(rtm_gauge_create(f->seg, &gd, &(struct rtm_metric_def){
		.name = "t.ratio", .unit = "1", .is_double = 1 }), 0);
	assert_int_equal(rtm_hist_create(f->seg, &h, &(struct rtm_metric_def){
		.name = "t.latency", .unit = "s" }), 0);
	rtm_counter_add(&c, 40);
	rtm_counter_add(&c, 2);
	rtm_counter_add_f64(&cd, 0.25);
	rtm_counter_add_f64(&cd, 0.5);
	rtm_updown_add(&u, 3);
	rtm_updown_add(&u, -10);
	rtm_gauge_set(&g, 99);
	rtm_gauge_set(&g, -7);
	rtm_gauge_set_f64(&gd, 0.125);
	rtm_hist_record(&h, 0.002);
	rtm_hist_record(&h, 5.0);
	rtm_hist_record(&h, NAN); /* ignored */

	snap(f, &rd, &s);
	assert_int_equal(rd.n_metrics, 6);
	i = tu_find(&rd, "t.count", NULL, NULL);
	assert_int_equal(s.values[i].i, 42);
	assert_string_equal(rd.metrics[i].unit, "{op}");
	assert_string_equal(rd.metrics[i].description, "ops");
	assert_int_equal(rd.metrics[i].kind, RTM_SHM_KIND_COUNTER);
	assert_true(rd.metrics[i].start_unix_nano > 0);
	i = tu_find(&rd, "t.seconds", NULL, NULL);
	assert_true(s.values[i].d == 0.75);
	assert_int_equal(rd.metrics[i].value_type, RTM_SHM_VALUE_DOUBLE);
	assert_int_equal(s.values[tu_find(&rd, "t.active", NULL, NULL)].i, -7);
	assert_int_equal(s.values[tu_find(&rd, "t.level", NULL, NULL)].i, -7);
	assert_true(s.values[tu_find(&rd, "t.ratio", NULL, NULL)].d == 0.125);
	i = tu_find(&rd, "t.latency", NULL, NULL);
	assert_int_equal(rd.metrics[i].n_bounds, RTM_DEFAULT_SECONDS_BOUNDS_N);
	assert_int_equal(s.values[i].count, 2);
	assert_true(s.values[i].sum == 5.002);
	assert_true(s.values[i].min == 0.002);
	assert_true(s.values[i].max == 5.0);
	assert_int_equal(s.values[i].buckets[4], 1); /* (1ms, 10ms] */
	assert_int_equal(s.values[i].buckets[7], 1); /* (1s, +inf) */
	done(&rd, &s);
}

static void histogram_bound_is_upper_inclusive(void **state)
{
	struct fx *f = *state;
	const double bounds[] = { 1, 2, 5 };
	rtm_hist_t h;
	struct rd_segment rd;
	struct rd_snapshot s;
	int i;

	assert_int_equal(rtm_hist_create(f->seg, &h, &(struct rtm_metric_def){
		.name = "t.h", .bounds = bounds, .n_bounds = 3 }), 0);
	rtm_hist_record(&h, 1.0);  /* (-inf, 1] */
	rtm_hist_record(&h, 1.5);  /* (1, 2] */
	rtm_hist_record(&h, 2.0);  /* (1, 2] */
	rtm_hist_record(&h, 5.0);  /* (2, 5] */
	rtm_hist_record(&h, 5.01); /* (5, +inf) */
	rtm_hist_record(&h, -3);   /* (-inf, 1] */
	snap(f, &rd, &s);
	i = tu_find(&rd, "t.h", NULL, NULL);
	assert_int_equal(s.values[i].buckets[0], 2);
	assert_int_equal(s.values[i].buckets[1], 2);
	assert_int_equal(s.values[i].buckets[2], 1);
	assert_int_equal(s.values[i].buckets[3], 1);
	assert_true(s.values[i].min == -3);
	done(&rd, &s);
}

static void identical_series_share_a_slot_whatever_the_attribute_order(void **state)
{
	struct fx *f = *state;
	rtm_counter_t a, b, other;
	struct rd_segment rd;
	struct rd_snapshot s;

	assert_int_equal(rtm_counter_create(f->seg, &a, &(struct rtm_metric_def){
		.name = "t.req", .attrs = (struct rtm_attr[]){ { "x", "1" }, { "y", "2" } },
		.n_attrs = 2 }), 0);
	assert_int_equal(rtm_counter_create(f->seg, &b, &(struct rtm_metric_def){
		.name = "t.req", .attrs = (struct rtm_attr[]){ { "y", "2" }, { "x", "1" } },
		.n_attrs = 2 }), 0);
	assert_int_equal(rtm_counter_create(f->seg, &other, &(struct rtm_metric_def){
		.name = "t.req", .attrs = (struct rtm_attr[]){ { "x", "other" } },
		.n_attrs = 1 }), 0);
	assert_int_equal(a.off, b.off);
	assert_int_not_equal(a.off, other.off);
	rtm_counter_add(&a, 1);
	rtm_counter_add(&b, 1);
	rtm_counter_add(&other, 5);
	snap(f, &rd, &s);
	assert_int_equal(rd.n_metrics, 2);
	assert_int_equal(s.values[tu_find(&rd, "t.req", "x", "1")].i, 2);
	assert_int_equal(s.values[tu_find(&rd, "t.req", "x", "other")].i, 5);
	done(&rd, &s);
}

static void conflicting_series_is_refused(void **state)
{
	struct fx *f = *state;
	rtm_counter_t c;
	rtm_gauge_t g;

	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "t.x", .unit = "By" }), 0);
	assert_int_equal(rtm_gauge_create(f->seg, &g, &(struct rtm_metric_def){
		.name = "t.x", .unit = "By" }), -EEXIST);
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "t.x", .unit = "s" }), -EEXIST);
	rtm_gauge_set(&g, 5); /* the fallback handle must be harmless */
}

static void invalid_definitions_are_refused(void **state)
{
	struct fx *f = *state;
	const double unsorted[] = { 1, 3, 2 }, with_nan[] = { 1, NAN };
	rtm_counter_t c;
	rtm_hist_t h;
	char longname[300];

	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "1starts.with.digit" }), -EINVAL);
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "has space" }), -EINVAL);
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = longname }), -EINVAL);
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "ok", .unit = "bad\tunit" }), -EINVAL);
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "ok", .description = "\xff\xfe" }), -EINVAL);
	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "ok", .attrs = (struct rtm_attr[]){ { "k", "1" }, { "k", "2" } },
		.n_attrs = 2 }), -EINVAL);
	assert_int_equal(rtm_hist_create(f->seg, &h, &(struct rtm_metric_def){
		.name = "ok", .bounds = unsorted, .n_bounds = 3 }), -EINVAL);
	assert_int_equal(rtm_hist_create(f->seg, &h, &(struct rtm_metric_def){
		.name = "ok", .bounds = with_nan, .n_bounds = 2 }), -EINVAL);
	assert_int_equal(rtm_counter_create(f->seg, &c, NULL), -EINVAL);
	rtm_counter_add(&c, 1);
	rtm_hist_record(&h, 1);
}

static void full_table_is_enospc_counted_and_harmless(void **state)
{
	struct fx *f = *state;
	struct rd_segment rd;
	struct rd_snapshot s;
	rtm_counter_t c;
	char name[32];
	int ok = 0, rc = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "t.m%d", i);
		rc = rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){ .name = name });
		if (rc)
			break;
		ok++;
	}
	assert_int_equal(ok, 64); /* tu_open's max_metrics */
	assert_int_equal(rc, -ENOSPC);
	rtm_counter_add(&c, 1); /* dropped, not a crash */
	snap(f, &rd, &s);
	assert_int_equal(rd.n_metrics, 64);
	assert_int_equal(s.dropped_metrics, 1);
	done(&rd, &s);
}

struct thread_arg {
	rtm_counter_t *c;
	rtm_hist_t *h;
	int n;
	pthread_barrier_t *bar;
};

static void *add_n(void *p)
{
	struct thread_arg *a = p;

	if (a->bar)
		pthread_barrier_wait(a->bar);
	for (int i = 0; i < a->n; i++) {
		rtm_counter_add(a->c, 1);
		if (a->h)
			rtm_hist_record(a->h, 0.5);
	}
	if (a->bar)
		pthread_barrier_wait(a->bar); /* all alive at once */
	return NULL;
}

/* n threads running add_n(a), all alive together (a->bar is set here). */
static void all_at_once(int n, struct thread_arg *a)
{
	pthread_barrier_t bar;
	pthread_t t[64];

	assert_true(n <= 64);
	a->bar = &bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, add_n, a);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	a->bar = NULL;
}

static void exited_threads_values_are_kept(void **state)
{
	struct fx *f = *state;
	rtm_counter_t c;
	struct rd_segment rd;
	struct rd_snapshot s;

	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "t.c" }), 0);
	for (int round = 0; round < 20; round++) {
		pthread_t t;
		struct thread_arg a = { &c, NULL, 10, NULL };

		pthread_create(&t, NULL, add_n, &a);
		pthread_join(t, NULL);
	}
	snap(f, &rd, &s);
	assert_int_equal(s.values[0].i, 200);
	/* Each exited thread handed its shard on: one shard was enough. */
	assert_int_equal(__atomic_load_n(&((const struct rtm_shm_header *)(const void *)rd.base)->shard_hwm,
					 __ATOMIC_RELAXED), 2);
	done(&rd, &s);
}

static void threads_beyond_the_shards_share_shard_zero(void **state)
{
	struct fx *f = *state;
	enum { N = 12 }; /* tu_open gives 8 private shards */
	struct thread_arg a = { NULL, NULL, 1000, NULL };
	rtm_counter_t c;
	rtm_hist_t h;
	struct rd_segment rd;
	struct rd_snapshot s;
	int hi;

	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "t.c" }), 0);
	assert_int_equal(rtm_hist_create(f->seg, &h, &(struct rtm_metric_def){
		.name = "t.h" }), 0);
	a.c = &c;
	a.h = &h;
	all_at_once(N, &a);
	snap(f, &rd, &s);
	assert_int_equal(s.values[tu_find(&rd, "t.c", NULL, NULL)].i, N * 1000);
	hi = tu_find(&rd, "t.h", NULL, NULL);
	assert_int_equal(s.values[hi].count, N * 1000);
	assert_true(s.values[hi].sum == N * 1000 * 0.5);
	/* Shard 0 got its pages, and empty histogram slots, when the first
	 * thread fell back to it. */
	assert_true(s.values[hi].min == 0.5 && s.values[hi].max == 0.5);
	assert_int_equal(s.shard_fallbacks, N - 8);
	done(&rd, &s);
}

static void one_thread_can_feed_many_segments(void **state)
{
	enum { N = 12 }; /* more than a thread keeps private shards in */
	char *dir = tu_mkdir();
	struct rtm_segment *seg[N];
	rtm_counter_t c[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		seg[i] = tu_open(dir, "many");
		rtm_counter_create(seg[i], &c[i], &(struct rtm_metric_def){ .name = "t.c" });
	}
	for (int r = 0; r < 3; r++)
		for (int i = 0; i < N; i++)
			rtm_counter_add(&c[i], (uint64_t)(i + 1));
	for (int i = 0; i < N; i++) {
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };

		tu_read(seg[i], &rd);
		assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
		assert_int_equal(s.values[0].i, 3 * (i + 1));
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
		rtm_segment_close(seg[i]);
	}
	tu_rmdir(dir);
}

static void close_marks_closed_and_keeps_handles_safe(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = tu_open(dir, "closing");
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	rtm_counter_t c;
	rtm_gauge_t g;
	rtm_hist_t h;

	(void)state;
	rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "t.c" });
	rtm_gauge_create(seg, &g, &(struct rtm_metric_def){ .name = "t.g" });
	rtm_hist_create(seg, &h, &(struct rtm_metric_def){ .name = "t.h" });
	rtm_counter_add(&c, 7);
	tu_read(seg, &rd);
	assert_int_equal(rtm_segment_close(seg), 0);
	assert_int_equal(rtm_segment_close(seg), -EINVAL);
	rtm_counter_add(&c, 1000); /* after close: discarded */
	rtm_gauge_set(&g, 1000);
	rtm_hist_record(&h, 1);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.state, RTM_SHM_STATE_CLOSED);
	assert_true(s.closed_unix_nano > 0);
	assert_int_equal(s.values[0].i, 7);
	assert_int_equal(s.values[1].i, 0);
	assert_int_equal(s.values[2].count, 0);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

static void forked_child_cannot_change_parent_values(void **state)
{
	struct fx *f = *state;
	rtm_counter_t c;
	struct rd_segment rd;
	struct rd_snapshot s;
	pid_t pid;
	int st;

	assert_int_equal(rtm_counter_create(f->seg, &c, &(struct rtm_metric_def){
		.name = "t.c" }), 0);
	rtm_counter_add(&c, 5); /* this thread's shard is now cached */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_t t;
		struct thread_arg a = { &c, NULL, 1000, NULL };

		rtm_counter_add(&c, 1000); /* same cached shard as the parent */
		pthread_create(&t, NULL, add_n, &a); /* and a fresh claim */
		pthread_join(t, NULL);
		_exit(0);
	}
	rtm_counter_add(&c, 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snap(f, &rd, &s);
	assert_int_equal(s.values[0].i, 6);
	done(&rd, &s);
}

static long blocks(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (long)st.st_blocks * 512;
}

static void segment_file_is_private_and_pays_for_what_is_used(void **state)
{
	struct fx *f = *state;
	struct stat st;
	const char *path = rtm_segment_path(f->seg);
	const char *base = strrchr(path, '/') + 1;
	char expect[64];
	struct thread_arg a = { NULL, NULL, 10, NULL };
	rtm_counter_t c[8];
	pthread_t t;
	long empty, used;

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, getuid());
	snprintf(expect, sizeof expect, "rtm.%d.", (int)getpid());
	assert_memory_equal(base, expect, strlen(expect));
	/* Sparse: an empty segment holds its header's page, nothing more. */
	empty = blocks(path);
	assert_int_equal(empty, 4096);
	assert_true(st.st_size > 8 * 4096);
	/* Eight counters: one descriptor page (shared with the header) and
	 * one of strings; shard 0 takes none until it is used (a gauge, or a
	 * thread without a private shard). */
	for (int i = 0; i < 8; i++) {
		char name[16];

		snprintf(name, sizeof name, "m.%d", i);
		assert_int_equal(rtm_counter_create(f->seg, &c[i], &(struct rtm_metric_def){
			.name = name }), 0);
	}
	assert_int_equal(blocks(path), 2 * 4096);
	/* A writing thread claims a shard: one more page, once. */
	a.c = &c[3];
	pthread_create(&t, NULL, add_n, &a);
	pthread_join(t, NULL);
	used = blocks(path);
	assert_int_equal(used, 3 * 4096);
	pthread_create(&t, NULL, add_n, &a);
	pthread_join(t, NULL);
	assert_int_equal(blocks(path), used);
	/* A reader reads no hole: shard 0 stays without pages. */
	{
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };

		tu_read(f->seg, &rd);
		assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
		assert_int_equal(s.values[tu_find(&rd, "m.3", NULL, NULL)].i, 20);
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
		assert_int_equal(blocks(path), used);
	}
	/* A gauge gives shard 0 its page. */
	{
		rtm_gauge_t g;

		assert_int_equal(rtm_gauge_create(f->seg, &g, &(struct rtm_metric_def){
			.name = "m.gauge" }), 0);
		rtm_gauge_set(&g, 7);
		assert_int_equal(blocks(path), 4 * 4096);
	}
}

/* The resource a segment gets from the OTel variables and the options. */
static void resource(const char *dir, const char *svc, const struct rtm_attr *attrs, size_t n,
		     struct rd_segment *rd)
{
	struct rtm_segment *seg;

	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = svc, .dir = dir, .resource_attrs = attrs, .n_resource_attrs = n }), 0);
	tu_read(seg, rd);
	rtm_segment_close(seg);
}

static const char *res_attr(const struct rd_segment *rd, const char *key)
{
	for (uint32_t i = 0; i < rd->n_resource; i++)
		if (!strcmp(rd->resource[i].key, key))
			return rd->resource[i].value;
	return NULL;
}

static void otel_resource_variables_fill_in_the_resource(void **state)
{
	struct fx *f = *state;
	struct rd_segment rd;
	const struct rtm_attr mine[] = { { "team", "explicit" } };

	unsetenv("OTEL_SERVICE_NAME");
	setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attr, team=env%20team,"
	       "deployment.environment=prod,service.version=9.1", 1);
	/* The attribute's service.name and version; the option's team wins. */
	resource(f->dir, NULL, mine, 1, &rd);
	assert_string_equal(rd.hdr.service_name, "from-attr");
	assert_string_equal(rd.hdr.service_version, "9.1");
	assert_string_equal(res_attr(&rd, "team"), "explicit");
	assert_string_equal(res_attr(&rd, "deployment.environment"), "prod");
	assert_null(res_attr(&rd, "service.name"));
	rd_segment_close(&rd);
	resource(f->dir, NULL, NULL, 0, &rd);
	assert_string_equal(res_attr(&rd, "team"), "env team"); /* percent-decoded */
	rd_segment_close(&rd);
	/* OTEL_SERVICE_NAME over the attribute; the option over both. */
	setenv("OTEL_SERVICE_NAME", "from-name", 1);
	resource(f->dir, NULL, NULL, 0, &rd);
	assert_string_equal(rd.hdr.service_name, "from-name");
	rd_segment_close(&rd);
	resource(f->dir, "from-option", NULL, 0, &rd);
	assert_string_equal(rd.hdr.service_name, "from-option");
	rd_segment_close(&rd);
	/* A value that does not decode is ignored whole; with no name at
	 * all, the program's. */
	unsetenv("OTEL_SERVICE_NAME");
	setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,bad=%zz", 1);
	resource(f->dir, "", NULL, 0, &rd);
	assert_string_equal(rd.hdr.service_name, "test_producer");
	assert_null(res_attr(&rd, "deployment.environment"));
	rd_segment_close(&rd);
	unsetenv("OTEL_RESOURCE_ATTRIBUTES");
}

static void bad_open_options_are_refused(void **state)
{
	struct fx *f = *state;
	struct rtm_segment *seg;
	char longname[80];

	memset(longname, 's', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = longname, .dir = f->dir }), -EINVAL);
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "x", .dir = f->dir, .max_threads = 5000 }), -EINVAL);
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "x", .dir = "/nonexistent/dir/rtm" }), -ENOENT);
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "x", .dir = f->dir,
		.resource_attrs = (struct rtm_attr[]){ { "", "v" } },
		.n_resource_attrs = 1 }), -EINVAL);
}

static void full_filesystem_fails_at_a_cold_call_never_later(void **state)
{
	enum { N = 40 };
	char *dir = tu_mkdir();
	struct rtm_segment *seg;
	double bounds[200];
	rtm_counter_t c;
	rtm_hist_t h;
	struct thread_arg a = { &c, &h, 1000, NULL };
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	int rc = 0, made = 0;

	(void)state;
	if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0) {
		tu_rmdir(dir);
		skip(); /* needs root (CI and the dev machines are) */
	}
	/* 16 pages: the segment opens (one page), then 40 threads want a
	 * shard page each.  Those that find the tmpfs full share shard 0:
	 * every update still counts, and none raises SIGBUS. */
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "big", .dir = dir, .max_threads = 64 }), 0);
	assert_int_equal(rtm_counter_create(seg, &c, &(struct rtm_metric_def){
		.name = "t.c" }), 0);
	assert_int_equal(rtm_hist_create(seg, &h, &(struct rtm_metric_def){
		.name = "t.h" }), 0);
	all_at_once(N, &a);
	/* Registrations that need pages the tmpfs lacks fail with ENOSPC. */
	for (int i = 0; i < 200; i++)
		bounds[i] = i + 1;
	for (int i = 0; i < 64 && !rc; i++) {
		char name[16];
		rtm_hist_t big;

		snprintf(name, sizeof name, "big.%d", i);
		rc = rtm_hist_create(seg, &big, &(struct rtm_metric_def){
			.name = name, .bounds = bounds, .n_bounds = 200 });
		if (!rc) {
			rtm_hist_record(&big, 3);
			made++;
		}
	}
	assert_int_equal(rc, -ENOSPC);
	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.values[tu_find(&rd, "t.c", NULL, NULL)].i, N * 1000);
	assert_int_equal(s.values[tu_find(&rd, "t.h", NULL, NULL)].count, N * 1000);
	assert_true(s.shard_fallbacks > 0);
	assert_int_equal(rd.n_metrics, 2 + made);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	rtm_segment_close(seg);
	umount(dir);
	tu_rmdir(dir);
}

static void heartbeat_moves_forward(void **state)
{
	struct fx *f = *state;
	struct rd_segment rd;
	struct rd_snapshot s1 = { 0 }, s2 = { 0 };

	tu_read(f->seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &s1), 0);
	usleep(2000);
	rtm_segment_heartbeat(f->seg);
	assert_int_equal(rd_segment_snapshot(&rd, &s2), 0);
	assert_true(s2.heartbeat_unix_nano > s1.heartbeat_unix_nano);
	rd_snapshot_free(&s1);
	rd_snapshot_free(&s2);
	rd_segment_close(&rd);
}

static void default_dir_comes_from_rtm_dir(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg;

	(void)state;
	setenv("RTM_DIR", dir, 1);
	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "env" }), 0);
	assert_memory_equal(rtm_segment_path(seg), dir, strlen(dir));
	rtm_segment_close(seg);
	unsetenv("RTM_DIR");
	tu_rmdir(dir);
}

/* Segments (not the reader's file) in dir. */
static int segments_in_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char **names;
	int n = rd_dir_list(dfd, &names);

	rd_dir_names_free(names);
	close(dfd);
	return n;
}

/*
 * A deferred segment (the preload's at exit): counted in private memory
 * with no file; closed, it is written once — finished and closed — only
 * when a reader is attached to take its final values.
 */
static void a_deferred_segment_is_written_once_for_a_reader(void **state)
{
	char *dir = tu_mkdir();
	const struct rtm_segment_opts o = { .service_name = "deferred", .dir = dir,
					    .max_threads = 8 };
	struct rtm_segment *seg = NULL;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	rtm_counter_t c;
	rtm_hist_t h;
	(void)state;
	for (int reader = 0; reader < 2; reader++) {
		assert_int_equal(rtm__segment_open_deferred(&seg, &o), 0);
		assert_int_equal(rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "d.c" }), 0);
		assert_int_equal(rtm_hist_create(seg, &h, &(struct rtm_metric_def){
			.name = "d.h", .bounds = (const double[]){ 1, 10 }, .n_bounds = 2 }), 0);
		rtm_counter_add(&c, 7);
		rtm_hist_record(&h, 5);
		assert_int_equal(segments_in_dir(dir), 0);
		assert_int_equal(rtm_segment_close(seg), 0);
		if (!reader) {
			assert_int_equal(segments_in_dir(dir), 0);
			tu_announce_reader(dir);
		}
	}
	assert_int_equal(segments_in_dir(dir), 1);
	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.state, RTM_SHM_STATE_CLOSED);
	assert_int_equal(s.values[tu_find(&rd, "d.c", NULL, NULL)].i, 7);
	assert_int_equal(s.torn, 0);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

/*
 * The start time in a segment's header and name is the kernel's (field 22
 * of /proc/self/stat, as the reader parses it), also when the command name
 * holds ") " and digits, for a live segment and a deferred one, whose name
 * librtm writes without stdio.
 */
static void start_time_and_name_are_the_kernels_whatever_the_command(void **state)
{
	char *dir = tu_mkdir(), old[17] = { 0 }, buf[1024], want[128];
	struct rd_proc_stat st;
	ssize_t n;

	(void)state;
	tu_announce_reader(dir);
	assert_int_equal(prctl(PR_GET_NAME, old), 0);
	assert_int_equal(prctl(PR_SET_NAME, "x) 1 2 3 (y"), 0);
	n = rd_proc_read(getpid(), "stat", buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal(rd_proc_parse_stat(buf, (size_t)n, &st), 0);
	assert_true(st.start_ticks > 0);
	for (int deferred = 0; deferred < 2; deferred++) {
		const struct rtm_segment_opts o = { .service_name = "ticks", .dir = dir };
		struct rtm_segment *seg = NULL;
		struct rd_segment rd;
		const char *path;

		assert_int_equal(deferred ? rtm__segment_open_deferred(&seg, &o) :
					    rtm_segment_open(&seg, &o), 0);
		if (deferred)
			assert_int_equal(rtm_segment_close(seg), 0);
		/* rtm.PID.TICKS.N.rtm; N counts this process's segments. */
		path = strrchr(rtm_segment_path(seg), '/');
		snprintf(want, sizeof want, "/rtm.%d.%llu.", (int)getpid(),
			 (unsigned long long)st.start_ticks);
		assert_non_null(path);
		assert_memory_equal(path, want, strlen(want));
		path += strlen(want);
		assert_true(*path >= '0' && *path <= '9');
		path += strspn(path, "0123456789");
		assert_string_equal(path, ".rtm");
		tu_read(seg, &rd);
		assert_int_equal(rd.hdr.pid_start_ticks, st.start_ticks);
		rd_segment_close(&rd);
		if (!deferred)
			assert_int_equal(rtm_segment_close(seg), 0);
	}
	assert_int_equal(prctl(PR_SET_NAME, old), 0);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(every_kind_reads_back_exactly),
		T(histogram_bound_is_upper_inclusive),
		T(identical_series_share_a_slot_whatever_the_attribute_order),
		T(conflicting_series_is_refused),
		T(invalid_definitions_are_refused),
		T(full_table_is_enospc_counted_and_harmless),
		T(exited_threads_values_are_kept),
		T(threads_beyond_the_shards_share_shard_zero),
		cmocka_unit_test(one_thread_can_feed_many_segments),
		cmocka_unit_test(close_marks_closed_and_keeps_handles_safe),
		cmocka_unit_test(a_deferred_segment_is_written_once_for_a_reader),
		cmocka_unit_test(start_time_and_name_are_the_kernels_whatever_the_command),
		T(forked_child_cannot_change_parent_values),
		T(segment_file_is_private_and_pays_for_what_is_used),
		T(bad_open_options_are_refused),
		T(otel_resource_variables_fill_in_the_resource),
		cmocka_unit_test(full_filesystem_fails_at_a_cold_call_never_later),
		T(heartbeat_moves_forward),
		cmocka_unit_test(default_dir_comes_from_rtm_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
