// SPDX-License-Identifier: MIT
// rtm.h compiled as C++ (-Wall -Wextra -Wpedantic -Werror): the hot path
// must be usable from C++ applications unchanged.
#include <rtm.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>

extern "C" {
#include <cmocka.h>
#include "rd_segment.h"
}

static void header_works_in_cxx(void **)
{
	char dir[] = "/tmp/rtm-cxx.XXXXXX";
	struct rtm_segment *seg = nullptr;
	struct rtm_segment_opts o = {};
	struct rtm_metric_def def = {};
	rtm_counter_t c;
	rtm_hist_t h;
	struct rd_segment rd;
	struct rd_snapshot s = {};

	assert_non_null(mkdtemp(dir));
	o.service_name = "cxx";
	o.dir = dir;
	assert_int_equal(rtm_segment_open(&seg, &o), 0);
	def.name = "cxx.count";
	assert_int_equal(rtm_counter_create(seg, &c, &def), 0);
	def.name = "cxx.hist";
	assert_int_equal(rtm_hist_create(seg, &h, &def), 0);
	for (int i = 0; i < 10; i++) {
		rtm_counter_add(&c, 3);
		rtm_hist_record(&h, 0.001 * i);
	}
	assert_int_equal(rd_segment_open(&rd, AT_FDCWD, rtm_segment_path(seg), 0), 0);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.values[0].i, 30);
	assert_int_equal(s.values[1].count, 10);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	std::string path = rtm_segment_path(seg);
	rtm_segment_close(seg);
	unlink(path.c_str());
	rmdir(dir);
}

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_works_in_cxx),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
