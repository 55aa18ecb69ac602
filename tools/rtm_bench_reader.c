/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-reader - the reader's per-cycle costs for N segments x M series,
 * each next to a baseline measured in the same run:
 *   snapshot   ns per series           vs  summing the same words from private memory
 *   encode     data points per second  vs  Prometheus text via snprintf;
 *              and when only protobuf leaves (templates)  vs  that encode
 *   /metrics   ns per series, text 0.0.4 and OpenMetrics  vs  the OTLP encode above;
 *              a page's gzip by rd_gzip  vs  libdeflate level 1
 *   cycle      CPU ms: snapshot+encode+pack+gzip (rd_gzip, as the reader does) vs the
 *              same with libdeflate and with zlib;
 *              and what serving /metrics adds to it at a 15 s scrape interval:
 *              a rendering and a gzip per scrape
 *   leak       the leak detector's cost per producer per cycle vs the cycle's CPU
 *   /proc      ns per file, io_uring batch vs pread loop, for P processes
 * usage: rtm-bench-reader [--segments N] [--series M] [--procs P]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <libdeflate.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "rd_encode.h"
#include "rd_gzip.h"
#include "rd_procio.h"
#include "rd_prom.h"
#include "rd_source.h"
#include "bench_runs.h"
#include "rtm.h"

static double now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A service's worth of series: 3/4 counters, 1/8 gauges, 1/8 histograms. */
static void populate(struct rtm_segment *seg, int m, int k)
{
	char name[64], val[16];

	for (int i = 0; i < m; i++) {
		snprintf(name, sizeof name, "bench.metric.%d", i / 4);
		snprintf(val, sizeof val, "%d", i % 4);
		struct rtm_metric_def d = { .name = name, .unit = "{op}",
			.attrs = (struct rtm_attr[]){ { "shard", val } }, .n_attrs = 1 };
		if (i % 8 == 6) {
			rtm_gauge_t g;
			d.is_double = 1;
			rtm_gauge_create(seg, &g, &d);
			rtm_gauge_set_f64(&g, i * 0.5 + k);
		} else if (i % 8 == 7) {
			rtm_hist_t h;
			d.unit = "s";
			rtm_hist_create(seg, &h, &d);
			for (int r = 0; r < 10; r++)
				rtm_hist_record(&h, 1e-6 * (1 << (r + i % 8)));
		} else {
			rtm_counter_t c;
			rtm_counter_create(seg, &c, &d);
			rtm_counter_add(&c, (uint64_t)(i * 1000 + k));
		}
	}
}

static int collect_count(const struct rd_request *req, void *ctx)
{
	(void)req;
	(*(int *)ctx)++;
	return 0;
}

struct packed {
	uint8_t *buf;
	size_t len, cap;
};

/* What the OTLP exporter gets for each request before compressing it. */
static int pack_all(const struct rd_request *req, void *ctx)
{
	struct packed *p = ctx;

	if (p->len + req->pb_len > p->cap) {
		p->cap = (p->len + req->pb_len) * 2;
		p->buf = realloc(p->buf, p->cap);
	}
	memcpy(p->buf + p->len, req->pb, req->pb_len);
	p->len += req->pb_len;
	return 0;
}

enum gz_lib { GZ_RD, GZ_LIBDEFLATE, GZ_ZLIB };

/* The gzip of len bytes in n pieces by rd_gzip, as the reader makes it,
 * into a buffer of its own; returns the compressed length. */
static size_t gzip_pieces(const struct iovec *iov, size_t n, size_t len)
{
	struct rd_gzip *z;
	size_t cap = rd_gzip_bound(len), out_len = 0;
	uint8_t *out = malloc(cap);

	if (!rd_gzip_new(&z)) {
		out_len = rd_gzip_compressv(z, iov, n, out, cap);
		rd_gzip_free(z);
	}
	free(out);
	return out_len;
}

/* The gzip of n bytes by one library at its level 1, into a buffer of
 * its own; returns the compressed length. */
static size_t gzip_with(enum gz_lib lib, const void *in, size_t n)
{
	size_t len = 0;

	if (lib == GZ_RD) {
		len = gzip_pieces(&(struct iovec){ (void *)(uintptr_t)in, n }, 1, n);
	} else if (lib == GZ_LIBDEFLATE) {
		struct libdeflate_compressor *gz = libdeflate_alloc_compressor(1);
		size_t bound = libdeflate_gzip_compress_bound(gz, n);
		uint8_t *out = malloc(bound);

		len = libdeflate_gzip_compress(gz, in, n, out, bound);
		libdeflate_free_compressor(gz);
		free(out);
	} else {
		uLongf bound = compressBound((uLong)n);
		uint8_t *out = malloc(bound);
		z_stream zs = { 0 };

		deflateInit2(&zs, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
		zs.next_in = (Bytef *)(uintptr_t)in;
		zs.avail_in = (uInt)n;
		zs.next_out = out;
		zs.avail_out = (uInt)bound;
		deflate(&zs, Z_FINISH);
		len = zs.total_out;
		deflateEnd(&zs);
		free(out);
	}
	return len;
}

/* One segment of m histograms of 1000 values each, 10 us to 10 s: the
 * OTLP encode's ns per point, best of 5 (snapshot included). */
static double encode_hists(const char *dir, int m, bool exp)
{
	struct rtm_segment *seg;
	struct rd_source *src;
	struct rd_encode_env env;
	double best = 1e30;

	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){
		    .service_name = "bench-hist", .dir = dir, .max_metrics = (uint32_t)m,
		    .max_threads = 2, .shard_bytes = (uint32_t)m * 2688 + 4096,
		    .string_bytes = (uint32_t)m * 96 + 4096 }))
		return 0;
	for (int i = 0; i < m; i++) {
		char name[64];
		rtm_hist_t h;
		struct rtm_metric_def d = { .name = name, .unit = "s" };

		snprintf(name, sizeof name, "bench.latency.%d", i);
		if (exp)
			rtm_exphist_create(seg, &h, &d, 0, 0);
		else
			rtm_hist_create(seg, &h, &d);
		for (int k = 0; k < 1000; k++)
			rtm_hist_record(&h, 1e-5 * pow(1e6, (k * 37 % 1000) / 999.0) * (1 + i % 7 * 0.01));
	}
	if (rd_source_open(&src, AT_FDCWD, rtm_segment_path(seg), false))
		return 0;
	src->stat_ok = true;
	rd_encode_env_init(&env, false);
	for (int r = 0; r < 5; r++) {
		struct rd_batch b = { 0 };
		struct packed pk = { 0 };
		double t = now_ns(CLOCK_MONOTONIC);

		rd_source_collect(src);
		rd_encode_source(&b, &env, src, false, 2);
		rd_batch_requests(&b, 4u << 20, pack_all, &pk);
		t = now_ns(CLOCK_MONOTONIC) - t;
		if (t < best)
			best = t;
		rd_batch_free(&b);
		free(pk.buf);
	}
	rd_encode_env_free(&env);
	rd_source_free(src);
	rtm_segment_close(seg);
	unlink(rtm_segment_path(seg));
	return best / m;
}

static void bench_proc(int procs)
{
	static const char *const files[3] = { "stat", "status", "io" };
	pid_t *pid = calloc((size_t)procs, sizeof *pid);
	size_t nreq = (size_t)procs * 3;
	struct rd_procio_req *req = calloc(nreq, sizeof *req);
	double best[2] = { 1e30, 1e30 };
	const char *mode[2] = { "sync", "io_uring" };

	for (int i = 0; i < procs; i++) {
		char path[64];

		pid[i] = fork();
		if (pid[i] == 0) {
			pause();
			_exit(0);
		}
		/* What the reader reads for every producer each cycle. */
		for (int f = 0; f < 3; f++) {
			struct rd_procio_req *r = &req[i * 3 + f];

			snprintf(path, sizeof path, "/proc/%d/%s", pid[i], files[f]);
			r->fd = open(path, O_RDONLY | O_CLOEXEC);
			r->buf = malloc(4096);
			r->size = 4096;
		}
	}
	for (int m = 0; m < 2; m++) {
		struct rd_procio *io;

		if (rd_procio_open(&io, m ? RD_IO_URING : RD_IO_SYNC)) {
			printf("/proc        %s unavailable here\n", mode[m]);
			continue;
		}
		for (int r = 0; r < 15; r++) {
			double t = now_ns(CLOCK_MONOTONIC);

			rd_procio_read(io, req, nreq);
			t = now_ns(CLOCK_MONOTONIC) - t;
			if (t < best[m])
				best[m] = t;
		}
		rd_procio_close(io);
	}
	printf("/proc        %d processes x {stat,status,io} on kept fds, best of 15:\n", procs);
	printf("             sync pread loop  %8.0f ns/process  %7.2f ms/cycle\n", best[0] / procs,
	       best[0] / 1e6);
	printf("             io_uring batch   %8.0f ns/process  %7.2f ms/cycle  (%.2fx the sync time)\n",
	       best[1] / procs, best[1] / 1e6, best[1] / best[0]);
	printf("             default: %s\n", best[1] < best[0] ? "io_uring would win here" : "sync (faster)");
	for (int i = 0; i < procs; i++) {
		kill(pid[i], SIGKILL);
		for (int f = 0; f < 3; f++) {
			close(req[i * 3 + f].fd);
			free(req[i * 3 + f].buf);
		}
	}
	while (wait(NULL) > 0)
		;
	free(pid);
	free(req);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "segments", required_argument, NULL, 'n' },
		{ "series", required_argument, NULL, 'm' },
		{ "procs", required_argument, NULL, 'p' },
		{ 0 },
	};
	int nseg = 1000, m = 200, procs = 1000, c, requests = 0;
	char dir[] = "/dev/shm/rtm-bench-reader.XXXXXX";
	struct rd_source **src;
	struct rd_encode_env env;
	struct rd_batch batch = { 0 };
	struct packed pk = { 0 };
	double t, snap_ns = 1e30, base_ns = 1e30, enc_ns = 1e30, text_ns = 1e30, wire_ns = 1e30;
	size_t wire_len = 0, tree_len = 0;
	double cyc_ns[3] = { 1e30, 1e30, 1e30 };
	size_t cyc_len[3] = { 0 };
	double prom_ns[RD_PROM_FORMATS] = { 1e30, 1e30, 1e30 };
	double prom_gz_ns[RD_PROM_FORMATS][2] = { { 1e30, 1e30 }, { 1e30, 1e30 }, { 1e30, 1e30 } };
	double prom_ratio[RD_PROM_FORMATS][5], prom_round[RD_PROM_FORMATS][5];
	size_t prom_len[RD_PROM_FORMATS] = { 0 }, prom_gz_len[RD_PROM_FORMATS][2] = { { 0 } };
	size_t text_lines = 0;
	struct rd_prom_renderer *pr = rd_prom_renderer_new();
	struct rd_prom_stats pst = { 0 };
	struct rd_prom_page page = { 0 };
	struct rd_buf flat = { 0 };
	uint64_t sink = 0;

	while ((c = getopt_long(argc, argv, "n:m:p:", lo, NULL)) != -1) {
		if (c == 'n') nseg = atoi(optarg);
		else if (c == 'm') m = atoi(optarg);
		else if (c == 'p') procs = atoi(optarg);
		else return 2;
	}
	if (nseg < 1 || m < 8 || m > 4000 || procs < 0 || procs > 4000) {
		fprintf(stderr, "rtm-bench-reader: --segments >= 1, --series in 8..4000, --procs in 0..4000\n");
		return 2;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	src = calloc((size_t)nseg, sizeof *src);
	for (int i = 0; i < nseg; i++) {
		struct rtm_segment *seg;
		char name[64];

		if (rtm_segment_open(&seg, &(struct rtm_segment_opts){
			    .service_name = "bench", .dir = dir, .max_metrics = (uint32_t)m,
			    .max_threads = 2, .shard_bytes = (uint32_t)m * 40 + 4096,
			    .string_bytes = (uint32_t)m * 96 + 4096 })) {
			fprintf(stderr, "rtm-bench-reader: cannot create segment %d in %s\n", i, dir);
			return 1;
		}
		populate(seg, m, i);
		snprintf(name, sizeof name, "%s", strrchr(rtm_segment_path(seg), '/') + 1);
		if (rd_source_open(&src[i], AT_FDCWD, rtm_segment_path(seg), false)) {
			fprintf(stderr, "rtm-bench-reader: %s\n", src[i]->seg.err);
			return 1;
		}
		src[i]->stat_ok = true;
	}
	rd_encode_env_init(&env, false);
	/* Six rounds; the first only warms the buffers up (page faults, the
	 * renderer's tables) for the per-round ratios. */
	for (int r = 0; r < 6; r++) {
		uint64_t *words = malloc((size_t)m * 8);
		double enc_round = 0;

		/* Snapshot: every segment, every series, shards summed.  Cheap,
		 * so take the best of many passes: the least disturbed one. */
		for (int k = 0; k < 10; k++) {
			t = now_ns(CLOCK_MONOTONIC);
			for (int i = 0; i < nseg; i++)
				rd_source_collect(src[i]);
			t = now_ns(CLOCK_MONOTONIC) - t;
			if (t < snap_ns)
				snap_ns = t;
		}
		/* Baseline: summing as many words from private memory. */
		for (int i = 0; i < m; i++)
			words[i] = (uint64_t)i;
		t = now_ns(CLOCK_MONOTONIC);
		for (int i = 0; i < nseg; i++)
			for (int k = 0; k < m; k++)
				sink += __atomic_load_n(&words[k], __ATOMIC_RELAXED);
		t = now_ns(CLOCK_MONOTONIC) - t;
		if (t < base_ns)
			base_ns = t;
		free(words);

		/* Encode: build the OTLP tree and pack it. */
		t = now_ns(CLOCK_MONOTONIC);
		for (int i = 0; i < nseg; i++)
			rd_encode_source(&batch, &env, src[i], false, 2);
		pk.len = 0;
		requests = 0;
		rd_batch_requests(&batch, 4u << 20, pack_all, &pk);
		t = now_ns(CLOCK_MONOTONIC) - t;
		if (t < enc_ns)
			enc_ns = t;
		enc_round = t;
		tree_len = pk.len;
		rd_batch_requests(&batch, 4u << 20, collect_count, &requests);

		/* The same when only protobuf leaves (the reader's default
		 * OTLP export): number metrics from templates filled in place,
		 * no tree kept.  Two passes: the first builds the templates. */
		for (int pass = 0; pass < 2; pass++) {
			struct rd_batch wb = { .wire_only = true, .max_bytes = 4u << 20 };

			t = now_ns(CLOCK_MONOTONIC);
			for (int i = 0; i < nseg; i++)
				rd_encode_source(&wb, &env, src[i], false, 2);
			pk.len = 0;
			rd_batch_requests(&wb, 4u << 20, pack_all, &pk);
			t = now_ns(CLOCK_MONOTONIC) - t;
			if (pass && t < wire_ns)
				wire_ns = t;
			wire_len = pk.len;
			rd_batch_free(&wb);
		}

		/* /metrics: the same model rendered for a scrape, and the
		 * scrape's gzip (rd_gzip, as the server does; libdeflate
		 * level 1 the baseline). */
		for (int f = 0; f < RD_PROM_FORMATS; f++) {
			t = now_ns(CLOCK_MONOTONIC);
			rd_prom_render_page(pr, batch.rms, batch.owners, batch.n_rms, (enum rd_prom_format)f,
					    &page, &pst);
			t = now_ns(CLOCK_MONOTONIC) - t;
			if (t < prom_ns[f])
				prom_ns[f] = t;
			/* Against this round's encode: one ratio a round. */
			if (r) {
				prom_ratio[f][r - 1] = t / enc_round;
				prom_round[f][r - 1] = t;
			}
			prom_len[f] = page.len;
			if (f == RD_PROM_TEXT)
				text_lines = pst.series; /* a sample line each */
			/* What Prometheus asks for: OpenMetrics, or protobuf
			 * with native histograms on; gzip either way. */
			for (int g = 0; f != RD_PROM_TEXT && g < 2; g++) {
				t = now_ns(CLOCK_MONOTONIC);
				if (g) {
					/* libdeflate needs the page in one buffer: the
					 * join is left out of its time. */
					flat.len = 0;
					rd_prom_page_join(&page, &flat);
					t = now_ns(CLOCK_MONOTONIC);
					prom_gz_len[f][g] = gzip_with(GZ_LIBDEFLATE, flat.p, flat.len);
				} else {
					prom_gz_len[f][g] = gzip_pieces(page.iov, page.n_iov, page.len);
				}
				t = now_ns(CLOCK_MONOTONIC) - t;
				if (t < prom_gz_ns[f][g])
					prom_gz_ns[f][g] = t;
			}
		}
		rd_batch_reset(&batch);

		/* Baseline: the same points as Prometheus text. */
		{
			size_t cap = (size_t)nseg * (size_t)m * 160, len = 0;
			char *txt = malloc(cap);

			t = now_ns(CLOCK_MONOTONIC);
			for (int i = 0; i < nseg; i++) {
				struct rd_source *s = src[i];

				for (uint32_t k = 0; k < s->seg.n_metrics; k++) {
					const struct rd_metric *mm = &s->seg.metrics[k];
					const struct rd_value *v = &s->snap.values[k];

					if (mm->kind == RTM_SHM_KIND_HISTOGRAM) {
						for (uint32_t b = 0; b <= mm->n_bounds; b++)
							len += (size_t)snprintf(txt + len, cap - len,
								"%s_bucket{shard=\"%s\",le=\"%g\"} %llu\n", mm->name,
								mm->attrs[0].value, b < mm->n_bounds ? mm->bounds[b] : 1e308,
								(unsigned long long)v->buckets[b]);
						len += (size_t)snprintf(txt + len, cap - len, "%s_sum %g\n%s_count %llu\n",
							mm->name, v->sum, mm->name, (unsigned long long)v->count);
					} else {
						len += (size_t)snprintf(txt + len, cap - len, "%s{shard=\"%s\"} %lld\n",
							mm->name, mm->attrs[0].value, (long long)v->i);
					}
				}
			}
			t = now_ns(CLOCK_MONOTONIC) - t;
			if (t < text_ns)
				text_ns = t;
			free(txt);
		}
	}

	/* Whole cycle in CPU time: snapshot + encode + pack + gzip. */
	for (int r = 0; r < 3; r++) {
		for (int z = 0; z < 3; z++) {
			double c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);

			for (int i = 0; i < nseg; i++)
				rd_source_collect(src[i]);
			for (int i = 0; i < nseg; i++)
				rd_encode_source(&batch, &env, src[i], false, 2);
			pk.len = 0;
			rd_batch_requests(&batch, 4u << 20, pack_all, &pk);
			cyc_len[z] = gzip_with((enum gz_lib)z, pk.buf, pk.len);
			rd_batch_reset(&batch);
			double cpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
			if (cpu < cyc_ns[z])
				cyc_ns[z] = cpu;
		}
	}

	{
		double points = (double)nseg * m;

		printf("rtm-bench-reader: %d segments x %d series (%.0f points), best of 5 (snapshot: of 50)\n",
		       nseg, m, points);
		printf("snapshot     %6.2f ns/series   baseline (sum private words) %5.2f ns/series  (%.1fx)\n",
		       snap_ns / points, base_ns / points, snap_ns / base_ns);
		printf("encode       %6.2f M points/s  baseline (Prometheus text, snprintf) %5.2f M points/s  (%.1fx faster)\n",
		       points / enc_ns * 1e3, points / text_ns * 1e3, text_ns / enc_ns);
		printf("             %zu bytes protobuf in %d requests of <= 4 MiB\n", tree_len, requests);
		printf("  protobuf only %6.2f M points/s  (templates; %.1fx the encode above, %s bytes)\n",
		       points / wire_ns * 1e3, enc_ns / wire_ns, wire_len == tree_len ? "the same" : "OTHER");
		printf("/metrics     text 0.0.4   %6.1f ns/series (%zu bytes, %zu lines)  %.2fx the OTLP encode\n",
		       prom_ns[RD_PROM_TEXT] / points, prom_len[RD_PROM_TEXT], text_lines,
		       prom_ns[RD_PROM_TEXT] / enc_ns);
		printf("             OpenMetrics  %6.1f ns/series (%zu bytes)  %.2fx the OTLP encode\n",
		       prom_ns[RD_PROM_OPENMETRICS] / points, prom_len[RD_PROM_OPENMETRICS],
		       prom_ns[RD_PROM_OPENMETRICS] / enc_ns);
		printf("             protobuf     %6.1f ns/series (%zu bytes)  %.2fx the OTLP encode\n",
		       prom_ns[RD_PROM_PROTOBUF] / points, prom_len[RD_PROM_PROTOBUF],
		       prom_ns[RD_PROM_PROTOBUF] / enc_ns);
		static const char *const fname[RD_PROM_FORMATS] = { "text 0.0.4", "OpenMetrics",
								    "protobuf" };

		for (int f = 0; f < RD_PROM_FORMATS; f++) {
			bench_runs_sort(prom_ratio[f], 5);
			bench_runs_sort(prom_round[f], 5);
			printf("             %-12s 5 rounds: %5.1f / %5.1f / %5.1f ms a page, "
			       "%.2fx / %.2fx / %.2fx that round's OTLP encode (min / median / max)\n",
			       fname[f], prom_round[f][0] / 1e6, prom_round[f][2] / 1e6, prom_round[f][4] / 1e6,
			       prom_ratio[f][0], prom_ratio[f][2], prom_ratio[f][4]);
		}
		for (int f = RD_PROM_OPENMETRICS; f <= RD_PROM_PROTOBUF; f++)
			printf("             gzip of the %-11s page %5.1f ms (%zu bytes) by %s   baseline libdeflate level 1"
			       " %5.1f ms (%zu bytes)  (%.2fx the time)\n",
			       fname[f], prom_gz_ns[f][0] / 1e6, prom_gz_len[f][0], rd_gzip_library,
			       prom_gz_ns[f][1] / 1e6, prom_gz_len[f][1], prom_gz_ns[f][0] / prom_gz_ns[f][1]);
		printf("cycle CPU    %6.1f ms with gzip by %s (%zu bytes)   baseline libdeflate level 1 %6.1f ms"
		       " (%zu bytes), zlib level 1 %6.1f ms (%zu bytes)\n",
		       cyc_ns[GZ_RD] / 1e6, rd_gzip_library, cyc_len[GZ_RD], cyc_ns[GZ_LIBDEFLATE] / 1e6,
		       cyc_len[GZ_LIBDEFLATE], cyc_ns[GZ_ZLIB] / 1e6, cyc_len[GZ_ZLIB]);
		{
			/* Prometheus asks for OpenMetrics with gzip (protobuf
			 * with native histograms on); a page is rendered after
			 * a cycle only once the last one was scraped, so a 15 s
			 * scrape at the default 10 s cycle costs a rendering
			 * and a gzip every 15 s. */
			for (int f = RD_PROM_OPENMETRICS; f <= RD_PROM_PROTOBUF; f++) {
				double per_cycle = (prom_ns[f] + prom_gz_ns[f][0]) * 10.0 / 15.0;

				printf("             + /metrics scraped every 15 s at a 10 s cycle (%s + gzip per scrape):"
				       " %.1f ms per cycle, +%.0f%% of the cycle\n",
				       fname[f], per_cycle / 1e6,
				       per_cycle / cyc_ns[GZ_RD] * 100);
			}
		}
	}
	{
		/* Leak detection: every producer's heap, threads and fds fed to
		 * the detector each cycle, with a full ring of history (the
		 * default preset's 5 min window at 10 s: 30 samples; a 64-cycle
		 * warm-up fills any window). */
		struct rd_leak_cfg lc = { .enabled = true, .window_ns = 300000000000ull,
					  .threshold = { 1e6, 0.1, 0.1 } };
		double best = 1e30;
		uint64_t t_cycle = 10000000000ull;

		for (int i = 0; i < nseg; i++) {
			src[i]->status_ok = true;
			src[i]->fd_count = 10;
		}
		for (int cyc = 0; cyc < 64 + 5; cyc++) {
			double c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);

			for (int i = 0; i < nseg; i++) {
				unsigned became, stopped;

				src[i]->status.rss_bytes = (uint64_t)(1 << 20) * (uint64_t)(cyc + i);
				src[i]->stat.num_threads = 4 + cyc % 3;
				rd_source_leak_observe(src[i], &lc, (uint64_t)cyc * t_cycle, &became,
						       &stopped);
				sink += became + stopped;
			}
			c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
			if (cyc >= 64 && c0 < best)
				best = c0;
		}
		printf("leak         %6.0f ns per producer per cycle (heap, threads, fds; %d producers):"
		       " %.2f ms, %.1f%% of the cycle CPU above\n", best / nseg, nseg, best / 1e6,
		       best / cyc_ns[GZ_RD] * 100);
	}
	if (procs)
		bench_proc(procs);
	{
		double x = encode_hists(dir, 200, true), e = encode_hists(dir, 200, false);

		printf("histograms   exponential %6.0f ns/point (160 buckets a side, ~125 used)   "
		       "baseline explicit (7 bounds) %5.0f ns/point  (%.1fx)\n", x, e, x / e);
	}
	for (int i = 0; i < nseg; i++) {
		unlink(src[i]->seg.path);
		rd_source_free(src[i]);
	}
	free(src);
	free(pk.buf);
	rd_prom_page_free(&page);
	rd_buf_free(&flat);
	rd_prom_renderer_free(pr);
	rd_batch_free(&batch);
	rd_encode_env_free(&env);
	rmdir(dir);
	return sink == 42 ? 3 : 0;
}
