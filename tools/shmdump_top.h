/* SPDX-License-Identifier: MIT */
/* shmdump_top.h - rtm-shmdump's terminal screen (--watch on a terminal). */
#ifndef SHMDUMP_TOP_H
#define SHMDUMP_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_segment.h"

/* A counter, up-down counter or gauge's value as a double. */
double top_scalar(const struct rd_metric *m, const struct rd_value *v);

/* The terminal's rows and columns (80x24 when unknown). */
void top_size(int *rows, int *cols);

/* v humanised with its unit ("12.3 MiB", "1.2k/s", "350.0 us"). */
void top_human(char *buf, size_t n, double v, const char *unit, bool rate);

/* Where bucket index of an exponential histogram at scale lies: the
 * magnitudes (lo, hi]. */
void top_exp_bucket(int32_t scale, int32_t index, double *lo, double *hi);

/* A histogram's q-quantile estimated from its buckets (NaN when empty). */
double top_quantile(const struct rd_metric *m, const struct rd_value *v, double q);

/* One segment's screen: every series (or those matching filter), value,
 * rate since prev (dt seconds), and p50/p90/p99 for histograms. */
void top_segment(const struct rd_segment *seg, const struct rd_snapshot *snap,
		 const struct rd_snapshot *prev, double dt, const char *filter, double every);

/* Every producer's line on the all-producers screen. */
struct top_row {
	char service[64];
	int pid;
	const char *state;
	uint32_t series;
	uint64_t memory;
	bool has_rate;
	double updates_per_s; /* counter increments per second, all series */
	char busiest[96];     /* the series with the highest rate */
};

void top_all(const struct top_row *r, size_t n, const char *dir, const char *reader, double every);

#endif /* SHMDUMP_TOP_H */
