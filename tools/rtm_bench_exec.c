/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-exec - what the preload adds to starting a short command, and
 * whether that grows with the segment directory.  Times M runs of
 * /bin/true with LD_PRELOAD=PRELOAD against M runs without it (the
 * baseline, same run, interleaved in blocks), with 0, 2 000 and 20 000
 * other files in the directory and a reader announced (as rtm-reader
 * announces itself, FORMAT.md "Segments without a reader"), then once
 * more with no reader attached.  R repetitions: min/median/max ratios.
 * First, the floor: the same with librtm-bench-empty.so (built beside this
 * program), a preload that does nothing; then PRELOAD loaded but not
 * publishing (RTM_PUBLISH=top, the top being another process).
 *
 * usage: rtm-bench-exec PRELOAD.so [--runs R] [--execs M]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_runs.h"

extern char **environ;

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds for m runs of /bin/true with envp. */
static double run_true(char **envp, int m)
{
	char *argv[] = { "true", NULL };
	double t0 = mono_s();

	for (int i = 0; i < m; i++) {
		pid_t pid;

		if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, envp)) {
			perror("posix_spawn");
			exit(1);
		}
		waitpid(pid, NULL, 0);
	}
	return mono_s() - t0;
}

static void files(const char *dir, int have, int want)
{
	char path[4096];

	for (int i = have; i < want; i++) {
		int fd;

		/* Other users' producers, as far as this one can tell. */
		snprintf(path, sizeof path, "%s/rtm.%d.%d.0.rtm", dir, 4000000 + i, 1000 + i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0)
			close(fd);
	}
}

static void announce(const char *dir, bool on)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/.rtm-reader", dir);
	if (!on) {
		unlink(path);
		return;
	}
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "rtm-reader %d 10000000000\n", (int)getpid());
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'r' }, { "execs", required_argument, NULL, 'm' },
		{ 0 },
	};
	static const int sizes[] = { 0, 2000, 20000 };
	char dir[] = "/dev/shm/rtm-bench-exec.XXXXXX", pre[4200], rdir[4200], cmd[4300];
	char **plain, **loaded, **empty, **quiet, self[4096], epre[4200];
	char top[] = "RTM_PUBLISH=top", top_pid[] = "RTM_PUBLISH_TOP=1";
	int runs = 3, m = 300, o, have = 0;
	size_t ne = 0;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'r')
			runs = atoi(optarg);
		else if (o == 'm')
			m = atoi(optarg);
		else
			return 2;
	}
	if (optind != argc - 1 || runs < 1 || runs > 15 || m < 10) {
		fprintf(stderr, "usage: rtm-bench-exec PRELOAD.so [--runs 1..15] [--execs M>=10]\n");
		return 2;
	}
	if (!mkdtemp(dir))
		return 1;
	while (environ[ne])
		ne++;
	plain = calloc(ne + 2, sizeof *plain);
	loaded = calloc(ne + 3, sizeof *loaded);
	empty = calloc(ne + 3, sizeof *empty);
	quiet = calloc(ne + 5, sizeof *quiet);
	if (bench_self(self, sizeof self))
		return 1;
	*strrchr(self, '/') = '\0';
	snprintf(epre, sizeof epre, "LD_PRELOAD=%s/librtm-bench-empty.so", self);
	snprintf(rdir, sizeof rdir, "RTM_DIR=%s", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", argv[optind]);
	for (size_t i = 0; i < ne; i++)
		plain[i] = loaded[i] = empty[i] = quiet[i] = environ[i];
	plain[ne] = loaded[ne] = empty[ne] = quiet[ne] = rdir;
	loaded[ne + 1] = quiet[ne + 1] = pre;
	empty[ne + 1] = epre;
	quiet[ne + 2] = top;
	quiet[ne + 3] = top_pid;
	printf("rtm-bench-exec: %d x /bin/true with the preload vs without, %d runs "
	       "(ratio min / median / max; ms per exec with it)\n", m, runs);
	for (int k = -2; k < 4; k++) {
		bool reader = k < 3;
		int want = k < 0 ? 0 : reader ? sizes[k] : 20000;
		double ratio[16], ms[16];

		files(dir, have, want);
		have = want > have ? want : have;
		for (int r = 0; r < runs; r++) {
			double base, with;

			announce(dir, reader);
			base = run_true(plain, m);
			with = run_true(k == -2 ? empty : k == -1 ? quiet : loaded, m);
			ratio[r] = with / base;
			ms[r] = with * 1e3 / m;
		}
		bench_runs_sort(ratio, runs);
		bench_runs_sort(ms, runs);
		if (k < 0)
			printf("  %s %.2fx / %.2fx / %.2fx   %.2f ms\n",
			       k == -2 ? "an empty LD_PRELOAD library (the floor)  " :
					 "the preload loaded, not publishing       ",
			       ratio[0], ratio[runs / 2], ratio[runs - 1], ms[runs / 2]);
		else
			printf("  %5d %s %.2fx / %.2fx / %.2fx   %.2f ms\n", want,
			       reader ? "other files, reader attached         " :
					"left-over files, no reader (1st removes)", ratio[0],
			       ratio[runs / 2], ratio[runs - 1], ms[runs / 2]);
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) ? 1 : 0;
}
