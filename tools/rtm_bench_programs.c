/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-programs - what librtm-preload.so costs whole real programs:
 * sort of a large file, a Python program building a large dict, a compiler
 * run.  Each is run without the preload (the baseline) and with it,
 * alternated, R times; the cost is the CPU time the program used (user +
 * system, its threads and the children it waited for, from wait4), which a
 * busy neighbour disturbs far less than wall time.  Prints min/median/max of
 * the per-run ratios (target <= 1.05x), and the allocator calls the program
 * made (read from its own segments), which is what the interposer's cost
 * scales with: rtm-bench-alloc gives the cost of one.
 *
 * usage: rtm-bench-programs PRELOAD.so [--runs R]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_runs.h"
#include "rd_segment.h"

extern char **environ;

struct program {
	const char *what;
	char *argv[8];
};

/* CPU seconds of one run of argv, with LD_PRELOAD=preload when not NULL;
 * the program's output goes to /dev/null.  Exits on failure: a benchmark
 * of a program that did not run is no figure. */
static double cpu_run(char *const argv[], const char *preload, const char *dir)
{
	char *envp[512], pre[4200], rtmdir[300];
	posix_spawn_file_actions_t fa;
	struct rusage ru;
	size_t n = 0;
	int status;
	pid_t pid;

	for (char **e = environ; *e && n < 500; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) && strncmp(*e, "RTM_DIR=", 8))
			envp[n++] = *e;
	snprintf(rtmdir, sizeof rtmdir, "RTM_DIR=%s", dir);
	envp[n++] = rtmdir;
	if (preload) {
		snprintf(pre, sizeof pre, "LD_PRELOAD=%s", preload);
		envp[n++] = pre;
	}
	envp[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp)) {
		fprintf(stderr, "rtm-bench-programs: cannot start %s\n", argv[0]);
		exit(1);
	}
	posix_spawn_file_actions_destroy(&fa);
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "rtm-bench-programs: %s failed\n", argv[0]);
		exit(1);
	}
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Allocator calls (mallocs + frees) in the segments the preloaded run left
 * in dir, which are then removed: the processes have ended and no reader
 * is attached, so they stay until read here. */
static unsigned long long alloc_calls(const char *dir)
{
	unsigned long long calls = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		struct rd_segment seg;
		struct rd_snapshot snap = { 0 };

		if (e->d_name[0] == '.')
			continue;
		if (rd_segment_open(&seg, dirfd(d), e->d_name, 0) == 0 &&
		    rd_segment_snapshot(&seg, &snap) == 0)
			for (uint32_t i = 0; i < seg.n_metrics; i++)
				if (!strcmp(seg.metrics[i].name, "runtime.native.mem.alloc.mallocs") ||
				    !strcmp(seg.metrics[i].name, "runtime.native.mem.alloc.frees"))
					calls += (unsigned long long)snap.values[i].i;
		rd_snapshot_free(&snap);
		rd_segment_close(&seg);
		unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d)
		closedir(d);
	return calls;
}

/* Inputs: 2 million random lines to sort, a C file of 1000 functions. */
static void make_inputs(const char *dir, char *lines, char *csrc, size_t n)
{
	FILE *f;

	snprintf(lines, n, "%s/lines.txt", dir);
	snprintf(csrc, n, "%s/gen.c", dir);
	f = fopen(lines, "w");
	srand(1);
	for (int i = 0; f && i < 2000000; i++)
		fprintf(f, "%08x %d\n", (unsigned)rand(), i);
	if (!f || fclose(f))
		exit(1);
	f = fopen(csrc, "w");
	for (int i = 0; f && i < 1000; i++)
		fprintf(f, "int f%d(int *a, int n) { int s = 0; for (int i = 0; i < n; i++) "
			   "s += a[i] * %d ^ (s >> 3); return s; }\n", i, i);
	if (!f || fclose(f))
		exit(1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "runs", required_argument, NULL, 'r' }, { 0 } };
	char dir[] = "/tmp/rtm-bench-programs.XXXXXX", segs[300], lines[300], csrc[300],
	     obj[300], cmd[400];
	int runs = 9, o;
	const char *preload;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'r')
			return 2;
		runs = atoi(optarg);
	}
	if (optind != argc - 1 || access(argv[optind], R_OK) || runs < 1 || runs > 16) {
		fprintf(stderr, "usage: rtm-bench-programs PATH/librtm-preload.so [--runs 1..16] (default 9)\n");
		return 2;
	}
	preload = realpath(argv[optind], NULL); /* programs may change directory */
	if (!preload)
		return 1;
	if (!mkdtemp(dir))
		return 1;
	snprintf(segs, sizeof segs, "%s/segments", dir);
	snprintf(obj, sizeof obj, "%s/gen.o", dir);
	if (mkdir(segs, 01777))
		return 1;
	make_inputs(dir, lines, csrc, sizeof lines);

	struct program progs[] = {
		{ "sort of 2M lines (38 MB)", { "sort", "-o", "/dev/null", lines, NULL } },
		{ "python3: dict of 2M entries",
		  { "python3", "-c", "d = {}\nfor i in range(2000000): d[str(i)] = [i]\n", NULL } },
		{ "cc -O2 of 1000 functions", { "cc", "-O2", "-c", csrc, "-o", obj, NULL } },
	};

	printf("rtm-bench-programs: CPU time with %s / without, %d alternated runs "
	       "(ratio min / median / max; CPU s without; allocator calls per run)\n", preload, runs);
	for (size_t p = 0; p < sizeof progs / sizeof progs[0]; p++) {
		double ratio[16], base[16];
		unsigned long long calls = 0;

		cpu_run(progs[p].argv, NULL, segs); /* warm the page cache */
		for (int r = 0; r < runs; r++) {
			double with, without;

			if (r % 2) {
				with = cpu_run(progs[p].argv, preload, segs);
				without = cpu_run(progs[p].argv, NULL, segs);
			} else {
				without = cpu_run(progs[p].argv, NULL, segs);
				with = cpu_run(progs[p].argv, preload, segs);
			}
			ratio[r] = with / without;
			base[r] = without;
			calls = alloc_calls(segs);
		}
		bench_runs_sort(ratio, runs);
		bench_runs_sort(base, runs);
		printf("  %-30s %.3fx / %.3fx / %.3fx   %.2f s   %llu\n", progs[p].what, ratio[0],
		       ratio[runs / 2], ratio[runs - 1], base[runs / 2], calls);
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) ? 1 : 0;
}
