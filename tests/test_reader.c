/* SPDX-License-Identifier: MIT */
/*
 * rtm-reader end to end: real producer processes, the real daemon, and a
 * real OTLP/HTTP receiver on loopback (tests/otlp-receiver) that decodes
 * every request with the OpenTelemetry project's own schema.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rd_proc.h"
#include "rd_groups.h"
#include "rd_limits.h"
#include "test_util.h"

/* ---- the receiver ---- */

/* The OTLP/HTTP receiver (tests/otlp-receiver/receiver.js) with a script. */
static void recv_start(struct tu_recv *r, const char *script)
{
	const char *args[] = { "--script", script ? script : "", NULL };

	tu_recv_start(r, "RTM_RECEIVER", args);
}

static json_object *find_resource(json_object *reqs, const char *service)
{
	for (size_t q = 0; q < json_object_array_length(reqs); q++) {
		json_object *rms = tu_json_get(tu_json_get(json_object_array_get_idx(reqs, q), "body"),
				       "resourceMetrics");

		for (size_t i = 0; rms && i < json_object_array_length(rms); i++) {
			json_object *res = tu_json_get(json_object_array_get_idx(rms, i), "resource");
			const char *svc = tu_otlp_attr(tu_json_get(res, "attributes"), "service.name");

			if (svc && !strcmp(svc, service))
				return res;
		}
	}
	return NULL;
}

static json_object *point(json_object *metric, const char *kind, size_t i)
{
	json_object *pts = tu_json_get(tu_json_get(metric, kind), "dataPoints");

	assert_non_null(pts);
	assert_true(i < json_object_array_length(pts));
	return json_object_array_get_idx(pts, i);
}

static long long as_ll(json_object *o)
{
	assert_non_null(o);
	return strtoll(json_object_get_string(o), NULL, 10);
}

/* ---- running the reader ---- */

struct run {
	int status;
	char err[8192];
};

/* Runs rtm-reader with a shell environment prefix and arguments. */
static void reader(struct run *res, const char *dir, const char *env, const char *args)
{
	char cmd[4096], errf[128];
	FILE *f;
	size_t n;

	snprintf(errf, sizeof errf, "/tmp/rtm-reader-err.%d", (int)getpid());
	snprintf(cmd, sizeof cmd, "env RTM_DIR=%s %s %s %s >/dev/null 2>%s", dir, env ? env : "",
		 tu_prog("RTM_READER"), args, errf);
	res->status = system(cmd);
	res->status = WIFEXITED(res->status) ? WEXITSTATUS(res->status) : 128;
	f = fopen(errf, "r");
	n = f ? fread(res->err, 1, sizeof res->err - 1, f) : 0;
	res->err[n] = '\0';
	if (f)
		fclose(f);
	unlink(errf);
}

static char *endpoint_env(const struct tu_recv *r)
{
	static char env[256];

	snprintf(env, sizeof env, "OTEL_EXPORTER_OTLP_ENDPOINT=%s", r->url);
	return env;
}

/* rtm-reader as a daemon exporting to r, with flags; its stderr goes to
 * errf (NULL: nowhere). */
static pid_t daemon_start(const struct tu_recv *r, const char *dir, const char *flags,
			  const char *errf)
{
	char cmd[2048];

	snprintf(cmd, sizeof cmd, "exec env RTM_DIR=%s %s %s %s 2>%s >/dev/null", dir,
		 endpoint_env(r), tu_prog("RTM_READER"), flags, errf ? errf : "/dev/null");
	return tu_start_shell(cmd);
}

/* Polls r up to tries times, step_us apart, until it holds want requests;
 * returns how many it holds. */
static size_t wait_requests(struct tu_recv *r, size_t want, int tries, useconds_t step_us)
{
	size_t count = 0;

	for (int i = 0; i < tries; i++) {
		json_object *reqs = tu_recv_requests(r);

		count = json_object_array_length(reqs);
		json_object_put(reqs);
		if (count >= want)
			break;
		usleep(step_us);
	}
	return count;
}

/* SIGTERMs the daemon, then returns (and removes) its stderr file. */
static char *daemon_stop(pid_t rd, const char *errf)
{
	size_t len;
	char *err;

	kill(rd, SIGTERM);
	waitpid(rd, NULL, 0);
	err = tu_slurp(errf, &len);
	unlink(errf);
	return err;
}

/* ---- tests ---- */

static void several_producers_arrive_exactly_as_published(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p[3];
	const char *names[3] = { "svc-one", "svc-two", "svc-three" };
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	for (int i = 0; i < 3; i++)
		tu_spawn(&p[i], dir, names[i], tu_produce_known, i + 1, false);
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	assert_null(tu_json_get(json_object_array_get_idx(reqs, 0), "error"));
	assert_string_equal(json_object_get_string(tu_json_get(json_object_array_get_idx(reqs, 0), "path")),
			    "/v1/metrics");
	for (int i = 0; i < 3; i++) {
		int k = i + 1;
		json_object *m, *pt, *res_attrs = tu_json_get(find_resource(reqs, names[i]), "attributes");
		char pid[16];

		snprintf(pid, sizeof pid, "%d", p[i].pid);
		assert_string_equal(tu_otlp_attr(res_attrs, "process.pid"), pid);
		assert_string_equal(tu_otlp_attr(res_attrs, "service.version"), "2.0");
		assert_string_equal(tu_otlp_attr(res_attrs, "team"), "core");
		assert_non_null(tu_otlp_attr(res_attrs, "service.instance.id"));
		assert_non_null(tu_otlp_attr(res_attrs, "host.name"));
		assert_non_null(tu_otlp_attr(res_attrs, "process.creation.time"));
		assert_string_equal(tu_otlp_attr(res_attrs, "process.executable.name"), "test_reader");
		assert_string_equal(tu_otlp_attr(res_attrs, "process.runtime.name"), "native");

		m = tu_otlp_metric(reqs, 0, names[i], "app.requests");
		assert_non_null(m);
		assert_string_equal(json_object_get_string(tu_json_get(m, "unit")), "{request}");
		assert_string_equal(json_object_get_string(tu_json_get(m, "description")), "Requests served");
		assert_true(json_object_get_boolean(tu_json_get(tu_json_get(m, "sum"), "isMonotonic")));
		assert_int_equal(json_object_get_int(tu_json_get(tu_json_get(m, "sum"), "aggregationTemporality")), 2);
		assert_int_equal(json_object_array_length(tu_json_get(tu_json_get(m, "sum"), "dataPoints")), 2);
		for (int j = 0; j < 2; j++) {
			const char *route;

			pt = point(m, "sum", (size_t)j);
			route = tu_otlp_attr(tu_json_get(pt, "attributes"), "route");
			assert_int_equal(as_ll(tu_json_get(pt, "asInt")), !strcmp(route, "/a") ? 100 * k : k);
			assert_int_equal((uint64_t)as_ll(tu_json_get(pt, "startTimeUnixNano")),
					 tu_start_time(p[i].path, "app.requests", "route", route));
			assert_true(as_ll(tu_json_get(pt, "timeUnixNano")) >= as_ll(tu_json_get(pt, "startTimeUnixNano")));
		}
		m = tu_otlp_metric(reqs, 0, names[i], "app.active");
		assert_null(tu_json_get(tu_json_get(m, "sum"), "isMonotonic"));
		assert_int_equal(as_ll(tu_json_get(point(m, "sum", 0), "asInt")), -k);
		m = tu_otlp_metric(reqs, 0, names[i], "app.ratio");
		assert_true(json_object_get_double(tu_json_get(point(m, "gauge", 0), "asDouble")) == 0.25 * k);
		m = tu_otlp_metric(reqs, 0, names[i], "app.latency");
		assert_string_equal(json_object_get_string(tu_json_get(m, "unit")), "s");
		assert_int_equal(json_object_get_int(tu_json_get(tu_json_get(m, "histogram"), "aggregationTemporality")), 2);
		pt = point(m, "histogram", 0);
		assert_int_equal(as_ll(tu_json_get(pt, "count")), 2 + k);
		assert_true(fabs(json_object_get_double(tu_json_get(pt, "sum")) - (0.505 + 2.0 * k)) < 1e-9);
		assert_true(json_object_get_double(tu_json_get(pt, "min")) == 0.005);
		assert_true(json_object_get_double(tu_json_get(pt, "max")) == 2.0);
		assert_int_equal(json_object_array_length(tu_json_get(pt, "explicitBounds")), 3);
		assert_int_equal(as_ll(json_object_array_get_idx(tu_json_get(pt, "bucketCounts"), 0)), 1);
		assert_int_equal(as_ll(json_object_array_get_idx(tu_json_get(pt, "bucketCounts"), 2)), 1);
		assert_int_equal(as_ll(json_object_array_get_idx(tu_json_get(pt, "bucketCounts"), 3)), k);
		assert_int_equal((uint64_t)as_ll(tu_json_get(pt, "startTimeUnixNano")),
				 tu_start_time(p[i].path, "app.latency", NULL, NULL));
	}
	/* The reader reports itself as one more resource. */
	assert_non_null(tu_otlp_metric(reqs, 0, "rtm-reader", "rtm.reader.segments"));
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 0, "rtm-reader", "rtm.reader.segments"),
					 "sum", 0), "asInt")), 3);
	json_object_put(reqs);
	for (int i = 0; i < 3; i++) {
		tu_reap(&p[i]);
		unlink(p[i].path);
	}
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void produce_counter(struct rtm_segment *seg, int v)
{
	rtm_counter_t c;

	rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "app.count" });
	rtm_counter_add(&c, (uint64_t)v);
}

/* Shared by the killed and the closed case: final values, then the same
 * streams flagged NO_RECORDED_VALUE, then the segment is gone. */
static void expect_streams_ended(struct tu_recv *r, const char *svc, long long value,
				 const char *path)
{
	json_object *reqs = tu_recv_requests(r), *m, *pt;
	struct stat st;

	assert_int_equal(json_object_array_length(reqs), 2);
	m = tu_otlp_metric(reqs, 0, svc, "app.count");
	assert_non_null(m);
	pt = point(m, "sum", 0);
	assert_int_equal(as_ll(tu_json_get(pt, "asInt")), value);
	assert_null(tu_json_get(pt, "flags"));
	m = tu_otlp_metric(reqs, 1, svc, "app.count");
	assert_non_null(m);
	pt = point(m, "sum", 0);
	assert_int_equal(json_object_get_int(tu_json_get(pt, "flags")), 1); /* NO_RECORDED_VALUE */
	assert_null(tu_json_get(pt, "asInt"));
	assert_true(as_ll(tu_json_get(pt, "timeUnixNano")) >
		    as_ll(tu_json_get(point(tu_otlp_metric(reqs, 0, svc, "app.count"), "sum", 0), "timeUnixNano")));
	assert_int_equal(stat(path, &st), -1);
	json_object_put(reqs);
}

static void killed_producer_is_exported_ended_and_removed(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;

	(void)state;
	tu_spawn(&p, dir, "doomed", produce_counter, 77, false);
	tu_reap(&p); /* SIGKILL: no clean close */
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once");
	assert_int_equal(res.status, 0);
	expect_streams_ended(&r, "doomed", 77, p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void closed_producer_is_exported_ended_and_removed(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;

	(void)state;
	tu_spawn(&p, dir, "tidy", produce_counter, 5, true); /* closes, stays alive */
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once");
	assert_int_equal(res.status, 0);
	expect_streams_ended(&r, "tidy", 5, p.path);
	tu_reap(&p);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void keep_dead_leaves_the_segment(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	struct stat st;

	(void)state;
	tu_spawn(&p, dir, "kept", produce_counter, 1, false);
	tu_reap(&p);
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once --keep-dead");
	assert_int_equal(res.status, 0);
	assert_int_equal(stat(p.path, &st), 0);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void corrupt_segment_does_not_disturb_the_others(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	char bad[512];
	int fd;
	json_object *reqs;

	(void)state;
	tu_spawn(&p, dir, "healthy", produce_counter, 9, false);
	snprintf(bad, sizeof bad, "%s/rtm.1.1.1.rtm", dir);
	fd = open(bad, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "\x53\x4d\x54\x52garbage garbage garbage", 27), 27);
	assert_int_equal(ftruncate(fd, 8192), 0);
	close(fd);
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 0, "healthy", "app.count"), "sum", 0),
				   "asInt")), 9);
	assert_non_null(strstr(res.err, "rtm.1.1.1.rtm rejected: "));
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 0, "rtm-reader",
						     "rtm.reader.segments.rejected"), "sum", 0),
				   "asInt")), 1);
	json_object_put(reqs);
	tu_reap(&p);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static double t_of(json_object *reqs, size_t i)
{
	return (double)json_object_get_int64(tu_json_get(json_object_array_get_idx(reqs, i), "t")) / 1000.0;
}

static void retryable_answers_are_retried_with_backoff_and_retry_after(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;
	const char *b0, *b1, *b2;

	(void)state;
	tu_spawn(&p, dir, "retried", produce_counter, 3, false);
	recv_start(&r, "503,429:ra=1,502,429:date=1,504,200");
	reader(&res, dir, endpoint_env(&r), "--once --retry-initial 200ms");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 6);
	/* Backoff: >= 80% of 200ms, then Retry-After 1s, then >= 80% of 800ms,
	 * then the HTTP-date (at least 1s ahead), then >= 80% of 3.2s. */
	assert_true(t_of(reqs, 1) - t_of(reqs, 0) >= 0.16);
	assert_true(t_of(reqs, 2) - t_of(reqs, 1) >= 0.99);
	assert_true(t_of(reqs, 3) - t_of(reqs, 2) >= 0.64);
	assert_true(t_of(reqs, 4) - t_of(reqs, 3) >= 0.9);
	/* Retries resend the same data: nothing lost, nothing changed. */
	b0 = json_object_to_json_string(tu_json_get(find_resource(reqs, "retried"), "attributes"));
	assert_non_null(b0);
	b1 = json_object_get_string(tu_json_get(point(tu_otlp_metric(reqs, 1, "retried", "app.count"), "sum", 0), "asInt"));
	b2 = json_object_get_string(tu_json_get(point(tu_otlp_metric(reqs, 5, "retried", "app.count"), "sum", 0), "asInt"));
	assert_string_equal(b1, "3");
	assert_string_equal(b2, "3");
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void client_errors_are_never_retried(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	tu_spawn(&p, dir, "refused", produce_counter, 1, false);
	recv_start(&r, "400");
	reader(&res, dir, endpoint_env(&r), "--once --retry-initial 10ms");
	assert_int_equal(res.status, 1);
	assert_non_null(strstr(res.err, "refused with HTTP 400"));
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void partial_success_is_logged_counted_and_not_retried(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	tu_spawn(&p, dir, "partial", produce_counter, 1, false);
	recv_start(&r, "partial=5");
	reader(&res, dir, endpoint_env(&r), "--once");
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(res.err, "collector rejected 5 data points: test rejects some points"));
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void a_dropped_connection_is_retried(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	tu_spawn(&p, dir, "dropped", produce_counter, 4, false);
	recv_start(&r, "drop,200");
	reader(&res, dir, endpoint_env(&r), "--once --retry-initial 50ms");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 2);
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 1, "dropped", "app.count"), "sum", 0),
				   "asInt")), 4);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void gzip_json_and_headers_follow_the_otel_variables(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	char env[512];
	json_object *reqs, *req;

	(void)state;
	tu_spawn(&p, dir, "variables", tu_produce_known, 2, false);
	recv_start(&r, NULL);
	/* Signal-specific endpoint is used as is; generic settings apply. */
	snprintf(env, sizeof env,
		 "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1 "
		 "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=%s/custom/path "
		 "OTEL_EXPORTER_OTLP_COMPRESSION=gzip OTEL_EXPORTER_OTLP_HEADERS='x-test=a%%20b' "
		 "OTEL_EXPORTER_OTLP_PROTOCOL=http/json", r.url);
	reader(&res, dir, env, "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	req = json_object_array_get_idx(reqs, 0);
	assert_null(tu_json_get(req, "error"));
	assert_string_equal(json_object_get_string(tu_json_get(req, "path")), "/custom/path");
	assert_string_equal(json_object_get_string(tu_json_get(tu_json_get(req, "headers"), "content-encoding")), "gzip");
	assert_string_equal(json_object_get_string(tu_json_get(tu_json_get(req, "headers"), "content-type")),
			    "application/json");
	assert_string_equal(json_object_get_string(tu_json_get(tu_json_get(req, "headers"), "x-test")), "a b");
	assert_non_null(strstr(json_object_get_string(tu_json_get(tu_json_get(req, "headers"), "user-agent")),
			       "rtm-reader/"));
	/* The JSON body decodes to the same values as protobuf would. */
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 0, "variables", "app.latency"),
					 "histogram", 0), "count")), 4);
	json_object_put(reqs);

	/* A flag overrides the variables: protobuf again. */
	unlink(r.out);
	reader(&res, dir, env, "--once --protocol http/protobuf --compression none");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	req = json_object_array_get_idx(reqs, 0);
	assert_null(tu_json_get(req, "error"));
	assert_string_equal(json_object_get_string(tu_json_get(tu_json_get(req, "headers"), "content-type")),
			    "application/x-protobuf");
	assert_null(tu_json_get(tu_json_get(req, "headers"), "content-encoding"));
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void bad_settings_are_one_line_errors_naming_them(void **state)
{
	static const struct {
		const char *env, *args, *needle;
	} cases[] = {
		{ "OTEL_EXPORTER_OTLP_ENDPOINT=ftp://x", "--once", "OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://x'" },
		{ "OTEL_EXPORTER_OTLP_HEADERS=novalue", "--once", "OTEL_EXPORTER_OTLP_HEADERS: 'novalue'" },
		{ "OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent.pem", "--once",
		  "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read '/nonexistent.pem'" },
		{ "", "--interval 0", "--interval: '0'" },
		{ "", "--exporter kafka", "--exporter: 'kafka'" },
		{ "", "--exporter none,otlp", "--exporter: 'none,otlp' names none with other exporters" },
		{ "", "--protocol GRPC", "--protocol: 'GRPC'" },
		{ "", "--bogus", "unknown option '--bogus'" },
		{ "", "--io fast", "--io: 'fast'" },
		{ "", "--output /nonexistent/dir/file", "--output: cannot open '/nonexistent/dir/file'" },
	};
	/* An OTel variable's bad enum or number: a warning naming it, then the
	 * default, as the SDK configuration specification has it. */
	static const struct {
		const char *env, *needle;
	} warned[] = {
		{ "OTEL_EXPORTER_OTLP_TIMEOUT=abc", "OTEL_EXPORTER_OTLP_TIMEOUT: 'abc' is not a timeout in "
		  "milliseconds (0..3600000); using 10000" },
		{ "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT=-1", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '-1'" },
		{ "OTEL_EXPORTER_OTLP_PROTOCOL=http/xml", "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' is not "
		  "grpc, http/protobuf or http/json; using http/protobuf" },
		{ "OTEL_EXPORTER_OTLP_COMPRESSION=zstd", "OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' is not gzip "
		  "or none; using none" },
		{ "OTEL_METRIC_EXPORT_INTERVAL=-5", "OTEL_METRIC_EXPORT_INTERVAL: '-5'" },
		{ "OTEL_METRIC_EXPORT_TIMEOUT=soon", "OTEL_METRIC_EXPORT_TIMEOUT: 'soon'" },
		{ "OTEL_METRICS_EXPORTER=kafka", "OTEL_METRICS_EXPORTER: 'kafka'" },
		{ "OTEL_SDK_DISABLED=yes", "OTEL_SDK_DISABLED: 'yes' is not true or false; using false" },
		{ "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=sometimes",
		  "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: 'sometimes'" },
		{ "OTEL_EXPORTER_PROMETHEUS_PORT=99999", "OTEL_EXPORTER_PROMETHEUS_PORT: '99999'" },
		{ "OTEL_RESOURCE_ATTRIBUTES=a=%zz", "OTEL_RESOURCE_ATTRIBUTES: 'a=%zz'" },
	};
	char *dir = tu_mkdir();

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct run res;

		reader(&res, dir, cases[i].env, cases[i].args);
		if (res.status != 2 || !strstr(res.err, cases[i].needle))
			fail_msg("case %zu: status %d, stderr \"%s\", expected \"%s\"", i, res.status,
				 res.err, cases[i].needle);
		assert_int_equal(strchr(res.err, '\n') - res.err + 1, (long)strlen(res.err));
	}
	for (size_t i = 0; i < sizeof warned / sizeof warned[0]; i++) {
		struct run res;
		char *nl;

		/* An empty directory: --once then says only that, exit 1. */
		reader(&res, dir, warned[i].env, "--once");
		nl = strchr(res.err, '\n');
		if (res.status != 1 || !nl || !strstr(res.err, warned[i].needle) ||
		    strstr(res.err, warned[i].needle) > nl || !strstr(nl, "nothing to collect"))
			fail_msg("warned %zu: status %d, stderr \"%s\", expected \"%s\" first", i,
				 res.status, res.err, warned[i].needle);
	}
	tu_rmdir(dir);
}

static void large_exports_are_split_and_nothing_is_lost(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p[4];
	struct tu_recv r;
	struct run res;
	json_object *reqs;
	char name[32];

	(void)state;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "big-%d", i);
		tu_spawn(&p[i], dir, name, tu_produce_known, i + 1, false);
	}
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once --max-request-bytes 1024");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_true(json_object_array_length(reqs) >= 4);
	for (int i = 0; i < 4; i++) {
		const char *want[] = { "app.requests", "app.active", "app.ratio", "app.latency" };
		int found[4] = { 0 };

		snprintf(name, sizeof name, "big-%d", i);
		for (size_t q = 0; q < json_object_array_length(reqs); q++) {
			assert_true(json_object_get_int(tu_json_get(json_object_array_get_idx(reqs, q), "bytes")) <= 1024);
			for (int w = 0; w < 4; w++)
				found[w] += tu_otlp_metric(reqs, (int)q, name, want[w]) != NULL;
		}
		for (int w = 0; w < 4; w++)
			assert_int_equal(found[w], 1); /* each exactly once */
	}
	json_object_put(reqs);
	for (int i = 0; i < 4; i++) {
		tu_reap(&p[i]);
		unlink(p[i].path);
	}
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void io_uring_and_sync_proc_paths_agree(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p, q;
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	tu_spawn(&p, dir, "alive", produce_counter, 11, false);
	tu_spawn(&q, dir, "gone", produce_counter, 12, false);
	tu_reap(&q);
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once --keep-dead --io uring");
	if (res.status == 2 && strstr(res.err, "io_uring")) {
		tu_recv_stop(&r);
		skip(); /* no io_uring here: the sync path is covered elsewhere */
	}
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	/* Liveness through the ring: "gone" was ended, "alive" was not. */
	assert_int_equal(json_object_array_length(reqs), 2);
	assert_non_null(tu_otlp_metric(reqs, 1, "gone", "app.count"));
	assert_null(tu_otlp_metric(reqs, 1, "alive", "app.count"));
	json_object_put(reqs);
	tu_reap(&p);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* The daemon through an outage: one line when it starts, one when it ends,
 * and the first export after it carries exact totals. */
static void outage_is_logged_once_and_totals_survive_it(void **state)
{
	char *dir = tu_mkdir(), errf[128], *err;
	struct tu_producer p;
	struct tu_recv r;
	pid_t rd;
	json_object *reqs, *last;

	(void)state;
	tu_spawn(&p, dir, "steady", produce_counter, 21, false);
	recv_start(&r, "503,503,503,503,503,503");
	snprintf(errf, sizeof errf, "/tmp/rtm-reader-outage.%d", (int)getpid());
	rd = daemon_start(&r, dir, "--interval 150ms --retry-max 0", errf);
	/* Wait until at least two successful requests followed the outage. */
	wait_requests(&r, 8, 400, 50000);
	err = daemon_stop(rd, errf);
	reqs = tu_recv_requests(&r);
	assert_true(json_object_array_length(reqs) >= 8);
	last = tu_otlp_metric(reqs, 6, "steady", "app.count");
	assert_int_equal(as_ll(tu_json_get(point(last, "sum", 0), "asInt")), 21);
	{
		int failing = 0, recovered = 0;

		for (char *s = err; (s = strstr(s, "failing")); s++)
			failing++;
		for (char *s = err; (s = strstr(s, "recovered after 6 failed exports")); s++)
			recovered++;
		if (failing != 1 || recovered != 1)
			fail_msg("log: %s", err);
	}
	free(err);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* An export that retries before giving up: the outage the recovery line
 * reports starts at its first failed attempt, not when it gave up.
 * Attempts: 503 at 0, 503 after 0.8-1.2 s (the next wait would pass
 * --retry-max: down), 503 next cycle, 200 on its retry 0.8-1.2 s later;
 * from the first failure that is at least 1.6 s, from giving up at most
 * ~1.35 s. */
static void outage_is_measured_from_the_first_failure(void **state)
{
	char *dir = tu_mkdir(), errf[128], *err, *at;
	struct tu_producer p;
	struct tu_recv r;
	double over = 0, span;
	json_object *reqs;
	pid_t rd;

	(void)state;
	tu_spawn(&p, dir, "steady", produce_counter, 5, false);
	recv_start(&r, "503,503,503");
	snprintf(errf, sizeof errf, "/tmp/rtm-reader-outage1.%d", (int)getpid());
	rd = daemon_start(&r, dir, "--interval 150ms --retry-initial 1s --retry-max 1.2s", errf);
	wait_requests(&r, 4, 600, 50000);
	err = daemon_stop(rd, errf);
	/* The receiver stamps each request when it has read it: the first 503
	 * came after the first attempt began and the 200 before the reader
	 * saw it, so the outage reported must span at least the receiver's
	 * first-to-fourth interval (less the log's 0.1 s rounding).  Counted
	 * from giving up instead, it would miss the first retry wait (>= 0.8 s),
	 * however fast or slow the machine is. */
	reqs = tu_recv_requests(&r);
	assert_true(json_object_array_length(reqs) >= 4);
	span = (double)(as_ll(tu_json_get(json_object_array_get_idx(reqs, 3), "t")) -
			as_ll(tu_json_get(json_object_array_get_idx(reqs, 0), "t"))) / 1e3;
	json_object_put(reqs);
	at = strstr(err, "recovered after ");
	if (!at || sscanf(at, "recovered after %*u failed exports over %lf", &over) != 1 ||
	    over < span - 0.06)
		fail_msg("want an outage of at least %.3f s (first 503 to the 200); log: %s", span,
			 err);
	free(err);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void sigterm_flushes_a_last_collection(void **state)
{
	char *dir = tu_mkdir();
	struct tu_recv r;
	pid_t rd;
	json_object *reqs;
	struct rtm_segment *seg;
	rtm_counter_t c;
	int st;

	(void)state;
	seg = tu_open(dir, "flushed");
	rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "app.count" });
	rtm_counter_add(&c, 1);
	recv_start(&r, NULL);
	rd = daemon_start(&r, dir, "--interval 1h", NULL);
	assert_int_equal(wait_requests(&r, 1, 400, 25000), 1);
	rtm_counter_add(&c, 41);
	kill(rd, SIGTERM);
	assert_int_equal(waitpid(rd, &st, 0), rd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 2);
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 1, "flushed", "app.count"), "sum", 0),
				   "asInt")), 42);
	json_object_put(reqs);
	rtm_segment_close(seg);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void stdout_exporter_is_the_default_without_a_collector(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	char cmd[2048];
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	json_object *o;

	(void)state;
	tu_spawn(&p, dir, "printed", produce_counter, 8, false);
	snprintf(cmd, sizeof cmd,
		 "env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_METRICS_ENDPOINT RTM_DIR=%s %s --once",
		 dir, tu_prog("RTM_READER"));
	f = popen(cmd, "r");
	assert_true(getline(&line, &cap, f) > 0);
	assert_int_equal(pclose(f), 0);
	o = json_tokener_parse(line);
	assert_non_null(o);
	/* One OTLP/JSON object per line: lowerCamelCase, int64 as strings. */
	assert_non_null(strstr(line, "\"resourceMetrics\""));
	assert_non_null(strstr(line, "\"asInt\":\"8\""));
	assert_non_null(strstr(line, "\"startTimeUnixNano\":\""));
	json_object_put(o);
	free(line);
	tu_reap(&p);
	unlink(p.path);
	tu_rmdir(dir);
}

/* ---- process metrics from /proc, against what the process knows ---- */

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Starts 4 threads, opens 5 files, burns some CPU, then reports its own
 * view (CPU time from getrusage, open fds by probing) on the pipe. */
static void produce_busy_process(struct rtm_segment *seg, int unused)
{
	struct rusage ru;
	volatile double x = 0;
	pthread_t t;
	int fds = 0;
	char msg[128];

	(void)unused;
	produce_counter(seg, 1);
	for (int i = 0; i < 4; i++)
		pthread_create(&t, NULL, sleeper, NULL);
	for (int i = 0; i < 5; i++)
		open("/dev/null", O_RDONLY);
	for (long i = 0; i < 30000000; i++)
		x += (double)i * 0.5;
	(void)x; /* volatile: the loop is the CPU time to burn */
	getrusage(RUSAGE_SELF, &ru);
	for (int fd = 0; fd < 4096; fd++)
		fds += fcntl(fd, F_GETFD) != -1;
	snprintf(msg, sizeof msg, "%.6f %d",
		 (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6, fds);
	snprintf(tu_child_note, sizeof tu_child_note, "%s", msg);
}

static double num(json_object *p)
{
	json_object *v = tu_json_get(p, "asDouble");

	return v ? json_object_get_double(v) : (double)as_ll(tu_json_get(p, "asInt"));
}

static void process_metrics_agree_with_the_process(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs, *m;
	double cpu_self, cpu = 0;
	int fds_self;
	(void)state;
	tu_spawn(&p, dir, "busy", produce_busy_process, 0, false);
	assert_int_equal(sscanf(p.note, "%lf %d", &cpu_self, &fds_self), 2);
	recv_start(&r, NULL);
	reader(&res, dir, endpoint_env(&r), "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);

	m = tu_otlp_metric(reqs, 0, "busy", "process.thread.count");
	assert_non_null(m);
	assert_int_equal(as_ll(tu_json_get(point(m, "sum", 0), "asInt")), 5);
	m = tu_otlp_metric(reqs, 0, "busy", "process.unix.file_descriptor.count");
	assert_int_equal(as_ll(tu_json_get(point(m, "sum", 0), "asInt")), fds_self);
	m = tu_otlp_metric(reqs, 0, "busy", "process.cpu.time");
	assert_true(json_object_get_boolean(tu_json_get(tu_json_get(m, "sum"), "isMonotonic")));
	for (int i = 0; i < 2; i++)
		cpu += num(point(m, "sum", (size_t)i));
	/* /proc counts in clock ticks: agree within a tick or two, and the
	 * child used no CPU after measuring itself. */
	if (cpu < cpu_self - 0.03 || cpu > cpu_self + 0.05)
		fail_msg("process.cpu.time %.3f s, getrusage %.3f s", cpu, cpu_self);
	m = tu_otlp_metric(reqs, 0, "busy", "process.memory.usage");
	assert_true(as_ll(tu_json_get(point(m, "sum", 0), "asInt")) > 0);
	assert_string_equal(json_object_get_string(tu_json_get(m, "unit")), "By");
	m = tu_otlp_metric(reqs, 0, "busy", "process.context_switches");
	assert_true(as_ll(tu_json_get(point(m, "sum", 0), "asInt")) > 0);
	m = tu_otlp_metric(reqs, 0, "busy", "process.paging.faults");
	assert_true(as_ll(tu_json_get(point(m, "sum", 1), "asInt")) > 0);
	assert_non_null(tu_otlp_metric(reqs, 0, "busy", "process.memory.virtual"));
	assert_non_null(tu_otlp_metric(reqs, 0, "busy", "process.disk.io"));
	assert_non_null(tu_otlp_metric(reqs, 0, "busy", "rtm.process.runqueue.wait"));
	m = tu_otlp_metric(reqs, 0, "busy", "process.uptime");
	assert_true(num(point(m, "gauge", 0)) > 0);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void groups_follow_preset_file_env_and_flags_in_that_order(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;
	char conf[600], env[1600];
	FILE *f;

	(void)state;
	tu_spawn(&p, dir, "grouped", produce_busy_process, 0, false);
	snprintf(conf, sizeof conf, "%s/reader.conf", dir);
	f = fopen(conf, "w");
	fprintf(f, "# production, but without memory metrics\npreset = production\n"
		   "group.memory = off\ninterval = 5s\n");
	fclose(f);
	recv_start(&r, NULL);
	/* File: production (scheduler off) and memory off. */
	snprintf(env, sizeof env, "%s", endpoint_env(&r));
	{
		char args[700];

		snprintf(args, sizeof args, "--once --config %s", conf);
		reader(&res, dir, env, args);
	}
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_non_null(tu_otlp_metric(reqs, 0, "grouped", "process.thread.count"));
	assert_non_null(tu_otlp_metric(reqs, 0, "grouped", "process.cpu.time"));
	assert_null(tu_otlp_metric(reqs, 0, "grouped", "process.memory.usage"));
	assert_null(tu_otlp_metric(reqs, 0, "grouped", "rtm.process.runqueue.wait"));
	json_object_put(reqs);
	/* The environment outranks the file... */
	unlink(r.out);
	snprintf(env, sizeof env, "%s RTM_CONFIG=%s RTM_GROUP_MEMORY=on RTM_GROUP_SCHEDULER=on",
		 endpoint_env(&r), conf);
	reader(&res, dir, env, "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_non_null(tu_otlp_metric(reqs, 0, "grouped", "process.memory.usage"));
	assert_non_null(tu_otlp_metric(reqs, 0, "grouped", "rtm.process.runqueue.wait"));
	json_object_put(reqs);
	/* ...and flags outrank the environment. */
	unlink(r.out);
	reader(&res, dir, env, "--once --group memory=off --group threads=off");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_null(tu_otlp_metric(reqs, 0, "grouped", "process.memory.usage"));
	assert_null(tu_otlp_metric(reqs, 0, "grouped", "process.thread.count"));
	assert_non_null(tu_otlp_metric(reqs, 0, "grouped", "rtm.process.runqueue.wait"));
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

static void bad_config_files_name_the_line(void **state)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
		{ "interval = 5s\ncolour = blue\n", ":2: unknown key 'colour'" },
		{ "group.memory = sometimes\n", ":1: group.memory 'sometimes' is not on, off or a duration" },
		{ "preset = fast\n", ":1: preset 'fast' is not default or production" },
		{ "just words\n", ":1: expected key = value" },
		{ "interval = soon\n", ":1: interval 'soon'" },
	};
	char *dir = tu_mkdir();
	char conf[600], args[700];

	(void)state;
	snprintf(conf, sizeof conf, "%s/bad.conf", dir);
	snprintf(args, sizeof args, "--once --config %s", conf);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct run res;
		FILE *f = fopen(conf, "w");

		fputs(cases[i].text, f);
		fclose(f);
		reader(&res, dir, "", args);
		if (res.status != 2 || !strstr(res.err, cases[i].needle) || !strstr(res.err, conf))
			fail_msg("case %zu: status %d, stderr \"%s\"", i, res.status, res.err);
	}
	{
		struct run res;

		reader(&res, dir, "RTM_GROUP_THREADS=maybe", "--once");
		assert_int_equal(res.status, 2);
		assert_non_null(strstr(res.err, "RTM_GROUP_THREADS: 'maybe'"));
		reader(&res, dir, "", "--once --group cache=on");
		assert_int_equal(res.status, 2);
		assert_non_null(strstr(res.err, "--group: 'cache=on'"));
		reader(&res, dir, "RTM_PRESET=turbo", "--once");
		assert_int_equal(res.status, 2);
		assert_non_null(strstr(res.err, "RTM_PRESET: 'turbo'"));
	}
	tu_rmdir(dir);
}

/* The seed's ground truth, end to end: an unmodified program under the
 * preload allocates exactly N blocks of M bytes and frees K; what the reader
 * exports moves by exactly that, and its thread count is exact. */
static int64_t exported(struct tu_recv *r, const char *dir, const char *svc, const char *name,
			int idx)
{
	struct run res;
	json_object *reqs, *m;
	int64_t v;

	unlink(r->out);
	reader(&res, dir, endpoint_env(r), "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(r);
	m = tu_otlp_metric(reqs, 0, svc, name);
	if (!m)
		fail_msg("%s not exported", name);
	v = as_ll(tu_json_get(point(m, "sum", (size_t)idx), "asInt"));
	json_object_put(reqs);
	return v;
}

static void preload_ground_truth_is_exported_exactly(void **state)
{
	enum { N = 500, M = 1000, K = 200, T = 3 }; /* malloc_usable_size(1000) == 1000 */
	const char *const *names = tu_alloc_names;
	int64_t want[5], before[5];
	char *dir;
	int to, from;
	char buf[4];
	pid_t pid;
	struct tu_recv r;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	tu_alloc_delta(want, N, M, K);
	pid = tu_start_alloc_truth(dir, "truth", N, M, K, T, &to, &from);
	recv_start(&r, NULL);
	/* Wait (bounded) for the program to publish, then take the baseline. */
	for (int i = 0; i < 2000; i++) {
		struct run res;
		json_object *reqs;
		bool found;

		unlink(r.out);
		reader(&res, dir, endpoint_env(&r), "--once");
		reqs = tu_recv_requests(&r);
		found = tu_otlp_metric(reqs, 0, "truth", names[0]) != NULL;
		json_object_put(reqs);
		if (found)
			break;
		usleep(10000);
	}
	for (int i = 0; i < 5; i++)
		before[i] = exported(&r, dir, "truth", names[i], 0);
	assert_int_equal(write(to, "g", 1), 1);
	assert_int_equal(read(from, buf, 2), 2);
	for (int i = 0; i < 5; i++) {
		int64_t delta = exported(&r, dir, "truth", names[i], 0) - before[i];

		if (delta != want[i])
			fail_msg("exported %s moved by %lld, expected %lld", names[i],
				 (long long)delta, (long long)want[i]);
	}
	assert_int_equal(write(to, "g", 1), 1);
	assert_int_equal(read(from, buf, 2), 2);
	/* main + T + the preload's sampler thread */
	assert_int_equal(exported(&r, dir, "truth", "process.thread.count", 0), T + 2);
	assert_int_equal(write(to, "g", 1), 1);
	waitpid(pid, NULL, 0);
	close(to);
	close(from);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* --pid and --match: processes with no segment, from /proc alone. */
static void processes_without_a_segment_are_collected_on_request(void **state)
{
	char *dir = tu_mkdir();
	struct tu_recv r;
	struct run res;
	json_object *reqs, *res_attrs;
	char args[256], pid_s[16];
	pid_t pid, other;

	(void)state;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/bin/sleep", "sleep", "4711", (char *)NULL);
		_exit(127);
	}
	other = fork();
	if (other == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/bin/sleep", "sleep", "4712", (char *)NULL);
		_exit(127);
	}
	/* Wait (bounded) until both have exec'd. */
	for (int i = 0; i < 500; i++) {
		char c1[64] = "", c2[64] = "";

		rd_proc_read(pid, "cmdline", c1, sizeof c1);
		rd_proc_read(other, "cmdline", c2, sizeof c2);
		if (!strcmp(c1, "sleep") && !strcmp(c2, "sleep"))
			break;
		usleep(10000);
	}
	recv_start(&r, NULL);
	snprintf(args, sizeof args, "--once --match 'sleep 4711$'");
	reader(&res, dir, endpoint_env(&r), args);
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	res_attrs = tu_json_get(find_resource(reqs, "sleep"), "attributes");
	snprintf(pid_s, sizeof pid_s, "%d", pid);
	assert_string_equal(tu_otlp_attr(res_attrs, "process.pid"), pid_s);
	assert_string_equal(tu_otlp_attr(res_attrs, "process.executable.name"), "sleep");
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 0, "sleep", "process.thread.count"), "sum", 0),
				   "asInt")), 1);
	json_object_put(reqs);

	unlink(r.out);
	snprintf(args, sizeof args, "--once --pid %d", other);
	reader(&res, dir, endpoint_env(&r), args);
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	snprintf(pid_s, sizeof pid_s, "%d", other);
	assert_string_equal(tu_otlp_attr(tu_json_get(find_resource(reqs, "sleep"), "attributes"), "process.pid"), pid_s);
	json_object_put(reqs);

	reader(&res, dir, "", "--once --match '('");
	assert_int_equal(res.status, 2);
	assert_non_null(strstr(res.err, "--match: '(' is not a regular expression"));
	kill(pid, SIGKILL);
	kill(other, SIGKILL);
	waitpid(pid, NULL, 0);
	waitpid(other, NULL, 0);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* ---- OTLP/gRPC ---- */

/* The gRPC receiver (tests/otlp-receiver/grpc-receiver.js), optionally with
 * TLS from tls_dir (and client certificates required when mtls). */
static void grpc_start(struct tu_recv *r, const char *script, const char *tls_dir, bool mtls)
{
	const char *args[8] = { "--script", script ? script : "" };
	size_t n = 2;

	if (tls_dir) {
		args[n++] = "--tls";
		args[n++] = tls_dir;
		if (mtls)
			args[n++] = "--mtls";
	}
	args[n] = NULL;
	tu_recv_start(r, "RTM_GRPC_RECEIVER", args);
}

/* The OTel variables that point the reader at r over gRPC: the generic
 * endpoint, which for gRPC is used as is (no /v1/metrics). */
static char *grpc_env(const struct tu_recv *r, const char *scheme)
{
	static char env[256];

	snprintf(env, sizeof env, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=%s://127.0.0.1:%d",
		 scheme, r->port);
	return env;
}

static const char *req_str(json_object *reqs, size_t i, const char *key)
{
	return json_object_get_string(tu_json_get(json_object_array_get_idx(reqs, i), key));
}

static void grpc_exports_what_http_does(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs, *m, *pt;
	int64_t timeout_ms;

	(void)state;
	tu_spawn(&p, dir, "grpc-svc", tu_produce_known, 3, false);
	for (int gz = 0; gz < 2; gz++) {
		grpc_start(&r, NULL, NULL, false);
		reader(&res, dir, grpc_env(&r, "http"), gz ? "--once --compression gzip" : "--once");
		assert_int_equal(res.status, 0);
		reqs = tu_recv_requests(&r);
		assert_int_equal(json_object_array_length(reqs), 1);
		/* The message was compressed only when asked. */
		assert_string_equal(req_str(reqs, 0, "encoding"), gz ? "gzip" : "identity");
		/* grpc-timeout carries the export timeout (10 s by default). */
		timeout_ms = json_object_get_int64(tu_json_get(json_object_array_get_idx(reqs, 0), "timeout_ms"));
		assert_true(timeout_ms > 0 && timeout_ms <= 10000);
		assert_non_null(strstr(json_object_get_string(tu_json_get(tu_json_get(
			json_object_array_get_idx(reqs, 0), "metadata"), "user-agent")), "rtm-reader/"));
		m = tu_otlp_metric(reqs, 0, "grpc-svc", "app.requests");
		assert_non_null(m);
		for (int j = 0; j < 2; j++) {
			const char *route;

			pt = point(m, "sum", (size_t)j);
			route = tu_otlp_attr(tu_json_get(pt, "attributes"), "route");
			assert_int_equal(as_ll(tu_json_get(pt, "asInt")), !strcmp(route, "/a") ? 300 : 3);
		}
		pt = point(tu_otlp_metric(reqs, 0, "grpc-svc", "app.latency"), "histogram", 0);
		assert_int_equal(as_ll(tu_json_get(pt, "count")), 5);
		json_object_put(reqs);
		tu_recv_stop(&r);
	}
	tu_reap(&p);
	unlink(p.path);
	tu_rmdir(dir);
}

/* A gRPC endpoint without a scheme, as the OTel specification allows:
 * OTEL_EXPORTER_OTLP_INSECURE=true is plaintext, unset (false) is TLS, and
 * anything else a one-line error at start. */
static void grpc_endpoint_without_scheme_follows_insecure(void **state)
{
	char *dir = tu_mkdir(), env[256];
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	tu_spawn(&p, dir, "grpc-svc", tu_produce_known, 3, false);
	grpc_start(&r, NULL, NULL, false);
	snprintf(env, sizeof env, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:%d "
		 "OTEL_EXPORTER_OTLP_INSECURE=true", r.port);
	reader(&res, dir, env, "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	assert_non_null(tu_otlp_metric(reqs, 0, "grpc-svc", "app.requests"));
	json_object_put(reqs);
	/* No INSECURE: TLS, which this plaintext server cannot answer. */
	snprintf(env, sizeof env, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:%d "
		 "OTEL_EXPORTER_OTLP_RETRY_MAX=0", r.port);
	reader(&res, dir, env, "--once --retry-max 0");
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	json_object_put(reqs);
	assert_non_null(strstr(res.err, "https://127.0.0.1:"));
	snprintf(env, sizeof env, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:%d "
		 "OTEL_EXPORTER_OTLP_METRICS_INSECURE=maybe", r.port);
	reader(&res, dir, env, "--once");
	assert_int_equal(res.status, 2);
	assert_non_null(strstr(res.err, "OTEL_EXPORTER_OTLP_METRICS_INSECURE: 'maybe' is not true or false"));
	tu_recv_stop(&r);
	tu_reap(&p);
	unlink(p.path);
	tu_rmdir(dir);
}

/* docs/examples/reader.conf (installed under share/doc/rtm/examples)
 * sets every key the settings file takes, and the reader accepts it. */
static void the_example_config_names_every_key(void **state)
{
	static const char *const keys[] = { "preset", "interval", "prometheus", "prometheus.created", "leak", "leak.window",
					    "leak.heap", "leak.threads", "leak.fds", "limit.series",
					    "limit.strings", "limit.user-series", "proc-root",
					    "cgroup-root" };
	char *dir = tu_mkdir(), path[4096], args[4200], *text;
	size_t len;
	struct run res;

	(void)state;
	snprintf(path, sizeof path, "%s/docs/examples/reader.conf", tu_prog("RTM_SOURCE_ROOT"));
	text = tu_slurp(path, &len);
	assert_non_null(text);
	for (size_t k = 0; k < sizeof keys / sizeof keys[0] + RD_GROUP_N; k++) {
		char want[64];

		if (k < sizeof keys / sizeof keys[0])
			snprintf(want, sizeof want, "\n%s = ", keys[k]);
		else
			snprintf(want, sizeof want, "\ngroup.%s = ",
				 rd_group_name((enum rd_group)(k - sizeof keys / sizeof keys[0])));
		if (!strstr(text, want))
			fail_msg("%s does not set '%s'", path, want + 1);
	}
	free(text);
	snprintf(args, sizeof args, "--config %s --once --exporter none", path);
	reader(&res, dir, NULL, args);
	/* Accepted: --once only finds nothing to collect. */
	assert_int_equal(res.status, 1);
	assert_non_null(strstr(res.err, "nothing to collect"));
	tu_rmdir(dir);
}

/* OTel SDK variables a reader cannot apply are said once, not ignored
 * without a word; the run goes on. */
static void unapplied_otel_variables_are_logged(void **state)
{
	char *dir = tu_mkdir();
	struct run res;

	(void)state;
	reader(&res, dir, "OTEL_METRICS_EXEMPLAR_FILTER=always_on OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=10",
	       "--once --exporter none");
	/* Not a settings error (2): --once only found nothing to collect. */
	assert_int_equal(res.status, 1);
	assert_non_null(strstr(res.err, "nothing to collect"));
	assert_non_null(strstr(res.err, "OTEL_METRICS_EXEMPLAR_FILTER is set, but does not apply"));
	assert_non_null(strstr(res.err, "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is set, but does not apply"));
	assert_null(strstr(res.err, "OTEL_CONFIG_FILE"));
	tu_rmdir(dir);
}

static void grpc_statuses_follow_the_otlp_retry_rules(void **state)
{
	static const struct {
		const char *script;
		size_t requests;
		int status;
		const char *says;
	} cases[] = {
		/* Retryable; RetryInfo's delay is honoured over the backoff. */
		{ "unavailable,exhausted:ri=600,ok", 3, 0, NULL },
		{ "unavailable:ri=600,ok", 2, 0, NULL },
		/* RESOURCE_EXHAUSTED without RetryInfo, and client errors: dropped. */
		{ "exhausted", 1, 1, "refused: gRPC RESOURCE_EXHAUSTED: scripted exhausted 100%" },
		{ "invalid", 1, 1, "refused: gRPC INVALID_ARGUMENT: scripted invalid 100%" },
		/* Partial success: logged, not retried. */
		{ "partial=4", 1, 0, "collector rejected 4 data points: test rejects some points" },
		/* The connection dropped before the answer: retried. */
		{ "drop,ok", 2, 0, NULL },
	};
	char *dir = tu_mkdir();
	struct tu_producer p;

	(void)state;
	tu_spawn(&p, dir, "grpc-retry", produce_counter, 9, false);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct tu_recv r;
		struct run res;
		json_object *reqs;

		grpc_start(&r, cases[c].script, NULL, false);
		reader(&res, dir, grpc_env(&r, "http"), "--once --retry-initial 20ms");
		reqs = tu_recv_requests(&r);
		if (json_object_array_length(reqs) != cases[c].requests || res.status != cases[c].status)
			fail_msg("script %s: %zu requests, exit %d; stderr: %s", cases[c].script,
				 json_object_array_length(reqs), res.status, res.err);
		if (cases[c].says && !strstr(res.err, cases[c].says))
			fail_msg("script %s: stderr lacks '%s': %s", cases[c].script, cases[c].says, res.err);
		/* Every attempt carries the same request. */
		for (size_t i = 1; i < cases[c].requests; i++)
			assert_string_equal(json_object_to_json_string(tu_json_get(json_object_array_get_idx(reqs, i), "body")),
					    json_object_to_json_string(tu_json_get(json_object_array_get_idx(reqs, 0), "body")));
		if (strstr(cases[c].script, "ri=600")) {
			/* The attempt after the RetryInfo answer waited its delay
			 * (the backoff alone would have been ~20-40 ms). */
			size_t at = strstr(cases[c].script, "exhausted") ? 1 : 0;
			int64_t gap = json_object_get_int64(tu_json_get(json_object_array_get_idx(reqs, at + 1), "t")) -
				json_object_get_int64(tu_json_get(json_object_array_get_idx(reqs, at), "t"));

			if (gap < 590)
				fail_msg("script %s: retried after %lld ms, before RetryInfo's 600 ms",
					 cases[c].script, (long long)gap);
		}
		assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, (int)cases[c].requests - 1,
								   "grpc-retry", "app.count"), "sum", 0), "asInt")), 9);
		json_object_put(reqs);
		tu_recv_stop(&r);
	}
	tu_reap(&p);
	unlink(p.path);
	tu_rmdir(dir);
}

/* A test CA, a server certificate for 127.0.0.1 and a client certificate. */
static void make_certs(const char *d)
{
	char cmd[2048];
	int st;

	snprintf(cmd, sizeof cmd,
		 "cd %s && (printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=rtm-test-ca && "
		 "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
		 "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext && "
		 "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=rtm-reader && "
		 "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2) 2>/dev/null",
		 d);
	free(tu_run(cmd, &st, NULL));
	if (st)
		fail_msg("openssl could not make the test certificates");
}

static void grpc_over_tls_and_mtls(void **state)
{
	char *dir = tu_mkdir(), *certs = tu_mkdir(), args[1024];
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs;

	(void)state;
	make_certs(certs);
	tu_spawn(&p, dir, "grpc-tls", produce_counter, 6, false);
	/* TLS, the server checked against the test CA; the retry goes over
	 * the same connection (the same client address and port). */
	grpc_start(&r, "unavailable", certs, false);
	snprintf(args, sizeof args, "--once --retry-initial 20ms --certificate %s/ca.crt", certs);
	reader(&res, dir, grpc_env(&r, "https"), args);
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 2);
	assert_string_equal(req_str(reqs, 0, "peer"), req_str(reqs, 1, "peer"));
	assert_int_equal(as_ll(tu_json_get(point(tu_otlp_metric(reqs, 1, "grpc-tls", "app.count"), "sum", 0),
				   "asInt")), 6);
	json_object_put(reqs);
	/* Without the CA the server is not trusted: nothing arrives. */
	reader(&res, dir, grpc_env(&r, "https"), "--once --retry-max 300ms --retry-initial 50ms");
	assert_int_not_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 2);
	json_object_put(reqs);
	tu_recv_stop(&r);

	/* mTLS: refused without a client certificate, accepted with one. */
	grpc_start(&r, NULL, certs, true);
	snprintf(args, sizeof args, "--once --retry-max 300ms --retry-initial 50ms --certificate %s/ca.crt",
		 certs);
	reader(&res, dir, grpc_env(&r, "https"), args);
	assert_int_not_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 0);
	json_object_put(reqs);
	snprintf(args, sizeof args, "--once --certificate %s/ca.crt --client-certificate %s/client.crt "
		 "--client-key %s/client.key", certs, certs, certs);
	reader(&res, dir, grpc_env(&r, "https"), args);
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	json_object_put(reqs);
	tu_recv_stop(&r);
	tu_reap(&p);
	unlink(p.path);
	tu_rmdir(certs);
	tu_rmdir(dir);
}

/* ---- delta temporality ---- */

static rtm_counter_t delta_ctr;
static rtm_hist_t delta_hist;

/* Each SIGUSR1: +7 on the counter, three histogram values. */
static void on_usr1(int sig)
{
	(void)sig;
	rtm_counter_add(&delta_ctr, 7);
	rtm_hist_record(&delta_hist, 0.005);
	rtm_hist_record(&delta_hist, 0.5);
	rtm_hist_record(&delta_hist, 5);
}

static void produce_on_signal(struct rtm_segment *seg, int unused)
{
	(void)unused;
	rtm_counter_create(seg, &delta_ctr, &(struct rtm_metric_def){ .name = "app.delta" });
	rtm_hist_create(seg, &delta_hist, &(struct rtm_metric_def){
		.name = "app.delta.hist", .unit = "s", .bounds = (const double[]){ 0.01, 1 },
		.n_bounds = 2 });
	signal(SIGUSR1, on_usr1);
}

/* Sums of the delivered (HTTP 200) delta points of the producer's two
 * streams; checks that each delivered point starts where the stream's
 * previous delivered point ended, within one reader's run (runs are told
 * apart by the reader's service.instance.id). */
/* A number the receiver's decoder omits when it is zero (proto3 default). */
static long long or0(json_object *o)
{
	return o ? strtoll(json_object_get_string(o), NULL, 10) : 0;
}

static void sum_deltas(json_object *reqs, long long *ctr, long long *count, long long buckets[3])
{
	long long last_end[2] = { 0, 0 };
	char run[128] = "";

	*ctr = *count = buckets[0] = buckets[1] = buckets[2] = 0;
	for (size_t q = 0; q < json_object_array_length(reqs); q++) {
		json_object *req = json_object_array_get_idx(reqs, q), *m, *self;
		const char *inst;

		if (json_object_get_int(tu_json_get(req, "status")) != 200)
			continue;
		{
			json_object *one = json_object_new_array();

			json_object_array_add(one, json_object_get(req));
			self = find_resource(one, "rtm-reader");
			inst = tu_otlp_attr(tu_json_get(self, "attributes"), "service.instance.id");
			if (inst && strcmp(inst, run)) {
				snprintf(run, sizeof run, "%s", inst);
				last_end[0] = last_end[1] = 0;
			}
			for (int k = 0; k < 2; k++) {
				json_object *pt;

				m = tu_otlp_metric(one, 0, "delta-svc", k ? "app.delta.hist" : "app.delta");
				if (!m)
					continue;
				assert_int_equal(json_object_get_int(tu_json_get(tu_json_get(m, k ? "histogram" : "sum"),
									 "aggregationTemporality")), 1);
				pt = point(m, k ? "histogram" : "sum", 0);
				if (last_end[k])
					assert_int_equal(as_ll(tu_json_get(pt, "startTimeUnixNano")), last_end[k]);
				last_end[k] = as_ll(tu_json_get(pt, "timeUnixNano"));
				if (!k) {
					*ctr += or0(tu_json_get(pt, "asInt"));
					continue;
				}
				*count += or0(tu_json_get(pt, "count"));
				assert_null(tu_json_get(pt, "min")); /* unknown for an interval */
				for (int b = 0; b < 3; b++)
					buckets[b] += or0(json_object_array_get_idx(tu_json_get(pt, "bucketCounts"),
										 (size_t)b));
			}
			json_object_put(one);
		}
	}
}

static void signal_n(pid_t pid, int n)
{
	for (int i = 0; i < n; i++) {
		kill(pid, SIGUSR1);
		usleep(60000);
	}
}

static void delta_temporality_loses_nothing_across_an_outage_and_a_restart(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_recv r;
	json_object *reqs;
	long long ctr, count, buckets[3];
	size_t n0;
	pid_t rd;

	(void)state;
	/* Exports fail for a while (retries give up after 150 ms), then
	 * succeed: the deltas of the failed ones arrive in the next. */
	recv_start(&r, "200,200,503,503,503,503,503,503,drop,503,200");
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta", 1);
	rd = daemon_start(&r, dir, "--interval 200ms --retry-initial 40ms --retry-max 150ms", NULL);
	/* Started after the reader's first export (of its own metrics): every
	 * increment of it is new. */
	assert_true(wait_requests(&r, 1, 600, 50000) >= 1);
	tu_spawn(&p, dir, "delta-svc", produce_on_signal, 0, false);
	signal_n(p.pid, 20);
	usleep(800000);
	kill(rd, SIGTERM); /* a final collection and export */
	waitpid(rd, NULL, 0);
	/* A restarted reader begins the producer's streams when it first sees
	 * them: nothing happens in between here, so nothing is missed. */
	reqs = tu_recv_requests(&r);
	n0 = json_object_array_length(reqs);
	json_object_put(reqs);
	rd = daemon_start(&r, dir, "--interval 200ms", NULL);
	/* Its first export: it has seen the producer (however slow the run). */
	assert_true(wait_requests(&r, n0 + 1, 600, 50000) > n0);
	signal_n(p.pid, 5);
	usleep(700000);
	kill(rd, SIGTERM);
	waitpid(rd, NULL, 0);
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	reqs = tu_recv_requests(&r);
	sum_deltas(reqs, &ctr, &count, buckets);
	assert_int_equal(ctr, 25 * 7);
	assert_int_equal(count, 25 * 3);
	assert_int_equal(buckets[0], 25);
	assert_int_equal(buckets[1], 25);
	assert_int_equal(buckets[2], 25);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* The OTel variables added for the SDK configuration specification, each
 * with its effect. */
static void otel_variables_take_effect(void **state)
{
	char *dir = tu_mkdir(), env[1024], out[300], *text;
	struct tu_producer p;
	struct tu_recv r;
	struct run res;
	json_object *reqs, *self;

	(void)state;
	tu_spawn(&p, dir, "env-svc", produce_counter, 3, false);

	/* OTEL_SDK_DISABLED: said once; --once succeeds and sends nothing. */
	recv_start(&r, NULL);
	snprintf(env, sizeof env, "%s OTEL_SDK_DISABLED=TRUE", endpoint_env(&r));
	reader(&res, dir, env, "--once");
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(res.err, "OTEL_SDK_DISABLED=true: not collecting or exporting"));
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 0);
	json_object_put(reqs);

	/* otlp,console: both, the console into --output; the reader's own
	 * resource takes every OTEL_RESOURCE_ATTRIBUTES key, service.name
	 * included, and OTEL_SERVICE_NAME over it. */
	snprintf(out, sizeof out, "%s/console.jsonl", dir);
	snprintf(env, sizeof env, "%s OTEL_METRICS_EXPORTER=OTLP,console "
		 "OTEL_RESOURCE_ATTRIBUTES=service.name=attr-svc,host.name=h1,deployment.environment=prod",
		 endpoint_env(&r));
	{
		char args[400];

		snprintf(args, sizeof args, "--once --output %s", out);
		reader(&res, dir, env, args);
	}
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	self = tu_json_get(find_resource(reqs, "attr-svc"), "attributes");
	assert_non_null(self);
	assert_string_equal(tu_otlp_attr(self, "host.name"), "h1");
	assert_string_equal(tu_otlp_attr(self, "deployment.environment"), "prod");
	json_object_put(reqs);
	text = tu_slurp(out, &(size_t){ 0 });
	assert_non_null(text);
	assert_non_null(strstr(text, "\"resourceMetrics\""));
	assert_non_null(strstr(text, "env-svc"));
	assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text)); /* one request, one line */
	free(text);
	snprintf(env, sizeof env, "%s OTEL_SERVICE_NAME=named OTEL_RESOURCE_ATTRIBUTES=service.name=attr-svc",
		 endpoint_env(&r));
	reader(&res, dir, env, "--once");
	reqs = tu_recv_requests(&r);
	assert_non_null(find_resource(reqs, "named"));
	json_object_put(reqs);
	tu_recv_stop(&r);

	/* OTEL_METRIC_EXPORT_TIMEOUT bounds the whole export, retries
	 * included: 300 ms of 50, 100, 200 ms backoffs is at most 4 tries
	 * (the default, 30 s, would be many more). */
	recv_start(&r, "503,503,503,503,503,503,503,503,503,503,503,503");
	snprintf(env, sizeof env, "%s OTEL_METRIC_EXPORT_TIMEOUT=300", endpoint_env(&r));
	reader(&res, dir, env, "--once --retry-initial 50ms");
	assert_int_equal(res.status, 1);
	reqs = tu_recv_requests(&r);
	assert_true(json_object_array_length(reqs) >= 1 && json_object_array_length(reqs) <= 4);
	json_object_put(reqs);
	tu_recv_stop(&r);

	/* OTEL_EXPORTER_OTLP_TIMEOUT=0: no limit, so gRPC sends no deadline. */
	grpc_start(&r, NULL, NULL, false);
	snprintf(env, sizeof env, "%s OTEL_EXPORTER_OTLP_TIMEOUT=0", grpc_env(&r, "http"));
	reader(&res, dir, env, "--once");
	assert_int_equal(res.status, 0);
	reqs = tu_recv_requests(&r);
	assert_int_equal(json_object_array_length(reqs), 1);
	assert_null(tu_json_get(json_object_array_get_idx(reqs, 0), "timeout_ms"));
	json_object_put(reqs);
	tu_recv_stop(&r);

	tu_reap(&p);
	unlink(p.path);
	tu_rmdir(dir);
}

/* ---- limits ---- */

/* Runs the reader once against r and returns the point of metric name in
 * service's resource (NULL: absent); *reqs holds what it points into. */
static json_object *limit_point(struct tu_recv *r, const char *dir, const char *service,
				const char *name, json_object **reqs)
{
	struct run res;
	json_object *m;

	reader(&res, dir, endpoint_env(r), "--once");
	assert_int_equal(res.status, 0);
	*reqs = tu_recv_requests(r);
	m = tu_otlp_metric(*reqs, (int)json_object_array_length(*reqs) - 1, service, name);
	return m ? point(m, "sum", 0) : NULL;
}

static void produce_limited(struct rtm_segment *seg, int cpu0)
{
	struct rlimit rl = { 6ull << 30, RLIM_INFINITY };
	cpu_set_t set;

	produce_counter(seg, 1);
	if (setrlimit(RLIMIT_AS, &rl))
		_exit(3);
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (cpu0 && sched_setaffinity(0, sizeof set, &set))
		_exit(4);
}

/* RLIMIT_AS and the affinity mask, as prlimit and taskset set them; absent
 * when the process has no limit. */
static void limits_follow_rlimit_and_affinity(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p, q;
	struct tu_recv r;
	struct rd_limits mine;
	json_object *reqs, *pt;
	bool cpus = sysconf(_SC_NPROCESSORS_ONLN) >= 2;

	(void)state;
	tu_spawn(&p, dir, "limited", produce_limited, cpus, false);
	tu_spawn(&q, dir, "unlimited", produce_counter, 1, false);
	recv_start(&r, NULL);
	pt = limit_point(&r, dir, "limited", "rtm.process.memory.virtual.limit", &reqs);
	assert_non_null(pt);
	/* RLIMIT_AS, 6 GiB: the address space's limit, never the memory's
	 * (RSS is not held against it). */
	rd_limits_read(getpid(), &mine);
	assert_int_equal(as_ll(tu_json_get(pt, "asInt")), (long long)(6ull << 30));
	pt = tu_otlp_metric(reqs, (int)json_object_array_length(reqs) - 1, "limited", "rtm.process.memory.limit");
	if (mine.memory_bytes)
		assert_int_equal(as_ll(tu_json_get(point(pt, "sum", 0), "asInt")), (long long)mine.memory_bytes);
	else
		assert_null(pt);
	if (cpus) {
		pt = tu_otlp_metric(reqs, (int)json_object_array_length(reqs) - 1, "limited", "rtm.process.cpu.limit");
		assert_non_null(pt);
		assert_true(json_object_get_double(tu_json_get(point(pt, "sum", 0), "asDouble")) == 1.0);
	}
	/* The same machine without limits of its own: nothing, or only what
	 * this test process itself runs under. */
	if (!mine.memory_bytes)
		assert_null(tu_otlp_metric(reqs, (int)json_object_array_length(reqs) - 1, "unlimited",
					"rtm.process.memory.limit"));
	if (!mine.cpus)
		assert_null(tu_otlp_metric(reqs, (int)json_object_array_length(reqs) - 1, "unlimited",
					"rtm.process.cpu.limit"));
	json_object_put(reqs);
	tu_reap(&p);
	tu_reap(&q);
	unlink(p.path);
	unlink(q.path);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* A child in a cgroup with a 300 MiB memory limit and half a CPU, where
 * the machine lets the test make one (cgroup v2, else v1); skipped
 * otherwise. */
static void limits_follow_cgroups(void **state)
{
	char *dir = tu_mkdir(), cg[3][256], pid[16];
	struct tu_producer p;
	struct tu_recv r;
	json_object *reqs, *pt;
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0, ok;
	int n = 0;

	(void)state;
	if (v2) {
		snprintf(cg[n++], sizeof cg[0], "/sys/fs/cgroup/rtm-test-%d", (int)getpid());
	} else {
		snprintf(cg[n++], sizeof cg[0], "/sys/fs/cgroup/memory/rtm-test-%d", (int)getpid());
		snprintf(cg[n++], sizeof cg[0], "/sys/fs/cgroup/cpu/rtm-test-%d", (int)getpid());
	}
	ok = true;
	for (int i = 0; i < n; i++)
		ok &= mkdir(cg[i], 0755) == 0;
	if (ok && v2) {
		char f1[1024], f2[1024];

		snprintf(f1, sizeof f1, "%s/memory.max", cg[0]);
		snprintf(f2, sizeof f2, "%s/cpu.max", cg[0]);
		ok = tu_write_file(f1, "314572800") && tu_write_file(f2, "50000 100000");
	} else if (ok) {
		char f1[1024], f2[1024], f3[1024];

		snprintf(f1, sizeof f1, "%s/memory.limit_in_bytes", cg[0]);
		snprintf(f2, sizeof f2, "%s/cpu.cfs_period_us", cg[1]);
		snprintf(f3, sizeof f3, "%s/cpu.cfs_quota_us", cg[1]);
		ok = tu_write_file(f1, "314572800") && tu_write_file(f2, "100000") && tu_write_file(f3, "50000");
	}
	if (!ok) {
		for (int i = 0; i < n; i++)
			rmdir(cg[i]);
		tu_rmdir(dir);
		skip(); /* no cgroup to make here */
	}
	tu_spawn(&p, dir, "in-cgroup", produce_counter, 1, false);
	snprintf(pid, sizeof pid, "%d", (int)p.pid);
	for (int i = 0; i < n; i++) {
		char procs[1024];

		snprintf(procs, sizeof procs, "%s/cgroup.procs", cg[i]);
		assert_true(tu_write_file(procs, pid));
	}
	recv_start(&r, NULL);
	pt = limit_point(&r, dir, "in-cgroup", "rtm.process.memory.limit", &reqs);
	assert_non_null(pt);
	assert_int_equal(as_ll(tu_json_get(pt, "asInt")), 314572800);
	pt = tu_otlp_metric(reqs, (int)json_object_array_length(reqs) - 1, "in-cgroup", "rtm.process.cpu.limit");
	assert_non_null(pt);
	assert_true(json_object_get_double(tu_json_get(point(pt, "sum", 0), "asDouble")) == 0.5);
	json_object_put(reqs);
	tu_reap(&p);
	unlink(p.path);
	for (int i = 0; i < n; i++)
		rmdir(cg[i]);
	tu_recv_stop(&r);
	tu_rmdir(dir);
}

/* --io auto measures both /proc paths at start, in CPU time, and keeps
 * the cheaper, saying which and why; a chosen mode says so instead. */
static void io_auto_keeps_the_path_that_costs_less(void **state)
{
	char *dir = tu_mkdir(), *log, mode[16] = "";
	struct tu_reader r;
	double uring = 0, sync = 0;
	const char *p;

	(void)state;
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", NULL });
	log = tu_reader_await_log(&r, "/proc I/O ");
	tu_reader_stop(&r);
	p = strstr(log, "/proc I/O ");
	if (!strstr(p, "auto: no io_uring here")) {
		if (sscanf(p, "/proc I/O %15s (auto: 48 reads of /proc took %lf us of CPU by io_uring, "
			      "%lf us by pread)", mode, &uring, &sync) != 3)
			fail_msg("no measurement in: %.200s", p);
		assert_string_equal(mode, uring < sync ? "io_uring" : "sync");
	}
	free(log);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--io", "sync", NULL });
	log = tu_reader_await_log(&r, "/proc I/O ");
	tu_reader_stop(&r);
	assert_non_null(strstr(log, "/proc I/O sync (--io sync)"));
	free(log);
	tu_rmdir(dir);
}

/* The datagram queue is fixed when the reader makes its socket: one
 * shorter than 64 is said at start (short commands then wake the reader
 * every few exits), systemd's 512 is not.  Each reader runs in a network
 * namespace of its own (unshare -n), so the sysctl set there touches no
 * other test. */
static void a_short_datagram_queue_is_said_at_start(void **state)
{
	char *dir, *out, cmd[4400];
	int status;

	(void)state;
	if (geteuid() != 0 || system("unshare -n true 2>/dev/null"))
		skip(); /* a network namespace and its sysctl need root */
	dir = tu_mkdir();
	for (int k = 0; k < 2; k++) {
		const char *said;

		snprintf(cmd, sizeof cmd,
			 "unshare -n sh -c 'echo %d > /proc/sys/net/unix/max_dgram_qlen && "
			 "exec timeout -s TERM 2 %s --dir %s --exporter none --prometheus off' 2>&1",
			 k ? 512 : 10, tu_prog("RTM_READER"), dir);
		out = tu_run(cmd, &status, NULL);
		if (!strstr(out, "started: "))
			fail_msg("the reader did not start: %.300s", out);
		said = strstr(out, "datagrams between wakes (net.unix.max_dgram_qlen)");
		if (k == 0 && (!said || !strstr(out, "takes 10 datagrams")))
			fail_msg("a queue of 10 not said: %.300s", out);
		if (k == 1 && said)
			fail_msg("a queue of 512 said: %.300s", out);
		free(out);
	}
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(several_producers_arrive_exactly_as_published),
		cmocka_unit_test(grpc_exports_what_http_does),
		cmocka_unit_test(grpc_endpoint_without_scheme_follows_insecure),
		cmocka_unit_test(unapplied_otel_variables_are_logged),
		cmocka_unit_test(the_example_config_names_every_key),
		cmocka_unit_test(grpc_statuses_follow_the_otlp_retry_rules),
		cmocka_unit_test(grpc_over_tls_and_mtls),
		cmocka_unit_test(delta_temporality_loses_nothing_across_an_outage_and_a_restart),
		cmocka_unit_test(otel_variables_take_effect),
		cmocka_unit_test(limits_follow_rlimit_and_affinity),
		cmocka_unit_test(limits_follow_cgroups),
		cmocka_unit_test(killed_producer_is_exported_ended_and_removed),
		cmocka_unit_test(closed_producer_is_exported_ended_and_removed),
		cmocka_unit_test(keep_dead_leaves_the_segment),
		cmocka_unit_test(corrupt_segment_does_not_disturb_the_others),
		cmocka_unit_test(retryable_answers_are_retried_with_backoff_and_retry_after),
		cmocka_unit_test(client_errors_are_never_retried),
		cmocka_unit_test(partial_success_is_logged_counted_and_not_retried),
		cmocka_unit_test(a_dropped_connection_is_retried),
		cmocka_unit_test(gzip_json_and_headers_follow_the_otel_variables),
		cmocka_unit_test(bad_settings_are_one_line_errors_naming_them),
		cmocka_unit_test(large_exports_are_split_and_nothing_is_lost),
		cmocka_unit_test(io_uring_and_sync_proc_paths_agree),
		cmocka_unit_test(outage_is_logged_once_and_totals_survive_it),
		cmocka_unit_test(outage_is_measured_from_the_first_failure),
		cmocka_unit_test(sigterm_flushes_a_last_collection),
		cmocka_unit_test(stdout_exporter_is_the_default_without_a_collector),
		cmocka_unit_test(process_metrics_agree_with_the_process),
		cmocka_unit_test(groups_follow_preset_file_env_and_flags_in_that_order),
		cmocka_unit_test(bad_config_files_name_the_line),
		cmocka_unit_test(preload_ground_truth_is_exported_exactly),
		cmocka_unit_test(processes_without_a_segment_are_collected_on_request),
		cmocka_unit_test(io_auto_keeps_the_path_that_costs_less),
		cmocka_unit_test(a_short_datagram_queue_is_said_at_start),
	};
	srandom((unsigned)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
