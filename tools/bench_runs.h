/* SPDX-License-Identifier: MIT */
/* bench_runs.h - min / median / max of a benchmark's repeated runs. */
#ifndef BENCH_RUNS_H
#define BENCH_RUNS_H

#include <stdlib.h>

static inline int bench_runs_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v[0..n) so that v[0], v[n / 2] and v[n - 1] are min, median, max. */
static inline void bench_runs_sort(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_runs_cmp);
}

#endif /* BENCH_RUNS_H */
