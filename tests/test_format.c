/* SPDX-License-Identifier: MIT */
/*
 * The format is a contract: field offsets never move, and every golden
 * fixture ever checked in keeps parsing to the same values.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static void header_fields_sit_where_format_md_says(void **state)
{
	(void)state;
	assert_int_equal(offsetof(struct rtm_shm_header, magic), 0);
	assert_int_equal(offsetof(struct rtm_shm_header, major), 4);
	assert_int_equal(offsetof(struct rtm_shm_header, segment_size), 24);
	assert_int_equal(offsetof(struct rtm_shm_header, desc_offset), 32);
	assert_int_equal(offsetof(struct rtm_shm_header, data_offset), 48);
	assert_int_equal(offsetof(struct rtm_shm_header, state), 64);
	assert_int_equal(offsetof(struct rtm_shm_header, desc_count), 68);
	assert_int_equal(offsetof(struct rtm_shm_header, generation), 80);
	assert_int_equal(offsetof(struct rtm_shm_header, pid), 96);
	assert_int_equal(offsetof(struct rtm_shm_header, pid_start_ticks), 104);
	assert_int_equal(offsetof(struct rtm_shm_header, created_unix_nano), 112);
	assert_int_equal(offsetof(struct rtm_shm_header, heartbeat_unix_nano), 128);
	assert_int_equal(offsetof(struct rtm_shm_header, resource_attrs_off), 144);
	assert_int_equal(offsetof(struct rtm_shm_header, service_name), 160);
	assert_int_equal(offsetof(struct rtm_shm_header, service_version), 224);
	assert_int_equal(offsetof(struct rtm_shm_header, producer), 256);
	assert_int_equal(sizeof(struct rtm_shm_header), 512);
	assert_int_equal(offsetof(struct rtm_shm_desc, slot_offset), 4);
	assert_int_equal(offsetof(struct rtm_shm_desc, name_off), 16);
	assert_int_equal(offsetof(struct rtm_shm_desc, attrs_off), 36);
	assert_int_equal(offsetof(struct rtm_shm_desc, bounds_off), 48);
	assert_int_equal(offsetof(struct rtm_shm_desc, start_unix_nano), 56);
	assert_int_equal(sizeof(struct rtm_shm_desc), 128);
	assert_int_equal(RTM_SHM_HIST_SLOT_SIZE(7), 128);
}

static void magic_reveals_byte_order(void **state)
{
	(void)state;
	assert_int_equal(__builtin_bswap32(RTM_SHM_MAGIC), RTM_SHM_MAGIC_SWAPPED);
	assert_int_not_equal(RTM_SHM_MAGIC, RTM_SHM_MAGIC_SWAPPED);
}

static void layout_1_0_fixture_parses_forever(void **state)
{
	char path[4096];
	size_t len;
	void *img;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	int i;

	(void)state;
	snprintf(path, sizeof path, "%s/layout-1.0.seg", tu_prog("RTM_FIXTURES"));
	img = tu_slurp(path, &len);
	if (rd_segment_parse_mem(&rd, img, len))
		fail_msg("fixture: %s", rd.err);
	assert_int_equal(rd.hdr.major, 1);
	assert_int_equal(rd.hdr.minor, 0);
	assert_string_equal(rd.hdr.service_name, "fixture");
	assert_string_equal(rd.hdr.service_version, "1.0.0");
	assert_int_equal(rd.n_resource, 1);
	assert_string_equal(rd.resource[0].key, "fixture");
	assert_string_equal(rd.resource[0].value, "yes");
	assert_int_equal(rd.n_metrics, 6);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.state, RTM_SHM_STATE_CLOSED);
	i = tu_find(&rd, "fx.requests", "method", "GET");
	assert_int_equal(s.values[i].i, 42);
	assert_string_equal(rd.metrics[i].unit, "{request}");
	assert_string_equal(rd.metrics[i].description, "Requests");
	assert_true(s.values[tu_find(&rd, "fx.cpu", NULL, NULL)].d == 1.25);
	assert_int_equal(s.values[tu_find(&rd, "fx.active", NULL, NULL)].i, -3);
	assert_int_equal(s.values[tu_find(&rd, "fx.queue", NULL, NULL)].i, 17);
	assert_true(s.values[tu_find(&rd, "fx.ratio", NULL, NULL)].d == 0.5);
	i = tu_find(&rd, "fx.latency", NULL, NULL);
	assert_int_equal(rd.metrics[i].kind, RTM_SHM_KIND_HISTOGRAM);
	assert_int_equal(rd.metrics[i].n_bounds, 3);
	assert_true(rd.metrics[i].bounds[1] == 1.0);
	assert_int_equal(s.values[i].count, 4);
	for (int b = 0; b < 4; b++)
		assert_int_equal(s.values[i].buckets[b], 1);
	assert_true(s.values[i].sum == 0.05 + 0.5 + 5 + 50);
	assert_true(s.values[i].min == 0.05);
	assert_true(s.values[i].max == 50);
	assert_int_equal(s.torn, 0);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_fields_sit_where_format_md_says),
		cmocka_unit_test(magic_reveals_byte_order),
		cmocka_unit_test(layout_1_0_fixture_parses_forever),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
