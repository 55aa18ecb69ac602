/* SPDX-License-Identifier: MIT */
/*
 * pb_check.h - reads back the /metrics protobuf page (delimited
 * io.prometheus.client.MetricFamily messages) in the tests and the fuzzer,
 * without the client_model .proto: wire format and shape only.
 */
#ifndef PB_CHECK_H
#define PB_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A varint at *p (before end) into *v, *p moved past it; false if cut. */
bool pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *v);

/* The client_model messages the page nests. */
enum pb_kind { PB_FAMILY, PB_METRIC, PB_LABEL, PB_HIST, PB_LEAF };

/* Whether message [p, end) of kind k is well formed: every field's wire
 * type known and every length inside its message, the string fields
 * (names, help, label names and values) valid UTF-8, and the nested
 * messages (Metric, LabelPair, Histogram, its buckets and spans) the
 * same. */
bool pb_message_ok(const unsigned char *p, const unsigned char *end, enum pb_kind k);

/* Whether [p, p + n) is a page of such MetricFamily messages, each
 * preceded by its length. */
bool pb_page_ok(const char *p, size_t n);

#endif /* PB_CHECK_H */
