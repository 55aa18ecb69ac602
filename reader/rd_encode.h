/* SPDX-License-Identifier: MIT */
/*
 * rd_encode.h - turn snapshots into OTLP: one ResourceMetrics per producer
 * process, one scope ("rtm"), series grouped into metrics by name.
 *   counter         -> Sum, monotonic, cumulative
 *   up-down counter -> Sum, non-monotonic, cumulative
 *   gauge           -> Gauge
 *   histogram       -> Histogram, cumulative, explicit bounds, count/sum/min/max
 * start_time_unix_nano is the series' creation time from the segment.
 */
#ifndef RD_ENCODE_H
#define RD_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_arena.h"
#include "rd_config.h"
#include "rd_otlp.h"
#include "rd_pb.h"

struct rd_source;
struct rd_config;

/* One cycle's export: a list of ResourceMetrics built in an arena. */
struct rd_batch {
	struct rd_arena arena;
	otlp_rm **rms;
	struct rd_rm_owner *owners; /* [n_rms]: who wrote rms[i] */
	size_t *wire_off;   /* rms[i]'s bytes: wire[wire_off[i], wire_off[i + 1]) */
	size_t n_rms, cap;
	size_t points;
	struct rd_pb sizer; /* one ResourceMetrics, encoded */
	uint8_t *wire;      /* every rms[i] as a request's field 1, in order */
	size_t wire_len, wire_cap;
	/* Set by the owner when only the protobuf bytes will be read (no JSON,
	 * no /metrics): each producer's tree is then freed once serialised, so
	 * the cycle's model stays in cache; rms[i] is NULL for those and
	 * requests carry no tree.  A producer larger than max_bytes keeps its
	 * tree, to be split. */
	bool wire_only;
	size_t max_bytes;
	/* Delta temporality (rd_delta.h): set by the owner for the OTLP batch
	 * only (/metrics stays cumulative); epoch is the export's. */
	enum rd_temporality temporality;
	uint64_t epoch, since_ns;
	struct rd_delta *self_delta; /* the reader's own resource */
};

struct rd_enc_caches; /* rd_encode.c */

/* The encoder's state across cycles: reader-wide resource attributes,
 * computed once, and per producer what only changes with its descriptor
 * table (resource, attribute sets, grouping, templates), kept under the
 * source's seq, which no other source ever has. */
struct rd_encode_env {
	char host_name[256];
	bool command_line;
	unsigned groups_due; /* bit per enum rd_group: export this cycle */
	struct rd_enc_caches *caches;
};

void rd_encode_env_init(struct rd_encode_env *env, bool command_line);
/* Ends a cycle: forgets the producers not encoded since the last call (the
 * reader dropped them; their sources may be freed already: nothing of
 * theirs is read).  One that comes back is encoded from scratch. */
void rd_encode_env_sweep(struct rd_encode_env *env);
void rd_encode_env_free(struct rd_encode_env *env);
/* How many producers' data it holds now. */
size_t rd_encode_env_producers(const struct rd_encode_env *env);

/* Appends the source's current values (or, with no_value, one point per
 * stream flagged NO_RECORDED_VALUE at time now, ending the streams). */
void rd_encode_source(struct rd_batch *b, struct rd_encode_env *env,
		      struct rd_source *s, bool no_value, uint64_t now);

/* The reader's own metrics, as one more resource. */
struct rd_self_stats {
	uint64_t start_unix_nano;
	int64_t segments;          /* being exported now */
	uint64_t segments_rejected;
	int64_t segments_unresolved; /* kept: their process cannot be found */
	uint64_t torn_slots;
	uint64_t exports_ok, exports_failed, retries, bytes_sent, points_rejected;
	uint64_t points_invalid;   /* left out: values OTLP cannot carry */
	int64_t prom_renamed, prom_dropped; /* on the last /metrics page (rd_prom.h) */
	uint64_t cycle_buckets[8]; /* cycle duration histogram, default bounds */
	double cycle_sum, cycle_min, cycle_max;
	uint64_t cycles;
};
void rd_encode_self(struct rd_batch *b, const struct rd_encode_env *env,
		    const struct rd_config *cfg, const struct rd_self_stats *st,
		    uint64_t now);

/* One request: the message tree (for OTLP/JSON) and its protobuf bytes. */
struct rd_request {
	const otlp_req *req;
	const uint8_t *pb;
	size_t pb_len;
};

/* Calls fn once per request of at most max_bytes of protobuf (a single
 * metric larger than that goes alone).  Stops at and returns fn's first
 * non-zero result. */
int rd_batch_requests(struct rd_batch *b, size_t max_bytes,
		      int (*fn)(const struct rd_request *req, void *ctx), void *ctx);

void rd_batch_reset(struct rd_batch *b);
void rd_batch_free(struct rd_batch *b);

/* The process metrics the reader read for s from /proc, as one scope
 * ("rtm/process"), or NULL when there are none (rd_encode_proc.c). */
otlp_sm *rd_encode_process_scope(struct rd_batch *b, struct rd_source *s,
				 unsigned groups, bool no_value, uint64_t now);

/* One point of a number metric built by the reader itself. */
struct rd_num_point {
	bool dbl;              /* as_double, else as_int */
	int64_t i;
	double d;
	const char *key, *val; /* one attribute, or none */
};

/* Appends to sm a metric of n points: a cumulative Sum for an rtm counter
 * or up-down counter kind, a Gauge for the gauge kind; with no_value, every
 * point is flagged NO_RECORDED_VALUE instead. */
void rd_encode_numbers(struct rd_batch *b, otlp_sm *sm, const char *name,
		       const char *unit, const char *desc, int kind, uint64_t start,
		       uint64_t now, bool no_value, const struct rd_num_point *pts, size_t n);

/* An attribute: key and string or integer value, into caller storage. */
void rd_kv_str(otlp_kv *kv, otlp_any *any, const char *k, const char *v);
void rd_kv_int(otlp_kv *kv, otlp_any *any, const char *k, int64_t v);

#endif /* RD_ENCODE_H */
