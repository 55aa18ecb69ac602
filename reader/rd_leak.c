/* SPDX-License-Identifier: MIT */
#include "rd_leak.h"

#include <math.h>

static const char *const names[RD_LEAK_N] = { "heap", "threads", "fds" };

const char *rd_leak_name(enum rd_leak_kind k)
{
	return names[k];
}

static unsigned at(const struct rd_leak_series *s, unsigned i)
{
	return (s->first + i) % RD_LEAK_SAMPLES;
}

struct fit {
	unsigned n;
	double slope, r2; /* per second; 0..1 */
};

/* Least squares over the samples with from <= t <= to; times in seconds
 * and values relative to the first sample's, for precision. */
static struct fit fit(const struct rd_leak_series *s, uint64_t from, uint64_t to)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0, den, vx, vy;
	uint64_t t0 = s->t[at(s, 0)];
	double v0 = s->v[at(s, 0)];
	struct fit f = { 0, 0, 0 };

	for (unsigned i = 0; i < s->n; i++) {
		unsigned k = at(s, i);
		double x, y;

		if (s->t[k] < from || s->t[k] > to)
			continue;
		x = (double)(s->t[k] - t0) / 1e9;
		y = s->v[k] - v0;
		sx += x;
		sy += y;
		sxx += x * x;
		sxy += x * y;
		syy += y * y;
		f.n++;
	}
	if (f.n < 2)
		return f;
	vx = f.n * sxx - sx * sx;
	vy = f.n * syy - sy * sy;
	if (vx <= 0)
		return f;
	f.slope = (f.n * sxy - sx * sy) / vx;
	den = vx * vy;
	f.r2 = den > 0 ? (f.n * sxy - sx * sy) * (f.n * sxy - sx * sy) / den : 0;
	return f;
}

int rd_leak_observe(struct rd_leak *l, const struct rd_leak_cfg *c, enum rd_leak_kind k,
		    uint64_t t_ns, double v)
{
	struct rd_leak_series *s = &l->s[k];
	uint64_t spacing = c->window_ns / (RD_LEAK_SAMPLES - 4), newest, oldest, span;
	double thr = c->threshold[k];
	bool was = l->suspect[k], now;
	struct fit all;

	if (!isfinite(v))
		return 0;
	if (s->n && t_ns <= s->t[at(s, s->n - 1)])
		return 0; /* time must move forward */
	/* The newest sample is replaced until it is a spacing past the one
	 * before it, so the ring always spans the window. */
	if (s->n >= 2 && t_ns - s->t[at(s, s->n - 2)] < spacing) {
		s->t[at(s, s->n - 1)] = t_ns;
		s->v[at(s, s->n - 1)] = v;
	} else {
		if (s->n == RD_LEAK_SAMPLES) {
			s->first = (s->first + 1) % RD_LEAK_SAMPLES;
			s->n--;
		}
		s->t[at(s, s->n)] = t_ns;
		s->v[at(s, s->n)] = v;
		s->n++;
	}
	newest = s->t[at(s, s->n - 1)];
	/* Keep one sample at or before the window's start. */
	while (s->n > 2 && newest - s->t[at(s, 1)] >= c->window_ns) {
		s->first = (s->first + 1) % RD_LEAK_SAMPLES;
		s->n--;
	}
	oldest = s->t[at(s, 0)];
	span = newest - oldest;
	if (s->n < 4 || span * 10 < c->window_ns * 9) {
		l->has_rate[k] = false;
		l->suspect[k] = false;
		return was ? -1 : 0;
	}
	all = fit(s, oldest, newest);
	l->rate[k] = all.slope;
	l->has_rate[k] = true;
	if (was) {
		now = all.slope >= thr / 2 && all.r2 >= 0.5;
	} else {
		now = all.slope > thr && all.r2 >= 0.8;
		for (int third = 0; now && third < 3; third++) {
			struct fit part = fit(s, oldest + span * (uint64_t)third / 3,
					      oldest + span * (uint64_t)(third + 1) / 3);

			now = part.n >= 2 && part.slope > thr;
		}
	}
	l->suspect[k] = now;
	return now == was ? 0 : now ? 1 : -1;
}
