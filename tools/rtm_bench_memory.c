/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-memory - what rtm-reader's memory costs, next to a baseline
 * from the same run (the same reader over an empty directory):
 *   fleet  private memory (RssAnon) of a daemon reading N producers of M
 *          series each, after a few cycles, minus the empty-directory one
 *   big    peak RSS (ru_maxrss) of a --once run over one segment of S series,
 *          with the default per-segment limits and with them raised
 * Each figure is min/median/max over R runs.  Memory is not time: these
 * numbers barely move between runs, but the spread is shown anyway.
 * usage: rtm-bench-memory READER [--producers N] [--series M] [--big S] [--runs R]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtm.h"

static const char *reader;

/* A producer child: a segment of n counters with 150-byte descriptions,
 * then it waits to be killed. */
static pid_t producer(const char *dir, unsigned n)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct rtm_segment *seg = NULL;
		char name[32], desc[151];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		memset(desc, 'd', 150);
		desc[150] = '\0';
		if (rtm_segment_open(&seg, &(struct rtm_segment_opts){
			    .service_name = "bench", .dir = dir, .max_metrics = n, .max_threads = 1,
			    .shard_bytes = 1u << 20, .string_bytes = 16u << 20 }))
			_exit(1);
		for (unsigned i = 0; i < n; i++) {
			rtm_counter_t c;

			snprintf(name, sizeof name, "bench.c%u", i);
			if (rtm_counter_create(seg, &c, &(struct rtm_metric_def){
				    .name = name, .description = desc }))
				_exit(1);
		}
		printf("ready\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	return pid;
}

/* kB of the field (e.g. "RssAnon:") in /proc/<pid>/status; -1 if absent. */
static long status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, strlen(field)))
			kb = strtol(line + strlen(field), NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* A daemon reader over dir: its RssAnon after 3 s of 200 ms cycles. */
static long daemon_anon_kb(const char *dir)
{
	pid_t pid = fork();
	long kb;

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stderr);
		execl(reader, "rtm-reader", "--dir", dir, "--exporter", "none", "--interval", "200ms",
		      (char *)NULL);
		_exit(127);
	}
	sleep(3);
	kb = status_kb(pid, "RssAnon:");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return kb;
}

/* The peak RSS of one --once run over dir, with extra flags (the
 * kernel's ru_maxrss of the exited child). */
static long once_peak_kb(const char *dir, const char *limit1, const char *limit2)
{
	struct rusage ru;
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stderr);
		if (limit1)
			execl(reader, "rtm-reader", "--dir", dir, "--once", "--exporter", "none", "--limit",
			      limit1, "--limit", limit2, (char *)NULL);
		else
			execl(reader, "rtm-reader", "--dir", dir, "--once", "--exporter", "none",
			      (char *)NULL);
		_exit(127);
	}
	if (wait4(pid, NULL, 0, &ru) != pid)
		return -1;
	return ru.ru_maxrss;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static void print(const char *what, long *v, int n, const char *unit)
{
	qsort(v, (size_t)n, sizeof *v, cmp_long);
	printf("  %-46s min %7.1f  median %7.1f  max %7.1f %s\n", what, v[0] / 1024.0,
	       v[n / 2] / 1024.0, v[n - 1] / 1024.0, unit);
}

static void wait_ready(FILE *f, int n)
{
	char line[16];

	for (int i = 0; i < n; i++)
		if (!fgets(line, sizeof line, f))
			break;
}

int main(int argc, char **argv)
{
	unsigned producers = 1000, series = 50, big = 65536;
	int runs = 3, opt;
	static const struct option lo[] = {
		{ "producers", required_argument, NULL, 'p' }, { "series", required_argument, NULL, 's' },
		{ "big", required_argument, NULL, 'b' }, { "runs", required_argument, NULL, 'r' }, { 0 },
	};

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'p': producers = (unsigned)atoi(optarg); break;
		case 's': series = (unsigned)atoi(optarg); break;
		case 'b': big = (unsigned)atoi(optarg); break;
		case 'r': runs = atoi(optarg); break;
		default: fprintf(stderr, "usage: rtm-bench-memory READER [--producers N] [--series M] [--big S] [--runs R]\n"); return 2;
		}
	}
	if (optind != argc - 1 || !producers || !series || !big || runs < 1 || runs > 15) {
		fprintf(stderr, "usage: rtm-bench-memory READER [--producers N] [--series M] [--big S] [--runs R]\n");
		return 2;
	}
	reader = argv[optind];
	{
		char fleet[] = "/tmp/rtm-bench-mem.XXXXXX", empty[] = "/tmp/rtm-bench-empty.XXXXXX";
		char one[] = "/tmp/rtm-bench-big.XXXXXX", cmd[200];
		int saved_stdout = dup(1);
		long base[15], extra[15], def[15], raised[15];
		pid_t *kids = calloc(producers + 1, sizeof *kids);
		int p[2];
		FILE *ready;

		if (!kids || !mkdtemp(fleet) || !mkdtemp(empty) || !mkdtemp(one) || pipe(p))
			return 1;
		ready = fdopen(p[0], "r");
		/* The producers say "ready" on their stdout: this pipe. */
		fflush(stdout);
		dup2(p[1], 1);
		for (unsigned i = 0; i < producers; i++)
			kids[i] = producer(fleet, series);
		kids[producers] = producer(one, big);
		dup2(saved_stdout, 1);
		close(saved_stdout);
		close(p[1]);
		wait_ready(ready, (int)producers + 1);
		printf("rtm-bench-memory: %u producers x %u series; one segment of %u series; %d runs\n",
		       producers, series, big, runs);
		for (int r = 0; r < runs; r++) {
			base[r] = daemon_anon_kb(empty);
			extra[r] = daemon_anon_kb(fleet) - base[r];
			def[r] = once_peak_kb(one, NULL, NULL);
			raised[r] = once_peak_kb(one, "series=1048576", "strings=1GiB");
		}
		print("daemon, empty directory (baseline), RssAnon", base, runs, "MB");
		print("daemon, the fleet, RssAnon minus the baseline", extra, runs, "MB");
		print("--once, one big segment, default limits, peak", def, runs, "MB");
		print("--once, one big segment, limits raised, peak", raised, runs, "MB");
		for (unsigned i = 0; i <= producers; i++)
			kill(kids[i], SIGKILL);
		while (wait(NULL) > 0)
			;
		snprintf(cmd, sizeof cmd, "rm -rf %s %s %s", fleet, empty, one);
		return system(cmd) ? 1 : 0;
	}
}
