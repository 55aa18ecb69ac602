/* SPDX-License-Identifier: MIT */
#include "rd_otlp_json.h"

static void any_value(struct rd_json *j, const otlp_any *v)
{
	rd_json_obj_open(j, "value");
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
		rd_json_str(j, "stringValue", v->string_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		rd_json_int_str(j, "intValue", v->int_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		rd_json_bool(j, "boolValue", v->bool_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		rd_json_double(j, "doubleValue", v->double_value);
		break;
	default: /* rtm never sends the other kinds */
		break;
	}
	rd_json_obj_close(j);
}

static void attributes(struct rd_json *j, otlp_kv *const *kv, size_t n)
{
	if (!n)
		return;
	rd_json_arr_open(j, "attributes");
	for (size_t i = 0; i < n; i++) {
		rd_json_obj_open(j, NULL);
		rd_json_str(j, "key", kv[i]->key);
		any_value(j, kv[i]->value);
		rd_json_obj_close(j);
	}
	rd_json_arr_close(j);
}

static void number_points(struct rd_json *j, otlp_ndp *const *p, size_t n)
{
	rd_json_arr_open(j, "dataPoints");
	for (size_t i = 0; i < n; i++) {
		rd_json_obj_open(j, NULL);
		attributes(j, p[i]->attributes, p[i]->n_attributes);
		if (p[i]->start_time_unix_nano)
			rd_json_uint_str(j, "startTimeUnixNano", p[i]->start_time_unix_nano);
		rd_json_uint_str(j, "timeUnixNano", p[i]->time_unix_nano);
		if (p[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
			rd_json_int_str(j, "asInt", p[i]->as_int);
		else if (p[i]->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
			rd_json_double(j, "asDouble", p[i]->as_double);
		if (p[i]->flags)
			rd_json_uint(j, "flags", p[i]->flags);
		rd_json_obj_close(j);
	}
	rd_json_arr_close(j);
}

/* What a histogram point and an exponential one open with: attributes,
 * times, count and the sum when it has one (NULL: none). */
static void dist_head(struct rd_json *j, otlp_kv *const *attrs, size_t n_attrs, uint64_t start,
		      uint64_t time, uint64_t count, const double *sum)
{
	rd_json_obj_open(j, NULL);
	attributes(j, attrs, n_attrs);
	rd_json_uint_str(j, "startTimeUnixNano", start);
	rd_json_uint_str(j, "timeUnixNano", time);
	rd_json_uint_str(j, "count", count);
	if (sum)
		rd_json_double(j, "sum", *sum);
}

/* ... and close with: min and max when known, the flags when set. */
static void dist_tail(struct rd_json *j, const double *min, const double *max, uint32_t flags)
{
	if (min)
		rd_json_double(j, "min", *min);
	if (max)
		rd_json_double(j, "max", *max);
	if (flags)
		rd_json_uint(j, "flags", flags);
	rd_json_obj_close(j);
}

static void histogram_points(struct rd_json *j, otlp_hdp *const *p, size_t n)
{
	rd_json_arr_open(j, "dataPoints");
	for (size_t i = 0; i < n; i++) {
		const otlp_hdp *d = p[i];

		dist_head(j, d->attributes, d->n_attributes, d->start_time_unix_nano,
			  d->time_unix_nano, d->count, d->_sum_case ? &d->sum : NULL);
		if (d->n_bucket_counts) {
			rd_json_arr_open(j, "bucketCounts");
			for (size_t b = 0; b < d->n_bucket_counts; b++)
				rd_json_uint_str(j, NULL, d->bucket_counts[b]);
			rd_json_arr_close(j);
		}
		if (d->n_explicit_bounds) {
			rd_json_arr_open(j, "explicitBounds");
			for (size_t b = 0; b < d->n_explicit_bounds; b++)
				rd_json_double(j, NULL, d->explicit_bounds[b]);
			rd_json_arr_close(j);
		}
		dist_tail(j, d->_min_case ? &d->min : NULL, d->_max_case ? &d->max : NULL, d->flags);
	}
	rd_json_arr_close(j);
}

static void ebuckets(struct rd_json *j, const char *name, const otlp_ebuckets *b)
{
	if (!b || !b->n_bucket_counts)
		return;
	rd_json_obj_open(j, name);
	if (b->offset)
		rd_json_int(j, "offset", b->offset);
	rd_json_arr_open(j, "bucketCounts");
	for (size_t i = 0; i < b->n_bucket_counts; i++)
		rd_json_uint_str(j, NULL, b->bucket_counts[i]);
	rd_json_arr_close(j);
	rd_json_obj_close(j);
}

static void exponential_points(struct rd_json *j, otlp_ehdp *const *p, size_t n)
{
	rd_json_arr_open(j, "dataPoints");
	for (size_t i = 0; i < n; i++) {
		const otlp_ehdp *d = p[i];

		dist_head(j, d->attributes, d->n_attributes, d->start_time_unix_nano,
			  d->time_unix_nano, d->count, d->_sum_case ? &d->sum : NULL);
		if (d->scale)
			rd_json_int(j, "scale", d->scale);
		if (d->zero_count)
			rd_json_uint_str(j, "zeroCount", d->zero_count);
		ebuckets(j, "positive", d->positive);
		ebuckets(j, "negative", d->negative);
		dist_tail(j, d->_min_case ? &d->min : NULL, d->_max_case ? &d->max : NULL, d->flags);
	}
	rd_json_arr_close(j);
}

static void metric(struct rd_json *j, const otlp_metric *m)
{
	rd_json_obj_open(j, NULL);
	rd_json_str(j, "name", m->name);
	if (m->description && *m->description)
		rd_json_str(j, "description", m->description);
	if (m->unit && *m->unit)
		rd_json_str(j, "unit", m->unit);
	switch (m->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
		rd_json_obj_open(j, "gauge");
		number_points(j, m->gauge->data_points, m->gauge->n_data_points);
		rd_json_obj_close(j);
		break;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
		rd_json_obj_open(j, "sum");
		number_points(j, m->sum->data_points, m->sum->n_data_points);
		rd_json_uint(j, "aggregationTemporality", (uint64_t)m->sum->aggregation_temporality);
		if (m->sum->is_monotonic)
			rd_json_bool(j, "isMonotonic", true);
		rd_json_obj_close(j);
		break;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
		rd_json_obj_open(j, "histogram");
		histogram_points(j, m->histogram->data_points, m->histogram->n_data_points);
		rd_json_uint(j, "aggregationTemporality",
			     (uint64_t)m->histogram->aggregation_temporality);
		rd_json_obj_close(j);
		break;
	case OTLP_DATA_EXPHIST:
		rd_json_obj_open(j, "exponentialHistogram");
		exponential_points(j, m->exponential_histogram->data_points,
				   m->exponential_histogram->n_data_points);
		rd_json_uint(j, "aggregationTemporality",
			     (uint64_t)m->exponential_histogram->aggregation_temporality);
		rd_json_obj_close(j);
		break;
	default:
		break;
	}
	rd_json_obj_close(j);
}

void rd_otlp_json(struct rd_json *j, const otlp_req *req)
{
	rd_json_obj_open(j, NULL);
	rd_json_arr_open(j, "resourceMetrics");
	for (size_t r = 0; r < req->n_resource_metrics; r++) {
		const otlp_rm *rm = req->resource_metrics[r];

		rd_json_obj_open(j, NULL);
		rd_json_obj_open(j, "resource");
		attributes(j, rm->resource->attributes, rm->resource->n_attributes);
		rd_json_obj_close(j);
		rd_json_arr_open(j, "scopeMetrics");
		for (size_t s = 0; s < rm->n_scope_metrics; s++) {
			const otlp_sm *sm = rm->scope_metrics[s];

			rd_json_obj_open(j, NULL);
			rd_json_obj_open(j, "scope");
			rd_json_str(j, "name", sm->scope->name);
			rd_json_str(j, "version", sm->scope->version);
			rd_json_obj_close(j);
			rd_json_arr_open(j, "metrics");
			for (size_t m = 0; m < sm->n_metrics; m++)
				metric(j, sm->metrics[m]);
			rd_json_arr_close(j);
			rd_json_obj_close(j);
		}
		rd_json_arr_close(j);
		rd_json_obj_close(j);
	}
	rd_json_arr_close(j);
	rd_json_obj_close(j);
}
