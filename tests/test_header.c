/* SPDX-License-Identifier: MIT */
/* rtm.h compiled as strict C11 (-std=c11 -Wpedantic -Werror); its twin
 * test_header_cxx.cc compiles the same calls as C++.  Both then check that
 * the updates really landed. */
#include <rtm.h>

#include "test_util.h"

static void header_works_in_strict_c11(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = tu_open(dir, "c11");
	struct rtm_metric_def def = { 0 };
	rtm_counter_t c;
	rtm_hist_t h;
	rtm_gauge_t g;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };

	(void)state;
	def.name = "c11.count";
	assert_int_equal(rtm_counter_create(seg, &c, &def), 0);
	def.name = "c11.hist";
	assert_int_equal(rtm_hist_create(seg, &h, &def), 0);
	def.name = "c11.gauge";
	assert_int_equal(rtm_gauge_create(seg, &g, &def), 0);
	rtm_counter_add(&c, 2);
	rtm_hist_record(&h, 0.5);
	rtm_gauge_set(&g, 8);
	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.values[0].i, 2);
	assert_int_equal(s.values[1].count, 1);
	assert_int_equal(s.values[2].i, 8);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_works_in_strict_c11),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
