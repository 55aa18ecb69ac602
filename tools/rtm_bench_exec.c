/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-exec - what the preload adds to starting a short command, and
 * whether that grows with the segment directory.  Times M runs of a short
 * command (/bin/true, and ls /usr/share/doc into /dev/null: one that
 * allocates) three ways, interleaved in blocks of ten so a slow spell of a
 * shared machine weighs on all: with LD_PRELOAD=PRELOAD, with an empty
 * LD_PRELOAD library (librtm-bench-empty.so, built beside this program: the
 * floor no preload can beat) and with none.  The figure is the preload's
 * time over the floor's; over none is printed beside it.  With a real
 * rtm-reader attached (READER, or ../reader/rtm-reader beside this program
 * when built in the tree), every run publishes its final values at exit and
 * the reader exports them; without, a run publishes nothing
 * (RTM_PUBLISH_DELAY_MS).  Also with 2 000 and 20 000 other files in the
 * directory, and PRELOAD loaded but not publishing (RTM_PUBLISH=top).
 * R repetitions: min/median/max ratios.
 *
 * The reader takes datagrams a batch per wake, a batch at most what the
 * socket's queue holds: net.unix.max_dgram_qlen, fixed when the reader
 * creates its socket.  The kernel's default is 10; systemd raises it to 512
 * at boot, so a reader on a systemd host (or in a pod on the host's
 * network) has 512.  --dgram-qlen N sets it for the run (root) and puts the
 * old value back after; the figure's header says which was in effect.
 *
 * usage: rtm-bench-exec PRELOAD.so [--runs R] [--execs M] [--reader READER]
 *                       [--dgram-qlen N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
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

#define QLEN_PATH "/proc/sys/net/unix/max_dgram_qlen"

/* The sysctl's value, or -1. */
static long qlen_get(void)
{
	FILE *f = fopen(QLEN_PATH, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int qlen_set(long v)
{
	FILE *f = fopen(QLEN_PATH, "we");
	int ok = f && fprintf(f, "%ld\n", v) > 0;

	if (f && fclose(f))
		ok = 0;
	return ok ? 0 : -1;
}

/* Seconds for m runs of argv (its output to /dev/null) with envp. */
static double run_cmd(char *const argv[], char **envp, int m)
{
	posix_spawn_file_actions_t fa;
	double t0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	t0 = mono_s();
	for (int i = 0; i < m; i++) {
		pid_t pid;

		if (posix_spawn(&pid, argv[0], &fa, NULL, argv, envp)) {
			perror("posix_spawn");
			exit(1);
		}
		waitpid(pid, NULL, 0);
	}
	posix_spawn_file_actions_destroy(&fa);
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

/* A real rtm-reader on dir (no exporter, so it costs what collecting
 * costs), once it has announced itself; 0 when there is none to run. */
static pid_t start_reader(const char *reader, const char *dir)
{
	char path[4200], *argv[] = { (char *)reader, "--dir", (char *)dir, "--exporter", "none",
				     "--interval", "1s", NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, reader, &fa, NULL, argv, environ)) {
		perror("rtm-bench-exec: rtm-reader");
		exit(1);
	}
	posix_spawn_file_actions_destroy(&fa);
	snprintf(path, sizeof path, "%s/.rtm-reader", dir);
	for (int i = 0; i < 3000 && access(path, F_OK); i++)
		usleep(10000);
	if (access(path, F_OK)) {
		fprintf(stderr, "rtm-bench-exec: %s never announced itself in %s\n", reader, dir);
		exit(1);
	}
	return pid;
}

static void stop_reader(pid_t pid, const char *dir)
{
	char path[4200];

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	/* It leaves its announcement (a restart must not look like an
	 * absence): the rows without a reader must not see one. */
	snprintf(path, sizeof path, "%s/.rtm-reader", dir);
	unlink(path);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'r' }, { "execs", required_argument, NULL, 'm' },
		{ "reader", required_argument, NULL, 'R' }, { "dgram-qlen", required_argument, NULL, 'q' },
		{ 0 },
	};
	char dir[] = "/dev/shm/rtm-bench-exec.XXXXXX", pre[4200], rdir[4200], cmd[4300];
	char self[4096], epre[4200], reader[4200] = "";
	char *true_argv[] = { "/bin/true", NULL };
	char *ls_argv[] = { "/bin/ls", "/usr/share/doc", NULL };
	int runs = 3, m = 300, o, have = 0, rc;
	long qlen = 0, qlen_was = qlen_get();
	bool set_qlen;
	char **plain, **loaded, **floor_env;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'r')
			runs = atoi(optarg);
		else if (o == 'm')
			m = atoi(optarg);
		else if (o == 'R')
			snprintf(reader, sizeof reader, "%s", optarg);
		else if (o == 'q') {
			char *end;

			qlen = strtol(optarg, &end, 10);
			if (end == optarg || *end || qlen < 1)
				qlen = -1;
		}
		else
			return 2;
	}
	if (optind != argc - 1 || runs < 1 || runs > 15 || m < 10 || qlen < 0 || qlen > 1 << 20) {
		fprintf(stderr, "usage: rtm-bench-exec PRELOAD.so [--runs 1..15] [--execs M>=10] "
			"[--reader READER] [--dgram-qlen 1..1048576]\n");
		return 2;
	}
	set_qlen = qlen && qlen != qlen_was;
	if (!mkdtemp(dir) || bench_self(self, sizeof self))
		return 1;
	*strrchr(self, '/') = '\0';
	if (!*reader)
		snprintf(reader, sizeof reader, "%s/../reader/rtm-reader", self);
	if (access(reader, X_OK)) {
		fprintf(stderr, "rtm-bench-exec: no rtm-reader at %s (give --reader)\n", reader);
		rmdir(dir);
		return 2;
	}
	/* Set last, once nothing can stop the run before the value is put
	 * back at its end. */
	if (set_qlen && qlen_set(qlen)) {
		fprintf(stderr, "rtm-bench-exec: --dgram-qlen: cannot write %s: %s\n", QLEN_PATH,
			strerror(errno));
		rmdir(dir);
		return 1;
	}
	snprintf(epre, sizeof epre, "LD_PRELOAD=%s/librtm-bench-empty.so", self);
	snprintf(rdir, sizeof rdir, "RTM_DIR=%s", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", argv[optind]);
	plain = env_plus((const char *[]){ rdir, NULL });
	loaded = env_plus((const char *[]){ rdir, pre, NULL });
	floor_env = env_plus((const char *[]){ rdir, epre, NULL });
	{
		const struct {
			const char *label;
			char *const *argv;
			char **env;
			int files;
			bool reader;
		} rows[] = {
			{ "true, no reader attached (publishes nothing)", true_argv, loaded, 0, false },
			{ "true, rtm-reader attached (final values)    ", true_argv, loaded, 0, true },
			{ "ls,   no reader attached                    ", ls_argv, loaded, 0, false },
			{ "ls,   rtm-reader attached                   ", ls_argv, loaded, 0, true },
			{ "true, loaded, not publishing (RTM_PUBLISH)  ", true_argv,
			  env_plus((const char *[]){ rdir, pre, "RTM_PUBLISH=top", "RTM_PUBLISH_TOP=1",
						   NULL }), 0, true },
			{ "true,  2000 other files, rtm-reader attached", true_argv, loaded, 2000, true },
			{ "true, 20000 other files, rtm-reader attached", true_argv, loaded, 20000, true },
			{ "true, 20000 left-over files, no reader      ", true_argv, loaded, 20000, false },
		};

		printf("rtm-bench-exec: %d runs of each command with the preload, with an empty "
		       "LD_PRELOAD library (the floor) and with none, interleaved; %d repetitions "
		       "(min / median / max); net.unix.max_dgram_qlen %ld%s\n", m, runs,
		       qlen ? qlen : qlen_was, set_qlen ? " (--dgram-qlen)" : "");
		printf("  %-45s %-26s %-26s %s\n", "", "preload / floor", "floor / none",
		       "ms per run");
		for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
			double ratio[16], over[16], ms[16];
			pid_t rd = 0;

			files(dir, have, rows[k].files);
			have = rows[k].files > have ? rows[k].files : have;
			if (rows[k].reader)
				rd = start_reader(reader, dir);
			for (int r = 0; r < runs; r++) {
				double base = 0, fl = 0, with = 0;

				for (int done = 0; done < m; done += BLOCK) {
					int b = m - done < BLOCK ? m - done : BLOCK;

					base += run_cmd(rows[k].argv, plain, b);
					fl += run_cmd(rows[k].argv, floor_env, b);
					with += run_cmd(rows[k].argv, rows[k].env, b);
				}
				ratio[r] = with / fl;
				over[r] = fl / base;
				ms[r] = with * 1e3 / m;
			}
			stop_reader(rd, dir);
			bench_runs_sort(ratio, runs);
			bench_runs_sort(over, runs);
			bench_runs_sort(ms, runs);
			printf("  %s  %.2fx / %.2fx / %.2fx   %.2fx / %.2fx / %.2fx   %.2f\n",
			       rows[k].label, ratio[0], ratio[runs / 2], ratio[runs - 1], over[0],
			       over[runs / 2], over[runs - 1], ms[runs / 2]);
		}
	}
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	rc = system(cmd) ? 1 : 0;
	if (set_qlen && qlen_was > 0 && qlen_set(qlen_was)) {
		fprintf(stderr, "rtm-bench-exec: cannot put %s back to %ld: %s\n", QLEN_PATH,
			qlen_was, strerror(errno));
		rc = 1;
	}
	return rc;
}
