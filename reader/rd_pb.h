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

/* Encoded size of one ResourceMetrics as a request field (tag + length +
 * message): what it adds to a request body. */
size_t rd_pb_rm_field_size(struct rd_pb *w, const otlp_rm *rm);

static inline const uint8_t *rd_pb_data(const struct rd_pb *w) { return w->pos; }
static inline size_t rd_pb_len(const struct rd_pb *w)
{
	return (size_t)(w->buf + w->cap - w->pos);
}

void rd_pb_free(struct rd_pb *w);

#endif /* RD_PB_H */
