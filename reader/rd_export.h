/* SPDX-License-Identifier: MIT */
/*
 * rd_export.h - deliver export requests: OTLP/HTTP (protobuf or JSON, gzip
 * optional) through libcurl, or OTLP/JSON lines on stdout, or nowhere.
 *
 * OTLP/HTTP follows the spec's retry rules: 429, 502, 503, 504 and
 * connection failures are retried with exponential backoff and jitter,
 * honouring Retry-After (seconds or HTTP-date); other 4xx are never retried;
 * a partial success is logged and counted, never retried.  One curl handle
 * is reused so connections stay alive; the body is handed to curl as a
 * buffer it can rewind and send again on a reused connection.
 */
#ifndef RD_EXPORT_H
#define RD_EXPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "rd_config.h"
#include "rd_encode.h"
#include "rd_otlp.h"

struct rd_exporter;

struct rd_export_stats {
	uint64_t ok, failed, retries, bytes_sent, points_rejected;
};

/* Returns 0 or -errno (one-line reason in err). */
int rd_exporter_open(struct rd_exporter **out, const struct rd_config *cfg,
		     char *err, size_t errlen);
void rd_exporter_close(struct rd_exporter *e);

/* Sends one request, retrying as above.  Returns 0 when delivered
 * (including a partial success), -EAGAIN when retries ran out or were
 * cut short, -EINVAL when the collector refused it for good. */
int rd_exporter_send(struct rd_exporter *e, const struct rd_request *req);

/* Makes rd_exporter_send() stop retrying (e.g. SIGTERM is pending). */
void rd_exporter_set_abort(struct rd_exporter *e, bool (*should_abort)(void));

/* Exports give up (in-flight transfers included) at this CLOCK_MONOTONIC
 * time; 0: no deadline.  Bounds the last flush on shutdown. */
void rd_exporter_set_deadline(struct rd_exporter *e, uint64_t mono_ns);

const struct rd_export_stats *rd_exporter_stats(const struct rd_exporter *e);

#endif /* RD_EXPORT_H */
