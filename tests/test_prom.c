/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus renderer on its own: the OTel -> Prometheus name, unit and
 * label mapping (every metric rtm itself produces, and the specification's
 * edge cases), escaping of hostile strings, both exposition formats, and the
 * HTTP request parser and content negotiation of the scrape endpoint.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pb_check.h"
#include "rd_encode.h"
#include "rd_http.h"
#include "rd_prom.h"
#include "rd_prom_name.h"
#include "rd_prom_server.h"
#include "test_util.h"

/* ---- names ---- */

struct name_case {
	const char *name, *unit;
	enum rd_prom_type type;
	const char *want, *want_unit;
};

static void check_names(const struct name_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char out[RD_PROM_NAME_MAX], unit[RD_PROM_NAME_MAX];
		size_t len = rd_prom_family_name(c[i].name, c[i].unit, c[i].type, out, unit);

		if (strcmp(out, c[i].want) || strcmp(unit, c[i].want_unit) || len != strlen(out))
			fail_msg("%s [%s]: got %s [%s], want %s [%s]", c[i].name, c[i].unit, out, unit,
				 c[i].want, c[i].want_unit);
	}
}

/* docs/prometheus.md's mapping table, line by line: family names (counters get
 * _total on their samples). */
static void every_rtm_metric_maps_as_the_readme_says(void **state)
{
	static const struct name_case c[] = {
		{ "process.cpu.time", "s", RD_PROM_COUNTER, "process_cpu_time_seconds", "seconds" },
		{ "process.memory.usage", "By", RD_PROM_GAUGE, "process_memory_usage_bytes", "bytes" },
		{ "process.memory.virtual", "By", RD_PROM_GAUGE, "process_memory_virtual_bytes", "bytes" },
		{ "process.thread.count", "{thread}", RD_PROM_GAUGE, "process_thread_count", "" },
		{ "process.unix.file_descriptor.count", "{file_descriptor}", RD_PROM_GAUGE, "process_unix_file_descriptor_count", "" },
		{ "process.context_switches", "{context_switch}", RD_PROM_COUNTER, "process_context_switches", "" },
		{ "process.paging.faults", "{fault}", RD_PROM_COUNTER, "process_paging_faults", "" },
		{ "process.disk.io", "By", RD_PROM_COUNTER, "process_disk_io_bytes", "bytes" },
		{ "process.uptime", "s", RD_PROM_GAUGE, "process_uptime_seconds", "seconds" },
		{ "rtm.process.runqueue.wait", "s", RD_PROM_COUNTER, "rtm_process_runqueue_wait_seconds", "seconds" },
		{ "rtm.process.memory.limit", "By", RD_PROM_GAUGE, "rtm_process_memory_limit_bytes", "bytes" },
		{ "rtm.process.memory.virtual.limit", "By", RD_PROM_GAUGE, "rtm_process_memory_virtual_limit_bytes", "bytes" },
		{ "rtm.process.cpu.limit", "{cpu}", RD_PROM_GAUGE, "rtm_process_cpu_limit", "" },
		{ "runtime.native.mem.alloc.mallocs", "{allocation}", RD_PROM_COUNTER, "runtime_native_mem_alloc_mallocs", "" },
		{ "runtime.native.mem.alloc.frees", "{allocation}", RD_PROM_COUNTER, "runtime_native_mem_alloc_frees", "" },
		{ "runtime.native.mem.alloc.total", "By", RD_PROM_COUNTER, "runtime_native_mem_alloc_bytes", "bytes" },
		{ "runtime.native.mem.heap.alloc", "By", RD_PROM_GAUGE, "runtime_native_mem_heap_alloc_bytes", "bytes" },
		{ "runtime.native.mem.heap.objects", "{object}", RD_PROM_GAUGE, "runtime_native_mem_heap_objects", "" },
		{ "runtime.native.mem.heap.inuse", "By", RD_PROM_GAUGE, "runtime_native_mem_heap_inuse_bytes", "bytes" },
		{ "runtime.native.mem.heap.idle", "By", RD_PROM_GAUGE, "runtime_native_mem_heap_idle_bytes", "bytes" },
		{ "runtime.native.mem.heap.releasable", "By", RD_PROM_GAUGE, "runtime_native_mem_heap_releasable_bytes", "bytes" },
		{ "runtime.native.mem.heap.mmapped", "By", RD_PROM_GAUGE, "runtime_native_mem_heap_mmapped_bytes", "bytes" },
		{ "runtime.native.mem.heap.arenas", "{arena}", RD_PROM_GAUGE, "runtime_native_mem_heap_arenas", "" },
		{ "runtime.native.mem.heap.idle_ratio", "1", RD_PROM_GAUGE, "runtime_native_mem_heap_idle_ratio", "ratio" },
		{ "runtime.native.mem.heap.trims", "{trim}", RD_PROM_COUNTER, "runtime_native_mem_heap_trims", "" },
		{ "rtm.process.heap.growth", "By/s", RD_PROM_GAUGE, "rtm_process_heap_growth_bytes_per_second", "bytes_per_second" },
		{ "rtm.process.thread.growth", "{thread}/s", RD_PROM_GAUGE, "rtm_process_thread_growth_per_second", "per_second" },
		{ "rtm.process.fd.growth", "{file_descriptor}/s", RD_PROM_GAUGE, "rtm_process_fd_growth_per_second", "per_second" },
		{ "rtm.process.leak.suspect", "", RD_PROM_GAUGE, "rtm_process_leak_suspect", "" },
		{ "rtm.process.metrics.dropped", "{metric}", RD_PROM_COUNTER, "rtm_process_metrics_dropped", "" },
		{ "rtm.process.slots.torn", "{slot}", RD_PROM_COUNTER, "rtm_process_slots_torn", "" },
		{ "rtm.reader.segments", "{segment}", RD_PROM_GAUGE, "rtm_reader_segments", "" },
		{ "rtm.reader.segments.rejected", "{segment}", RD_PROM_COUNTER, "rtm_reader_segments_rejected", "" },
		{ "rtm.reader.slots.torn", "{slot}", RD_PROM_COUNTER, "rtm_reader_slots_torn", "" },
		{ "rtm.reader.exports", "{request}", RD_PROM_COUNTER, "rtm_reader_exports", "" },
		{ "rtm.reader.export.retries", "{retry}", RD_PROM_COUNTER, "rtm_reader_export_retries", "" },
		{ "rtm.reader.export.sent", "By", RD_PROM_COUNTER, "rtm_reader_export_sent_bytes", "bytes" },
		{ "rtm.reader.points.rejected", "{point}", RD_PROM_COUNTER, "rtm_reader_points_rejected", "" },
		{ "rtm.reader.prometheus.conflicts", "{metric}", RD_PROM_GAUGE, "rtm_reader_prometheus_conflicts", "" },
		{ "rtm.reader.cycle.duration", "s", RD_PROM_HISTOGRAM, "rtm_reader_cycle_duration_seconds", "seconds" },
	};

	(void)state;
	check_names(c, sizeof c / sizeof c[0]);
}

static void names_and_units_follow_the_otel_compatibility_spec(void **state)
{
	static const struct name_case c[] = {
		/* UCUM words, per-units, annotations */
		{ "io.rate", "By/s", RD_PROM_GAUGE, "io_rate_bytes_per_second", "bytes_per_second" },
		{ "pkt.rate", "{packet}/s", RD_PROM_GAUGE, "pkt_rate_per_second", "per_second" },
		{ "lat", "ms", RD_PROM_HISTOGRAM, "lat_milliseconds", "milliseconds" },
		{ "mem", "MiBy", RD_PROM_GAUGE, "mem_mebibytes", "mebibytes" },
		{ "temp", "Cel", RD_PROM_GAUGE, "temp_celsius", "celsius" },
		{ "speed", "m/h", RD_PROM_GAUGE, "speed_meters_per_hour", "meters_per_hour" },
		{ "odd", "furlongs", RD_PROM_GAUGE, "odd_furlongs", "furlongs" },
		{ "none", "", RD_PROM_GAUGE, "none", "" },
		/* "1": ratio for gauges only */
		{ "cpu.utilization", "1", RD_PROM_GAUGE, "cpu_utilization_ratio", "ratio" },
		{ "hits", "1", RD_PROM_COUNTER, "hits", "" },
		/* no doubled suffixes */
		{ "wait.seconds", "s", RD_PROM_COUNTER, "wait_seconds", "seconds" },
		{ "requests.total", "{request}", RD_PROM_COUNTER, "requests", "" },
		{ "sent.bytes.total", "By", RD_PROM_COUNTER, "sent_bytes", "bytes" },
		{ "total", "", RD_PROM_COUNTER, "total", "" },
		{ "io.bytes_per_second", "By/s", RD_PROM_GAUGE, "io_bytes_per_second", "bytes_per_second" },
		/* invalid characters, runs of '_' */
		{ "a-b/c..d", "", RD_PROM_GAUGE, "a_b_c_d", "" },
		{ "x__y", "", RD_PROM_GAUGE, "x_y", "" },
		{ "k8s.pod:cpu", "", RD_PROM_GAUGE, "k8s_pod:cpu", "" },
	};

	(void)state;
	check_names(c, sizeof c / sizeof c[0]);
}

static void label_names_are_sanitised(void **state)
{
	static const char *const c[][2] = {
		{ "http.route", "http_route" }, { "outcome", "outcome" },
		{ "a-b c", "a_b_c" }, { "9lives", "key_9lives" }, { "_x", "key_x" },
		{ "__name__", "key__name__" }, { "a:b", "a_b" }, { "caf\xc3\xa9", "caf__" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char out[RD_PROM_NAME_MAX];

		rd_prom_label_name(c[i][0], out);
		assert_string_equal(out, c[i][1]);
	}
}

/* ---- a model built by hand ---- */

struct model {
	otlp_rm rm[2], *rms[2];
	otlp_resource res[2];
	otlp_kv res_kv[2][4], *res_kvp[2][4];
	otlp_any res_any[2][4];
	otlp_scope scope;
	otlp_sm sm[2], *smp[2][1];
	otlp_metric m[2][4], *mp[2][4];
	otlp_sum sum[2][2];
	otlp_gauge gauge[2];
	otlp_hist hist[2];
	otlp_ndp ndp[2][4], *ndpp[2][4];
	otlp_hdp hdp[2], *hdpp[2];
	otlp_kv kv[2][4], *kvp[2][4];
	otlp_any any[2][4];
	uint64_t buckets[2][4];
	double bounds[3];
};

/* Producer k: a counter app.requests{route} (2 points), an up-down counter,
 * a gauge and a histogram app.latency with bounds 0.01, 0.1, 1. */
static void model_init(struct model *md, size_t n_res, const char *route_a, const char *route_b)
{
	memset(md, 0, sizeof *md);
	opentelemetry__proto__common__v1__instrumentation_scope__init(&md->scope);
	md->scope.name = (char *)"rtm";
	md->scope.version = (char *)"0.1.0";
	md->bounds[0] = 0.01, md->bounds[1] = 0.1, md->bounds[2] = 1;
	for (size_t k = 0; k < n_res; k++) {
		static const char *names[] = { "svc-a", "svc-b" }, *ids[] = { "1-2-3", "4-5-6" };

		opentelemetry__proto__metrics__v1__resource_metrics__init(&md->rm[k]);
		opentelemetry__proto__resource__v1__resource__init(&md->res[k]);
		rd_kv_str(&md->res_kv[k][0], &md->res_any[k][0], "service.name", names[k]);
		rd_kv_str(&md->res_kv[k][1], &md->res_any[k][1], "service.instance.id", ids[k]);
		rd_kv_int(&md->res_kv[k][2], &md->res_any[k][2], "process.pid", 100 + (int)k);
		rd_kv_str(&md->res_kv[k][3], &md->res_any[k][3], "team", "core");
		for (int i = 0; i < 4; i++)
			md->res_kvp[k][i] = &md->res_kv[k][i];
		md->res[k].attributes = md->res_kvp[k];
		md->res[k].n_attributes = 4;
		md->rm[k].resource = &md->res[k];
		opentelemetry__proto__metrics__v1__scope_metrics__init(&md->sm[k]);
		md->sm[k].scope = &md->scope;
		md->smp[k][0] = &md->sm[k];
		md->rm[k].scope_metrics = md->smp[k];
		md->rm[k].n_scope_metrics = 1;
		for (int i = 0; i < 4; i++) {
			opentelemetry__proto__metrics__v1__metric__init(&md->m[k][i]);
			md->mp[k][i] = &md->m[k][i];
			opentelemetry__proto__metrics__v1__number_data_point__init(&md->ndp[k][i]);
			md->ndpp[k][i] = &md->ndp[k][i];
			md->ndp[k][i].start_time_unix_nano = 1700000000500000000ull;
		}
		md->sm[k].metrics = md->mp[k];
		md->sm[k].n_metrics = 4;

		/* app.requests: monotonic sum, two points */
		md->m[k][0].name = (char *)"app.requests";
		md->m[k][0].unit = (char *)"{request}";
		md->m[k][0].description = (char *)"Requests \\ \"served\"\nso far";
		opentelemetry__proto__metrics__v1__sum__init(&md->sum[k][0]);
		md->sum[k][0].is_monotonic = 1;
		md->sum[k][0].data_points = md->ndpp[k];
		md->sum[k][0].n_data_points = 2;
		md->m[k][0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
		md->m[k][0].sum = &md->sum[k][0];
		rd_kv_str(&md->kv[k][0], &md->any[k][0], "route", route_a);
		rd_kv_str(&md->kv[k][1], &md->any[k][1], "route", route_b);
		md->kvp[k][0] = &md->kv[k][0];
		md->kvp[k][1] = &md->kv[k][1];
		md->ndp[k][0].attributes = &md->kvp[k][0];
		md->ndp[k][0].n_attributes = 1;
		md->ndp[k][0].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
		md->ndp[k][0].as_int = 100 + (int64_t)k;
		md->ndp[k][1].attributes = &md->kvp[k][1];
		md->ndp[k][1].n_attributes = 1;
		md->ndp[k][1].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
		md->ndp[k][1].as_int = 7;

		/* app.active: non-monotonic sum */
		md->m[k][1].name = (char *)"app.active";
		md->m[k][1].unit = (char *)"{request}";
		opentelemetry__proto__metrics__v1__sum__init(&md->sum[k][1]);
		md->sum[k][1].data_points = &md->ndpp[k][2];
		md->sum[k][1].n_data_points = 1;
		md->m[k][1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
		md->m[k][1].sum = &md->sum[k][1];
		md->ndp[k][2].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
		md->ndp[k][2].as_int = -3;

		/* app.ratio: gauge, unit 1 (its name has the "ratio" already) */
		md->m[k][2].name = (char *)"app.ratio";
		md->m[k][2].unit = (char *)"1";
		opentelemetry__proto__metrics__v1__gauge__init(&md->gauge[k]);
		md->gauge[k].data_points = &md->ndpp[k][3];
		md->gauge[k].n_data_points = 1;
		md->m[k][2].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
		md->m[k][2].gauge = &md->gauge[k];
		md->ndp[k][3].start_time_unix_nano = 0;
		md->ndp[k][3].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
		md->ndp[k][3].as_double = 0.1;

		/* app.latency: histogram */
		md->m[k][3].name = (char *)"app.latency";
		md->m[k][3].unit = (char *)"s";
		opentelemetry__proto__metrics__v1__histogram__init(&md->hist[k]);
		opentelemetry__proto__metrics__v1__histogram_data_point__init(&md->hdp[k]);
		md->hdpp[k] = &md->hdp[k];
		md->hist[k].data_points = &md->hdpp[k];
		md->hist[k].n_data_points = 1;
		md->m[k][3].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
		md->m[k][3].histogram = &md->hist[k];
		md->buckets[k][0] = 1, md->buckets[k][1] = 0, md->buckets[k][2] = 1, md->buckets[k][3] = 2;
		md->hdp[k].bucket_counts = md->buckets[k];
		md->hdp[k].n_bucket_counts = 4;
		md->hdp[k].explicit_bounds = md->bounds;
		md->hdp[k].n_explicit_bounds = 3;
		md->hdp[k].count = 4;
		md->hdp[k].sum = 4.505;
		md->hdp[k].start_time_unix_nano = 1700000000000000000ull;
		md->rms[k] = &md->rm[k];
	}
}

static bool with_created; /* rd_prom_renderer_created() for the next render() */

static char *render(struct model *md, size_t n, enum rd_prom_format fmt, struct rd_prom_stats *st)
{
	struct rd_prom_renderer *r = rd_prom_renderer_new();
	struct rd_buf out = { 0 };
	size_t len;
	char *s;

	rd_prom_renderer_created(r, with_created);
	with_created = false;
	rd_prom_render(r, md->rms, NULL, n, fmt, &out, st);
	rd_buf_putc(&out, '\0');
	s = rd_buf_take(&out, &len);
	rd_prom_renderer_free(r);
	return s;
}

#define LBL "job=\"svc-a\",instance=\"1-2-3\",otel_scope_name=\"rtm\",otel_scope_version=\"0.1.0\""

static void text_format_is_exact(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s;

	(void)state;
	model_init(&md, 1, "/a", "/b");
	s = render(&md, 1, RD_PROM_TEXT, &st);
	assert_string_equal(s,
		"# HELP target_info Target metadata\n"
		"# TYPE target_info gauge\n"
		"target_info{job=\"svc-a\",instance=\"1-2-3\",process_pid=\"100\",team=\"core\"} 1\n"
		"# HELP app_requests_total Requests \\\\ \"served\"\\nso far\n"
		"# TYPE app_requests_total counter\n"
		"app_requests_total{" LBL ",route=\"/a\"} 100\n"
		"app_requests_total{" LBL ",route=\"/b\"} 7\n"
		"# TYPE app_active gauge\n"
		"app_active{" LBL "} -3\n"
		"# TYPE app_ratio gauge\n"
		"app_ratio{" LBL "} 0.1\n"
		"# TYPE app_latency_seconds histogram\n"
		"app_latency_seconds_bucket{" LBL ",le=\"0.01\"} 1\n"
		"app_latency_seconds_bucket{" LBL ",le=\"0.1\"} 1\n"
		"app_latency_seconds_bucket{" LBL ",le=\"1\"} 2\n"
		"app_latency_seconds_bucket{" LBL ",le=\"+Inf\"} 4\n"
		"app_latency_seconds_sum{" LBL "} 4.505\n"
		"app_latency_seconds_count{" LBL "} 4\n");
	assert_int_equal(st.families, 5);
	assert_int_equal(st.series, 1 + 2 + 1 + 1 + 6);
	assert_int_equal(st.dropped, 0);
	free(s);
}

static void openmetrics_has_units_created_and_eof(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s;

	(void)state;
	model_init(&md, 1, "/a", "/b");
	with_created = true;
	s = render(&md, 1, RD_PROM_OPENMETRICS, &st);
	assert_string_equal(s,
		"# TYPE target info\n"
		"# HELP target Target metadata\n"
		"target_info{job=\"svc-a\",instance=\"1-2-3\",process_pid=\"100\",team=\"core\"} 1\n"
		"# TYPE app_requests counter\n"
		"# HELP app_requests Requests \\\\ \\\"served\\\"\\nso far\n"
		"app_requests_total{" LBL ",route=\"/a\"} 100\n"
		"app_requests_created{" LBL ",route=\"/a\"} 1700000000.5\n"
		"app_requests_total{" LBL ",route=\"/b\"} 7\n"
		"app_requests_created{" LBL ",route=\"/b\"} 1700000000.5\n"
		"# TYPE app_active gauge\n"
		"app_active{" LBL "} -3\n"
		"# TYPE app_ratio gauge\n"
		"# UNIT app_ratio ratio\n"
		"app_ratio{" LBL "} 0.1\n"
		"# TYPE app_latency_seconds histogram\n"
		"# UNIT app_latency_seconds seconds\n"
		"app_latency_seconds_bucket{" LBL ",le=\"0.01\"} 1\n"
		"app_latency_seconds_bucket{" LBL ",le=\"0.1\"} 1\n"
		"app_latency_seconds_bucket{" LBL ",le=\"1\"} 2\n"
		"app_latency_seconds_bucket{" LBL ",le=\"+Inf\"} 4\n"
		"app_latency_seconds_sum{" LBL "} 4.505\n"
		"app_latency_seconds_count{" LBL "} 4\n"
		"app_latency_seconds_created{" LBL "} 1700000000\n"
		"# EOF\n");
	free(s);
}

/* By default OpenMetrics pages carry no _created samples (Prometheus 2.x
 * would store each as a series); everything else is as above. */
static void openmetrics_leaves_created_out_by_default(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s;

	(void)state;
	model_init(&md, 1, "/a", "/b");
	s = render(&md, 1, RD_PROM_OPENMETRICS, &st);
	assert_null(strstr(s, "_created"));
	assert_non_null(strstr(s, "app_requests_total{" LBL ",route=\"/a\"} 100\n"
				  "app_requests_total{" LBL ",route=\"/b\"} 7\n"));
	assert_non_null(strstr(s, "app_latency_seconds_count{" LBL "} 4\n# EOF\n"));
	free(s);
}

/* Two producers' series of one name stand under one TYPE line. */
static void producers_share_one_family_per_name(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s, *p;
	int types = 0;

	(void)state;
	model_init(&md, 2, "/a", "/b");
	s = render(&md, 2, RD_PROM_TEXT, &st);
	for (p = s; (p = strstr(p, "# TYPE app_requests_total counter\n")); p++)
		types++;
	assert_int_equal(types, 1);
	assert_non_null(strstr(s, "app_requests_total{job=\"svc-b\",instance=\"4-5-6\",otel_scope_name=\"rtm\","
				  "otel_scope_version=\"0.1.0\",route=\"/a\"} 101\n"));
	assert_int_equal(st.families, 5);
	assert_int_equal(st.series, 2 * 11);
	free(s);
}

/* The renderer remembers the family of the metric at each position of the
 * last scope (the next producer of a program has the same metric there):
 * a metric that differs from the remembered one only in its name's
 * address shares the family; one that differs in unit or type gets its
 * own; and names changed in place between two renderings are read anew. */
static void families_follow_each_metric_not_its_position(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	struct rd_prom_renderer *r = rd_prom_renderer_new();
	struct rd_buf out = { 0 };
	char copy[] = "app.requests", name[] = "app.ratio";
	char *s, *p;
	int types = 0;

	(void)state;
	model_init(&md, 2, "/a", "/b");
	md.m[1][0].name = copy;               /* same name, another address */
	md.m[1][1].unit = (char *)"By";       /* another unit: app_active_bytes */
	md.m[0][2].name = md.m[1][2].name = name;
	rd_prom_render(r, md.rms, NULL, 2, RD_PROM_TEXT, &out, &st);
	rd_buf_putc(&out, '\0');
	s = out.p;
	for (p = s; (p = strstr(p, "# TYPE app_requests_total counter\n")); p++)
		types++;
	assert_int_equal(types, 1);
	assert_non_null(strstr(s, "app_requests_total{job=\"svc-b\",instance=\"4-5-6\""));
	assert_non_null(strstr(s, "# TYPE app_active gauge\napp_active{job=\"svc-a\""));
	assert_non_null(strstr(s, "# TYPE app_active_bytes gauge\napp_active_bytes{job=\"svc-b\""));
	assert_int_equal(st.families, 6);
	assert_int_equal(st.dropped, 0);

	/* The second producer's counter turned gauge: the family of its
	 * position is a counter's, so it is a type conflict, dropped. */
	md.sum[1][0].is_monotonic = 0;
	out.len = 0;
	rd_prom_render(r, md.rms, NULL, 2, RD_PROM_TEXT, &out, &st);
	rd_buf_putc(&out, '\0');
	assert_int_equal(st.dropped, 1);
	assert_null(strstr(out.p, "app_requests{"));

	/* Same addresses, new text: both producers' gauge is renamed. */
	md.sum[1][0].is_monotonic = 1;
	memcpy(name, "app.level", sizeof name);
	out.len = 0;
	rd_prom_render(r, md.rms, NULL, 2, RD_PROM_TEXT, &out, &st);
	rd_buf_putc(&out, '\0');
	assert_null(strstr(out.p, "app_ratio"));
	assert_non_null(strstr(out.p, "# TYPE app_level_ratio gauge\napp_level_ratio{job=\"svc-a\""));
	assert_non_null(strstr(out.p, "app_level_ratio{job=\"svc-b\""));
	assert_int_equal(st.dropped, 0);
	rd_buf_free(&out);
	rd_prom_renderer_free(r);
}

/* A page is the renderer's buffers listed in order, not one joined copy:
 * the server sends a page while the renderer fills the next one, so a
 * page must own what it lists.  Each format's pieces join to the whole
 * page rd_prom_render() gives, and stay so while another page of another
 * model is rendered, and the page after it into the first one's place. */
static void a_page_keeps_its_bytes_while_the_next_is_rendered(void **state)
{
	struct model a, b;
	struct rd_prom_stats st;
	struct rd_prom_renderer *r = rd_prom_renderer_new();

	(void)state;
	model_init(&a, 2, "/a", "/b");
	model_init(&b, 2, "/c", "/d");
	b.sum[0][0].data_points[0]->as_int = 999999;
	for (int f = 0; f < RD_PROM_FORMATS; f++) {
		struct rd_prom_page pa = { 0 }, pb = { 0 };
		struct rd_buf whole = { 0 }, ja = { 0 }, again = { 0 }, jb = { 0 };
		size_t sum = 0;

		rd_prom_render(r, a.rms, NULL, 2, (enum rd_prom_format)f, &whole, &st);
		rd_prom_render_page(r, a.rms, NULL, 2, (enum rd_prom_format)f, &pa, &st);
		for (size_t i = 0; i < pa.n_iov; i++)
			sum += pa.iov[i].iov_len;
		assert_int_equal(sum, pa.len);
		assert_true(pa.n_iov > 2); /* families in their own buffers */
		rd_prom_page_join(&pa, &ja);
		assert_int_equal(ja.len, whole.len);
		assert_memory_equal(ja.p, whole.p, whole.len);
		/* Another model into another page, twice (buffers regrow). */
		rd_prom_render_page(r, b.rms, NULL, 2, (enum rd_prom_format)f, &pb, &st);
		rd_prom_render_page(r, b.rms, NULL, 1, (enum rd_prom_format)f, &pb, &st);
		rd_prom_page_join(&pa, &again);
		assert_int_equal(again.len, whole.len);
		assert_memory_equal(again.p, whole.p, whole.len);
		/* And the first page rendered again from b: b's bytes. */
		rd_prom_render_page(r, b.rms, NULL, 2, (enum rd_prom_format)f, &pa, &st);
		rd_prom_page_join(&pa, &jb);
		whole.len = 0;
		rd_prom_render(r, b.rms, NULL, 2, (enum rd_prom_format)f, &whole, &st);
		assert_int_equal(jb.len, whole.len);
		assert_memory_equal(jb.p, whole.p, whole.len);
		if (f != RD_PROM_PROTOBUF)
			assert_non_null(memmem(jb.p, jb.len, "999999", 6));
		rd_prom_page_free(&pa);
		rd_prom_page_free(&pb);
		rd_buf_free(&whole);
		rd_buf_free(&ja);
		rd_buf_free(&again);
		rd_buf_free(&jb);
	}
	rd_prom_renderer_free(r);
}

/* Newlines, quotes and backslashes escaped; bytes that are not UTF-8
 * (a stray continuation, an overlong NUL, a cut-off sequence) as U+FFFD;
 * valid multi-byte text kept. */
static void hostile_label_values_are_escaped_and_made_utf8(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s;

	(void)state;
	model_init(&md, 1, "a\"b\\c\nd", "\x80x\xc0\x80y\xe2\x82z caf\xc3\xa9 \xf0\x9f\x98\x80");
	md.res_any[0][0].string_value = (char *)"svc\n\"x\"";
	s = render(&md, 1, RD_PROM_TEXT, &st);
	assert_non_null(strstr(s, "route=\"a\\\"b\\\\c\\nd\"} 100\n"));
	assert_non_null(strstr(s, "route=\"\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbdz "
				  "caf\xc3\xa9 \xf0\x9f\x98\x80\"} 7\n"));
	assert_non_null(strstr(s, "target_info{job=\"svc\\n\\\"x\\\"\""));
	/* Every line is one sample or comment: nothing broke a line. */
	for (char *line = s; *line; line = strchr(line, '\n') + 1)
		assert_true(line[0] == '#' || !strncmp(line, "app_", 4) || !strncmp(line, "target_info{", 12));
	free(s);
}

/* ---- the protobuf page, read back ---- */

static uint64_t pb_get_varint(const unsigned char **p, const unsigned char *end)
{
	uint64_t v;

	if (!pb_varint(p, end, &v))
		fail_msg("varint runs past its message");
	return v;
}

/* The length-delimited field `field` of message [p, end) after skipping
 * `skip` of them: *out and *len, or false. */
static bool pb_field(const unsigned char *p, const unsigned char *end, unsigned field, int skip,
		     const unsigned char **out, size_t *len)
{
	while (p < end) {
		uint64_t tag = pb_get_varint(&p, end), n;

		switch (tag & 7) {
		case 0:
			pb_get_varint(&p, end);
			break;
		case 1:
			p += 8;
			break;
		case 2:
			n = pb_get_varint(&p, end);
			assert_true(n <= (uint64_t)(end - p));
			if ((tag >> 3) == field && skip-- == 0) {
				*out = p;
				*len = n;
				return true;
			}
			p += n;
			break;
		default:
			fail_msg("wire type %u", (unsigned)(tag & 7));
		}
	}
	return false;
}

/* The protobuf page carries the same labels as the text page, values
 * unescaped: the producer's and scope's (encoded once a scope) first,
 * then the point's own, hostile bytes included. */
static void protobuf_labels_are_the_text_pages_unescaped(void **state)
{
	static const char *const want[][2] = {
		{ "job", "svc\n\"x\"" }, { "instance", "1-2-3" }, { "otel_scope_name", "rtm" },
		{ "otel_scope_version", "0.1.0" }, { "route", "a\"b\\c\nd" },
	};
	struct model md;
	struct rd_prom_stats st;
	struct rd_prom_renderer *r = rd_prom_renderer_new();
	struct rd_buf out = { 0 };
	const unsigned char *p, *end, *fam = NULL, *m, *pair, *f;
	size_t fam_len = 0, m_len, pair_len, f_len;
	int found = 0;

	(void)state;
	model_init(&md, 2, "a\"b\\c\nd", "/b");
	md.res_any[0][0].string_value = (char *)"svc\n\"x\"";
	rd_prom_render(r, md.rms, NULL, 1, RD_PROM_PROTOBUF, &out, &st);
	assert_true(pb_page_ok(out.p, out.len));
	p = (const unsigned char *)out.p;
	end = p + out.len;
	while (p < end) { /* delimited MetricFamily messages */
		size_t n = (size_t)pb_get_varint(&p, end);
		const unsigned char *name;
		size_t name_len;

		assert_true(n <= (size_t)(end - p));
		if (pb_field(p, p + n, 1, 0, &name, &name_len) && name_len == 18 &&
		    !memcmp(name, "app_requests_total", 18)) {
			fam = p;
			fam_len = n;
		}
		p += n;
	}
	assert_non_null(fam);
	assert_true(pb_field(fam, fam + fam_len, 4, 0, &m, &m_len)); /* its first Metric */
	for (int i = 0; pb_field(m, m + m_len, 1, i, &pair, &pair_len); i++, found++) {
		assert_true(i < 5);
		assert_true(pb_field(pair, pair + pair_len, 1, 0, &f, &f_len));
		assert_int_equal(f_len, strlen(want[i][0]));
		assert_memory_equal(f, want[i][0], f_len);
		assert_true(pb_field(pair, pair + pair_len, 2, 0, &f, &f_len));
		assert_int_equal(f_len, strlen(want[i][1]));
		assert_memory_equal(f, want[i][1], f_len);
	}
	assert_int_equal(found, 5);
	rd_buf_free(&out);
	rd_prom_renderer_free(r);
}

static void colliding_and_reserved_attribute_keys(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	otlp_kv kv[4], *kvp[4];
	otlp_any any[4];
	char *s;

	(void)state;
	model_init(&md, 1, "/a", "/b");
	rd_kv_str(&kv[0], &any[0], "a_b", "second");
	rd_kv_str(&kv[1], &any[1], "a.b", "first");
	rd_kv_str(&kv[2], &any[2], "job", "mine");
	rd_kv_int(&kv[3], &any[3], "le", 5);
	for (int i = 0; i < 4; i++)
		kvp[i] = &kv[i];
	md.ndp[0][2].attributes = kvp;
	md.ndp[0][2].n_attributes = 4;
	s = render(&md, 1, RD_PROM_TEXT, &st);
	assert_non_null(strstr(s, "app_active{" LBL ",a_b=\"first;second\",exported_job=\"mine\","
				  "exported_le=\"5\"} -3\n"));
	free(s);
}

/* A name another producer uses with another type is left out, counted. */
static void type_conflicts_drop_the_later_metric(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s;

	(void)state;
	model_init(&md, 2, "/a", "/b");
	md.m[1][1].name = (char *)"app.requests"; /* a gauge-typed sum in producer 2 */
	s = render(&md, 2, RD_PROM_TEXT, &st);
	assert_int_equal(st.dropped, 1);
	assert_null(strstr(s, "# TYPE app_requests gauge"));
	assert_null(strstr(s, "app_requests{"));
	free(s);
}

static void no_recorded_value_points_are_left_out(void **state)
{
	struct model md;
	struct rd_prom_stats st;
	char *s;

	(void)state;
	model_init(&md, 1, "/a", "/b");
	md.ndp[0][0].flags = OTLP_NO_RECORDED_VALUE;
	md.hdp[0].flags = OTLP_NO_RECORDED_VALUE;
	s = render(&md, 1, RD_PROM_TEXT, &st);
	assert_null(strstr(s, "route=\"/a\""));
	assert_null(strstr(s, "app_latency_seconds_bucket{"));
	assert_non_null(strstr(s, "route=\"/b\"} 7\n"));
	free(s);
}

struct dbl_case {
	double v;
	const char *s;
};

static void check_doubles(void (*fmt)(struct rd_buf *, double), const struct dbl_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rd_buf b = { 0 };

		fmt(&b, c[i].v);
		rd_buf_putc(&b, '\0');
		if (strcmp(b.p, c[i].s))
			fail_msg("%.17g: got %s, want %s", c[i].v, b.p, c[i].s);
		assert_true(strtod(b.p, NULL) == c[i].v);
		rd_buf_free(&b);
	}
}

/* Sample values: exact, short for the common cases. */
static void values_print_short_and_exact(void **state)
{
	static const struct dbl_case c[] = {
		{ 0.1, "0.1" }, { 1e-06, "0.000001" }, { 2.5, "2.5" }, { 3, "3" }, { -0.0, "-0" },
		{ -12.25, "-12.25" }, { 1e300, "1e+300" }, { 1.0000000000000002, "1.0000000000000002" },
		{ 0.30000000000000004, "0.30000000000000004" }, { 1e-7, "1e-07" },
		{ 9007199254740993.0, "9007199254740992" }, { 1.0 / 0.0, "+Inf" }, { -1.0 / 0.0, "-Inf" },
	};

	(void)state;
	check_doubles(rd_buf_double, c, sizeof c / sizeof c[0]);
}

/* "le" values: as Go's FormatFloat(v, 'g', -1, 64), like Prometheus clients. */
static void bucket_bounds_print_as_go_does(void **state)
{
	static const struct dbl_case c[] = {
		{ 1e-06, "1e-06" }, { 1e-05, "1e-05" }, { 0.0001, "0.0001" }, { 0.005, "0.005" },
		{ 0.1, "0.1" }, { 1, "1" }, { 2.5, "2.5" }, { 123456, "123456" }, { 1e6, "1e+06" },
		{ 1234567, "1.234567e+06" }, { 0, "0" }, { -0.25, "-0.25" }, { 1.0 / 0.0, "+Inf" },
	};

	(void)state;
	check_doubles(rd_buf_go_float, c, sizeof c / sizeof c[0]);
}

/* ---- HTTP ---- */

static void http_requests_parse_or_are_refused(void **state)
{
	struct rd_http_req q;
	const char *ok = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: text/plain\r\n"
			 "Connection: close\r\n\r\nGET / HTTP/1.1\r\n";

	(void)state;
	assert_int_equal(rd_http_parse(ok, strlen(ok), &q), strstr(ok, "\r\n\r\n") + 4 - ok);
	assert_string_equal(q.method, "GET");
	assert_string_equal(q.path, "/metrics");
	assert_true(q.http11 && q.has_host && !q.keep_alive && !q.has_body);
	assert_string_equal(q.accept, "text/plain");
	/* incomplete: wait for more */
	assert_int_equal(rd_http_parse("GET / HTTP/1.1\r\nHost: a\r\n", 25, &q), 0);
	/* HTTP/1.0 closes by default, keeps alive on request; bare LF ends lines */
	assert_true(rd_http_parse("GET / HTTP/1.0\n\n", 16, &q) > 0 && !q.keep_alive && !q.http11);
	assert_true(rd_http_parse("GET / HTTP/1.0\nConnection: Keep-Alive\n\n", 39, &q) > 0 &&
		    q.keep_alive);
	/* bodies are noticed */
	assert_true(rd_http_parse("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 37, &q) > 0 && q.has_body);
	assert_true(rd_http_parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 37, &q) > 0 && !q.has_body);
	/* malformed */
	static const char *const bad[] = {
		"GET /metrics\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (rd_http_parse(bad[i], strlen(bad[i]), &q) != -1)
			fail_msg("accepted: %s", bad[i]);
	assert_int_equal(rd_http_parse("GET / HTTP/1.1\r\nA: \0\r\n\r\n", 24, &q), -1);
	/* blank lines before a request are skipped (RFC 9112 2.2) */
	assert_int_equal(rd_http_parse("\r\n\r\n", 4, &q), 0);
	assert_int_equal(rd_http_parse("\r\nGET / HTTP/1.0\r\n\r\n", 20, &q), 20);
}

static void content_negotiation(void **state)
{
	(void)state;
	unsigned named;

	/* What Prometheus 2.42 sends: OpenMetrics, or with native histograms
	 * on, protobuf first. */
	assert_int_equal(rd_http_prom_format(
		"application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", &named), 1);
	assert_int_equal(named, 3);
	assert_int_equal(rd_http_prom_format(
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
		"encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,"
		"application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,"
		"*/*;q=0.1", &named), 2);
	assert_int_equal(named, 7);
	assert_int_equal(rd_http_prom_format("", &named), 0);
	assert_int_equal(rd_http_prom_format(NULL, &named), 0);
	/* curl: text, and nothing named to fall back on. */
	assert_int_equal(rd_http_prom_format("*/*", &named), 0);
	assert_int_equal(named, 0);
	assert_int_equal(rd_http_prom_format("text/plain;version=0.0.4", &named), 0);
	assert_int_equal(named, 1);
	assert_int_equal(rd_http_prom_format("application/openmetrics-text;q=0,text/plain", &named), 0);
	assert_int_equal(rd_http_prom_format("application/openmetrics-text; q=0.3, text/*; q=0.5",
					     &named), 0);
	assert_int_equal(rd_http_prom_format("Application/OpenMetrics-Text", &named), 1);
	/* Protobuf needs both parameters: another message or framing is not it. */
	assert_int_equal(rd_http_prom_format("application/vnd.google.protobuf", &named), 0);
	assert_int_equal(rd_http_prom_format("application/vnd.google.protobuf;"
					     "proto=io.prometheus.client.MetricFamily;encoding=text",
					     &named), 0);
	assert_int_equal(rd_http_prom_format("application/vnd.google.protobuf; "
					     "proto=io.prometheus.client.MetricFamily; "
					     "encoding=delimited; q=0.4, text/plain; q=0.5", &named), 0);
	assert_int_equal(named, 5);
	assert_true(rd_http_allows_gzip("gzip"));
	assert_true(rd_http_allows_gzip("deflate, GZIP;q=0.5"));
	assert_true(rd_http_allows_gzip("*"));
	assert_false(rd_http_allows_gzip("gzip;q=0"));
	assert_false(rd_http_allows_gzip("identity"));
	assert_false(rd_http_allows_gzip(""));
}

/* ---- what the server asks the collector to render ---- */

/* A page of these bytes, in two pieces as a rendering leaves them (the
 * server joins or compresses the pieces). */
static void page_of(struct rd_prom_page *pg, const char *text)
{
	size_t n = strlen(text);

	pg->meta.len = 0;
	rd_buf_puts(&pg->meta, text);
	if (pg->cap_iov < 2) {
		free(pg->iov);
		pg->iov = calloc(2, sizeof *pg->iov);
		pg->cap_iov = 2;
	}
	pg->iov[0] = (struct iovec){ pg->meta.p, n / 2 };
	pg->iov[1] = (struct iovec){ pg->meta.p + n / 2, n - n / 2 };
	pg->n_iov = 2;
	pg->len = n;
}

static void publish_text(struct rd_prom_server *s, const char *text, uint64_t now)
{
	struct rd_prom_page body[RD_PROM_FORMATS] = { { 0 } };

	rd_prom_server_spare(s, RD_PROM_TEXT, &body[RD_PROM_TEXT]);
	page_of(&body[RD_PROM_TEXT], text);
	rd_prom_server_publish(s, body, 1u << RD_PROM_TEXT, now);
}

#define SEC 1000000000ull

/* GET path from the server at url as a client that reads slowly through
 * a small receive buffer, so the server's sends stop short, inside its
 * pieces; the whole answer (head and body) into *len bytes, malloc'd. */
static char *slow_get(const char *url, size_t *len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: text/plain;version=0.0.4\r\n"
			   "Connection: close\r\n\r\n";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096, port = 0;
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	ssize_t k;

	assert_int_equal(sscanf(strrchr(url, ':') + 1, "%d", &port), 1);
	a.sin_port = htons((uint16_t)port);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
	usleep(200000); /* the server's send buffer fills up: it stops short */
	for (int reads = 0; (k = read(fd, buf + n, cap - n < 1500 ? cap - n : 1500)) > 0; reads++) {
		n += (size_t)k;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		if (reads % 64 == 0)
			usleep(300); /* the server's buffer fills meanwhile */
	}
	close(fd);
	*len = n;
	return buf;
}

/* A page goes out in its pieces, never joined: thousands of them, empty
 * ones among them, more than a socket takes at once (so sends stop inside
 * a piece), arrive whole and in order, plain and gzipped. */
static void a_page_in_many_pieces_is_sent_whole(void **state)
{
	struct rd_prom_server *s;
	struct rd_prom_page body[RD_PROM_FORMATS] = { { 0 } };
	struct rd_prom_page *pg = &body[RD_PROM_TEXT];
	char err[256], url[160];
	struct tu_http h;
	struct timespec ts;
	size_t off = 0, n = 0;
	uint64_t x = 0x2545f4914f6cdd1du;
	char *want;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_int_equal(rd_prom_server_start(&s, "127.0.0.1", "0", SEC, err, sizeof err), 0);
	snprintf(url, sizeof url, "%s", rd_prom_server_urls(s));
	for (int i = 0; pg->meta.len < (8u << 20); i++) {
		char line[96];

		snprintf(line, sizeof line, "rtm_piece_total{job=\"p\",instance=\"%d\"} %d\n", i % 977, i);
		rd_buf_puts(&pg->meta, line);
	}
	pg->cap_iov = 6000;
	pg->iov = calloc(pg->cap_iov, sizeof *pg->iov);
	while (off < pg->meta.len) {
		size_t k;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* Empty, a byte, a line or so, or megabytes (a big family):
		 * a send stops inside those. */
		k = x % 256 == 255 ? (x >> 8) % (3u << 20) : x % 8 == 0 ? 0 : x % 8 == 1 ? 1 :
		    (x >> 8) % 4000;
		if (n == pg->cap_iov - 1 || k > pg->meta.len - off)
			k = pg->meta.len - off;
		pg->iov[n++] = (struct iovec){ pg->meta.p + off, k };
		off += k;
	}
	pg->n_iov = n;
	pg->len = pg->meta.len;
	assert_true(n > 200);
	want = malloc(off);
	memcpy(want, pg->meta.p, off);
	rd_prom_server_publish(s, body, 1u << RD_PROM_TEXT,
			       (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec);
	for (int gz = 0; gz < 2; gz++) {
		tu_http_get(url, "text/plain;version=0.0.4", gz, &h);
		assert_int_equal(h.status, 200);
		assert_int_equal(h.len, off);
		assert_memory_equal(h.body, want, off);
		assert_true(gz == (strstr(h.headers, "Content-Encoding: gzip") != NULL));
		tu_http_free(&h);
	}
	{
		size_t len;
		char *got = slow_get(url, &len), *at = memmem(got, len, "\r\n\r\n", 4);

		assert_non_null(at);
		at += 4;
		assert_int_equal((size_t)(got + len - at), off);
		assert_memory_equal(at, want, off);
		free(got);
	}
	free(want);
	rd_prom_server_stop(s);
}

static void pages_are_rendered_when_scraped_and_in_the_formats_asked(void **state)
{
	struct rd_prom_server *s;
	char err[256], url[160];
	struct tu_http h;
	struct timespec ts;
	uint64_t t0;

	(void)state;
	/* The server stamps requests with CLOCK_MONOTONIC: start from now. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
	assert_int_equal(rd_prom_server_start(&s, "127.0.0.1", "0", SEC, err, sizeof err), 0);
	snprintf(url, sizeof url, "%s", rd_prom_server_urls(s));
	/* Nothing asked yet: text. */
	assert_int_equal(rd_prom_server_wanted(s, t0, false), 1u << RD_PROM_TEXT);
	publish_text(s, "a 1\n", t0);
	/* Not scraped and younger than two intervals: skip... */
	assert_int_equal(rd_prom_server_wanted(s, t0 + SEC / 2, false), 0);
	assert_int_equal(rd_prom_server_wanted(s, t0 + 3 * SEC / 2, false), 0);
	/* ... unless final values are due, or it is two intervals old. */
	assert_int_equal(rd_prom_server_wanted(s, t0 + SEC / 2, true), 1u << RD_PROM_TEXT);
	assert_int_equal(rd_prom_server_wanted(s, t0 + 2 * SEC, false), 1u << RD_PROM_TEXT);
	/* An OpenMetrics scraper gets the text page (its Accept allows it)
	 * and OpenMetrics is rendered from then on, with the text (asked for
	 * by nobody yet) still rendered: it was the default. */
	tu_http_get(url, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5", false, &h);
	assert_int_equal(h.status, 200);
	assert_string_equal(h.body, "a 1\n");
	tu_http_free(&h);
	assert_int_equal(rd_prom_server_wanted(s, t0 + SEC / 2, false), 1u << RD_PROM_OPENMETRICS);
	/* A strict text scraper when only OpenMetrics is out: 503, then both. */
	{
		struct rd_prom_page body[RD_PROM_FORMATS] = { { 0 } };

		page_of(&body[RD_PROM_OPENMETRICS], "a 2\n# EOF\n");
		rd_prom_server_publish(s, body, 1u << RD_PROM_OPENMETRICS, t0 + SEC);
	}
	tu_http_get(url, "text/plain;version=0.0.4", false, &h);
	assert_int_equal(h.status, 503);
	tu_http_free(&h);
	/* No Accept, or curl's * / *: text, never a format not asked for. */
	tu_http_get(url, NULL, false, &h);
	assert_int_equal(h.status, 503);
	tu_http_free(&h);
	tu_http_get(url, "*/*", false, &h);
	assert_int_equal(h.status, 503);
	tu_http_free(&h);
	/* One that names OpenMetrics among others gets it meanwhile. */
	tu_http_get(url, "text/plain;version=0.0.4,application/openmetrics-text;q=0.5", false, &h);
	assert_int_equal(h.status, 200);
	assert_string_equal(h.body, "a 2\n# EOF\n");
	assert_non_null(strstr(h.headers, "application/openmetrics-text"));
	tu_http_free(&h);
	assert_int_equal(rd_prom_server_wanted(s, t0 + 3 * SEC / 2, false),
			 1u << RD_PROM_TEXT | 1u << RD_PROM_OPENMETRICS);
	/* A format nobody asked for in ten minutes is dropped. */
	assert_int_equal(rd_prom_server_wanted(s, t0 + SEC + 700 * SEC, true), 1u << RD_PROM_TEXT);
	rd_prom_server_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_rtm_metric_maps_as_the_readme_says),
		cmocka_unit_test(names_and_units_follow_the_otel_compatibility_spec),
		cmocka_unit_test(label_names_are_sanitised),
		cmocka_unit_test(text_format_is_exact),
		cmocka_unit_test(openmetrics_has_units_created_and_eof),
		cmocka_unit_test(openmetrics_leaves_created_out_by_default),
		cmocka_unit_test(producers_share_one_family_per_name),
		cmocka_unit_test(families_follow_each_metric_not_its_position),
		cmocka_unit_test(a_page_keeps_its_bytes_while_the_next_is_rendered),
		cmocka_unit_test(hostile_label_values_are_escaped_and_made_utf8),
		cmocka_unit_test(protobuf_labels_are_the_text_pages_unescaped),
		cmocka_unit_test(colliding_and_reserved_attribute_keys),
		cmocka_unit_test(type_conflicts_drop_the_later_metric),
		cmocka_unit_test(no_recorded_value_points_are_left_out),
		cmocka_unit_test(values_print_short_and_exact),
		cmocka_unit_test(bucket_bounds_print_as_go_does),
		cmocka_unit_test(http_requests_parse_or_are_refused),
		cmocka_unit_test(content_negotiation),
		cmocka_unit_test(pages_are_rendered_when_scraped_and_in_the_formats_asked),
		cmocka_unit_test(a_page_in_many_pieces_is_sent_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
