/* SPDX-License-Identifier: MIT */
/*
 * rd_leak.h - the leak detector: per producer, the growth rate of its live
 * heap, thread count and open file descriptors over a sliding window, and
 * whether that growth is a leak.
 *
 * The rate is the least-squares slope over the window (not last minus
 * first, which one spike decides).  A resource is a suspect when, over a
 * full window,
 *   - the slope is above the threshold,
 *   - the slope of each third of the window is above it too (growth that
 *     stays: a process that grew once at start-up and then stays flat has a
 *     flat last third), and
 *   - a straight line explains the series (R^2 >= 0.8): a process that
 *     allocates 1 GB and frees it every few seconds oscillates around a flat
 *     line, however steep each ramp.
 * It stops being one when the slope falls below half the threshold or the
 * line no longer fits (R^2 < 0.5), so a rate near the threshold does not
 * flap.  It needs at least four samples in a window (three two-point
 * thirds).  Pure computation: no I/O, no clock.
 */
#ifndef RD_LEAK_H
#define RD_LEAK_H

#include <stdbool.h>
#include <stdint.h>

enum rd_leak_kind { RD_LEAK_HEAP, RD_LEAK_THREADS, RD_LEAK_FDS, RD_LEAK_N };

struct rd_leak_cfg {
	bool enabled;
	uint64_t window_ns;
	double threshold[RD_LEAK_N]; /* growth per second: bytes, threads, fds */
};

/* Samples kept per series: a window longer than this many cycles is
 * sampled every window / (RD_LEAK_SAMPLES - 4). */
#define RD_LEAK_SAMPLES 64

struct rd_leak_series {
	uint64_t t[RD_LEAK_SAMPLES]; /* ns, any monotonic clock */
	double v[RD_LEAK_SAMPLES];
	unsigned first, n;           /* a ring */
};

struct rd_leak {
	struct rd_leak_series s[RD_LEAK_N];
	double rate[RD_LEAK_N];   /* per second, over the window */
	bool has_rate[RD_LEAK_N]; /* a full window was seen */
	bool suspect[RD_LEAK_N];
};

const char *rd_leak_name(enum rd_leak_kind k); /* "heap", "threads", "fds" */

/*
 * rd_leak_observe - adds the value v of resource k at time t_ns and
 * re-evaluates it.  Returns +1 when k just became a suspect, -1 when it just
 * stopped being one, else 0.
 */
int rd_leak_observe(struct rd_leak *l, const struct rd_leak_cfg *c, enum rd_leak_kind k,
		    uint64_t t_ns, double v);

#endif /* RD_LEAK_H */
