/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any byte string, parsed and snapshotted as a segment,
 * then encoded as the reader would export it (OTLP protobuf, OTLP/JSON,
 * Prometheus text and OpenMetrics).  Whatever the bytes, every output must
 * be valid UTF-8, every line of the Prometheus pages a comment or a
 * sample (no string broke out of its escaping), and the protobuf of the
 * templates (rd_encode.c) the tree's byte for byte; a violation aborts.  Its
 * lock-site table, if any, is read too.  Built with -Dfuzzer=true (clang);
 * tools/run-tests runs it for a bounded time, seeded with the golden
 * fixtures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_check.h"
#include "rd_buf.h"
#include "rd_config.h"
#include "rd_encode.h"
#include "rd_json.h"
#include "rd_otlp_json.h"
#include "rd_prom.h"
#include "rd_segment.h"
#include "rd_source.h"
#include "rtm_shm_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_be_text(const char *what, const char *s, size_t n, bool lines)
{
	if (!rtm_shm_utf8_valid(s, n)) {
		fprintf(stderr, "%s: invalid UTF-8\n", what);
		abort();
	}
	/* Exposition lines: every one a comment or a sample, so no string
	 * from the segment broke out of its escaping.  (Other control
	 * characters are legal in label values and HELP text.) */
	for (size_t i = 0; lines && i < n; i++) {
		char c = s[i];

		if ((i == 0 || s[i - 1] == '\n') && i < n &&
		    !(c == '#' || c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
			fprintf(stderr, "%s: a line starts with 0x%02x at %zu: %.80s\n", what,
				(unsigned char)c, i, s + i);
			abort();
		}
	}
}

/* The protobuf page: delimited MetricFamily messages, each well formed. */
static void must_be_pb(const char *s, size_t n)
{
	if (!pb_page_ok(s, n)) {
		fprintf(stderr, "fuzz_segment: malformed protobuf page\n");
		abort();
	}
}

static int check_request(const struct rd_request *req, void *ctx)
{
	struct rd_json *j = ctx;

	rd_json_reset(j);
	rd_otlp_json(j, req->req);
	must_be_text("OTLP/JSON", j->buf, j->len, false);
	return 0;
}

static struct rd_encode_env env;

/* When only protobuf leaves, metrics come from templates filled in place
 * (built at a metric's second export): for any segment, their bytes must
 * be the tree's. */
static void templates_agree(struct rd_source *s)
{
	struct rd_batch tree = { 0 }, tmpl = { .wire_only = true, .max_bytes = 4u << 20 };

	for (uint64_t k = 0; k < 3; k++) {
		/* Both see the same count of points left out, which each reports. */
		uint64_t invalid = s->invalid_points;

		rd_encode_source(&tree, &env, s, false, 1700000000000000000ull + k);
		s->invalid_points = invalid;
		rd_encode_source(&tmpl, &env, s, false, 1700000000000000000ull + k);
	}
	if (tree.wire_len != tmpl.wire_len || memcmp(tree.wire, tmpl.wire, tree.wire_len)) {
		fprintf(stderr, "templated protobuf differs from the tree's (%zu, %zu bytes)\n",
			tmpl.wire_len, tree.wire_len);
		abort();
	}
	rd_batch_free(&tree);
	rd_batch_free(&tmpl);
}

static void encode(struct rd_source *s)
{
	static bool env_ok;
	struct rd_batch b = { 0 };
	struct rd_json j = { 0 };

	if (!env_ok) {
		rd_encode_env_init(&env, false);
		env_ok = true;
	}
	templates_agree(s);
	rd_encode_source(&b, &env, s, false, 1700000000000000000ull);
	rd_encode_source(&b, &env, s, true, 1700000000000000001ull);
	for (int f = 0; f < RD_PROM_FORMATS; f++) {
		struct rd_prom_renderer *r = rd_prom_renderer_new();
		struct rd_buf out = { 0 };
		struct rd_prom_stats st = { 0 };

		rd_prom_render(r, b.rms, b.owners, b.n_rms, (enum rd_prom_format)f, &out, &st);
		if (f == RD_PROM_PROTOBUF)
			must_be_pb(out.p, out.len);
		else
			must_be_text("Prometheus", out.p, out.len, true);
		rd_buf_free(&out);
		rd_prom_renderer_free(r);
	}
	/* Small requests: the splitting path too. */
	rd_batch_requests(&b, 1024, check_request, &j);
	rd_json_free(&j);
	rd_batch_free(&b);
	/* The source goes: two cycles' ends and the encoder has let it go. */
	rd_encode_env_sweep(&env);
	rd_encode_env_sweep(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A mapped segment is page-aligned; give the parser the same. */
	void *img = aligned_alloc(64, size ? (size + 63) & ~(size_t)63 : 64);
	struct rd_source *s = rd_source_new();

	if (!img || !s) {
		free(img);
		free(s);
		return 0;
	}
	memcpy(img, data, size);
	if (rd_segment_parse_mem(&s->seg, img, size) == 0) {
		snprintf(s->name, sizeof s->name, "fuzz.rtm");
		snprintf(s->instance_id, sizeof s->instance_id, "1-2-3");
		struct rd_lock_sites l;

		if (rd_segment_snapshot(&s->seg, &s->snap) == 0)
			encode(s);
		if (rd_segment_lock_sites(&s->seg, &l) == 0)
			rd_lock_sites_free(&l);
		rd_segment_refresh(&s->seg);
		rd_source_free(s);
	} else {
		free(s);
	}
	free(img);
	return 0;
}
