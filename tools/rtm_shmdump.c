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
#include "rtm_shm_presence.h"
#include "rd_segment.h"
#include "rtm_shm_text.h"
#include "rtm.h"

#define SCHEMA      "rtm-shmdump/1"
#define LIST_SCHEMA "rtm-shmdump-list/1"

struct opts {
	const char *dir;
	const char *filter;
	bool json;
	bool check;
	double watch; /* seconds; 0: once */
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
		"usage: rtm-shmdump [--dir DIR] [--json]\n"
		"       rtm-shmdump [--dir DIR] [--json] [--watch[=SECONDS]] [--filter GLOB] PID|PATH\n"
		"       rtm-shmdump [--dir DIR] --check PID|PATH\n"
		"With no argument, lists the segments in DIR ($RTM_DIR, default %s).\n"
		"  --json            machine-readable output (schema " SCHEMA ")\n"
		"  --watch[=SECS]    repeat every SECS (default 1) with per-second rates\n"
		"  --filter GLOB     only metrics whose name matches GLOB\n"
		"  --check           validate; exit 1 with the reason if corrupt\n",
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
			rd_json_uint(j, "interval_ns", p.interval_ns);
			rd_json_uint(j, "last_seen_ns_ago", p.age_ns);
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

static int list_segments(const struct opts *o)
{
	const char *dir = rd_dir_path(o->dir);
	struct rd_json j = { 0 };
	char **names;
	int dfd, n, bad = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT && !o->json) {
			printf("no segments: %s does not exist\n", vis(dir));
			return 0;
		}
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
				rd_json_obj_open(&j, NULL);
				rd_json_str(&j, "file", names[i]);
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
			rd_json_obj_open(&j, NULL);
			rd_json_str(&j, "file", names[i]);
			rd_json_str(&j, "service", seg.hdr.service_name);
			rd_json_int(&j, "pid", seg.hdr.pid);
			rd_json_str(&j, "process", rd_liveness_name(rd_segment_liveness(&seg)));
			rd_json_str(&j, "state", state_name(snap.state));
			rd_json_uint(&j, "metrics", seg.n_metrics);
			rd_json_uint(&j, "size", seg.hdr.segment_size);
			rd_json_uint(&j, "memory", (uint64_t)seg.st.st_blocks * 512);
			rd_json_uint(&j, "heartbeat_unix_nano", snap.heartbeat_unix_nano);
			rd_json_obj_close(&j);
		} else {
			printf("%-20.20s %8d %-10s %-6s %7u %8lluK %8lluK %8.1fs  %s\n",
			       vis(seg.hdr.service_name), seg.hdr.pid,
			       rd_liveness_name(rd_segment_liveness(&seg)),
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

static double scalar(const struct rd_metric *m, const struct rd_value *v)
{
	return m->value_type == RTM_SHM_VALUE_INT ? (double)v->i : v->d;
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
	rd_json_str(&j, "path", seg->path);
	rd_json_str(&j, "layout", layout);
	rd_json_str(&j, "producer", h->producer);
	rd_json_str(&j, "service_name", h->service_name);
	rd_json_str(&j, "service_version", h->service_version);
	rd_json_obj_open(&j, "resource");
	for (uint32_t i = 0; i < seg->n_resource; i++)
		rd_json_str(&j, seg->resource[i].key, seg->resource[i].value);
	rd_json_obj_close(&j);
	rd_json_int(&j, "pid", h->pid);
	rd_json_uint(&j, "uid", h->uid);
	rd_json_uint(&j, "pid_start_ticks", h->pid_start_ticks);
	rd_json_str(&j, "process", rd_liveness_name(rd_segment_liveness(seg)));
	rd_json_str(&j, "state", state_name(snap->state));
	rd_json_uint(&j, "generation", seg->generation);
	rd_json_uint(&j, "created_unix_nano", h->created_unix_nano);
	rd_json_uint(&j, "heartbeat_unix_nano", snap->heartbeat_unix_nano);
	rd_json_uint(&j, "closed_unix_nano", snap->closed_unix_nano);
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
		rd_json_uint(&j, "start_time_unix_nano", m->start_unix_nano);
		rd_json_uint(&j, "torn_shards", v->torn);
		if (m->kind == RTM_SHM_KIND_HISTOGRAM) {
			rd_json_uint(&j, "count", v->count);
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
				rd_json_uint(&j, NULL, v->buckets[b]);
			rd_json_arr_close(&j);
			if (prev && dt > 0)
				rd_json_double(&j, "rate",
					       (double)(v->count - prev->values[i].count) / dt);
		} else {
			if (m->value_type == RTM_SHM_VALUE_INT)
				rd_json_int(&j, "value", v->i);
			else
				rd_json_double(&j, "value", v->d);
			if (prev && dt > 0 && m->kind != RTM_SHM_KIND_GAUGE)
				rd_json_double(&j, "rate",
					       (scalar(m, v) - scalar(m, &prev->values[i])) / dt);
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
			return scalar(&seg->metrics[i], &snap->values[i]);
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

	printf("%s  service=%s%s%s pid=%d process=%s state=%s layout=%u.%u metrics=%u"
	       " heartbeat=%.1fs ago dropped=%u torn=%u\n",
	       vis(seg->path), vis(h->service_name), *h->service_version ? "@" : "",
	       vis(h->service_version), h->pid, rd_liveness_name(rd_segment_liveness(seg)),
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
			printf("  (%+.1f/s)", (scalar(m, v) - scalar(m, &prev->values[i])) / dt);
		printf("\n");
	}
}

/* ---- targets ---- */

struct target {
	int dfd;
	char name[PATH_MAX];
};

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Resolves PID (every segment in the directory whose header names it) or
 * PATH into targets.  Returns the count, or -1 after printing the error. */
static int resolve(const struct opts *o, const char *arg, struct target **out)
{
	struct target *t = NULL;
	const char *dir;
	char **names;
	int n, count = 0;
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

		/* Only the header's pid matters here; errors are reported when
		 * the matching segment is dumped. */
		if (rd_segment_open(&seg, dfd, names[i], RD_FLAG_NO_OWNER_CHECK) == 0 &&
		    seg.hdr.pid == pid) {
			t[count].dfd = AT_FDCWD; /* full path: it is what users see */
			snprintf(t[count].name, sizeof t[count].name, "%s/%s", dir, names[i]);
			count++;
		}
		rd_segment_close(&seg);
	}
	rd_dir_names_free(names);
	close(dfd);
	if (!count) {
		fprintf(stderr, "rtm-shmdump: no valid segment for pid %ld in %s\n", pid, vis(dir));
		free(t);
		return -1;
	}
	*out = t;
	return count;
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
	int rc = rd_segment_open(&seg, t->dfd, t->name, 0);

	if (rc) {
		fprintf(stderr, "rtm-shmdump: %s: %s\n", vis(t->name), vis(seg.err));
		return 1;
	}
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
		if (o->json) {
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

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "filter", required_argument, NULL, 'f' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct opts o = { 0 };
	struct target *t = NULL;
	int c, n, rc = 0;

	while ((c = getopt_long(argc, argv, "d:jw::f:chV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o.dir = optarg; break;
		case 'j': o.json = true; break;
		case 'f': o.filter = optarg; break;
		case 'c': o.check = true; break;
		case 'w': {
			char *end;

			o.watch = optarg ? strtod(optarg, &end) : 1.0;
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
	if (optind == argc) {
		if (o.check || o.watch || o.filter) {
			fprintf(stderr, "rtm-shmdump: --check, --watch and --filter need a PID or PATH\n");
			return 2;
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
	} else {
		for (int i = 0; i < n; i++)
			rc |= dump_once(&o, &t[i]);
	}
	free(t);
	return rc;
}
