/* SPDX-License-Identifier: MIT */
/*
 * gen_fixture - writes the golden segment for the current layout version to
 * tests/fixtures/layout-MAJOR.MINOR.seg.  Run it once when a layout version
 * is introduced and commit the file; never regenerate an existing fixture:
 * test_format must keep parsing every old one forever.
 *   usage: gen_fixture OUTPUT-DIR
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm.h"
#include "rtm_segment_priv.h" /* 1.1: the lock-site table */

static rtm_counter_t requests;

static void *add_two(void *arg)
{
	(void)arg;
	rtm_counter_add(&requests, 2); /* lands in a second shard */
	return NULL;
}

int main(int argc, char **argv)
{
	const double bounds[] = { 0.1, 1, 10 };
	struct rtm_segment *seg;
	rtm_counter_t cpu;
	rtm_updown_t active;
	rtm_gauge_t queue, ratio;
	rtm_hist_t latency, spread;
	pthread_t t;
	char out[4096], cmd[8300];

	if (argc != 2) {
		fprintf(stderr, "usage: gen_fixture OUTPUT-DIR\n");
		return 2;
	}
	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){
		    .service_name = "fixture", .service_version = "1.0.0", .dir = argv[1],
		    .resource_attrs = (struct rtm_attr[]){ { "fixture", "yes" } },
		    .n_resource_attrs = 1, .max_metrics = 8, .max_threads = 2,
		    .shard_bytes = 1024, .string_bytes = 1024 }))
		return 1;
	rtm_counter_create(seg, &requests, &(struct rtm_metric_def){
		.name = "fx.requests", .unit = "{request}", .description = "Requests",
		.attrs = (struct rtm_attr[]){ { "method", "GET" } }, .n_attrs = 1 });
	rtm_counter_create(seg, &cpu, &(struct rtm_metric_def){
		.name = "fx.cpu", .unit = "s", .is_double = 1 });
	rtm_updown_create(seg, &active, &(struct rtm_metric_def){ .name = "fx.active" });
	rtm_gauge_create(seg, &queue, &(struct rtm_metric_def){ .name = "fx.queue" });
	rtm_gauge_create(seg, &ratio, &(struct rtm_metric_def){
		.name = "fx.ratio", .unit = "1", .is_double = 1 });
	rtm_hist_create(seg, &latency, &(struct rtm_metric_def){
		.name = "fx.latency", .unit = "s", .bounds = bounds, .n_bounds = 3 });
	/* 1.3: an exponential histogram, 8 buckets a side from scale 3. */
	rtm_exphist_create(seg, &spread, &(struct rtm_metric_def){ .name = "fx.spread" }, 8, 3);
	rtm_counter_add(&requests, 40);
	pthread_create(&t, NULL, add_two, NULL);
	pthread_join(t, NULL);
	rtm_counter_add_f64(&cpu, 1.25);
	rtm_updown_add(&active, -3);
	rtm_gauge_set(&queue, 17);
	rtm_gauge_set_f64(&ratio, 0.5);
	rtm_hist_record(&latency, 0.05);
	rtm_hist_record(&latency, 0.5);
	rtm_hist_record(&latency, 5);
	rtm_hist_record(&latency, 50);
	rtm_hist_record(&spread, 0);
	rtm_hist_record(&spread, 1.5);
	rtm_hist_record(&spread, 3);
	rtm_hist_record(&spread, -2);
	/* Two lock sites, sampled 1 in 2 (so each wait counts twice). */
	if (rtm__lock_sites_start(seg, 2))
		return 1;
	rtm__lock_site_record(seg, 0x401234, RTM_SHM_LOCK_MUTEX, 3000000, 2);
	rtm__lock_site_record(seg, 0x401234, RTM_SHM_LOCK_MUTEX, 1000000, 2);
	rtm__lock_site_record(seg, 0x402000, RTM_SHM_LOCK_RWLOCK, 500000, 2);
	snprintf(out, sizeof out, "%s/layout-%d.%d.seg", argv[1], RTM_SHM_MAJOR, RTM_SHM_MINOR);
	snprintf(cmd, sizeof cmd, "mv -n '%s' '%s'", rtm_segment_path(seg), out);
	rtm_segment_close(seg);
	if (system(cmd))
		return 1;
	printf("%s\n", out);
	return 0;
}
