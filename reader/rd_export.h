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
 *
 * OTLP/HTTP runs on a thread of its own, beside collection: a cycle's
 * requests are serialised into an outbox and committed; the thread sends
 * one outbox at a time, and a committed outbox it has not started yet is
 * replaced by the next cycle's (the streams are cumulative, so the newer
 * one carries everything the older did).  A collector that never answers
 * holds that thread, never collection.
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
	uint64_t replaced; /* outboxes replaced before they were sent */
};

/* Returns 0 or -errno (one-line reason in err). */
int rd_exporter_open(struct rd_exporter **out, const struct rd_config *cfg,
		     char *err, size_t errlen);
void rd_exporter_close(struct rd_exporter *e);

/* stdout and none: writes the request now, returns 0.  OTLP: serialises it
 * into the outbox being built (sent once committed); 0 or -ENOMEM. */
int rd_exporter_send(struct rd_exporter *e, const struct rd_request *req);

/* Hands the outbox built since the last commit to the sending thread, as
 * the cycle epoch (increasing).  0 or -ENOMEM. */
int rd_exporter_commit(struct rd_exporter *e, uint64_t epoch);

/* The newest epoch whose requests were all delivered (a request refused
 * for good counts as delivered: it never will be), and in *last_rc the
 * result of the newest outbox finished: 0, or -EAGAIN when retries ran
 * out or were cut short. */
uint64_t rd_exporter_delivered(struct rd_exporter *e, int *last_rc);

/* Waits until every committed outbox is sent or given up (bounded by the
 * deadline and the abort function). */
void rd_exporter_wait(struct rd_exporter *e);

/* Makes the sending thread stop retrying (e.g. SIGTERM is pending); may
 * be called while it runs. */
void rd_exporter_set_abort(struct rd_exporter *e, bool (*should_abort)(void));

/* Exports give up (in-flight transfers included) at this CLOCK_MONOTONIC
 * time; 0: no deadline.  Bounds the last flush on shutdown. */
void rd_exporter_set_deadline(struct rd_exporter *e, uint64_t mono_ns);

/* A consistent copy of the counters, as of the last finished outbox. */
void rd_exporter_stats(struct rd_exporter *e, struct rd_export_stats *out);

#endif /* RD_EXPORT_H */
