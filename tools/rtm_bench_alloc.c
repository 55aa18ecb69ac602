/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-alloc - cost of librtm-preload.so on a malloc/free-heavy loop:
 * the same loop in a copy of this program without the preload, with it,
 * with it and RTM_SAMPLE_INTERVAL_MS=0 (heap sampled at start and exit
 * only), and without it but with an idle second thread, alternated RUNS
 * times; each child keeps its best of LOOPS loops (short
 * loops, many rounds: a noisy neighbour spoils a loop, not the median).  Prints min / median / max
 * of the per-run ratios to the plain program (target <= 1.3x).  The
 * idle-thread row is what any second thread costs this single-threaded
 * loop (glibc's malloc loses its single-thread fast path, whoever owns the
 * thread): the reason the preload starts no thread of its own here.
 * usage: rtm-bench-alloc PRELOAD.so [--ops N]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_runs.h"

#define RUNS 15
#define LOOPS 7

static double loop_ns(long ops)
{
	void *keep[256] = { 0 };
	struct timespec a, b;
	double best = 1e30;

	for (int r = 0; r < LOOPS; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < ops; i++) {
			unsigned k = (unsigned)(i * 2654435761u) & 255;

			free(keep[k]);
			keep[k] = malloc(16 + (size_t)(i & 511));
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		double t = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)ops;
		if (t < best)
			best = t;
	}
	for (int k = 0; k < 256; k++)
		free(keep[k]);
	return best;
}

int main(int argc, char **argv)
{
	long ops = argc > 3 && !strcmp(argv[2], "--ops") ? atol(argv[3]) : 1000000;
	/* [0] plain, [1] with an idle thread, [2] preloaded, [3] preloaded
	 * with RTM_SAMPLE_INTERVAL_MS=0 */
	double ns[4][RUNS], ratio[3][RUNS];
	char self[4096], args[48], line[128];

	if (argc >= 3 && !strcmp(argv[1], "--child")) {
		if (argc > 3 && !strcmp(argv[3], "idle")) {
			pthread_t t;

			pthread_create(&t, NULL, bench_idle_thread, NULL);
		}
		printf("%.3f\n", loop_ns(atol(argv[2])));
		return 0;
	}
	if (argc < 2 || access(argv[1], R_OK)) {
		fprintf(stderr, "usage: rtm-bench-alloc PATH/librtm-preload.so [--ops N]\n");
		return 2;
	}
	if (bench_self(self, sizeof self))
		return 1;
	/* Round-robin, starting each round with the next one: a noisy
	 * neighbour then hurts all four alike. */
	for (int r = 0; r < RUNS; r++)
		for (int k = 0; k < 4; k++) {
			int c = (r + k) % 4;

			snprintf(args, sizeof args, "%ld%s", ops, c == 1 ? " idle" : "");
			if (bench_child(self, c >= 2 ? argv[1] : NULL,
					c == 3 ? "RTM_SAMPLE_INTERVAL_MS=0" : "RTM_SAMPLE_INTERVAL_MS=10000",
					args, line, sizeof line))
				return 1;
			ns[c][r] = atof(line);
		}
	for (int r = 0; r < RUNS; r++) {
		ratio[0][r] = ns[2][r] / ns[0][r];
		ratio[1][r] = ns[1][r] / ns[0][r];
		ratio[2][r] = ns[3][r] / ns[0][r];
	}
	for (int k = 0; k < 4; k++)
		bench_runs_sort(ns[k], RUNS);
	for (int k = 0; k < 3; k++)
		bench_runs_sort(ratio[k], RUNS);
	printf("rtm-bench-alloc: %ld malloc+free pairs (16..527 bytes, 256 live), %d alternated runs, best of %d loops each\n",
	       ops, RUNS, LOOPS);
	printf("  (ratio to the plain program min / median / max; median ns/pair)\n");
	printf("  glibc malloc alone                 %18s   %6.2f ns\n", "", ns[0][RUNS / 2]);
	printf("  with an idle thread (no preload)   %.2fx / %.2fx / %.2fx   %6.2f ns\n", ratio[1][0],
	       ratio[1][RUNS / 2], ratio[1][RUNS - 1], ns[1][RUNS / 2]);
	printf("  with librtm-preload.so             %.2fx / %.2fx / %.2fx   %6.2f ns (target <= 1.3x)\n",
	       ratio[0][0], ratio[0][RUNS / 2], ratio[0][RUNS - 1], ns[2][RUNS / 2]);
	printf("  the same, RTM_SAMPLE_INTERVAL_MS=0 %.2fx / %.2fx / %.2fx   %6.2f ns\n",
	       ratio[2][0], ratio[2][RUNS / 2], ratio[2][RUNS - 1], ns[3][RUNS / 2]);
	return 0;
}
