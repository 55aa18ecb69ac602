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

/* A counter's or gauge's Metric (MetricFamily field 4) into b. */
void rd_prom_pb_number(struct rd_buf *b, const char *labels, size_t len, bool counter, double v);

/* A classic histogram's Metric: n (bound, cumulative count) pairs below
 * +Inf, then count and sum (NaN: none known, none sent). */
void rd_prom_pb_classic(struct rd_buf *b, const char *labels, size_t len, const double *bounds,
			const uint64_t *cum, size_t n, uint64_t count, double sum);

/* A native histogram's Metric from an OTLP exponential point (scale
 * -4..8; Prometheus's bucket i is OTel's i - 1). */
void rd_prom_pb_native(struct rd_buf *b, const char *labels, size_t len, const otlp_ehdp *p);

/* One MetricFamily, varint-delimited, into out: its Metric fields are
 * metrics[0, n). */
void rd_prom_pb_family(struct rd_buf *out, const char *name, const char *suffix, const char *help,
		       int type, const char *metrics, size_t n);

#endif /* RD_PROM_PB_H */
