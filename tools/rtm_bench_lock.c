/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-lock - what librtm-preload.so's lock interposer costs the
 * uncontended path: pthread_mutex_lock/unlock pairs (and rwlock rdlock/
 * unlock, wrlock/unlock) in a copy of this program without the preload, then in one
 * started with LD_PRELOAD, alternated in PAIRS pairs; each child keeps its
 * best of 3 loops, and each pair gives a ratio: min / median / max of those
 * (target <= 1.1x at the median).  Both run with a second, idle thread: glibc takes
 * non-atomic shortcuts while a process has one thread (under the preload,
 * starting it also starts the heap sampler, which sleeps).
 * usage: rtm-bench-lock PRELOAD.so [--ops N]
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

#define PAIRS 9

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;

static double ns_per_pair(long ops, int rwlock)
{
	struct timespec a, b;
	double best = 1e30;

	for (int r = 0; r < 3; r++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < ops; i++) {
			if (rwlock == 2) {
				pthread_rwlock_wrlock(&rw);
				pthread_rwlock_unlock(&rw);
			} else if (rwlock) {
				pthread_rwlock_rdlock(&rw);
				pthread_rwlock_unlock(&rw);
			} else {
				pthread_mutex_lock(&mu);
				pthread_mutex_unlock(&mu);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		double t = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)ops;
		if (t < best)
			best = t;
	}
	return best;
}

int main(int argc, char **argv)
{
	long ops = argc > 3 && !strcmp(argv[2], "--ops") ? atol(argv[3]) : 5000000;
	double plain[3][PAIRS], pre[3][PAIRS], ratio[3][PAIRS];
	char self[4096], args[32], line[128];

	if (argc >= 2 && !strcmp(argv[1], "--child")) {
		pthread_t idle;

		pthread_create(&idle, NULL, bench_idle_thread, NULL);
		printf("%.3f %.3f %.3f\n", ns_per_pair(atol(argv[2]), 0), ns_per_pair(atol(argv[2]), 1),
		       ns_per_pair(atol(argv[2]), 2));
		return 0;
	}
	if (argc < 2 || access(argv[1], R_OK)) {
		fprintf(stderr, "usage: rtm-bench-lock PATH/librtm-preload.so [--ops N]\n");
		return 2;
	}
	if (bench_self(self, sizeof self))
		return 1;
	snprintf(args, sizeof args, "%ld", ops);
	/* Alternate: a noisy neighbour then hurts both of a pair alike. */
	for (int r = 0; r < 2 * PAIRS; r++) {
		double m, w, x;

		if (bench_child(self, r % 2 ? argv[1] : NULL, "", args, line, sizeof line) ||
		    sscanf(line, "%lf %lf %lf", &m, &w, &x) != 3)
			return 1;
		(r % 2 ? pre : plain)[0][r / 2] = m;
		(r % 2 ? pre : plain)[1][r / 2] = w;
		(r % 2 ? pre : plain)[2][r / 2] = x;
	}
	for (int k = 0; k < 3; k++) {
		for (int i = 0; i < PAIRS; i++)
			ratio[k][i] = pre[k][i] / plain[k][i];
		bench_runs_sort(ratio[k], PAIRS);
		bench_runs_sort(plain[k], PAIRS);
		bench_runs_sort(pre[k], PAIRS);
	}
	printf("rtm-bench-lock: %ld uncontended lock+unlock pairs (two threads, one idle), %d alternated runs, best of 3 loops each\n",
	       ops, PAIRS);
	printf("  (ratio min / median / max; median ns/pair without and with)\n");
	printf("  mutex   %.2fx / %.2fx / %.2fx   %6.2f -> %6.2f ns (target <= 1.1x)\n", ratio[0][0],
	       ratio[0][PAIRS / 2], ratio[0][PAIRS - 1], plain[0][PAIRS / 2], pre[0][PAIRS / 2]);
	printf("  rdlock  %.2fx / %.2fx / %.2fx   %6.2f -> %6.2f ns\n", ratio[1][0], ratio[1][PAIRS / 2],
	       ratio[1][PAIRS - 1], plain[1][PAIRS / 2], pre[1][PAIRS / 2]);
	printf("  wrlock  %.2fx / %.2fx / %.2fx   %6.2f -> %6.2f ns\n", ratio[2][0], ratio[2][PAIRS / 2],
	       ratio[2][PAIRS - 1], plain[2][PAIRS / 2], pre[2][PAIRS / 2]);
	return 0;
}
