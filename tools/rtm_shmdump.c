/* SPDX-License-Identifier: MIT */
/*
 * rtm-shmdump - list and inspect rtm segments.  A pure client of the
 * reader's segment library: one implementation of reading, two tools.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rd_dir.h"
#include "rd_json.h"
#include "rd_proc.h"
#include "rtm_shm_presence.h"
#include "rd_segment.h"
#include "rtm_shm_text.h"
#include "rtm.h"
#include "shmdump_locks.h"
#include "shmdump_top.h"

/* /2: 64-bit integers (nanoseconds, counts, sizes) are strings, as in
 * OTLP/JSON, so jq and JavaScript keep every digit; list and detail views
 * share their key names; doubles are the shortest that round-trip. */
#define SCHEMA      "rtm-shmdump/2"
#define LIST_SCHEMA "rtm-shmdump-list/2"

struct opts {
	const char *dir;
	const char *filter;
	bool json;
	bool check;
	bool prune;
	bool locks;
	double watch; /* seconds; 0: once */
	double wait;  /* seconds to wait for a live pid's first segment */
};

static volatile sig_atomic_t stop;

/* s with control characters and invalid UTF-8 written as visible \xNN:
 * names, units, attributes and file names are anyone's text, and this
 * prints to a terminal.  Eight results may be in use at once. */
static const char *vis(const char *s)
{
	static char ring[8][4096];
	static unsigned next;

	return rtm_shm_text_visible(s ? s : "", ring[next++ % 8], sizeof ring[0]);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *state_name(uint32_t s)
{
	switch (s) {
	case RTM_SHM_STATE_INIT: return "init";
	case RTM_SHM_STATE_LIVE: return "live";
	case RTM_SHM_STATE_CLOSED: return "closed";
	}
	return "unknown";
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rtm-shmdump [--dir DIR] [--json] [--watch [SECONDS]]\n"
		"       rtm-shmdump [--dir DIR] [--json] [--watch [SECONDS]] [--filter GLOB] [--wait SECONDS] PID|PATH\n"
		"       rtm-shmdump [--dir DIR] [--json] --locks PID|PATH\n"
		"       rtm-shmdump [--dir DIR] --check PID|PATH\n"
		"       rtm-shmdump [--dir DIR] --prune\n"
		"With no argument, lists the segments in DIR ($RTM_DIR, default %s).\n"
		"  --json            machine-readable output (schema " SCHEMA ")\n"
		"  --watch [SECS]    repeat every SECS (default 1) with per-second rates; on a\n"
		"                    terminal one screen redrawn like top (without PID: all producers)\n"
		"  --filter GLOB     only metrics whose name matches GLOB\n"
		"  --wait SECS       wait up to SECS for a live PID's first segment\n"
		"  --locks           where the process waited for locks: its contended call\n"
		"                    sites, resolved to function and line, most wait first\n"
		"  --check           validate; exit 1 with the reason if corrupt\n"
		"  --prune           remove segments of ended processes (when no reader runs)\n"
		"  --proc-root DIR   the host's /proc, mounted at DIR (inside a container)\n",
		RD_DEFAULT_DIR);
}

static double age_s(uint64_t then)
{
	uint64_t now = now_ns();

	return then && then < now ? (double)(now - then) / 1e9 : 0.0;
}

/* ---- listing ---- */

/* Whether a reader is attached: while one is, it removes the segments of
 * ended processes after exporting them; otherwise producers do. */
static void reader_presence(int dfd, struct rd_json *j)
{
	struct rtm_shm_presence p;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (rtm_shm_presence_read(dfd, geteuid(), (uint64_t)ts.tv_sec * 1000000000ull +
				  (uint64_t)ts.tv_nsec, &p))
		p.present = false;
	if (j) {
		rd_json_obj_open(j, "reader");
		rd_json_bool(j, "attached", p.attached);
		if (p.present) {
			rd_json_int(j, "pid", p.pid);
			rd_json_uint_str(j, "interval_ns", p.interval_ns);
			rd_json_uint_str(j, "last_seen_ns_ago", p.age_ns);
		}
		rd_json_obj_close(j);
	} else if (p.attached) {
		printf("reader: attached (pid %d, every %.3gs, last seen %.1fs ago)\n", (int)p.pid,
		       (double)p.interval_ns / 1e9, (double)p.age_ns / 1e9);
	} else {
		printf("reader: none attached%s; producers remove the segments of ended processes "
		       "themselves\n", p.present ? " (its last sign of life is stale)" : "");
	}
}

/* What the list and the detail views both say of a segment, under the
 * same keys. */
static void summary_json(struct rd_json *j, const char *path, const struct rd_segment *seg,
			 const struct rd_snapshot *snap)
{
	rd_json_str(j, "path", path);
	rd_json_str(j, "service_name", seg->hdr.service_name);
	rd_json_int(j, "pid", seg->hdr.pid);
	/* The same process under our /proc, where its pid namespace is
	 * another (a container): 0 when it was not found. */
	rd_json_int(j, "host_pid", seg->proc_pid);
	rd_json_str(j, "process", rd_liveness_name((enum rd_liveness)seg->liveness));
	rd_json_str(j, "state", state_name(snap->state));
	rd_json_uint(j, "metric_count", seg->n_metrics);
	rd_json_uint_str(j, "size", seg->hdr.segment_size);
	rd_json_uint_str(j, "memory", (uint64_t)seg->st.st_blocks * 512);
	rd_json_uint_str(j, "heartbeat_unix_nano", snap->heartbeat_unix_nano);
}

static int list_segments(const struct opts *o)
{
	const char *dir = rd_dir_path(o->dir);
	struct rd_json j = { 0 };
	char **names;
	int dfd, n, bad = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* No directory yet is no segments, in either form (exit 0): no
	 * producer has run, no reader has made it. */
	if (dfd < 0 && errno == ENOENT) {
		if (!o->json) {
			printf("no segments: %s does not exist\n", vis(dir));
			return 0;
		}
		rd_json_obj_open(&j, NULL);
		rd_json_str(&j, "schema", LIST_SCHEMA);
		rd_json_str(&j, "dir", dir);
		rd_json_bool(&j, "exists", false);
		rd_json_obj_open(&j, "reader");
		rd_json_bool(&j, "attached", false);
		rd_json_obj_close(&j);
		rd_json_arr_open(&j, "segments");
		rd_json_arr_close(&j);
		rd_json_obj_close(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
		return 0;
	}
	if (dfd < 0) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	n = rd_dir_list(dfd, &names);
	if (n < 0) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", dir, strerror(-n));
		close(dfd);
		return 1;
	}
	if (o->json) {
		rd_json_obj_open(&j, NULL);
		rd_json_str(&j, "schema", LIST_SCHEMA);
		rd_json_str(&j, "dir", dir);
		reader_presence(dfd, &j);
		rd_json_arr_open(&j, "segments");
	} else {
		reader_presence(dfd, NULL);
		printf("%-20s %8s %-10s %-6s %7s %9s %9s %9s  %s\n", "SERVICE", "PID",
		       "PROCESS", "STATE", "METRICS", "SIZE", "MEMORY", "HEARTBEAT", "FILE");
	}
	for (int i = 0; i < n; i++) {
		struct rd_segment seg;
		struct rd_snapshot snap = { 0 };
		int rc = rd_segment_open(&seg, dfd, names[i], 0);

		if (!rc)
			rc = rd_segment_snapshot(&seg, &snap);
		if (rc) {
			bad++;
			if (o->json) {
				char path[PATH_MAX + 300];

				snprintf(path, sizeof path, "%s/%s", dir, names[i]);
				rd_json_obj_open(&j, NULL);
				rd_json_str(&j, "path", path);
				rd_json_str(&j, "error", seg.err);
				rd_json_obj_close(&j);
			} else {
				printf("%-20s %8s %-10s %-6s %7s %9s %9s  %s: %s\n", "?", "?",
				       "invalid", "?", "?", "?", "?", vis(names[i]), vis(seg.err));
			}
			rd_segment_close(&seg);
			continue;
		}
		if (o->json) {
			char path[PATH_MAX + 300];

			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			rd_json_obj_open(&j, NULL);
			summary_json(&j, path, &seg, &snap);
			rd_json_obj_close(&j);
		} else {
			printf("%-20.20s %8d %-10s %-6s %7u %8lluK %8lluK %8.1fs  %s\n",
			       vis(seg.hdr.service_name), seg.hdr.pid,
			       rd_liveness_name((enum rd_liveness)seg.liveness),
			       state_name(snap.state), seg.n_metrics,
			       (unsigned long long)seg.hdr.segment_size / 1024,
			       (unsigned long long)seg.st.st_blocks / 2,
			       age_s(snap.heartbeat_unix_nano), vis(names[i]));
		}
		rd_snapshot_free(&snap);
		rd_segment_close(&seg);
	}
	if (o->json) {
		rd_json_arr_close(&j);
		rd_json_obj_close(&j);
		printf("%s\n", j.buf);
		rd_json_free(&j);
	} else if (!n) {
		printf("(no segments in %s)\n", vis(dir));
	}
	rd_dir_names_free(names);
	close(dfd);
	return 0;
}

/* ---- one segment ---- */

static bool wanted(const struct opts *o, const struct rd_metric *m)
{
	return !o->filter || fnmatch(o->filter, m->name, 0) == 0;
}

static void json_segment(const struct opts *o, const struct rd_segment *seg,
			 const struct rd_snapshot *snap,
			 const struct rd_snapshot *prev, double dt)
{
	const struct rtm_shm_header *h = &seg->hdr;
	struct rd_json j = { 0 };
	char layout[16];

	snprintf(layout, sizeof layout, "%u.%u", h->major, h->minor);
	rd_json_obj_open(&j, NULL);
	rd_json_str(&j, "schema", SCHEMA);
	summary_json(&j, seg->path, seg, snap);
	rd_json_str(&j, "layout", layout);
	rd_json_str(&j, "producer", h->producer);
	rd_json_str(&j, "service_version", h->service_version);
	rd_json_obj_open(&j, "resource");
	for (uint32_t i = 0; i < seg->n_resource; i++)
		rd_json_str(&j, seg->resource[i].key, seg->resource[i].value);
	rd_json_obj_close(&j);
	rd_json_uint(&j, "uid", h->uid);
	rd_json_uint_str(&j, "pid_start_ticks", h->pid_start_ticks);
	rd_json_uint_str(&j, "generation", seg->generation);
	rd_json_uint_str(&j, "created_unix_nano", h->created_unix_nano);
	rd_json_uint_str(&j, "closed_unix_nano", snap->closed_unix_nano);
	rd_json_uint(&j, "shard_count", h->shard_count);
	rd_json_uint(&j, "dropped_metrics", snap->dropped_metrics);
	rd_json_uint(&j, "shard_fallbacks", snap->shard_fallbacks);
	rd_json_uint(&j, "torn_shards", snap->torn);
	rd_json_uint(&j, "series_left_out", seg->n_left_out);
	rd_json_arr_open(&j, "metrics");
	for (uint32_t i = 0; i < seg->n_metrics; i++) {
		const struct rd_metric *m = &seg->metrics[i];
		const struct rd_value *v = &snap->values[i];

		if (!wanted(o, m))
			continue;
		rd_json_obj_open(&j, NULL);
		rd_json_str(&j, "name", m->name);
		rd_json_str(&j, "kind", rd_kind_name(m->kind));
		rd_json_str(&j, "unit", m->unit);
		rd_json_str(&j, "description", m->description);
		rd_json_str(&j, "value_type",
			    m->value_type == RTM_SHM_VALUE_INT ? "int" : "double");
		rd_json_obj_open(&j, "attributes");
		for (uint32_t a = 0; a < m->n_attrs; a++)
			rd_json_str(&j, m->attrs[a].key, m->attrs[a].value);
		rd_json_obj_close(&j);
		rd_json_uint_str(&j, "start_time_unix_nano", m->start_unix_nano);
		rd_json_uint(&j, "torn_shards", v->torn);
		if (m->kind == RD_KIND_EXPHIST) {
			rd_json_uint_str(&j, "count", v->count);
			if (m->no_sum)
				rd_json_null(&j, "sum");
			else
				rd_json_double(&j, "sum", v->sum);
			if (v->count && !m->no_sum) {
				rd_json_double(&j, "min", v->min);
				rd_json_double(&j, "max", v->max);
			} else {
				rd_json_null(&j, "min");
				rd_json_null(&j, "max");
			}
			rd_json_int(&j, "scale", v->exp->scale);
			rd_json_uint_str(&j, "zero_count", v->exp->zero_count);
			for (int neg = 0; neg < 2; neg++) {
				int32_t b = neg ? v->exp->neg_base : v->exp->pos_base;
				int32_t top = neg ? v->exp->neg_top : v->exp->pos_top;
				const uint64_t *c = rtm_shm_exphist_counts(v->exp, m->exp_size, neg);

				rd_json_obj_open(&j, neg ? "negative" : "positive");
				rd_json_int(&j, "offset", top >= b ? b : 0);
				rd_json_arr_open(&j, "bucket_counts");
				for (int32_t k = 0; top >= b && k <= top - b; k++)
					rd_json_uint_str(&j, NULL, c[k]);
				rd_json_arr_close(&j);
				rd_json_obj_close(&j);
			}
			if (prev && dt > 0)
				rd_json_double(&j, "rate",
					       (double)(v->count - prev->values[i].count) / dt);
		} else if (m->kind == RTM_SHM_KIND_HISTOGRAM) {
			rd_json_uint_str(&j, "count", v->count);
			rd_json_double(&j, "sum", v->sum);
			if (v->count) {
				rd_json_double(&j, "min", v->min);
				rd_json_double(&j, "max", v->max);
			} else {
				rd_json_null(&j, "min");
				rd_json_null(&j, "max");
			}
			rd_json_arr_open(&j, "bounds");
			for (uint32_t b = 0; b < m->n_bounds; b++)
				rd_json_double(&j, NULL, m->bounds[b]);
			rd_json_arr_close(&j);
			rd_json_arr_open(&j, "bucket_counts");
			for (uint32_t b = 0; b <= m->n_bounds; b++)
				rd_json_uint_str(&j, NULL, v->buckets[b]);
			rd_json_arr_close(&j);
			if (prev && dt > 0)
				rd_json_double(&j, "rate",
					       (double)(v->count - prev->values[i].count) / dt);
		} else {
			if (m->value_type == RTM_SHM_VALUE_INT)
				rd_json_int_str(&j, "value", v->i);
			else
				rd_json_double(&j, "value", v->d);
			if (prev && dt > 0 && m->kind != RTM_SHM_KIND_GAUGE)
				rd_json_double(&j, "rate",
					       (top_scalar(m, v) - top_scalar(m, &prev->values[i])) / dt);
		}
		rd_json_obj_close(&j);
	}
	rd_json_arr_close(&j);
	rd_json_obj_close(&j);
	printf("%s\n", j.buf);
	rd_json_free(&j);
}

static void text_attrs(const struct rd_metric *m)
{
	if (!m->n_attrs)
		return;
	printf(" {");
	for (uint32_t a = 0; a < m->n_attrs; a++)
		printf("%s%s=%s", a ? "," : "", vis(m->attrs[a].key), vis(m->attrs[a].value));
	printf("}");
}

/* The value of an attribute-less series called name, or -1. */
static double series_value(const struct rd_segment *seg, const struct rd_snapshot *snap,
			   const char *name)
{
	for (uint32_t i = 0; i < seg->n_metrics; i++)
		if (!seg->metrics[i].n_attrs && !strcmp(seg->metrics[i].name, name))
			return top_scalar(&seg->metrics[i], &snap->values[i]);
	return -1;
}

/* The seed's FAQ: a heap that is mostly idle holds memory it could give
 * back, which is not a leak.  Said when idle is over half the heap and at
 * least 16 MiB, unless RTM_TRIM_IDLE_RATIO is already giving it back (glibc
 * still counts trimmed pages as idle). */
static void heap_hint(const struct rd_segment *seg, const struct rd_snapshot *snap)
{
	double idle = series_value(seg, snap, "runtime.native.mem.heap.idle"),
	       inuse = series_value(seg, snap, "runtime.native.mem.heap.inuse"),
	       trims = series_value(seg, snap, "runtime.native.mem.heap.trims");

	if (idle < 0 && inuse < 0) {
		/* A Go producer: the runtime's own classes.  Released pages are
		 * idle too (HeapIdle), but only the free ones can still go. */
		double ratio = series_value(seg, snap, "runtime.native.mem.heap.idle_ratio"),
		       free = series_value(seg, snap, "go.runtime.memory.classes.heap.free");

		if (free < 16.0 * 1048576 || ratio <= 0.5 || trims > 0)
			return;
		printf("  hint: %.0f%% of the heap is idle: debug.FreeOSMemory() could return up to "
		       "%.1f MiB to the system (RTM_TRIM_IDLE_RATIO=0.5 makes rtm-go do it)\n",
		       100 * ratio, free / 1048576);
		return;
	}
	if (idle < 16.0 * 1048576 || inuse < 0 || idle / (idle + inuse) <= 0.5 || trims > 0)
		return;
	printf("  hint: %.0f%% of the heap is idle: malloc_trim(0) could return up to %.1f MiB"
	       " to the system (RTM_TRIM_IDLE_RATIO=0.5 makes the preload do it)\n",
	       100 * idle / (idle + inuse), idle / 1048576);
}

static void text_segment(const struct opts *o, const struct rd_segment *seg,
			 const struct rd_snapshot *snap,
			 const struct rd_snapshot *prev, double dt)
{
	const struct rtm_shm_header *h = &seg->hdr;

	char host[32] = "";

	if (seg->proc_pid && seg->proc_pid != h->pid)
		snprintf(host, sizeof host, " host_pid=%d", (int)seg->proc_pid);
	printf("%s  service=%s%s%s pid=%d%s process=%s state=%s layout=%u.%u metrics=%u"
	       " heartbeat=%.1fs ago dropped=%u torn=%u\n",
	       vis(seg->path), vis(h->service_name), *h->service_version ? "@" : "",
	       vis(h->service_version), h->pid, host, rd_liveness_name((enum rd_liveness)seg->liveness),
	       state_name(snap->state), h->major, h->minor, seg->n_metrics,
	       age_s(snap->heartbeat_unix_nano), snap->dropped_metrics, snap->torn);
	for (uint32_t i = 0; i < seg->n_resource; i++)
		printf("  resource %s=%s\n", vis(seg->resource[i].key), vis(seg->resource[i].value));
	if (seg->n_left_out)
		printf("  %u further series left out: past the per-segment limit of %u series or "
		       "%u string bytes\n", seg->n_left_out, RD_LIMIT_SERIES_DEFAULT,
		       RD_LIMIT_STRINGS_DEFAULT);
	heap_hint(seg, snap);
	for (uint32_t i = 0; i < seg->n_metrics; i++) {
		const struct rd_metric *m = &seg->metrics[i];
		const struct rd_value *v = &snap->values[i];

		if (!wanted(o, m))
			continue;
		printf("  %-13s %s", rd_kind_name(m->kind), vis(m->name));
		text_attrs(m);
		if (m->kind == RD_KIND_EXPHIST) {
			printf("  count=%" PRIu64, v->count);
			if (!m->no_sum)
				printf(" sum=%g", v->sum);
			if (v->count && !m->no_sum)
				printf(" min=%g max=%g", v->min, v->max);
			if (*m->unit)
				printf(" [%s]", vis(m->unit));
			printf(" scale=%d", v->exp->scale);
			if (prev && dt > 0)
				printf("  (%+.1f/s)",
				       (double)(v->count - prev->values[i].count) / dt);
			printf("\n");
			/* The buckets in use, from the most negative up. */
			for (int32_t k = v->exp->neg_top; k >= v->exp->neg_base; k--) {
				uint64_t c = rtm_shm_exphist_counts(v->exp, m->exp_size, 1)[k - v->exp->neg_base];
				double lo, hi;

				top_exp_bucket(v->exp->scale, k, &lo, &hi);
				if (c)
					printf("      [%-12g %-12g) %" PRIu64 "\n", -hi, -lo, c);
			}
			if (v->exp->zero_count)
				printf("      %-27s %" PRIu64 "\n", "0", v->exp->zero_count);
			for (int32_t k = v->exp->pos_base; k <= v->exp->pos_top; k++) {
				uint64_t c = rtm_shm_exphist_counts(v->exp, m->exp_size, 0)[k - v->exp->pos_base];
				double lo, hi;

				top_exp_bucket(v->exp->scale, k, &lo, &hi);
				if (c)
					printf("      (%-12g %-12g] %" PRIu64 "\n", lo, hi, c);
			}
			continue;
		}
		if (m->kind == RTM_SHM_KIND_HISTOGRAM) {
			printf("  count=%" PRIu64 " sum=%g", v->count, v->sum);
			if (v->count)
				printf(" min=%g max=%g", v->min, v->max);
			if (*m->unit)
				printf(" [%s]", vis(m->unit));
			if (prev && dt > 0)
				printf("  (%+.1f/s)",
				       (double)(v->count - prev->values[i].count) / dt);
			printf("\n");
			for (uint32_t b = 0; b <= m->n_bounds; b++) {
				if (b < m->n_bounds)
					printf("      le %-12g %" PRIu64 "\n", m->bounds[b],
					       v->buckets[b]);
				else
					printf("      le %-12s %" PRIu64 "\n", "+Inf",
					       v->buckets[b]);
			}
			continue;
		}
		if (m->value_type == RTM_SHM_VALUE_INT)
			printf("  %" PRId64, v->i);
		else
			printf("  %.17g", v->d);
		if (*m->unit)
			printf(" [%s]", vis(m->unit));
		if (prev && dt > 0 && m->kind != RTM_SHM_KIND_GAUGE)
			printf("  (%+.1f/s)", (top_scalar(m, v) - top_scalar(m, &prev->values[i])) / dt);
		printf("\n");
	}
}

/* ---- targets ---- */

struct target {
	int dfd;
	char name[PATH_MAX];
};

static bool is_seconds(const char *s)
{
	char *end;

	return *s && (strtod(s, &end), !*end);
}

static bool is_live_pid(const char *s)
{
	char *end;
	long pid = strtol(s, &end, 10);

	return !*end && pid > 0 && pid < 4194305 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int scan_pid(const char *dir, long pid, struct target **out);

/* Whether s is the pid of a live process with a segment in dir. */
static bool pid_has_segment(const char *dir, const char *s)
{
	struct target *t = NULL;
	int n;

	if (!is_live_pid(s))
		return false;
	n = scan_pid(rd_dir_path(dir), strtol(s, NULL, 10), &t);
	free(t); /* names only (dfd AT_FDCWD): nothing else to release */
	return n > 0;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int scan_pid(const char *dir, long pid, struct target **out);

/* Whether pid has librtm-preload.so mapped: a young process under it has
 * no segment yet, which is worth saying. */
static bool preloaded(long pid)
{
	char path[384], line[4096];
	bool found = false;
	FILE *f;

	rd_proc_path(path, sizeof path, (pid_t)pid, "maps");
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, "/librtm-preload.so") != NULL;
	fclose(f);
	return found;
}

/* Resolves PID (every segment in the directory whose header names it) or
 * PATH into targets.  Returns the count, or -1 after printing the error. */
static int resolve(const struct opts *o, const char *arg, struct target **out)
{
	struct target *t = NULL;
	const char *dir;
	int count = 0, found;
	long pid;

	if (!all_digits(arg)) {
		t = calloc(1, sizeof *t);
		if (!t)
			return -1;
		t->dfd = AT_FDCWD;
		snprintf(t->name, sizeof t->name, "%s", arg);
		*out = t;
		return 1;
	}
	pid = strtol(arg, NULL, 10);
	dir = rd_dir_path(o->dir);
	/* --wait: a process that is alive may not have published yet. */
	for (uint64_t until = now_ns() + (uint64_t)(o->wait * 1e9);;) {
		found = scan_pid(dir, pid, &t);
		if (found != 0 || !o->wait || now_ns() >= until ||
		    (kill((pid_t)pid, 0) && errno == ESRCH))
			break;
		nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	}
	if (found > 0) {
		*out = t;
		for (count = 0; t[count].name[0]; count++)
			;
		return count;
	}
	if (!found)
		fprintf(stderr, "rtm-shmdump: no valid segment for pid %ld in %s%s\n", pid, vis(dir),
			kill((pid_t)pid, 0) && errno == ESRCH ? " (no such process)" :
			preloaded(pid) ? " (it runs under librtm-preload.so, whose segment opens after "
					 "RTM_PUBLISH_DELAY_MS, default 1 s, or at its first thread)" :
			o->wait ? " (after waiting)" : "");
	return -1;
}

/* The valid segments of pid in dir: 1 and *out (ended by an empty name)
 * when there are some, 0 when none, -1 after printing an error. */
static int scan_pid(const char *dir, long pid, struct target **out)
{
	struct target *t;
	char **names;
	int n, count = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	n = rd_dir_list(dfd, &names);
	if (n < 0) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", dir, strerror(-n));
		close(dfd);
		return -1;
	}
	t = calloc((size_t)n + 1, sizeof *t);
	for (int i = 0; t && i < n; i++) {
		struct rd_segment seg;

		/* Only the pid matters here, the header's or, for a producer in
		 * another pid namespace, the one /proc shows; errors are
		 * reported when the matching segment is dumped. */
		if (rd_segment_open(&seg, dfd, names[i], RD_FLAG_NO_OWNER_CHECK) == 0 &&
		    (seg.hdr.pid == pid ||
		     (seg.hdr.pidns_ino && (rd_segment_liveness(&seg), seg.proc_pid == pid)))) {
			t[count].dfd = AT_FDCWD; /* full path: it is what users see */
			snprintf(t[count].name, sizeof t[count].name, "%s/%s", dir, names[i]);
			count++;
		}
		rd_segment_close(&seg);
	}
	rd_dir_names_free(names);
	close(dfd);
	if (!count) {
		free(t);
		return 0;
	}
	*out = t;
	return 1;
}

static int dump_once(const struct opts *o, struct target *t)
{
	struct rd_segment seg;
	struct rd_snapshot snap = { 0 };
	int rc = rd_segment_open(&seg, t->dfd, t->name, 0);

	if (!rc)
		rc = rd_segment_snapshot(&seg, &snap);
	if (rc) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", vis(t->name), vis(seg.err));
		rd_segment_close(&seg);
		return 1;
	}
	if (o->check) {
		printf("%s: ok (layout %u.%u, %u metrics, %u torn shards)\n", vis(t->name),
		       seg.hdr.major, seg.hdr.minor, seg.n_metrics, snap.torn);
	} else if (o->json) {
		json_segment(o, &seg, &snap, NULL, 0);
	} else {
		text_segment(o, &seg, &snap, NULL, 0);
	}
	rd_snapshot_free(&snap);
	rd_segment_close(&seg);
	return 0;
}

static int watch(const struct opts *o, struct target *t)
{
	struct rd_segment seg;
	struct rd_snapshot snap = { 0 }, prev = { 0 };
	struct timespec ts = { (time_t)o->watch,
			       (long)((o->watch - floor(o->watch)) * 1e9) };
	uint64_t t0 = 0;
	/* On a terminal one screen, redrawn; into a pipe or file, a stream. */
	bool tty = !o->json && isatty(STDOUT_FILENO);
	int rc = rd_segment_open(&seg, t->dfd, t->name, 0);

	if (rc) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", vis(t->name), vis(seg.err));
		return 1;
	}
	if (tty)
		printf("\033[2J");
	while (!stop) {
		uint64_t t1 = now_ns();
		bool have_prev = prev.values && prev.n == seg.n_metrics &&
				 prev.generation == seg.generation;

		rc = rd_segment_refresh(&seg);
		if (rc >= 0)
			rc = rd_segment_snapshot(&seg, &snap);
		if (rc < 0) {
			fprintf(stderr, "rtm-shmdump: %s: %s\n", vis(t->name), vis(seg.err));
			break;
		}
		have_prev = have_prev && prev.generation == seg.generation;
		if (tty) {
			top_segment(&seg, &snap, have_prev ? &prev : NULL, (double)(t1 - t0) / 1e9,
				    o->filter, o->watch);
		} else if (o->json) {
			json_segment(o, &seg, &snap, have_prev ? &prev : NULL,
				     (double)(t1 - t0) / 1e9);
		} else {
			printf("\n--- %s", ctime(&(time_t){ (time_t)(t1 / 1000000000u) }));
			text_segment(o, &seg, &snap, have_prev ? &prev : NULL,
				     (double)(t1 - t0) / 1e9);
		}
		fflush(stdout);
		/* Keep this snapshot as the base for the next rates. */
		struct rd_snapshot tmp = prev;
		prev = snap;
		snap = tmp;
		t0 = t1;
		nanosleep(&ts, NULL);
	}
	rd_snapshot_free(&snap);
	rd_snapshot_free(&prev);
	rd_segment_close(&seg);
	return rc < 0 ? 1 : 0;
}

/* A segment's counts at the last frame, for the all-producers rates. */
struct seen {
	char name[256];
	uint64_t generation;
	uint32_t n;
	double *x; /* each series' counter value or histogram count */
};

/* Events a series counts: a histogram's recordings, a counter of things
 * (unit {thing} or none); bytes and seconds are amounts, not events. */
static double count_of(const struct rd_metric *m, const struct rd_value *v)
{
	if (m->kind == RTM_SHM_KIND_HISTOGRAM || m->kind == RD_KIND_EXPHIST)
		return (double)v->count;
	if (m->kind != RTM_SHM_KIND_COUNTER || (*m->unit && *m->unit != '{'))
		return NAN;
	return top_scalar(m, v);
}

/* --watch without a PID: every producer, one line each (on a terminal);
 * else the listing, repeated. */
static int watch_all(const struct opts *o)
{
	struct timespec ts = { (time_t)o->watch, (long)((o->watch - floor(o->watch)) * 1e9) };
	const char *dir = rd_dir_path(o->dir);
	struct seen *old = NULL, *cur;
	size_t n_old = 0;
	uint64_t t0 = 0;

	if (o->json || !isatty(STDOUT_FILENO)) {
		while (!stop) {
			if (list_segments(o))
				return 1;
			fflush(stdout);
			nanosleep(&ts, NULL);
		}
		return 0;
	}
	printf("\033[2J");
	while (!stop) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
		char **names = NULL;
		struct top_row *rows;
		struct rtm_shm_presence pr;
		uint64_t t1 = now_ns();
		double dt = (double)(t1 - t0) / 1e9;
		size_t k = 0;

		if (dfd >= 0)
			n = rd_dir_list(dfd, &names);
		if (dfd < 0 || n < 0) {
			fprintf(stderr, "rtm-shmdump: %s: %s\n", dir, strerror(dfd < 0 ? errno : -n));
			return 1;
		}
		rows = calloc((size_t)n + 1, sizeof *rows);
		cur = calloc((size_t)n + 1, sizeof *cur);
		for (int i = 0; rows && cur && i < n; i++) {
			struct rd_segment seg;
			struct rd_snapshot snap = { 0 };
			const struct seen *was = NULL;
			double best = -1;

			if (rd_segment_open(&seg, dfd, names[i], 0) || rd_segment_snapshot(&seg, &snap)) {
				rd_segment_close(&seg);
				continue;
			}
			for (size_t j = 0; j < n_old; j++)
				if (!strcmp(old[j].name, names[i]) && old[j].generation == seg.generation &&
				    old[j].n == seg.n_metrics)
					was = &old[j];
			rtm_shm_text_visible(seg.hdr.service_name, rows[k].service, sizeof rows[k].service);
			rows[k].pid = seg.hdr.pid;
			rows[k].state = state_name(snap.state);
			rows[k].series = seg.n_metrics;
			rows[k].memory = (uint64_t)seg.st.st_blocks * 512;
			rows[k].has_rate = was && dt > 0;
			snprintf(cur[k].name, sizeof cur[k].name, "%s", names[i]);
			cur[k].generation = seg.generation;
			cur[k].n = seg.n_metrics;
			cur[k].x = calloc(seg.n_metrics + 1, sizeof *cur[k].x);
			for (uint32_t m = 0; cur[k].x && m < seg.n_metrics; m++) {
				double x = count_of(&seg.metrics[m], &snap.values[m]), r;

				cur[k].x[m] = x;
				if (!was || isnan(x) || !(dt > 0))
					continue;
				r = (x - was->x[m]) / dt;
				rows[k].updates_per_s += r;
				if (r > best) {
					best = r;
					rtm_shm_text_visible(seg.metrics[m].name, rows[k].busiest,
							     sizeof rows[k].busiest);
				}
			}
			k++;
			rd_snapshot_free(&snap);
			rd_segment_close(&seg);
		}
		if (rtm_shm_presence_read(dfd, geteuid(), (uint64_t)time(NULL) * 1000000000ull, &pr))
			pr.attached = false;
		if (rows)
			top_all(rows, k, dir, pr.attached ? "attached" : "none", o->watch);
		for (size_t j = 0; j < n_old; j++)
			free(old[j].x);
		free(old);
		old = cur;
		n_old = cur ? k : 0;
		free(rows);
		rd_dir_names_free(names);
		close(dfd);
		t0 = t1;
		nanosleep(&ts, NULL);
	}
	for (size_t j = 0; j < n_old; j++)
		free(old[j].x);
	free(old);
	return 0;
}

/* --prune: segments of processes that are gone, validated as the reader
 * validates them (so only files that are what they claim), removed — for
 * hosts with no reader, which would otherwise export them first. */
static int prune(const struct opts *o)
{
	const char *dir = rd_dir_path(o->dir);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n, removed = 0, kept = 0;
	struct rtm_shm_presence pr;
	char **names;

	if (dfd < 0) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (rtm_shm_presence_read(dfd, geteuid(), (uint64_t)time(NULL) * 1000000000ull, &pr) == 0 &&
	    pr.attached) {
		fprintf(stderr, "rtm-shmdump: a reader is attached (pid %d): it removes ended producers' "
			"segments after their final export; not pruning\n", (int)pr.pid);
		close(dfd);
		return 1;
	}
	n = rd_dir_list(dfd, &names);
	for (int i = 0; i < n; i++) {
		struct rd_segment seg;
		enum rd_liveness l;

		if (rd_segment_open(&seg, dfd, names[i], 0)) {
			printf("kept %s: %s\n", vis(names[i]), vis(seg.err));
			rd_segment_close(&seg);
			kept++;
			continue;
		}
		l = rd_segment_liveness(&seg);
		if (l == RD_EXITED || l == RD_PID_REUSED) {
			struct stat st;

			/* The file still the one validated, then gone. */
			if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_ino == seg.st.st_ino && unlinkat(dfd, names[i], 0) == 0) {
				printf("removed %s (pid %d, %s)\n", vis(names[i]), seg.hdr.pid,
				       rd_liveness_name(l));
				removed++;
			} else {
				printf("kept %s: %s\n", vis(names[i]), strerror(errno));
				kept++;
			}
		}
		rd_segment_close(&seg);
	}
	if (n > 0)
		rd_dir_names_free(names);
	close(dfd);
	printf("%d removed, %d kept\n", removed, kept);
	return n < 0;
}


int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "filter", required_argument, NULL, 'f' },
		{ "check", no_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'W' },
		{ "prune", no_argument, NULL, 'P' },
		{ "locks", no_argument, NULL, 'L' },
		{ "proc-root", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct opts o = { 0 };
	struct target *t = NULL;
	int c, n, rc = 0;

	bool watch_bare = false;

	while ((c = getopt_long(argc, argv, "d:jw::f:chV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dir = optarg; break;
		case 'j': o.json = true; break;
		case 'f': o.filter = optarg; break;
		case 'c': o.check = true; break;
		case 'P': o.prune = true; break;
		case 'L': o.locks = true; break;
		case 'R': {
			int err = rd_proc_set_root(optarg);

			if (err) {
				fprintf(stderr, "rtm-shmdump: --proc-root: %s: %s\n", optarg,
					err == -EMEDIUMTYPE ? "not a procfs mount" : strerror(-err));
				return 2;
			}
			break;
		}
		case 'W': {
			char *end;

			o.wait = strtod(optarg, &end);
			if (*end || !(o.wait > 0) || o.wait > 3600) {
				fprintf(stderr, "rtm-shmdump: --wait: '%s' is not a number of seconds in (0, 3600]\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'w': {
			char *end;

			o.watch = optarg ? strtod(optarg, &end) : 1.0;
			watch_bare = !optarg;
			if (optarg && (*end || !(o.watch > 0) || o.watch > 86400)) {
				fprintf(stderr, "rtm-shmdump: --watch: '%s' is not a number of seconds in (0, 86400]\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'V': printf("rtm-shmdump %s\n", RTM_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* "--watch 5 PID" and "--watch 5": seconds in the next word, as the
	 * usage says, unless that word is the only one and names a live
	 * process with a segment here ("--watch 2" is two seconds: pid 2 is
	 * a kernel thread). */
	if (watch_bare && optind < argc && is_seconds(argv[optind]) &&
	    (optind + 2 == argc || !pid_has_segment(o.dir, argv[optind]))) {
		o.watch = strtod(argv[optind++], NULL);
		if (!(o.watch > 0) || o.watch > 86400) {
			fprintf(stderr, "rtm-shmdump: --watch: '%s' is not a number of seconds in (0, 86400]\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (o.prune) {
		if (optind != argc || o.check || o.watch || o.json) {
			fprintf(stderr, "rtm-shmdump: --prune takes no PID, PATH or other mode\n");
			return 2;
		}
		return prune(&o);
	}
	if (o.locks && (o.check || o.watch || o.filter)) {
		fprintf(stderr, "rtm-shmdump: --locks goes with neither --check, --watch nor --filter\n");
		return 2;
	}
	if (optind == argc) {
		if (o.check || o.filter || o.wait || o.locks) {
			fprintf(stderr, "rtm-shmdump: --check, --filter, --locks and --wait need a PID or PATH\n");
			return 2;
		}
		if (o.watch) {
			signal(SIGINT, on_signal);
			signal(SIGTERM, on_signal);
			return watch_all(&o);
		}
		return list_segments(&o);
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "rtm-shmdump: one PID or PATH expected, got %d arguments\n",
			argc - optind);
		return 2;
	}
	n = resolve(&o, argv[optind], &t);
	if (n < 0)
		return 1;
	if (o.watch) {
		if (n > 1)
			fprintf(stderr, "rtm-shmdump: pid has %d segments; watching %s\n", n,
				t[0].name);
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		rc = watch(&o, &t[0]);
	} else if (o.locks && n > 1) {
		/* A process with several segments: those that keep lock sites. */
		int shown = 0;

		for (int i = 0; i < n; i++) {
			int r = locks_dump(t[i].name, o.json, true);

			shown += r != 2;
			rc |= r == 1;
		}
		if (!shown) {
			fprintf(stderr, "rtm-shmdump: pid %s: none of its %d segments records lock "
				"contention (only librtm-preload.so and librtm-alloc do)\n", vis(argv[optind]), n);
			rc = 1;
		}
	} else {
		for (int i = 0; i < n; i++)
			rc |= o.locks ? locks_dump(t[i].name, o.json, false) : dump_once(&o, &t[i]);
	}
	free(t);
	return rc;
}
