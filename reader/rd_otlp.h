/* SPDX-License-Identifier: MIT */
/* rd_otlp.h - short names for the protoc-c generated OTLP types. */
#ifndef RD_OTLP_H
#define RD_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "otlp_common.pb-c.h"
#include "otlp_metrics.pb-c.h"
#include "otlp_metrics_service.pb-c.h"
#include "otlp_resource.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue otlp_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue otlp_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope otlp_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource otlp_resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics otlp_rm;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics otlp_sm;
typedef Opentelemetry__Proto__Metrics__V1__Metric otlp_metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum otlp_sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge otlp_gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram otlp_hist;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint otlp_ndp;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint otlp_hdp;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram otlp_ehist;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint otlp_ehdp;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets otlp_ebuckets;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest otlp_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse otlp_resp;

/* Who wrote one ResourceMetrics of a cycle's model, beside it (struct
 * rd_batch): what /metrics needs so one user's families cannot displace
 * another's (rd_prom.h). */
struct rd_rm_owner {
	uint32_t uid;       /* the producer's user: its segment's owner */
	bool reader;        /* the reader's own resource */
	const otlp_sm *own; /* the scope its producer wrote (NULL: none); every
			     * other scope is the reader's (from /proc) */
	uint64_t seq;       /* the order the reader found producers in */
};

#define OTLP_DATA_EXPHIST OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM

#define OTLP_CUMULATIVE \
	OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define OTLP_NO_RECORDED_VALUE \
	OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

#endif /* RD_OTLP_H */
