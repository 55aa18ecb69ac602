/* SPDX-License-Identifier: MIT */
/*
 * The Go producer (producer/go) against the C side of the format: a Go
 * program (cmd/rtm-go-fixture) writes the golden fixture's definitions and
 * values; its segment must validate with the C reader library and
 * rtm-shmdump --check, agree with tests/fixtures/layout-1.0.seg (written by
 * the C producer) on the header layout, every descriptor and every value,
 * and reach rtm-reader's /metrics exactly, beside the Go runtime's metrics.
 * Exits 77 when no Go toolchain built the fixture.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

struct fixture {
	pid_t pid;
	int in; /* its stdin: closing it ends the program */
	char path[2][4096];
};

static void fixture_start(struct fixture *fx, const char *dir)
{
	int to[2], from[2];
	FILE *f;

	/* Close-on-exec: no other child may hold the fixture's stdin open. */
	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	fx->pid = fork();
	assert_true(fx->pid >= 0);
	if (fx->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		setenv("RTM_DIR", dir, 1);
		execl(tu_prog("RTM_GO_FIXTURE"), "rtm-go-fixture", (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	fx->in = to[1];
	f = fdopen(from[0], "r");
	assert_non_null(f);
	for (int i = 0; i < 2; i++) {
		if (!fgets(fx->path[i], sizeof fx->path[i], f))
			fail_msg("rtm-go-fixture printed no path");
		fx->path[i][strcspn(fx->path[i], "\n")] = '\0';
	}
	fclose(f);
}

static void fixture_stop(struct fixture *fx)
{
	int st;

	close(fx->in);
	waitpid(fx->pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static const struct rtm_shm_desc *desc(const uint8_t *file, uint32_t i)
{
	const struct rtm_shm_header *h = (const void *)file;

	return (const void *)(file + h->desc_offset + (size_t)i * h->desc_size);
}

/* Header layout and every descriptor agree with the C producer's golden
 * fixture byte for byte, but for the absolute string offsets (the Go
 * producer adds process.runtime.version to the resource, so its strings
 * start later) — the strings at those offsets are equal too. */
static void go_and_c_lay_out_the_same_definitions_alike(void **state)
{
	char golden[4096], *dir = tu_mkdir();
	struct fixture fx;
	size_t glen, len;
	uint8_t *g, *o;
	const struct rtm_shm_header *gh, *oh;

	(void)state;
	snprintf(golden, sizeof golden, "%s/layout-1.0.seg", tu_prog("RTM_FIXTURES"));
	g = tu_slurp(golden, &glen);
	fixture_start(&fx, dir);
	o = tu_slurp(fx.path[0], &len);
	gh = (const void *)g;
	oh = (const void *)o;
#define SAME(f) assert_int_equal(gh->f, oh->f)
	SAME(magic); SAME(major); SAME(header_size); SAME(desc_size);
	/* 1.2: the Go producer records its namespaces (FORMAT.md §4); 1.3 it
	 * writes since its runtime histograms are exponential. */
	assert_int_equal(oh->minor, RTM_SHM_MINOR);
	assert_true(oh->pidns_ino != 0 && oh->userns_ino != 0);
	SAME(compat_features); SAME(incompat_features); SAME(segment_size); SAME(desc_offset);
	SAME(desc_capacity); SAME(strings_offset); SAME(strings_size); SAME(data_offset);
	SAME(shard_count); SAME(shard_size); SAME(desc_count); SAME(data_used); /* state: the golden one was closed */
	SAME(dropped_metrics); SAME(shard_fallbacks);
	assert_string_equal(gh->service_name, oh->service_name);
	assert_string_equal(gh->service_version, oh->service_version);
	assert_string_equal(oh->producer, "rtm-go/0.1.0");
	for (uint32_t i = 0; i < gh->desc_count; i++) {
		struct rtm_shm_desc a = *desc(g, i), b = *desc(o, i);

#define STR(off, n) assert_memory_equal(g + a.off, o + b.off, n)
		STR(name_off, a.name_len + 1u);
		STR(unit_off, a.unit_len + 1u);
		STR(description_off, a.description_len + 1u);
		STR(attrs_off, a.attrs_len);
		STR(bounds_off, a.bound_count * 8u);
#undef STR
		a.name_off = b.name_off = a.unit_off = b.unit_off = 0;
		a.description_off = b.description_off = a.attrs_off = b.attrs_off = 0;
		a.bounds_off = b.bounds_off = 0;
		a.start_unix_nano = b.start_unix_nano = 0;
		assert_memory_equal(&a, &b, sizeof a);
	}
#undef SAME
	fixture_stop(&fx);
	free(g);
	free(o);
	tu_rmdir(dir);
}

/* Read by the C reader library with every check on (owner, live pid), the
 * values equal the golden fixture's; rtm-shmdump --check agrees. */
static void go_segment_validates_and_reads_like_the_c_one(void **state)
{
	char golden[4096], cmd[8300], *dir = tu_mkdir();
	struct rd_segment gs, os_;
	struct rd_snapshot gv = { 0 }, ov = { 0 };
	struct fixture fx;

	(void)state;
	snprintf(golden, sizeof golden, "%s/layout-1.0.seg", tu_prog("RTM_FIXTURES"));
	fixture_start(&fx, dir);
	if (rd_segment_open(&gs, AT_FDCWD, golden, RD_FLAG_NO_OWNER_CHECK))
		fail_msg("%s: %s", golden, gs.err);
	if (rd_segment_open(&os_, AT_FDCWD, fx.path[0], 0))
		fail_msg("%s: %s", fx.path[0], os_.err);
	assert_int_equal(rd_segment_snapshot(&gs, &gv), 0);
	assert_int_equal(rd_segment_snapshot(&os_, &ov), 0);
	assert_int_equal(gs.n_metrics, os_.n_metrics);
	for (uint32_t i = 0; i < gs.n_metrics; i++) {
		const struct rd_metric *m = &gs.metrics[i];
		const struct rd_value *a = &gv.values[i], *b = &ov.values[i];

		assert_string_equal(m->name, os_.metrics[i].name);
		if (m->kind == RTM_SHM_KIND_HISTOGRAM) {
			assert_int_equal(a->count, b->count);
			assert_true(a->sum == b->sum && a->min == b->min && a->max == b->max);
			assert_memory_equal(a->buckets, b->buckets, (m->n_bounds + 1) * 8);
		} else {
			assert_memory_equal(&a->i, &b->i, 8);
		}
	}
	assert_int_equal(ov.torn, 0);
	rd_snapshot_free(&gv);
	rd_snapshot_free(&ov);
	rd_segment_close(&gs);
	rd_segment_close(&os_);
	for (int i = 0; i < 2; i++) {
		FILE *f;
		char line[512] = "";

		snprintf(cmd, sizeof cmd, "%s --check '%s'", tu_prog("RTM_SHMDUMP"), fx.path[i]);
		f = popen(cmd, "r");
		assert_non_null(f);
		if (!fgets(line, sizeof line, f))
			line[0] = '\0';
		assert_int_equal(pclose(f), 0);
		assert_non_null(strstr(line, ": ok (layout 1.3"));
	}
	fixture_stop(&fx);
	tu_rmdir(dir);
}

/* Whether some line of page starts with prefix and contains rest. */
static bool has_line(const char *page, const char *prefix, const char *rest)
{
	for (const char *p = page; (p = strstr(p, prefix)); p++) {
		const char *eol = strchr(p, '\n');

		if ((p == page || p[-1] == '\n') && eol &&
		    memmem(p, (size_t)(eol - p + 1), rest, strlen(rest)))
			return true;
	}
	return false;
}

/* rtm-reader exports a Go program's values exactly, with the Go runtime's
 * metrics and process.runtime.name=go, beside C producers. */
static void reader_exports_go_producers_exactly(void **state)
{
	char *dir = tu_mkdir(), *page = NULL, want[256];
	struct fixture fx;
	struct tu_producer c;
	struct tu_reader r;
	static const char *const lines[] = {
		"fx_requests_total{job=\"fixture\"", ",method=\"GET\"} 42\n",
		"fx_cpu_seconds_total{job=\"fixture\"", "} 1.25\n",
		"fx_active{job=\"fixture\"", "} -3\n",
		"fx_queue{job=\"fixture\"", "} 17\n",
		"fx_ratio{job=\"fixture\"", "} 0.5\n",
		"fx_latency_seconds_bucket{job=\"fixture\"", ",le=\"0.1\"} 1\n",
		"fx_latency_seconds_bucket{job=\"fixture\"", ",le=\"10\"} 3\n",
		"fx_latency_seconds_bucket{job=\"fixture\"", ",le=\"+Inf\"} 4\n",
		"fx_latency_seconds_sum{job=\"fixture\"", "} 55.55\n",
		"go_goroutine_count{job=\"fixture-runtime\"", "} ",
		"go_runtime_gc_pauses_seconds_bucket{job=\"fixture-runtime\"", ",le=\"+Inf\"} ",
		"go_memory_used_bytes{job=\"fixture-runtime\"", ",go_memory_type=\"stack\"} ",
		"go_runtime_gc_cycles_total{job=\"fixture-runtime\"", "} ",
		"app_requests_total{job=\"c-beside\"", ",route=\"/a\"} 100\n",
	};

	(void)state;
	fixture_start(&fx, dir);
	tu_spawn(&c, dir, "c-beside", tu_produce_known, 1, false);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "250ms", NULL });
	for (int i = 0; i < 300; i++) {
		struct tu_http h;
		bool all = true;

		tu_http_get(r.url, "text/plain", false, &h);
		free(page);
		page = h.body;
		for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k += 2)
			all &= has_line(page, lines[k], lines[k + 1]);
		if (all)
			break;
		usleep(100000);
	}
	for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k += 2)
		if (!has_line(page, lines[k], lines[k + 1]))
			fail_msg("no '%s...%s' on the page", lines[k], lines[k + 1]);
	snprintf(want, sizeof want, "process_runtime_name=\"go\"");
	assert_non_null(strstr(strstr(page, "target_info{job=\"fixture\""), want));
	assert_non_null(strstr(strstr(page, "target_info{job=\"fixture\""), "process_runtime_version=\"go1."));
	assert_non_null(strstr(strstr(page, "target_info{job=\"c-beside\""), "process_runtime_name=\"native\""));
	free(page);
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_reap(&c);
	fixture_stop(&fx);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(go_and_c_lay_out_the_same_definitions_alike),
		cmocka_unit_test(go_segment_validates_and_reads_like_the_c_one),
		cmocka_unit_test(reader_exports_go_producers_exactly),
	};
	const char *go = getenv("RTM_GO_FIXTURE");

	if (!go || !*go || access(go, X_OK)) {
		printf("no Go toolchain built rtm-go-fixture: skipped\n");
		return 77;
	}
	srandom((unsigned)getpid());
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
