/* SPDX-License-Identifier: MIT */
/*
 * rtm-demo - a producer that simulates load, for the demo and the tests.
 * Like the seed's simulateLoad: worker threads handle "requests" whose
 * latencies go into a histogram, ten short-lived threads and 1 MB of heap
 * come and go every second, gauges and up-down counters track in-flight
 * work, and the allocator metrics come from rtm_alloc_metrics_start().
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtm.h"

static volatile sig_atomic_t stop;
static rtm_counter_t req_ok, req_err, bytes_out, spawned;
static rtm_updown_t in_flight;
static rtm_gauge_t uptime;
static rtm_hist_t latency;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void handle_one(unsigned *seed)
{
	double t0 = now_s();

	rtm_updown_add(&in_flight, 1);
	usleep(200 + (unsigned)(rand_r(seed) % 5000)); /* the "work" */
	rtm_updown_add(&in_flight, -1);
	if (rand_r(seed) % 20)
		rtm_counter_add(&req_ok, 1);
	else
		rtm_counter_add(&req_err, 1);
	rtm_counter_add(&bytes_out, 200 + (uint64_t)(rand_r(seed) % 1800));
	rtm_hist_record(&latency, now_s() - t0);
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	while (!stop)
		handle_one(&seed);
	return NULL;
}

static void *short_lived(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	rtm_counter_add(&spawned, 1);
	for (int i = 0; i < 3 && !stop; i++)
		handle_one(&seed);
	return NULL;
}

static int parse_uint(const char *flag, const char *s, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > max) {
		fprintf(stderr, "rtm-demo: %s: '%s' is not an integer in 0..%u\n", flag, s, max);
		exit(2);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "service", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *service = "rtm-demo";
	int duration = 0, nthreads = 4, c, rc;
	struct rtm_segment *seg;
	pthread_t th[64];
	double start;

	while ((c = getopt_long(argc, argv, "s:d:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': service = optarg; break;
		case 'd': duration = parse_uint("--duration", optarg, 86400 * 365); break;
		case 't': nthreads = parse_uint("--threads", optarg, 64); break;
		case 'h':
			printf("usage: rtm-demo [--service NAME] [--duration SECONDS] [--threads N]\n"
			       "Publishes simulated request metrics until SIGINT/SIGTERM or --duration.\n");
			return 0;
		default: return 2;
		}
	}
	rc = rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = service, .service_version = RTM_VERSION,
		.resource_attrs = (struct rtm_attr[]){ { "deployment.environment.name", "demo" } },
		.n_resource_attrs = 1 });
	if (rc) {
		fprintf(stderr, "rtm-demo: cannot open segment: %s\n", strerror(-rc));
		return 1;
	}
	rtm_counter_create(seg, &req_ok, &(struct rtm_metric_def){
		.name = "demo.requests", .unit = "{request}", .description = "Requests handled",
		.attrs = (struct rtm_attr[]){ { "outcome", "ok" } }, .n_attrs = 1 });
	rtm_counter_create(seg, &req_err, &(struct rtm_metric_def){
		.name = "demo.requests", .unit = "{request}", .description = "Requests handled",
		.attrs = (struct rtm_attr[]){ { "outcome", "error" } }, .n_attrs = 1 });
	rtm_counter_create(seg, &bytes_out, &(struct rtm_metric_def){
		.name = "demo.response.size", .unit = "By", .description = "Bytes sent" });
	rtm_counter_create(seg, &spawned, &(struct rtm_metric_def){
		.name = "demo.threads.spawned", .unit = "{thread}",
		.description = "Short-lived threads started" });
	rtm_updown_create(seg, &in_flight, &(struct rtm_metric_def){
		.name = "demo.requests.active", .unit = "{request}",
		.description = "Requests in flight" });
	rtm_gauge_create(seg, &uptime, &(struct rtm_metric_def){
		.name = "demo.uptime", .unit = "s", .is_double = 1,
		.description = "Seconds since the demo started" });
	rtm_hist_create(seg, &latency, &(struct rtm_metric_def){
		.name = "demo.request.duration", .unit = "s",
		.description = "Request latency" });

	/* The allocator group: one call (needs librtm-alloc linked in). */
	rc = rtm_alloc_metrics_start(seg, 1000);
	if (rc)
		fprintf(stderr, "rtm-demo: allocator metrics unavailable: %s\n", strerror(-rc));

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("rtm-demo: pid %d publishing to %s\n", (int)getpid(), rtm_segment_path(seg));
	fflush(stdout);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	start = now_s();
	while (!stop && (!duration || now_s() - start < duration)) {
		static char *held[16];
		static unsigned next;
		pthread_t t;

		/* 1 MB a second in 64 KiB blocks, each kept for 16 s: a heap
		 * that grows, then turns over, as in the seed's simulateLoad. */
		free(held[next % 16]);
		held[next % 16] = malloc(1 << 20);
		if (held[next % 16])
			memset(held[next % 16], 1, 1 << 20);
		next++;

		/* Ten short-lived threads a second, as the seed's load does. */
		for (int i = 0; i < 10; i++)
			if (pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)(100 + i)) == 0)
				pthread_detach(t);
		rtm_gauge_set_f64(&uptime, now_s() - start);
		rtm_segment_heartbeat(seg);
		sleep(1);
	}
	stop = 1;
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	usleep(100000); /* let detached threads finish their last request */
	rtm_segment_close(seg);
	return 0;
}
