/* SPDX-License-Identifier: MIT */
/*
 * rd_pb.h - fast protobuf serialisation of the OTLP export request.
 *
 * protobuf-c's generic packer recomputes the size of every nested message
 * at every level (seven levels from request to AnyValue), which made it the
 * reader's largest cost per cycle.  This writer walks the same protoc-c
 * generated structs once, back to front, so each length is known when its
 * prefix is written.  Its output is byte-for-byte what protobuf-c produces
 * (tests/test_encode.c checks that), and protobuf-c remains the decoder.
 */
#ifndef RD_PB_H
#define RD_PB_H

#include <stddef.h>
#include <stdint.h>

#include "rd_otlp.h"

struct rd_pb {
	uint8_t *buf;  /* output occupies [pos, buf + cap) */
	uint8_t *pos;
	size_t cap;
};

/* Serialises req; the bytes are rd_pb_data(w), rd_pb_len(w) long, valid
 * until the next call.  Returns 0 or -ENOMEM. */
int rd_pb_pack_request(struct rd_pb *w, const otlp_req *req);

/* Encodes one ResourceMetrics as a request field (tag + length +
 * message): what it adds to a request body.  Returns its size (the bytes
 * are rd_pb_data(w)), or SIZE_MAX when out of memory. */
size_t rd_pb_rm_field_size(struct rd_pb *w, const otlp_rm *rm);

/* A metric whose data (its Gauge, Sum or Histogram field, with tag and
 * length) was encoded elsewhere: rd_pb_metric_template(), filled. */
struct rd_pb_raw_metric {
	const char *name, *description, *unit;
	const uint8_t *data;
	size_t n;
};

/* As rd_pb_rm_field_size(), where raw_sm (one of rm's scopes) may hold
 * NULL metrics: for each, raw[i] is that metric, its data copied as it
 * is. */
size_t rd_pb_rm_field_size_raw(struct rd_pb *w, const otlp_rm *rm, const otlp_sm *raw_sm,
			       const struct rd_pb_raw_metric *raw);

/*
 * Encodes m's data field (Gauge, Sum or Histogram, with tag and length;
 * not its name, description, unit or metadata) to serve as a template: a
 * metric whose points keep their layout from cycle to cycle (no flags,
 * the same value type, the same fields present) changes only in
 * fixed-size payloads.  off receives, per point, the offsets in the
 * output where they begin (UINT32_MAX for a field that is absent):
 *   Sum, Gauge  3 per point: start time, time, value (8 bytes each);
 *   Histogram   7 per point: start time, time, count, sum, the bucket
 *               counts (8 bytes each), min, max (8 bytes each).
 * Returns the size (bytes at rd_pb_data(w)), or SIZE_MAX when out of
 * memory.
 */
size_t rd_pb_metric_template(struct rd_pb *w, const otlp_metric *m, uint32_t *off);

static inline const uint8_t *rd_pb_data(const struct rd_pb *w) { return w->pos; }
static inline size_t rd_pb_len(const struct rd_pb *w)
{
	return (size_t)(w->buf + w->cap - w->pos);
}

void rd_pb_free(struct rd_pb *w);

#endif /* RD_PB_H */
