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
 * Names and units as rd_prom_name.h says.  Series of one Prometheus name and
 * type are rendered together under one TYPE line whichever producer they
 * come from.
 *
 * Name conflicts.  A family takes every name it puts on the page in either
 * format (counter: name, name_total, name_created; histogram: name,
 * name_bucket, _sum, _count, _created; gauge: name), and no two families
 * share one, so the page is valid for any set of producers:
 *   - the reader's own families (its resource, and the scopes it builds
 *     from /proc for each producer) claim names first; target, target_info,
 *     up and Prometheus's scrape_* names are reserved, and names starting
 *     rtm_reader_ are the reader's;
 *   - then producers owned by root, then every other, in the order the
 *     reader found them: a family takes its name if that is free or the
 *     same family (name and type) is already there;
 *   - a producer's metric that cannot is shown as name__uid<N> (N its
 *     owner's uid, before the unit: "x_bytes" -> "x__uid1000_bytes").
 *     Names mapped from OTel never hold "__", so only uid N's own families
 *     can take that name; when one has (two of its own families in
 *     conflict), the later is left out.
 * So no user's metric hides or displaces another user's, the reader's
 * never move, and each conflict is counted and told once.  Attribute keys that collide after sanitising are
 * merged, their values joined with ';' in key order; an attribute named like
 * a label the mapping adds (job, instance, le, otel_scope_*) is renamed
 * exported_<key>.  Label values and HELP text are escaped for the format, and
 * invalid UTF-8 is replaced by U+FFFD.
 */
#ifndef RD_PROM_H
#define RD_PROM_H

#include <stddef.h>
#include <sys/uio.h>

#include "rd_buf.h"
#include "rd_otlp.h"

enum rd_prom_format {
	RD_PROM_TEXT,        /* text/plain; version=0.0.4 */
	RD_PROM_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
	RD_PROM_PROTOBUF,    /* delimited io.prometheus.client.MetricFamily (rd_prom_pb.h) */
	RD_PROM_FORMATS,
};

struct rd_prom_stats {
	size_t families, series; /* series: sample lines, target_info included */
	size_t renamed;          /* producers' metrics shown under a uid-tagged name */
	size_t dropped;          /* metrics left out: both names taken */
};

/* Scratch space kept between renderings so a steady page allocates
 * nothing; zero-initialise, release with rd_prom_renderer_free(). */
struct rd_prom_renderer;

struct rd_prom_renderer *rd_prom_renderer_new(void);
void rd_prom_renderer_free(struct rd_prom_renderer *r);

/*
 * rd_prom_renderer_on_conflict - fn gets one line for each name conflict
 * (a producer's metric renamed or left out), the first time it is seen in
 * the renderer's life; at most 3072 such lines (then they are only
 * counted in the stats).
 */
void rd_prom_renderer_on_conflict(struct rd_prom_renderer *r,
				  void (*fn)(void *ctx, const char *line), void *ctx);

/*
 * rd_prom_renderer_created - whether OpenMetrics pages carry a _created
 * sample for each counter and histogram point (its start time).  Off until
 * called with true: Prometheus before the created-timestamp feature stores
 * each _created sample as one more series (client_golang leaves them out by
 * default too).  Their names stay reserved either way, so turning them on
 * never changes who gets which name.
 */
void rd_prom_renderer_created(struct rd_prom_renderer *r, bool on);

/*
 * A rendered page, never joined into one buffer: each family's lines stay
 * in the buffer they were written to, and iov lists the page in order —
 * those buffers and, between them, the few bytes in meta (TYPE, UNIT and
 * HELP lines, protobuf family heads, target_info, the EOF).  Sending or
 * compressing it piece by piece saves copying the whole page once, a
 * fifth of rendering it.  Zero-initialise; rendering into a page again
 * reuses its buffers (and invalidates its iov); rd_prom_page_free()
 * releases them.
 */
struct rd_prom_page {
	struct iovec *iov;
	size_t n_iov, cap_iov;
	size_t len; /* the page's bytes, all pieces */
	/* What the pieces point into (the renderer's to fill). */
	struct rd_buf meta;
	struct rd_buf *lines;
	uint32_t cap_lines;
};

void rd_prom_page_free(struct rd_prom_page *p);

/* rd_prom_page_join - appends the page's bytes to out, in order. */
void rd_prom_page_join(const struct rd_prom_page *p, struct rd_buf *out);

/*
 * rd_prom_render_page - the exposition of the n resources into page
 * (replacing what it held).  The rest as rd_prom_render().
 */
void rd_prom_render_page(struct rd_prom_renderer *r, otlp_rm *const *rms,
			 const struct rd_rm_owner *owners, size_t n, enum rd_prom_format fmt,
			 struct rd_prom_page *page, struct rd_prom_stats *st);

/*
 * rd_prom_render - appends the exposition of the n resources to out.
 * owners[i] says who wrote rms[i] and decides name conflicts (above); with
 * owners NULL every scope is taken as the reader's own, and a metric whose
 * name is taken is left out.  Points flagged NO_RECORDED_VALUE are left
 * out.  Reads the model only; call from the thread that owns it.
 */
void rd_prom_render(struct rd_prom_renderer *r, otlp_rm *const *rms,
		    const struct rd_rm_owner *owners, size_t n, enum rd_prom_format fmt,
		    struct rd_buf *out, struct rd_prom_stats *st);

#endif /* RD_PROM_H */
