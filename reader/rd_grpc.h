/* SPDX-License-Identifier: MIT */
/*
 * rd_grpc.h - the gRPC wire details of OTLP/gRPC (gRPC over HTTP/2,
 * grpc/doc/PROTOCOL-HTTP2.md): message framing, the status a server puts in
 * its trailers (or headers, for a trailers-only answer), and which statuses
 * the OTLP specification says to retry.  The HTTP/2 transport is libcurl's.
 */
#ifndef RD_GRPC_H
#define RD_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RD_GRPC_PATH "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

enum {
	RD_GRPC_OK = 0,
	RD_GRPC_CANCELLED = 1,
	RD_GRPC_UNKNOWN = 2,
	RD_GRPC_INVALID_ARGUMENT = 3,
	RD_GRPC_DEADLINE_EXCEEDED = 4,
	RD_GRPC_RESOURCE_EXHAUSTED = 8,
	RD_GRPC_ABORTED = 10,
	RD_GRPC_OUT_OF_RANGE = 11,
	RD_GRPC_UNIMPLEMENTED = 12,
	RD_GRPC_INTERNAL = 13,
	RD_GRPC_UNAVAILABLE = 14,
	RD_GRPC_DATA_LOSS = 15,
	RD_GRPC_UNAUTHENTICATED = 16,
};

/* What one answer said, gathered from libcurl's header callback. */
struct rd_grpc_reply {
	int status;              /* grpc-status; -1 when none came */
	char message[256];       /* grpc-message, percent-decoded, printable ASCII */
	bool has_retry_info;     /* google.rpc.RetryInfo in grpc-status-details-bin */
	uint64_t retry_delay_ns;
	char details[4096];      /* grpc-status-details-bin as sent (base64) */
	bool truncated_details;
};

void rd_grpc_reply_reset(struct rd_grpc_reply *r);

/* Takes one header or trailer line ("name: value\r\n") if it is a grpc-*
 * field this reader uses.  Returns true when it was one. */
bool rd_grpc_header(struct rd_grpc_reply *r, const char *line, size_t len);

/* Decodes the collected status details (RetryInfo) once the answer is in. */
void rd_grpc_reply_finish(struct rd_grpc_reply *r);

/* The 5-byte prefix of a length-prefixed message: compressed flag and
 * big-endian length. */
void rd_grpc_prefix(uint8_t out[5], bool compressed, uint32_t len);

/* The first message of a response body: its bytes and compressed flag.
 * Returns 0, -ENODATA for an empty body, or -EINVAL for a short or
 * inconsistent frame. */
int rd_grpc_unframe(const uint8_t *body, size_t n, const uint8_t **msg, size_t *len,
		    bool *compressed);

/* Whether the OTLP exporter specification says to retry this status:
 * CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and
 * DATA_LOSS; RESOURCE_EXHAUSTED only when the server sent RetryInfo. */
bool rd_grpc_retryable(int status, bool has_retry_info);

/* "UNAVAILABLE" for 14, and so on; "code N" past the known ones. */
const char *rd_grpc_code_name(int status, char *buf, size_t n);

#endif /* RD_GRPC_H */
