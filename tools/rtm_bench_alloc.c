/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-alloc - cost of librtm-preload.so on a malloc/free-heavy loop:
 * the same loop in four children that stay for the whole run — a copy of
 * this program without the preload, with it, with it and
 * RTM_SAMPLE_INTERVAL_MS=0 (heap sampled at start and exit only), and
 * without it but with an idle second thread — asked for one loop each in
 * turn, ROUNDS times, so the loops compared run milliseconds apart.
 * Prints min / median / max of the per-round ratios to the plain program
 * (target <= 1.3x).  The idle-thread row is what any second thread costs
 * this single-threaded loop (glibc's malloc loses its single-thread fast
 * path, whoever owns the thread): the reason the preload starts no thread
 * of its own here.
 * usage: rtm-bench-alloc PRELOAD.so [--ops N]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_runs.h"

#define ROUNDS 101

/* ns per malloc+free pair over ops pairs, with keep's 256 live blocks. */
static double loop_ns(void *keep[256], long ops)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < ops; i++) {
		unsigned k = (unsigned)(i * 2654435761u) & 255;

		free(keep[k]);
		keep[k] = malloc(16 + (size_t)(i & 511));
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)ops;
}

/* --serve OPS [idle]: one loop per byte on stdin, its ns on stdout. */
static int serve(long ops, bool idle)
{
	void *keep[256] = { 0 };
	pthread_t t;
	char c;

	if (idle)
		pthread_create(&t, NULL, bench_idle_thread, NULL);
	loop_ns(keep, ops); /* warm: the heap at its working size */
	while (read(0, &c, 1) == 1) {
		printf("%.3f\n", loop_ns(keep, ops));
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	long ops = argc > 3 && !strcmp(argv[2], "--ops") ? atol(argv[3]) : 400000;
	/* [0] plain, [1] with an idle thread, [2] preloaded, [3] preloaded
	 * with RTM_SAMPLE_INTERVAL_MS=0 */
	static double ns[4][ROUNDS], ratio[3][ROUNDS];
	struct bench_server sv[4];
	char self[4096], args[48], line[128];

	if (argc >= 3 && !strcmp(argv[1], "--serve"))
		return serve(atol(argv[2]), argc > 3 && !strcmp(argv[3], "idle"));
	if (argc < 2 || access(argv[1], R_OK) || ops < 1000) {
		fprintf(stderr, "usage: rtm-bench-alloc PATH/librtm-preload.so [--ops N>=1000]\n");
		return 2;
	}
	if (bench_self(self, sizeof self))
		return 1;
	for (int c = 0; c < 4; c++) {
		snprintf(args, sizeof args, "%ld%s", ops, c == 1 ? " idle" : "");
		if (bench_server_start(&sv[c], self, c >= 2 ? argv[1] : NULL,
				       c == 3 ? "RTM_SAMPLE_INTERVAL_MS=0" : "RTM_SAMPLE_INTERVAL_MS=10000",
				       args))
			return 1;
	}
	/* Round-robin, starting each round with the next one: a noisy
	 * neighbour then hurts all four alike. */
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 4; k++) {
			int c = (r + k) % 4;

			if (bench_server_ask(&sv[c], line, sizeof line)) {
				fprintf(stderr, "rtm-bench-alloc: a measuring child failed\n");
				return 1;
			}
			ns[c][r] = atof(line);
		}
	for (int c = 0; c < 4; c++)
		bench_server_stop(&sv[c]);
	{
		/* The rows: label, child, and the target where there is one. */
		static const struct {
			const char *label;
			int c;
			const char *note;
		} rows[] = {
			{ "with an idle thread (no preload)  ", 1, "" },
			{ "with librtm-preload.so            ", 2, " (target <= 1.3x)" },
			{ "the same, RTM_SAMPLE_INTERVAL_MS=0", 3, "" },
		};

		/* Each round's ratios before anything is sorted. */
		for (size_t k = 0; k < 3; k++)
			for (int r = 0; r < ROUNDS; r++)
				ratio[k][r] = ns[rows[k].c][r] / ns[0][r];
		for (int c = 0; c < 4; c++)
			bench_runs_sort(ns[c], ROUNDS);
		printf("rtm-bench-alloc: %d rounds of %ld malloc+free pairs (16..527 bytes, 256 live) in each of 4 long-lived children, in turn\n",
		       ROUNDS, ops);
		printf("  (ratio to the plain program min / median / max; median ns/pair)\n");
		printf("  glibc malloc alone                 %18s   %6.2f ns\n", "", ns[0][ROUNDS / 2]);
		for (size_t k = 0; k < 3; k++) {
			bench_runs_sort(ratio[k], ROUNDS);
			printf("  %s %.2fx / %.2fx / %.2fx   %6.2f ns%s\n", rows[k].label, ratio[k][0],
			       ratio[k][ROUNDS / 2], ratio[k][ROUNDS - 1], ns[rows[k].c][ROUNDS / 2],
			       rows[k].note);
		}
	}
	return 0;
}
