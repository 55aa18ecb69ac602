/* SPDX-License-Identifier: MIT */
/*
 * rd_prom_pb.h - Prometheus's protobuf exposition format (the client_model
 * messages io.prometheus.client.MetricFamily, varint-delimited), which is
 * how a Prometheus started with --enable-feature=native-histograms asks for
 * native histograms.  rd_prom.c decides families, names and labels as for
 * the text formats; these write its points.  A point's labels come as the
 * text renderer built them (name="value" pairs, comma-separated, values
 * escaped as in the text format), so both formats label alike.
 */
#ifndef RD_PROM_PB_H
#define RD_PROM_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_buf.h"
#include "rd_otlp.h"

/* client_model's MetricType values rtm uses. */
enum { RD_PB_COUNTER = 0, RD_PB_GAUGE = 1, RD_PB_HISTOGRAM = 4 };

/* LabelPair fields (Metric field 1) into b from the text renderer's
 * `name="value",...`, unescaping \\, \" and \n: exactly what it escaped. */
void rd_prom_pb_labels(struct rd_buf *b, const char *text, size_t len);

/* A point's labels: pre, LabelPair fields rd_prom_pb_labels() wrote
 * already (the producer's and scope's, the same for all its points),
 * then the pairs of text (the point's own attributes). */
struct rd_pb_labels {
	const char *pre;
	size_t pre_len;
	const char *text;
	size_t text_len;
};

/* A counter's or gauge's Metric (MetricFamily field 4) into b. */
void rd_prom_pb_number(struct rd_buf *b, const struct rd_pb_labels *l, bool counter, double v);

/* A classic histogram's Metric: n (bound, cumulative count) pairs below
 * +Inf, then count and sum (NaN: none known, none sent). */
void rd_prom_pb_classic(struct rd_buf *b, const struct rd_pb_labels *l, const double *bounds,
			const uint64_t *cum, size_t n, uint64_t count, double sum);

/* A native histogram's Metric from an OTLP exponential point (scale
 * -4..8; Prometheus's bucket i is OTel's i - 1). */
void rd_prom_pb_native(struct rd_buf *b, const struct rd_pb_labels *l, const otlp_ehdp *p);

/* The head of one varint-delimited MetricFamily whose Metric fields, n
 * bytes of them, follow it: its length, name, help and type. */
void rd_prom_pb_family_head(struct rd_buf *out, const char *name, const char *suffix,
			    const char *help, int type, size_t n);

/* One MetricFamily, varint-delimited, into out: its Metric fields are
 * metrics[0, n). */
void rd_prom_pb_family(struct rd_buf *out, const char *name, const char *suffix, const char *help,
		       int type, const char *metrics, size_t n);

#endif /* RD_PROM_PB_H */
