/* SPDX-License-Identifier: MIT */
/*
 * rd_prom.h - the Prometheus renderer: one cycle's metrics (the same
 * in-memory OTel data model that rd_pb and rd_otlp_json serialise) as a
 * Prometheus text 0.0.4 or OpenMetrics 1.0 exposition.
 *
 * Mapping (OTel "Prometheus and OpenMetrics compatibility"):
 *   monotonic Sum       -> counter    name_total (+ name_created in OpenMetrics)
 *   non-monotonic Sum   -> gauge
 *   Gauge               -> gauge
 *   Histogram           -> histogram  name_bucket{le}, name_sum, name_count
 *   Resource            -> labels job (service.namespace/service.name) and
 *                          instance (service.instance.id) on every series, and
 *                          one target_info series per resource with the other
 *                          resource attributes as labels
 *   Scope               -> labels otel_scope_name, otel_scope_version
 * Names and units as rd_prom_name.h says.  Series of one Prometheus name are
 * rendered together under one TYPE line whichever producer they come from;
 * a metric whose name collides with a family of another type is left out
 * (counted in the stats).  Attribute keys that collide after sanitising are
 * merged, their values joined with ';' in key order; an attribute named like
 * a label the mapping adds (job, instance, le, otel_scope_*) is renamed
 * exported_<key>.  Label values and HELP text are escaped for the format, and
 * invalid UTF-8 is replaced by U+FFFD.
 */
#ifndef RD_PROM_H
#define RD_PROM_H

#include <stddef.h>

#include "rd_buf.h"
#include "rd_otlp.h"

enum rd_prom_format {
	RD_PROM_TEXT,        /* text/plain; version=0.0.4 */
	RD_PROM_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
	RD_PROM_FORMATS,
};

struct rd_prom_stats {
	size_t families, series; /* series: sample lines, target_info included */
	size_t dropped;          /* metrics left out for a type conflict */
};

/* Scratch space kept between renderings so a steady page allocates
 * nothing; zero-initialise, release with rd_prom_renderer_free(). */
struct rd_prom_renderer;

struct rd_prom_renderer *rd_prom_renderer_new(void);
void rd_prom_renderer_free(struct rd_prom_renderer *r);

/*
 * rd_prom_render - appends the exposition of the n resources to out.
 * Points flagged NO_RECORDED_VALUE are left out.  Reads the model only;
 * call from the thread that owns it.
 */
void rd_prom_render(struct rd_prom_renderer *r, otlp_rm *const *rms, size_t n,
		    enum rd_prom_format fmt, struct rd_buf *out, struct rd_prom_stats *st);

#endif /* RD_PROM_H */
