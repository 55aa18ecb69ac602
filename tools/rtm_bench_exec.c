/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-exec - what the preload adds to starting a short command, and
 * whether that grows with the segment directory.  Times M runs of
 * /bin/true with LD_PRELOAD=PRELOAD against M runs without it (the
 * baseline, same run, interleaved in blocks of ten), with 0, 2 000 and 20 000
 * other files in the directory and a reader announced (as rtm-reader
 * announces itself, FORMAT.md "Segments without a reader"), so that every
 * run publishes its final values at exit, and with no reader attached
 * (a run then publishes nothing: RTM_PUBLISH_DELAY_MS).  R repetitions: min/median/max ratios.
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

#define BLOCK 10

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

/* This environment, with the assignments in extra (NULL-terminated). */
static char **env_plus(const char *const *extra)
{
	size_t ne = 0, nx = 0;
	char **env;

	while (environ[ne])
		ne++;
	while (extra[nx])
		nx++;
	env = calloc(ne + nx + 1, sizeof *env);
	if (!env)
		exit(1);
	memcpy(env, environ, ne * sizeof *env);
	memcpy(env + ne, extra, nx * sizeof *env);
	return env;
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
	char dir[] = "/dev/shm/rtm-bench-exec.XXXXXX", pre[4200], rdir[4200], cmd[4300];
	char self[4096], epre[4200];
	int runs = 3, m = 300, o, have = 0;
	char **plain, **loaded;

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
	if (!mkdtemp(dir) || bench_self(self, sizeof self))
		return 1;
	*strrchr(self, '/') = '\0';
	snprintf(epre, sizeof epre, "LD_PRELOAD=%s/librtm-bench-empty.so", self);
	snprintf(rdir, sizeof rdir, "RTM_DIR=%s", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", argv[optind]);
	plain = env_plus((const char *[]){ rdir, NULL });
	loaded = env_plus((const char *[]){ rdir, pre, NULL });
	{
		const struct {
			const char *label;
			char **env;
			int files;
			bool reader;
		} rows[] = {
			{ "an empty LD_PRELOAD library (the floor)  ", env_plus((const char *[]){ rdir, epre, NULL }), 0, true },
			{ "the preload loaded, not publishing       ",
			  env_plus((const char *[]){ rdir, pre, "RTM_PUBLISH=top", "RTM_PUBLISH_TOP=1",
						   NULL }), 0, true },
			{ "no reader attached (nothing to publish)  ", loaded, 0, false },
			{ "    0 other files, reader attached         ", loaded, 0, true },
			{ " 2000 other files, reader attached         ", loaded, 2000, true },
			{ "20000 other files, reader attached         ", loaded, 20000, true },
			{ "20000 left-over files, no reader         ", loaded, 20000, false },
		};

		printf("rtm-bench-exec: %d x /bin/true with the preload vs without, %d runs "
		       "(ratio min / median / max; ms per exec with it)\n", m, runs);
		for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
			double ratio[16], ms[16];

			files(dir, have, rows[k].files);
			have = rows[k].files > have ? rows[k].files : have;
			for (int r = 0; r < runs; r++) {
				double base, with;

				announce(dir, rows[k].reader);
				/* Interleaved in blocks of BLOCK, so that a slow spell
				 * of this shared machine weighs on both sides. */
				base = with = 0;
				for (int done = 0; done < m; done += BLOCK) {
					int b = m - done < BLOCK ? m - done : BLOCK;

					base += run_true(plain, b);
					with += run_true(rows[k].env, b);
				}
				ratio[r] = with / base;
				ms[r] = with * 1e3 / m;
			}
			bench_runs_sort(ratio, runs);
			bench_runs_sort(ms, runs);
			printf("  %s %.2fx / %.2fx / %.2fx   %.2f ms\n", rows[k].label, ratio[0],
			       ratio[runs / 2], ratio[runs - 1], ms[runs / 2]);
		}
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) ? 1 : 0;
}
