/* SPDX-License-Identifier: MIT */
/* rd_otlp.h - short names for the protoc-c generated OTLP types. */
#ifndef RD_OTLP_H
#define RD_OTLP_H

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
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest otlp_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse otlp_resp;

#define OTLP_CUMULATIVE \
	OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define OTLP_NO_RECORDED_VALUE \
	OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

#endif /* RD_OTLP_H */
