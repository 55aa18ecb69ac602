/* SPDX-License-Identifier: MIT */
/*
 * rd_delta.h - delta temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_
 * PREFERENCE=delta|lowmemory), computed from the cumulative values rtm
 * reads.  A point's delta is its value minus the value of the last export
 * that was *delivered*: an export that fails loses nothing, the next one
 * covers the whole interval since the last delivered one.  The collector
 * therefore computes a cycle's deltas only once the previous export has
 * been delivered or given up (rd_collect.c).
 *
 * Which streams turn delta follows the specification's table: monotonic
 * sums and histograms under "delta"; under "lowmemory" only those of
 * synchronous instruments (a producer's own counters and histograms),
 * while the observed ones (process metrics from /proc, the reader's own)
 * stay cumulative.  Up-down counters and gauges stay as they are.
 */
#ifndef RD_DELTA_H
#define RD_DELTA_H

#include <stdbool.h>
#include <stdint.h>

#include "rd_arena.h"
#include "rd_config.h"
#include "rd_otlp.h"

struct rd_delta; /* one resource's streams */

/* Rewrites rm's eligible points as deltas against *d (created on first
 * use).  Streams first seen whose start precedes since_ns (they existed
 * when this reader started) begin at their first sight, with no point
 * that cycle: an earlier reader may have delivered their past.  Delta
 * histogram buckets are allocated in a (the batch's arena).  Points
 * flagged NO_RECORDED_VALUE pass unchanged.  epoch: the export these
 * points go out in. */
void rd_delta_apply(struct rd_delta **d, otlp_rm *rm, struct rd_arena *a, enum rd_temporality t,
		    uint64_t epoch, uint64_t since_ns);

/* The export of epoch `delivered` and all before it arrived: their values
 * become the base of the next deltas. */
void rd_delta_delivered(struct rd_delta *d, uint64_t delivered);

void rd_delta_free(struct rd_delta *d);

#endif /* RD_DELTA_H */
