/* SPDX-License-Identifier: MIT */
/*
 * A real Prometheus scrapes a real rtm-reader every second; the values it
 * stored are read back through its HTTP API and compared with what the
 * producer processes published.  promtool (Prometheus's own text-format
 * parser and linter) checks a text 0.0.4 scrape; Prometheus itself parses
 * OpenMetrics, which it negotiates with its Accept header.
 * Exits 77 when no prometheus binary is installed.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* Label values and a description that need escaping in every format. */
static void produce_hostile(struct rtm_segment *seg, int k)
{
	rtm_counter_t c;

	rtm_counter_create(seg, &c, &(struct rtm_metric_def){
		.name = "app.requests", .unit = "{request}",
		.description = "Requests \\ served\nper \"route\"",
		.attrs = (struct rtm_attr[]){ { "route", "a\"b\\c\nd" }, { "user.name", "Zo\xc3\xab" } },
		.n_attrs = 2 });
	rtm_counter_add(&c, (uint64_t)k);
}

/* A segment whose attribute value gets an invalid UTF-8 byte below. */
static void produce_corruptible(struct rtm_segment *seg, int k)
{
	rtm_counter_t c;

	rtm_counter_create(seg, &c, &(struct rtm_metric_def){
		.name = "app.requests", .unit = "{request}", .description = "Requests served",
		.attrs = (struct rtm_attr[]){ { "route", "corrupt-me" } }, .n_attrs = 1 });
	rtm_counter_add(&c, (uint64_t)k);
}

/* ---- Prometheus ---- */

struct prom {
	pid_t pid;
	int port;
	char dir[64];
};

/* feature: a --enable-feature value, or NULL. */
static void prom_start_with(struct prom *p, int target_port, const char *feature)
{
	char feat[96] = "--log.format=logfmt";
	char cfg[128], arg_cfg[160], arg_db[160], arg_web[64], log[128];
	FILE *f;

	snprintf(p->dir, sizeof p->dir, "/tmp/rtm-prom.XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	snprintf(cfg, sizeof cfg, "%s/prometheus.yml", p->dir);
	f = fopen(cfg, "w");
	assert_non_null(f);
	/* honor_labels: the reader names each producer's job and instance.
	 * The shipped alert rules, evaluated every second. */
	fprintf(f, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
		   "rule_files:\n  - %s/tools/rtm-alerts.yml\n"
		   "scrape_configs:\n  - job_name: rtm\n    honor_labels: true\n"
		   "    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
		tu_prog("RTM_SOURCE_ROOT"), target_port);
	fclose(f);
	p->port = tu_free_port();
	snprintf(arg_cfg, sizeof arg_cfg, "--config.file=%s", cfg);
	snprintf(arg_db, sizeof arg_db, "--storage.tsdb.path=%s/data", p->dir);
	snprintf(arg_web, sizeof arg_web, "--web.listen-address=127.0.0.1:%d", p->port);
	snprintf(log, sizeof log, "%s/log", p->dir);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stdout);
		freopen(log, "w", stderr);
		if (feature)
			snprintf(feat, sizeof feat, "--enable-feature=%s", feature);
		execl(tu_prog("RTM_PROMETHEUS"), "prometheus", arg_cfg, arg_db, arg_web,
		      "--log.level=warn", feat, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600; i++) {
		char url[64];

		snprintf(url, sizeof url, "http://127.0.0.1:%d/-/ready", p->port);
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid)
			fail_msg("prometheus exited at start (see %s)", log);
		/* Connection refused while it starts: try libcurl quietly. */
		{
			CURL *c = curl_easy_init();
			long code = 0;

			curl_easy_setopt(c, CURLOPT_URL, url);
			curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
			curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
			if (curl_easy_perform(c) == CURLE_OK)
				curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
			curl_easy_cleanup(c);
			if (code == 200)
				return;
		}
		usleep(100000);
	}
	fail_msg("prometheus never became ready");
}

static void prom_start(struct prom *p, int target_port)
{
	prom_start_with(p, target_port, NULL);
}

static void prom_stop(struct prom *p)
{
	char cmd[128];

	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", p->dir);
	assert_int_equal(system(cmd), 0);
}

/* The result vector of an instant query (owned by *root). */
static json_object *query(const struct prom *p, const char *q, json_object **root)
{
	CURL *c = curl_easy_init();
	char *enc = curl_easy_escape(c, q, 0), url[2048];
	json_object *status, *data, *result;
	struct tu_http h;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/query?query=%s", p->port, enc);
	curl_free(enc);
	curl_easy_cleanup(c);
	tu_http_get(url, NULL, false, &h);
	*root = json_tokener_parse(h.body);
	if (!*root || h.status != 200)
		fail_msg("query %s: HTTP %ld: %s", q, h.status, h.body);
	tu_http_free(&h);
	assert_true(json_object_object_get_ex(*root, "status", &status));
	assert_string_equal(json_object_get_string(status), "success");
	assert_true(json_object_object_get_ex(*root, "data", &data));
	assert_true(json_object_object_get_ex(data, "result", &result));
	return result;
}

/* The one value q yields; fails unless exactly one series answers. */
static double value(const struct prom *p, const char *q)
{
	json_object *root, *res = query(p, q, &root), *v;
	double d;

	if (json_object_array_length(res) != 1)
		fail_msg("%s: %zu series, want 1", q, json_object_array_length(res));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(res, 0), "value", &v));
	d = strtod(json_object_get_string(json_object_array_get_idx(v, 1)), NULL);
	json_object_put(root);
	return d;
}

static const char *label(json_object *series, const char *name)
{
	json_object *m, *l;

	assert_true(json_object_object_get_ex(series, "metric", &m));
	return json_object_object_get_ex(m, name, &l) ? json_object_get_string(l) : NULL;
}

/* Polls q until it yields want (a number), up to 60 s. */
static void await_value(const struct prom *p, const char *q, double want)
{
	for (int i = 0; i < 600; i++) {
		json_object *root, *res = query(p, q, &root);
		bool ok = json_object_array_length(res) == 1;

		if (ok) {
			json_object *v;

			json_object_object_get_ex(json_object_array_get_idx(res, 0), "value", &v);
			ok = strtod(json_object_get_string(json_object_array_get_idx(v, 1)), NULL) == want;
		}
		json_object_put(root);
		if (ok)
			return;
		usleep(100000);
	}
	fail_msg("%s never became %g", q, want);
}

/* Writes an invalid UTF-8 byte over the first occurrence of what. */
static void corrupt(const char *path, const char *what)
{
	size_t len;
	char *buf = tu_slurp(path, &len), *hit = memmem(buf, len, what, strlen(what));
	int fd = open(path, O_WRONLY);

	assert_non_null(hit);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff", 1, hit - buf), 1);
	close(fd);
	free(buf);
}

/* promtool's findings on a text-format page: the problems it reports,
 * one a line ("" when none). */
static char *promtool_check(const char *page)
{
	char file[64], cmd[256], *out = calloc(1, 65536);
	size_t n;
	FILE *f;
	int fd;

	snprintf(file, sizeof file, "/tmp/rtm-scrape.XXXXXX");
	fd = mkstemp(file);
	assert_true(fd >= 0 && out);
	assert_int_equal(write(fd, page, strlen(page)), (ssize_t)strlen(page));
	close(fd);
	snprintf(cmd, sizeof cmd, "%s check metrics < %s 2>&1", tu_prog("RTM_PROMTOOL"), file);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(out, 1, 65535, f);
	out[n] = '\0';
	pclose(f);
	unlink(file);
	return out;
}

/* tests/leaker heap-mmap 2000000: RSS grows 2 MB/s, collected with --pid
 * (its heap series is then its RSS, in every build). */
static pid_t start_leaker(const char *dir, char *pid_str, size_t cap)
{
	int fds[2];
	char buf[8] = "";
	pid_t pid;

	(void)dir;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		execl(tu_prog("RTM_LEAKER"), "leaker", "heap-mmap", "2000000", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	assert_true(read(fds[0], buf, sizeof buf - 1) > 0);
	close(fds[0]);
	snprintf(pid_str, cap, "%d", (int)pid);
	return pid;
}

/* GET /api/v1/rules as JSON (owned by the caller). */
static json_object *rules(const struct prom *p)
{
	char url[96];
	struct tu_http h;
	json_object *root;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/rules", p->port);
	tu_http_get(url, NULL, false, &h);
	root = json_tokener_parse(h.body);
	if (!root || h.status != 200)
		fail_msg("/api/v1/rules: HTTP %ld: %s", h.status, h.body);
	tu_http_free(&h);
	return root;
}

/* Calls fn on every rule object until it returns false; the rule count. */
static int each_rule(json_object *root, bool (*fn)(json_object *rule, void *ctx), void *ctx)
{
	json_object *data, *groups;
	int n = 0;

	assert_true(json_object_object_get_ex(root, "data", &data));
	assert_true(json_object_object_get_ex(data, "groups", &groups));
	for (size_t g = 0; g < json_object_array_length(groups); g++) {
		json_object *rs;

		assert_true(json_object_object_get_ex(json_object_array_get_idx(groups, g), "rules", &rs));
		for (size_t i = 0; i < json_object_array_length(rs); i++, n++)
			if (!fn(json_object_array_get_idx(rs, i), ctx))
				return -1;
	}
	return n;
}

static const char *field(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* Evaluated at least once, without error. */
static bool rule_ok(json_object *rule, void *ctx)
{
	(void)ctx;
	return !strcmp(field(rule, "health"), "ok") && strncmp(field(rule, "lastEvaluation"), "0001", 4);
}

static void await_rules_ok(const struct prom *p)
{
	for (int i = 0; i < 600; i++) {
		json_object *root = rules(p);
		int n = each_rule(root, rule_ok, NULL);

		json_object_put(root);
		if (n == 17)
			return;
		usleep(100000);
	}
	{
		json_object *root = rules(p);

		fail_msg("rules not all loaded and healthy: %s",
			 json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	}
}

struct want_alert {
	const char *name;
	char pid[16];
	bool seen;
};

/* The named alert, pending or firing, for the process with that pid. */
static bool find_alert(json_object *rule, void *ctx)
{
	struct want_alert *w = ctx;
	json_object *alerts;

	if (strcmp(field(rule, "name"), w->name) || !json_object_object_get_ex(rule, "alerts", &alerts))
		return true;
	for (size_t i = 0; i < json_object_array_length(alerts); i++) {
		json_object *a = json_object_array_get_idx(alerts, i), *labels;
		const char *state = field(a, "state");

		if (json_object_object_get_ex(a, "labels", &labels) &&
		    !strcmp(field(labels, "process_pid"), w->pid) &&
		    (!strcmp(state, "pending") || !strcmp(state, "firing")))
			w->seen = true;
	}
	return true;
}

static void await_alert(const struct prom *p, const char *name, pid_t pid)
{
	struct want_alert w = { .name = name };

	snprintf(w.pid, sizeof w.pid, "%d", (int)pid);
	for (int i = 0; i < 600 && !w.seen; i++) {
		json_object *root = rules(p);

		each_rule(root, find_alert, &w);
		json_object_put(root);
		if (!w.seen)
			usleep(100000);
	}
	if (!w.seen)
		fail_msg("%s never became pending for pid %s", name, w.pid);
}

static void prometheus_stores_exactly_what_producers_published(void **state)
{
	static const struct { const char *svc; int k; } svcs[] = { { "svc-one", 3 }, { "svc-two", 7 } };
	char *dir = tu_mkdir(), q[512], *log, *lint, *line, leaker_pid[16];
	struct tu_producer p[4];
	pid_t leaker;
	struct tu_reader r;
	struct tu_http page;
	struct prom pr;
	json_object *root, *res;

	(void)state;
	tu_spawn(&p[0], dir, svcs[0].svc, tu_produce_known, svcs[0].k, false);
	tu_spawn(&p[1], dir, svcs[1].svc, tu_produce_known, svcs[1].k, false);
	tu_spawn(&p[2], dir, "svc-hostile", produce_hostile, 11, false);
	tu_spawn(&p[3], dir, "svc-corrupt", produce_corruptible, 13, false);
	corrupt(p[3].path, "corrupt-me");
	/* A heap leak of 2 MB/s, for the alert rules; the leak detector with
	 * test-sized settings. */
	leaker = start_leaker(dir, leaker_pid, sizeof leaker_pid);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", "--leak", "window=3s",
						   "--leak", "heap=0.5MB/s", "--pid", leaker_pid,
						   "--prometheus-created", NULL });
	prom_start(&pr, r.port);

	/* _created series exist only in OpenMetrics: Prometheus negotiated it. */
	await_value(&pr, "count(app_requests_created{job=~\"svc-one|svc-two\"})", 4);
	await_value(&pr, "count(app_requests_total{job=~\"svc-one|svc-two\"})", 4);
	for (size_t i = 0; i < 2; i++) {
		const char *s = svcs[i].svc;
		int k = svcs[i].k;
		static const char *const le[] = { "0.01", "0.1", "1", "+Inf" };
		double want_b[] = { 1, 1, 2, 2.0 + k };

#define Q(...) (snprintf(q, sizeof q, __VA_ARGS__), q)
		assert_true(value(&pr, Q("app_requests_total{job=\"%s\",route=\"/a\"}", s)) == 100.0 * k);
		assert_true(value(&pr, Q("app_requests_total{job=\"%s\",route=\"/b\"}", s)) == k);
		assert_true(value(&pr, Q("app_active{job=\"%s\"}", s)) == -k);
		assert_true(value(&pr, Q("app_ratio{job=\"%s\"}", s)) == 0.25 * k);
		for (int b = 0; b < 4; b++)
			assert_true(value(&pr, Q("app_latency_seconds_bucket{job=\"%s\",le=\"%s\"}", s, le[b])) ==
				    want_b[b]);
		assert_true(value(&pr, Q("app_latency_seconds_count{job=\"%s\"}", s)) == 2.0 + k);
		assert_true(fabs(value(&pr, Q("app_latency_seconds_sum{job=\"%s\"}", s)) - (0.505 + 2.0 * k)) <
			    1e-9);
		/* 2 counters + their _created, the up-down counter, the gauge,
		 * 4 buckets, _sum, _count and the histogram's _created. */
		assert_true(value(&pr, Q("count({job=\"%s\",__name__=~\"app_.*\"})", s)) == 13);
		assert_true(fabs(value(&pr, Q("app_requests_created{job=\"%s\",route=\"/a\"}", s)) -
				 (double)tu_start_time(p[i].path, "app.requests", "route", "/a") / 1e9) < 1e-3);
		/* The producer's resource, on target_info. */
		res = query(&pr, Q("target_info{job=\"%s\"}", s), &root);
		assert_int_equal(json_object_array_length(res), 1);
		{
			json_object *t = json_object_array_get_idx(res, 0);
			char pid[16];

			snprintf(pid, sizeof pid, "%d", (int)p[i].pid);
			assert_string_equal(label(t, "service_version"), "2.0");
			assert_string_equal(label(t, "team"), "core");
			assert_string_equal(label(t, "process_pid"), pid);
			assert_string_equal(label(t, "process_runtime_name"), "native");
			assert_non_null(label(t, "instance"));
			assert_null(label(t, "service_name"));
		}
		json_object_put(root);
		/* ... and the reader's process metrics for it. */
		res = query(&pr, Q("process_cpu_time_seconds_total{job=\"%s\"}", s), &root);
		assert_int_equal(json_object_array_length(res), 2);
		json_object_put(root);
		assert_true(value(&pr, Q("process_thread_count{job=\"%s\"}", s)) == 1);
#undef Q
	}
	/* The reader's own metrics. */
	/* three valid segments and the --pid leaker */
	assert_true(value(&pr, "rtm_reader_segments{job=\"rtm-reader\"}") == 4);
	assert_true(value(&pr, "rtm_reader_segments_rejected_total{job=\"rtm-reader\"}") >= 1);

	/* Hostile strings arrive exactly, through Prometheus's own parser. */
	res = query(&pr, "app_requests_total{job=\"svc-hostile\"}", &root);
	assert_int_equal(json_object_array_length(res), 1);
	assert_string_equal(label(json_object_array_get_idx(res, 0), "route"), "a\"b\\c\nd");
	assert_string_equal(label(json_object_array_get_idx(res, 0), "user_name"), "Zo\xc3\xab");
	json_object_put(root);
	/* The corrupt segment: refused with a line naming it, nothing of it
	 * exported, the others untouched. */
	res = query(&pr, "{job=\"svc-corrupt\"}", &root);
	assert_int_equal(json_object_array_length(res), 0);
	json_object_put(root);
	log = tu_reader_log(&r);
	assert_non_null(strstr(log, strrchr(p[3].path, '/') + 1));
	assert_non_null(strstr(log, "rejected"));
	free(log);

	/* promtool: the text format parses, and its linter finds nothing but
	 * the two OTel semantic-convention names that end in _count (kept as
	 * the OTel specification maps them; see docs/prometheus.md). */
	/* Prometheus took OpenMetrics so far: the text format is rendered
	 * from the cycle after a scraper asks for it (503 until then). */
	for (int i = 0; i < 300; i++) {
		tu_http_get(r.url, "text/plain;version=0.0.4", false, &page);
		if (page.status == 200)
			break;
		assert_int_equal(page.status, 503);
		tu_http_free(&page);
		usleep(100000);
	}
	assert_int_equal(page.status, 200);
	assert_non_null(strstr(page.headers, "text/plain; version=0.0.4"));
	lint = promtool_check(page.body);
	for (line = strtok(lint, "\n"); line; line = strtok(NULL, "\n"))
		if (strcmp(line, "process_thread_count non-histogram and non-summary metrics should not have \"_count\" suffix") &&
		    strcmp(line, "process_unix_file_descriptor_count non-histogram and non-summary metrics should not have \"_count\" suffix"))
			fail_msg("promtool check metrics: %s", line);
	free(lint);
	tu_http_free(&page);

	/* The shipped rules: all loaded, all evaluating without error, and the
	 * leaking child's heap-leak alert pending (or firing). */
	await_rules_ok(&pr);
	await_alert(&pr, "RtmHeapLeakSuspect", leaker);

	prom_stop(&pr);
	assert_int_equal(tu_reader_stop(&r), 0);
	for (int i = 0; i < 4; i++)
		tu_reap(&p[i]);
	kill(leaker, SIGKILL);
	waitpid(leaker, NULL, 0);
	tu_rmdir(dir);
}

/* 2000 latencies, log-uniform from 1 ms to 1 s, in an exponential
 * histogram; and their true 0.5 and 0.9 quantiles. */
#define LAT_N 2000
static double lat_value(int i)
{
	return 1e-3 * pow(1e3, (double)((i * 7919) % LAT_N) / (LAT_N - 1));
}

static void produce_latencies(struct rtm_segment *seg, int k)
{
	rtm_hist_t h;

	(void)k;
	rtm_exphist_create(seg, &h, &(struct rtm_metric_def){ .name = "app.latency", .unit = "s" },
			   0, 0);
	for (int i = 0; i < LAT_N; i++)
		rtm_hist_record(&h, lat_value(i));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* A Prometheus with native histograms on negotiates the protobuf format
 * and stores the exponential histogram as one native histogram series, and
 * histogram_quantile() over it agrees with the recorded values' quantile
 * within a bucket's width. */
static void prometheus_stores_a_native_histogram(void **state)
{
	static double sorted[LAT_N];
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_reader r;
	struct prom pr;
	json_object *root, *res;

	(void)state;
	for (int i = 0; i < LAT_N; i++)
		sorted[i] = lat_value(i);
	qsort(sorted, LAT_N, sizeof *sorted, cmp_double);
	tu_spawn(&p, dir, "svc-native", produce_latencies, 0, false);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	prom_start_with(&pr, r.port, "native-histograms");
	await_value(&pr, "histogram_count(app_latency_seconds{job=\"svc-native\"})", LAT_N);
	/* Scale 3 at least (10 octaves in 160 buckets): a bucket is at most
	 * 2^(1/8) wide, so is the quantile's error. */
	for (int k = 0; k < 2; k++) {
		double q = k ? 0.9 : 0.5, want = sorted[(int)ceil(q * LAT_N) - 1], got;
		char qs[128];

		snprintf(qs, sizeof qs, "histogram_quantile(%g, app_latency_seconds{job=\"svc-native\"})", q);
		got = value(&pr, qs);
		if (!(fabs(got / want - 1) <= exp2(1.0 / 8) - 1))
			fail_msg("%s = %g, the values' %g", qs, got, want);
	}
	{
		double sum = 0;

		for (int i = 0; i < LAT_N; i++)
			sum += lat_value(i);
		assert_true(fabs(value(&pr, "histogram_sum(app_latency_seconds{job=\"svc-native\"})") /
				 sum - 1) < 1e-9);
	}
	/* The rest of the page came by protobuf too: counters, gauges and
	 * target_info, labelled as in the text format. */
	await_value(&pr, "target_info{job=\"svc-native\"}", 1);
	res = query(&pr, "process_cpu_time_seconds_total{job=\"svc-native\",cpu_mode=\"user\"}", &root);
	assert_int_equal(json_object_array_length(res), 1);
	json_object_put(root);
	assert_true(value(&pr, "up") == 1);
	/* One series, and no classic buckets beside it. */
	res = query(&pr, "app_latency_seconds_bucket{job=\"svc-native\"}", &root);
	assert_int_equal(json_object_array_length(res), 0);
	json_object_put(root);
	res = query(&pr, "{__name__=~\"app_latency.*\",job=\"svc-native\"}", &root);
	assert_int_equal(json_object_array_length(res), 1);
	json_object_put(root);
	prom_stop(&pr);
	tu_reader_stop(&r);
	tu_reap(&p);
	tu_rmdir(dir);
}

/* A Go program's runtime metrics in a Prometheus with native histograms:
 * its histograms are one series each, and the whole program a few dozen
 * series (with explicit bounds it was ~620, 241 for GC pauses alone). */
static void a_go_program_costs_prometheus_few_series(void **state)
{
	const char *go = getenv("RTM_GO_DEMO");
	char *dir = tu_mkdir(), cmd[4096];
	struct tu_reader r;
	struct prom pr;
	json_object *root, *res;
	double n;
	pid_t demo;

	(void)state;
	if (!go || !*go) {
		printf("no Go toolchain: the Go program's series not counted\n");
		tu_rmdir(dir);
		return;
	}
	snprintf(cmd, sizeof cmd, "exec env RTM_DIR=%s %s --service go-native --interval 200ms >/dev/null",
		 dir, go);
	demo = tu_start_shell(cmd);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	prom_start_with(&pr, r.port, "native-histograms");
	/* GC pauses and scheduling latencies as native histograms, with counts. */
	for (int i = 0; i < 600; i++) {
		res = query(&pr, "histogram_count(go_runtime_gc_pauses_seconds{job=\"go-native\"}) > 0", &root);
		n = (double)json_object_array_length(res);
		json_object_put(root);
		if (n == 1)
			break;
		usleep(100000);
	}
	assert_true(n == 1);
	res = query(&pr, "histogram_count(go_schedule_duration_seconds{job=\"go-native\"})", &root);
	assert_int_equal(json_object_array_length(res), 1);
	json_object_put(root);
	n = value(&pr, "count({job=\"go-native\"})");
	print_message("a Go program: %g series in Prometheus\n", n);
	assert_true(n > 30 && n <= 200);
	/* The runtime's: the demo's own request histogram is explicit. */
	res = query(&pr, "{__name__=~\"go_.*_bucket\",job=\"go-native\"}", &root);
	assert_int_equal(json_object_array_length(res), 0);
	json_object_put(root);
	prom_stop(&pr);
	tu_reader_stop(&r);
	kill(demo, SIGTERM);
	waitpid(demo, NULL, 0);
	tu_rmdir(dir);
}

/* deploy/grafana/rtm-dashboard.json: importable (the data source a
 * variable every panel and query uses), and every panel's query yields data
 * from a real Prometheus scraping rtm-reader with a C producer, a Go
 * program and a preloaded one: in Prometheus's default mode and with native
 * histograms.  The process panels show all three. */
struct dash_query {
	char *expr;  /* variables substituted */
	char *title; /* its panel's */
	bool ok;
};

static void dash_collect(json_object *panels, struct dash_query *q, size_t *n, size_t cap)
{
	for (size_t i = 0; i < json_object_array_length(panels); i++) {
		json_object *p = json_object_array_get_idx(panels, i), *ds, *targets, *sub;
		const char *type = field(p, "type");

		if (!strcmp(type, "row")) {
			if (json_object_object_get_ex(p, "panels", &sub))
				dash_collect(sub, q, n, cap);
			continue;
		}
		assert_true(json_object_object_get_ex(p, "datasource", &ds));
		assert_string_equal(field(ds, "uid"), "${datasource}");
		assert_true(json_object_object_get_ex(p, "targets", &targets));
		assert_true(json_object_array_length(targets) >= 1);
		for (size_t t = 0; t < json_object_array_length(targets); t++) {
			json_object *tg = json_object_array_get_idx(targets, t), *tds;
			const char *e = field(tg, "expr");
			char buf[2048];
			size_t k = 0;

			assert_true(json_object_object_get_ex(tg, "datasource", &tds));
			assert_string_equal(field(tds, "uid"), "${datasource}");
			/* What Grafana substitutes: All is ".+", the rate
			 * interval at least four scrapes. */
			for (const char *c = e; *c && k < sizeof buf - 8;) {
				static const char *const from[] = { "$__rate_interval", "$instance", "$job" };
				static const char *const to[] = { "1m", ".+", ".+" };
				size_t f;

				for (f = 0; f < 3; f++)
					if (!strncmp(c, from[f], strlen(from[f])))
						break;
				if (f < 3) {
					k += (size_t)snprintf(buf + k, sizeof buf - k, "%s", to[f]);
					c += strlen(from[f]);
				} else {
					buf[k++] = *c++;
				}
			}
			buf[k] = '\0';
			assert_null(strstr(buf, "$")); /* every variable substituted */
			assert_true(*n < cap);
			q[*n] = (struct dash_query){ .expr = strdup(buf), .title = strdup(field(p, "title")) };
			(*n)++;
		}
	}
}

/* Polls every query until each yields a series; the jobs the process
 * panels (the first four) show go to jobs. */
static void dash_await(const struct prom *pr, struct dash_query *q, size_t n, char *jobs, size_t cap)
{
	size_t left = n;

	for (size_t i = 0; i < n; i++)
		q[i].ok = false;
	jobs[0] = '\0';
	for (int round = 0; round < 600 && left; round++) {
		for (size_t i = 0; i < n; i++) {
			json_object *root, *res;

			if (q[i].ok)
				continue;
			res = query(pr, q[i].expr, &root);
			if (json_object_array_length(res) > 0) {
				q[i].ok = true;
				left--;
			}
			json_object_put(root);
		}
		if (left)
			usleep(100000);
	}
	for (size_t i = 0; i < n; i++)
		if (!q[i].ok)
			fail_msg("dashboard panel '%s': no data from %s", q[i].title, q[i].expr);
	for (size_t i = 0; i < 4; i++) {
		json_object *root, *res = query(pr, q[i].expr, &root);

		for (size_t k = 0; k < json_object_array_length(res); k++) {
			const char *j = label(json_object_array_get_idx(res, k), "job");

			if (j && strlen(jobs) + strlen(j) + 2 < cap) {
				strcat(jobs, j);
				strcat(jobs, ",");
			}
		}
		json_object_put(root);
	}
}

static void the_grafana_dashboard_has_data_in_every_panel(void **state)
{
	const char *go = getenv("RTM_GO_DEMO");
	char *dir, path[1024], cmd[4096], jobs[4096];
	json_object *d, *tpl, *list, *panels;
	struct dash_query q[64];
	size_t n = 0;
	bool ds_var = false;
	struct tu_reader r;
	struct prom pr;
	pid_t kids[3];

	(void)state;
	TU_SKIP_IF_SANITIZED(); /* the preloaded producer needs the real malloc */
	snprintf(path, sizeof path, "%s/deploy/grafana/rtm-dashboard.json", tu_prog("RTM_SOURCE_ROOT"));
	d = json_object_from_file(path);
	assert_non_null(d);
	assert_true(*field(d, "title") && *field(d, "uid"));
	assert_true(json_object_object_get_ex(d, "templating", &tpl));
	assert_true(json_object_object_get_ex(tpl, "list", &list));
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *v = json_object_array_get_idx(list, i);

		ds_var |= !strcmp(field(v, "type"), "datasource") && !strcmp(field(v, "name"), "datasource") &&
			  !strcmp(field(v, "query"), "prometheus");
	}
	assert_true(ds_var);
	assert_true(json_object_object_get_ex(d, "panels", &panels));
	dash_collect(panels, q, &n, sizeof q / sizeof q[0]);
	assert_true(n >= 15);
	json_object_put(d);

	dir = tu_mkdir();
	snprintf(cmd, sizeof cmd, "exec env RTM_DIR=%s %s/tools/rtm-demo --service dash-c --threads 2 "
		 "--duration 600 >/dev/null", dir, tu_prog("RTM_BUILD_ROOT"));
	kids[0] = tu_start_shell(cmd);
	snprintf(cmd, sizeof cmd, "exec env RTM_DIR=%s LD_PRELOAD=%s RTM_PUBLISH_DELAY_MS=0 "
		 "RTM_SERVICE_NAME=dash-preload sleep 600", dir, tu_prog("RTM_PRELOAD"));
	kids[1] = tu_start_shell(cmd);
	kids[2] = 0;
	if (go && *go) {
		snprintf(cmd, sizeof cmd, "exec env RTM_DIR=%s %s --service dash-go --interval 200ms >/dev/null",
			 dir, go);
		kids[2] = tu_start_shell(cmd);
	}
	/* A four-cycle leak window: the growth panels have data soon. */
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", "--leak", "window=4s", NULL });
	if (!(go && *go)) {
		/* Without Go the Go row has nothing to show: said, not hidden. */
		size_t m = 0;

		printf("no Go toolchain: the Go panels not checked\n");
		for (size_t i = 0; i < n; i++) {
			if (strstr(q[i].expr, "go_")) {
				free(q[i].expr);
				free(q[i].title);
			} else {
				q[m++] = q[i];
			}
		}
		n = m;
	}
	for (int native = 0; native < 2; native++) {
		prom_start_with(&pr, r.port, native ? "native-histograms" : NULL);
		dash_await(&pr, q, n, jobs, sizeof jobs);
		print_message("%s: every dashboard query has data; process panels show %s\n",
			      native ? "native histograms" : "classic", jobs);
		/* This reader was not asked for _created samples: Prometheus
		 * stored none (each would be one more series). */
		{
			json_object *root, *res = query(&pr, "{__name__=~\".+_created\"}", &root);

			assert_int_equal(json_object_array_length(res), 0);
			json_object_put(root);
		}
		assert_non_null(strstr(jobs, "dash-c,"));
		assert_non_null(strstr(jobs, "dash-preload,"));
		if (go && *go)
			assert_non_null(strstr(jobs, "dash-go,"));
		prom_stop(&pr);
	}
	tu_reader_stop(&r);
	for (int i = 0; i < 3; i++)
		if (kids[i]) {
			kill(kids[i], SIGTERM);
			waitpid(kids[i], NULL, 0);
		}
	for (size_t i = 0; i < n; i++) {
		free(q[i].expr);
		free(q[i].title);
	}
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prometheus_stores_exactly_what_producers_published),
		cmocka_unit_test(prometheus_stores_a_native_histogram),
		cmocka_unit_test(a_go_program_costs_prometheus_few_series),
		cmocka_unit_test(the_grafana_dashboard_has_data_in_every_panel),
	};
	const char *prom = getenv("RTM_PROMETHEUS"), *tool = getenv("RTM_PROMTOOL");

	if (!prom || !*prom || access(prom, X_OK) || !tool || !*tool || access(tool, X_OK)) {
		printf("prometheus or promtool not installed: skipped\n");
		return 77;
	}
	srandom((unsigned)getpid());
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
