/* SPDX-License-Identifier: MIT */
/*
 * rtm-shmdump --watch on a terminal: one screen, redrawn like top(1), with
 * values humanised by unit, rates, and histogram percentiles; cut to the
 * terminal's size.
 */
#define _GNU_SOURCE
#include "shmdump_top.h"

#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "rtm_shm_text.h"

double top_scalar(const struct rd_metric *m, const struct rd_value *v)
{
	return m->value_type == RTM_SHM_VALUE_INT ? (double)v->i : v->d;
}

void top_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row >= 5 && ws.ws_col >= 40) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* v with its unit: bytes in binary multiples, seconds from ns to s,
 * anything else with k/M/G/T; annotation units ({request}) and "1" add
 * nothing, others are appended. */
void top_human(char *buf, size_t n, double v, const char *unit, bool rate)
{
	static const char *const bin[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	static const char *const si[] = { "", "k", "M", "G", "T", "P" };
	const char *per = rate ? "/s" : "";
	double a = fabs(v);
	int k = 0;

	if (!isfinite(v)) {
		snprintf(buf, n, "%g", v);
	} else if (unit && !strcmp(unit, "By")) {
		while (a >= 1024 && k < 5)
			a /= 1024, k++;
		snprintf(buf, n, k ? "%.1f %s%s" : "%.0f %s%s", copysign(a, v), bin[k], per);
	} else if (unit && !strcmp(unit, "s") && !rate) {
		if (a == 0)
			snprintf(buf, n, "0 s");
		else if (a < 1e-6)
			snprintf(buf, n, "%.0f ns", v * 1e9);
		else if (a < 1e-3)
			snprintf(buf, n, "%.1f us", v * 1e6);
		else if (a < 1)
			snprintf(buf, n, "%.1f ms", v * 1e3);
		else
			snprintf(buf, n, "%.2f s", v);
	} else {
		bool plain = !unit || !*unit || *unit == '{' || !strcmp(unit, "1");

		while (a >= 1000 && k < 5)
			a /= 1000, k++;
		if (!k && a == floor(a))
			snprintf(buf, n, "%.0f%s%s%s", v, plain ? "" : " ", plain ? "" : unit, per);
		else
			snprintf(buf, n, k ? "%.1f%s%s%s%s" : "%.3g%s%s%s%s", copysign(a, v), si[k],
				 plain ? "" : " ", plain ? "" : unit, per);
	}
}

/* The q-quantile of a histogram, linear within its bucket and clamped to
 * the recorded min and max. */
void top_exp_bucket(int32_t scale, int32_t index, double *lo, double *hi)
{
	*lo = exp2(ldexp((double)index, -scale));
	*hi = exp2(ldexp((double)index + 1, -scale));
}

/* An exponential histogram's q-quantile: its buckets from the most
 * negative up, geometric within a bucket, clamped to min and max. */
static double exp_quantile(const struct rd_metric *m, const struct rd_value *v, double q)
{
	const struct rtm_shm_exphist *x = v->exp;
	double want = q * (double)v->count, seen = 0, lo, hi, r;

	for (int32_t i = x->neg_top; i >= x->neg_base; i--) {
		double c = (double)rtm_shm_exphist_counts(v->exp, m->exp_size, 1)[i - x->neg_base];

		if (c > 0 && seen + c >= want) {
			top_exp_bucket(x->scale, i, &lo, &hi);
			r = -hi * pow(lo / hi, (want - seen) / c);
			return m->no_sum ? r : r < v->min ? v->min : r > v->max ? v->max : r;
		}
		seen += c;
	}
	seen += (double)x->zero_count;
	if (seen >= want)
		return 0;
	for (int32_t i = x->pos_base; i <= x->pos_top; i++) {
		double c = (double)rtm_shm_exphist_counts(v->exp, m->exp_size, 0)[i - x->pos_base];

		if (c > 0 && seen + c >= want) {
			top_exp_bucket(x->scale, i, &lo, &hi);
			r = lo * pow(hi / lo, (want - seen) / c);
			return m->no_sum ? r : r < v->min ? v->min : r > v->max ? v->max : r;
		}
		seen += c;
	}
	return m->no_sum ? NAN : v->max;
}

double top_quantile(const struct rd_metric *m, const struct rd_value *v, double q)
{
	double want = q * (double)v->count, seen = 0;

	if (!v->count)
		return NAN;
	if (m->kind == RD_KIND_EXPHIST)
		return exp_quantile(m, v, q);
	for (uint32_t b = 0; b <= m->n_bounds; b++) {
		double c = (double)v->buckets[b];

		if (c > 0 && seen + c >= want) {
			double lo = b ? m->bounds[b - 1] : v->min, hi = b < m->n_bounds ? m->bounds[b] : v->max;

			lo = lo < v->min ? v->min : lo;
			hi = hi > v->max ? v->max : hi;
			return hi < lo ? lo : lo + (hi - lo) * ((want - seen) / c);
		}
		seen += c;
	}
	return v->max;
}

/* A line of at most cols bytes (the text is printable ASCII already). */
static void line(int cols, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(int cols, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if ((int)strlen(buf) > cols)
		buf[cols] = '\0';
	printf("%s\033[K\n", buf);
}

static void clock_now(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;

	strftime(buf, n, "%H:%M:%S", localtime_r(&t, &tm));
}

void top_segment(const struct rd_segment *seg, const struct rd_snapshot *snap,
		 const struct rd_snapshot *prev, double dt, const char *filter, double every)
{
	int rows, cols, used = 0, name_w, shown = 0, wanted = 0;
	char now[16], mem[32];

	top_size(&rows, &cols);
	name_w = cols - 50 > 12 ? cols - 50 : 12;
	clock_now(now, sizeof now);
	top_human(mem, sizeof mem, (double)seg->st.st_blocks * 512, "By", false);
	printf("\033[H");
	line(cols, "rtm-shmdump  %.40s%s%.20s  pid %d (%s)  every %gs  %s",
	     rtm_shm_text_visible(seg->hdr.service_name, (char[128]){ 0 }, 128),
	     *seg->hdr.service_version ? "@" : "",
	     rtm_shm_text_visible(seg->hdr.service_version, (char[64]){ 0 }, 64), seg->hdr.pid,
	     rd_liveness_name((enum rd_liveness)seg->liveness), every, now);
	line(cols, "%u series  memory %s  dropped %u  torn %u", seg->n_metrics, mem,
	     snap->dropped_metrics, snap->torn);
	line(cols, "%-*s %10s %11s %8s %8s %8s", name_w, "SERIES", "VALUE", "RATE", "P50", "P90",
	     "P99");
	used = 3;
	for (uint32_t i = 0; i < seg->n_metrics; i++) {
		const struct rd_metric *m = &seg->metrics[i];
		const struct rd_value *v = &snap->values[i];
		char name[512], vname[512], val[32] = "", rate[32] = "", p[3][32] = { "", "", "" };
		size_t o;

		if (filter && fnmatch(filter, m->name, 0))
			continue;
		wanted++;
		if (used >= rows - 2)
			continue;
		o = (size_t)snprintf(name, sizeof name, "%s", m->name);
		for (uint32_t a = 0; a < m->n_attrs && o < sizeof name; a++)
			o += (size_t)snprintf(name + o, sizeof name - o, "%s%s=%s", a ? "," : "{",
					      m->attrs[a].key, m->attrs[a].value);
		if (m->n_attrs && o < sizeof name - 1)
			snprintf(name + o, sizeof name - o, "}");
		rtm_shm_text_visible(name, vname, sizeof vname);
		if (m->kind == RTM_SHM_KIND_HISTOGRAM || m->kind == RD_KIND_EXPHIST) {
			static const double qs[3] = { 0.5, 0.9, 0.99 };

			top_human(val, sizeof val, (double)v->count, "{}", false);
			if (prev && dt > 0)
				top_human(rate, sizeof rate,
					  (double)(v->count - prev->values[i].count) / dt, "{}", true);
			for (int k = 0; k < 3 && v->count; k++)
				top_human(p[k], sizeof p[k], top_quantile(m, v, qs[k]), m->unit, false);
		} else {
			double x = top_scalar(m, v);

			top_human(val, sizeof val, x, m->unit, false);
			if (prev && dt > 0 && m->kind != RTM_SHM_KIND_GAUGE) {
				top_human(rate, sizeof rate, (x - top_scalar(m, &prev->values[i])) / dt,
					  m->unit, true);
			}
		}
		line(cols, "%-*.*s %10s %11s %8s %8s %8s", name_w, name_w, vname, val, rate, p[0], p[1],
		     p[2]);
		used++;
		shown++;
	}
	if (shown < wanted)
		line(cols, "... %d more series (a taller terminal, or --filter GLOB)", wanted - shown);
	printf("\033[J");
	fflush(stdout);
}

void top_all(const struct top_row *r, size_t n, const char *dir, const char *reader, double every)
{
	int rows, cols, name_w;
	char now[16];

	top_size(&rows, &cols);
	name_w = cols - 67 > 8 ? cols - 67 : 8;
	clock_now(now, sizeof now);
	printf("\033[H");
	line(cols, "rtm-shmdump  %.40s  %zu producers  reader %s  every %gs  %s", dir, n, reader,
	     every, now);
	line(cols, "%-20s %8s %-6s %6s %10s %11s %-*s", "SERVICE", "PID", "STATE", "SERIES",
	     "MEMORY", "UPDATES/S", name_w, "BUSIEST SERIES");
	for (size_t i = 0; i < n && (int)i < rows - 3; i++) {
		char mem[32], ups[32] = "";

		top_human(mem, sizeof mem, (double)r[i].memory, "By", false);
		if (r[i].has_rate)
			top_human(ups, sizeof ups, r[i].updates_per_s, "{}", false);
		line(cols, "%-20.20s %8d %-6s %6u %10s %11s %-*.*s", r[i].service, r[i].pid, r[i].state,
		     r[i].series, mem, ups, name_w, name_w, r[i].busiest);
	}
	if ((int)n > rows - 3)
		line(cols, "... %zu more producers (a taller terminal)", n - (size_t)(rows - 3));
	printf("\033[J");
	fflush(stdout);
}
