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
	assert_int_equal(offsetof(struct rtm_shm_header, sites_offset), 288);
	assert_int_equal(offsetof(struct rtm_shm_header, sites_capacity), 292);
	assert_int_equal(offsetof(struct rtm_shm_header, sites_sample), 296);
	assert_int_equal(offsetof(struct rtm_shm_header, sites_dropped), 304);
	assert_int_equal(offsetof(struct rtm_shm_header, pidns_ino), 312);
	assert_int_equal(offsetof(struct rtm_shm_header, userns_ino), 320);
	assert_int_equal(sizeof(struct rtm_shm_header), 512);
	assert_int_equal(offsetof(struct rtm_shm_lock_site, contentions), 8);
	assert_int_equal(offsetof(struct rtm_shm_lock_site, wait_ns), 16);
	assert_int_equal(offsetof(struct rtm_shm_lock_site, max_wait_ns), 24);
	assert_int_equal(offsetof(struct rtm_shm_lock_site, kind), 32);
	assert_int_equal(sizeof(struct rtm_shm_lock_site), 64);
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

/* Every fixture holds the same series and values (gen_fixture.c); minor
 * 1 adds the lock-site table, minor 2 the namespaces. */
static void fixture_parses_forever(int minor)
{
	char path[4096];
	size_t len;
	void *img;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	struct rd_lock_sites l;
	int i;

	snprintf(path, sizeof path, "%s/layout-1.%d.seg", tu_prog("RTM_FIXTURES"), minor);
	img = tu_slurp(path, &len);
	assert_non_null(img);
	if (rd_segment_parse_mem(&rd, img, len))
		fail_msg("fixture: %s", rd.err);
	assert_int_equal(rd.hdr.major, 1);
	assert_int_equal(rd.hdr.minor, minor);
	assert_string_equal(rd.hdr.service_name, "fixture");
	assert_string_equal(rd.hdr.service_version, "1.0.0");
	assert_int_equal(rd.n_resource, 1);
	assert_string_equal(rd.resource[0].key, "fixture");
	assert_string_equal(rd.resource[0].value, "yes");
	assert_int_equal(rd.n_metrics, minor >= 3 ? 7 : 6);
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
	if (minor >= 3) {
		/* 0, 1.5, 3 and -2 at scale 3: 1.5 in bucket 4, 3 in 12,
		 * 2 (exactly a power of two) in 7 below zero. */
		const struct rtm_shm_exphist *x;

		i = tu_find(&rd, "fx.spread", NULL, NULL);
		assert_int_equal(rd.metrics[i].kind, RD_KIND_EXPHIST);
		assert_int_equal(rd.metrics[i].exp_size, 8);
		x = s.values[i].exp;
		assert_int_equal(s.values[i].count, 4);
		assert_int_equal(x->zero_count, 1);
		assert_true(s.values[i].sum == 2.5 && s.values[i].min == -2 && s.values[i].max == 3);
		/* 4..12 do not fit 8 buckets at scale 3: scale 2 then. */
		assert_int_equal(x->scale, 2);
		assert_int_equal(x->pos_base, 2);
		assert_int_equal(x->pos_top, 6);
		assert_int_equal(rtm_shm_exphist_counts((struct rtm_shm_exphist *)x, 8, 0)[0], 1);
		assert_int_equal(rtm_shm_exphist_counts((struct rtm_shm_exphist *)x, 8, 0)[4], 1);
		assert_int_equal(x->neg_base, 3);
		assert_int_equal(x->neg_top, 3);
		assert_int_equal(rtm_shm_exphist_counts((struct rtm_shm_exphist *)x, 8, 1)[0], 1);
	}
	if (minor >= 2) {
		/* Written in the machine's own (initial) namespaces. */
		assert_true(rd.hdr.pidns_ino == 0xEFFFFFFCull);
		assert_true(rd.hdr.userns_ino == 0xEFFFFFFDull);
	} else {
		assert_true(rd.hdr.pidns_ino == 0 && rd.hdr.userns_ino == 0);
	}
	assert_int_equal(rd_segment_lock_sites(&rd, &l), 0);
	if (minor == 0) {
		assert_int_equal(l.n, 0);
		assert_int_equal(l.sample, 0);
	} else {
		/* Sampled 1 in 2: waits of 3 and 1 ms at one site, 0.5 ms at
		 * another, each counted twice; most wait first. */
		assert_int_equal(l.sample, 2);
		assert_int_equal(l.n, 2);
		assert_int_equal(l.sites[0].address, 0x401234);
		assert_int_equal(l.sites[0].kind, RTM_SHM_LOCK_MUTEX);
		assert_int_equal(l.sites[0].contentions, 4);
		assert_int_equal(l.sites[0].wait_ns, 8000000);
		assert_int_equal(l.sites[0].max_wait_ns, 3000000);
		assert_int_equal(l.sites[1].address, 0x402000);
		assert_int_equal(l.sites[1].kind, RTM_SHM_LOCK_RWLOCK);
		assert_int_equal(l.sites[1].contentions, 2);
		assert_int_equal(l.sites[1].wait_ns, 1000000);
		assert_int_equal(l.dropped, 0);
	}
	rd_lock_sites_free(&l);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	free(img);
}

static void layout_1_0_fixture_parses_forever(void **state)
{
	(void)state;
	fixture_parses_forever(0);
}

static void layout_1_1_fixture_parses_forever(void **state)
{
	(void)state;
	fixture_parses_forever(1);
}

static void layout_1_2_fixture_parses_forever(void **state)
{
	(void)state;
	fixture_parses_forever(2);
}

static void layout_1_3_fixture_parses_forever(void **state)
{
	(void)state;
	fixture_parses_forever(3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_fields_sit_where_format_md_says),
		cmocka_unit_test(magic_reveals_byte_order),
		cmocka_unit_test(layout_1_0_fixture_parses_forever),
		cmocka_unit_test(layout_1_1_fixture_parses_forever),
		cmocka_unit_test(layout_1_2_fixture_parses_forever),
		cmocka_unit_test(layout_1_3_fixture_parses_forever),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
