/* SPDX-License-Identifier: MIT */
/*
 * The leak detector on synthetic series with known answers: a steady leak
 * is measured and flagged within one window; a large steady heap, a
 * sawtooth and a one-time growth are not; a leak that stops is un-flagged
 * once; long windows are sampled and still measured exactly.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rd_leak.h"
#include "test_util.h"

#define SEC 1000000000ull
#define MB 1e6

static const struct rd_leak_cfg cfg = {
	.enabled = true, .window_ns = 6 * SEC, .threshold = { 0.5 * MB, 0.5, 0.5 },
};

typedef double (*series_fn)(double t);

struct run {
	int became, stopped;  /* transitions seen */
	double first_flag;    /* seconds, -1 when never */
	double rate;          /* at the end */
	bool suspect;         /* at the end */
};

/* Feeds f(t) every step seconds from 0 to end into a fresh detector. */
static struct run feed(const struct rd_leak_cfg *c, series_fn f, double step, double end)
{
	struct rd_leak l;
	struct run r = { 0, 0, -1, 0, false };

	memset(&l, 0, sizeof l);
	for (double t = 0; t <= end + 1e-9; t += step) {
		int tr = rd_leak_observe(&l, c, RD_LEAK_HEAP, 5 * SEC + (uint64_t)(t * 1e9), f(t));

		if (tr > 0) {
			r.became++;
			if (r.first_flag < 0)
				r.first_flag = t;
		}
		r.stopped += tr < 0;
	}
	r.rate = l.rate[RD_LEAK_HEAP];
	r.suspect = l.suspect[RD_LEAK_HEAP];
	return r;
}

static double steady_leak(double t) { return 50 * MB + 1 * MB * t; }
static double big_flat(double t) { return 800 * MB + (fmod(t * 7.3, 1.0) - 0.5) * 0.2 * MB; }
static double sawtooth_2s(double t) { return 100 * MB * fmod(t, 2.0); }
static double sawtooth_1_5s(double t) { return 200 * MB * fmod(t, 1.5) / 1.5; }
static double sawtooth_3s(double t) { return 1000 * MB * fmod(t, 3.0) / 3.0; }
static double grow_once(double t) { return t < 2 ? 10 * MB : 310 * MB; }
static double grow_later(double t) { return t < 9 ? 10 * MB : 310 * MB; }
static double leak_then_stop(double t) { return 1 * MB * (t < 20 ? t : 20); }
static double noisy_leak(double t) { return 2 * MB * t + (fmod(t * 13.7, 1.0) - 0.5) * 1 * MB; }

static void steady_leak_is_measured_and_flagged_within_one_window(void **state)
{
	struct run r = feed(&cfg, steady_leak, 0.5, 30);

	(void)state;
	assert_true(fabs(r.rate - 1 * MB) < 0.01 * MB);
	assert_true(r.suspect);
	assert_int_equal(r.became, 1);
	assert_int_equal(r.stopped, 0);
	/* flagged as soon as a window (6 s) is full, not later */
	assert_true(r.first_flag >= 5.4 && r.first_flag <= 6.0);
}

static void noisy_leak_is_still_flagged(void **state)
{
	struct run r = feed(&cfg, noisy_leak, 0.5, 30);

	(void)state;
	assert_true(fabs(r.rate - 2 * MB) < 0.2 * MB);
	assert_true(r.suspect);
	assert_int_equal(r.became, 1);
}

static void large_steady_heap_is_not_a_leak(void **state)
{
	struct run r = feed(&cfg, big_flat, 0.5, 60);

	(void)state;
	assert_false(r.suspect);
	assert_int_equal(r.became, 0);
	assert_true(fabs(r.rate) < 0.1 * MB);
}

static void sawtooth_is_not_a_leak(void **state)
{
	static const series_fn saws[] = { sawtooth_2s, sawtooth_1_5s, sawtooth_3s };

	(void)state;
	for (size_t i = 0; i < sizeof saws / sizeof saws[0]; i++) {
		struct run r = feed(&cfg, saws[i], 0.5, 60);

		if (r.became)
			fail_msg("sawtooth %zu flagged at %.1fs (rate %.0f B/s)", i, r.first_flag, r.rate);
		/* and with a cycle that does not divide the period */
		r = feed(&cfg, saws[i], 0.35, 60);
		if (r.became)
			fail_msg("sawtooth %zu (0.35 s cycle) flagged at %.1fs", i, r.first_flag);
	}
}

static void growth_once_then_flat_is_not_a_leak(void **state)
{
	struct run r = feed(&cfg, grow_once, 0.5, 40);
	struct run later = feed(&cfg, grow_later, 0.5, 40);

	(void)state;
	assert_int_equal(r.became, 0);
	assert_int_equal(later.became, 0);
	assert_true(fabs(r.rate) < 0.01 * MB);
}

static void leak_that_stops_is_unflagged_once(void **state)
{
	struct run r = feed(&cfg, leak_then_stop, 0.5, 40);

	(void)state;
	assert_int_equal(r.became, 1);
	assert_int_equal(r.stopped, 1);
	assert_false(r.suspect);
}

static void long_windows_are_sampled_and_measured_exactly(void **state)
{
	struct rd_leak_cfg ten_min = cfg;
	struct run r;

	(void)state;
	ten_min.window_ns = 600 * SEC; /* 600 cycles of 1 s: more than the ring */
	r = feed(&ten_min, steady_leak, 1.0, 1200);
	assert_true(fabs(r.rate - 1 * MB) < 0.001 * MB);
	assert_true(r.suspect);
	assert_int_equal(r.became, 1);
	/* not before the 10 minutes are covered */
	assert_true(r.first_flag >= 540 && r.first_flag <= 620);
}

static void threads_and_fds_are_separate_series(void **state)
{
	struct rd_leak l;
	int tr = 0;

	(void)state;
	memset(&l, 0, sizeof l);
	for (int i = 0; i <= 20; i++) {
		tr += rd_leak_observe(&l, &cfg, RD_LEAK_THREADS, (uint64_t)i * SEC / 2, 2 + i);
		rd_leak_observe(&l, &cfg, RD_LEAK_FDS, (uint64_t)i * SEC / 2, 10);
	}
	assert_int_equal(tr, 1);
	assert_true(l.suspect[RD_LEAK_THREADS]);
	assert_true(fabs(l.rate[RD_LEAK_THREADS] - 2.0) < 1e-9);
	assert_false(l.suspect[RD_LEAK_FDS]);
	assert_false(l.has_rate[RD_LEAK_HEAP]);
	assert_string_equal(rd_leak_name(RD_LEAK_FDS), "fds");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(steady_leak_is_measured_and_flagged_within_one_window),
		cmocka_unit_test(noisy_leak_is_still_flagged),
		cmocka_unit_test(large_steady_heap_is_not_a_leak),
		cmocka_unit_test(sawtooth_is_not_a_leak),
		cmocka_unit_test(growth_once_then_flat_is_not_a_leak),
		cmocka_unit_test(leak_that_stops_is_unflagged_once),
		cmocka_unit_test(long_windows_are_sampled_and_measured_exactly),
		cmocka_unit_test(threads_and_fds_are_separate_series),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
