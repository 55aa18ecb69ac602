/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-churn - what a short-lived producer costs the reader when many
 * segments exist.  Runs the real rtm-reader on a directory holding N steady
 * segments (N real processes, M series each), measures its CPU over a
 * steady period (the
 * baseline, same run), then over an equal period in which C short-lived
 * child processes per second each publish a segment and exit, and reports
 * the reader's extra CPU per short-lived producer.  Repeated R times:
 * min/median/max.  Then, on the same processes:
 *   - the reader's CPU per producer per cycle with every group, against a
 *     reader with every /proc group off (segments only: snapshot, encode,
 *     pack) measured first;
 *   - what a producer's thread costs per cycle: each producer starts T - 1
 *     more threads that write, and the steady period is measured again.
 *
 * usage: rtm-bench-churn READER [--segments N] [--series M] [--rate C] [--seconds S]
 *                        [--runs R] [--threads T]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_runs.h"

#include "rd_proc.h"
#include "rtm.h"

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of pid, in seconds. */
static double cpu_s(pid_t pid)
{
	struct rd_proc_stat st;
	char buf[2048];
	ssize_t n = rd_proc_read(pid, "stat", buf, sizeof buf);

	if (n <= 0 || rd_proc_parse_stat(buf, (size_t)n, &st)) {
		fprintf(stderr, "rtm-bench-churn: the reader is gone\n");
		exit(1);
	}
	return (double)(st.utime + st.stime) / (double)sysconf(_SC_CLK_TCK);
}

static void short_lived(const char *dir)
{
	struct rtm_segment *seg;
	rtm_counter_t c;

	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "short",
							      .dir = dir }))
		_exit(1);
	rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "short.ops" });
	rtm_counter_add(&c, 1);
	rtm_segment_close(seg);
	_exit(0);
}

/* A steady producer: 20 series, then alive until killed. */
static int series = 20;

static int threads = 8;
static volatile sig_atomic_t more_threads;
static rtm_counter_t steady_ctr;

static void on_usr1(int sig)
{
	(void)sig;
	more_threads = 1;
}

/* A producer's extra thread: writes (its own shard), then waits. */
static void *writer(void *arg)
{
	(void)arg;
	rtm_counter_add(&steady_ctr, 1);
	for (;;)
		pause();
	return NULL;
}

static void steady(const char *dir)
{
	struct rtm_segment *seg;
	rtm_counter_t c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGUSR1, on_usr1);
	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "steady",
							      .dir = dir }))
		_exit(1);
	for (int k = 0; k < series; k++) {
		char name[32];

		snprintf(name, sizeof name, "steady.ops.%d", k);
		rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = name });
		rtm_counter_add(&c, (uint64_t)k);
		steady_ctr = c;
	}
	for (;;) {
		pause();
		if (more_threads == 1) {
			more_threads = 2;
			for (int t = 1; t < threads; t++) {
				pthread_t th;

				pthread_create(&th, NULL, writer, NULL);
			}
		}
	}
}

static int64_t threads_of(pid_t pid)
{
	struct rd_proc_stat st;
	char buf[2048];
	ssize_t n = rd_proc_read(pid, "stat", buf, sizeof buf);

	return n > 0 && rd_proc_parse_stat(buf, (size_t)n, &st) == 0 ? st.num_threads : -1;
}

static pid_t start_reader(const char *reader, const char *dir, bool segments_only)
{
	pid_t rd = fork();

	if (rd == 0) {
		setenv("RTM_DIR", dir, 1);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		if (segments_only)
			execl(reader, "rtm-reader", "--exporter", "none", "--prometheus", "off",
			      "--interval", "1s", "--leak", "off", "--group", "memory=off", "--group",
			      "process=off", "--group", "threads=off", "--group", "scheduler=off",
			      (char *)NULL);
		else
			execl(reader, "rtm-reader", "--exporter", "none", "--prometheus", "off",
			      "--interval", "1s", (char *)NULL);
		_exit(127);
	}
	sleep(3); /* the first cycles validate every steady segment */
	return rd;
}

static void stop_reader(pid_t rd)
{
	kill(rd, SIGTERM);
	waitpid(rd, NULL, 0);
}

static int published(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Reader CPU over secs, spawning rate short-lived producers per second
 * (0: none); *spawned counts them. */
static double period(pid_t reader, const char *dir, double secs, int rate, int *spawned)
{
	double t0 = mono_s(), c0 = cpu_s(reader);

	*spawned = 0;
	while (mono_s() - t0 < secs) {
		if (rate && *spawned < (mono_s() - t0) * rate) {
			pid_t p = fork();

			if (p == 0)
				short_lived(dir);
			if (p > 0) {
				waitpid(p, NULL, 0);
				(*spawned)++;
			}
			continue;
		}
		usleep(2000);
	}
	return cpu_s(reader) - c0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "segments", required_argument, NULL, 'n' }, { "rate", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' }, { "runs", required_argument, NULL, 'r' },
		{ "series", required_argument, NULL, 'm' }, { "threads", required_argument, NULL, 't' },
		{ 0 },
	};
	int n = 1000, rate = 20, runs = 3, o, none;
	double secs = 5, per[16], steady_ms[16], seg_ms[16], thr_ms[16];
	char dir[] = "/dev/shm/rtm-bench-churn.XXXXXX", cmd[256];
	pid_t *kids;
	const char *reader;
	pid_t rd;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'n')
			n = atoi(optarg);
		else if (o == 'c')
			rate = atoi(optarg);
		else if (o == 's')
			secs = atof(optarg);
		else if (o == 'r')
			runs = atoi(optarg);
		else if (o == 'm')
			series = atoi(optarg);
		else if (o == 't')
			threads = atoi(optarg);
		else
			return 2;
	}
	if (optind != argc - 1 || n < 1 || n > 20000 || rate < 1 || secs <= 0 || runs < 1 ||
	    runs > 16 || series < 1 || series > 256 || threads < 2 || threads > 64) {
		fprintf(stderr, "usage: rtm-bench-churn READER [--segments 1..20000] [--series 1..256] "
				"[--rate C] [--seconds S] [--runs 1..16] [--threads 2..64]\n");
		return 2;
	}
	reader = argv[optind];
	if (!mkdtemp(dir))
		return 1;
	kids = calloc((size_t)n, sizeof *kids);
	for (int i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] == 0)
			steady(dir);
		if (kids[i] < 0) {
			fprintf(stderr, "rtm-bench-churn: fork: producer %d\n", i);
			return 1;
		}
	}
	while (published(dir) < n)
		usleep(10000);

	/* Baseline of the per-producer figure: the segments alone. */
	rd = start_reader(reader, dir, true);
	for (int r = 0; r < runs; r++)
		seg_ms[r] = period(rd, dir, secs, 0, &none) * 1e3 / secs;
	stop_reader(rd);

	rd = start_reader(reader, dir, false);
	for (int r = 0; r < runs; r++) {
		int spawned;
		double base = period(rd, dir, secs, 0, &none);
		double churn = period(rd, dir, secs, rate, &spawned);

		steady_ms[r] = base * 1e3 / secs;
		per[r] = spawned ? (churn - base) * 1e3 / spawned : 0;
	}
	/* The same producers with T threads each, the same reader. */
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGUSR1);
	for (int i = 0; i < n; i++)
		while (threads_of(kids[i]) < threads)
			usleep(1000);
	sleep(2); /* a cycle or two opens the new threads' files */
	for (int r = 0; r < runs; r++)
		thr_ms[r] = period(rd, dir, secs, 0, &none) * 1e3 / secs;
	stop_reader(rd);

	bench_runs_sort(per, runs);
	bench_runs_sort(steady_ms, runs);
	bench_runs_sort(seg_ms, runs);
	bench_runs_sort(thr_ms, runs);
	printf("rtm-bench-churn: %d steady producers x %d series, reader every 1s, %d short-lived "
	       "producers/s, %d runs of %.0f s + %.0f s\n", n, series, rate, runs, secs, secs);
	printf("  reader CPU, steady (baseline): min %.1f  median %.1f  max %.1f  ms per second\n",
	       steady_ms[0], steady_ms[runs / 2], steady_ms[runs - 1]);
	printf("  extra CPU per short-lived producer: min %.3f  median %.3f  max %.3f  ms\n", per[0],
	       per[runs / 2], per[runs - 1]);
	printf("  per producer per cycle (median): every group %.1f us; segments only (snapshot, "
	       "encode, pack) %.1f us; ratio %.2fx\n", steady_ms[runs / 2] * 1e3 / n,
	       seg_ms[runs / 2] * 1e3 / n, steady_ms[runs / 2] / seg_ms[runs / 2]);
	printf("  %d threads per producer: reader CPU median %.1f ms per second; per extra thread "
	       "per cycle %.2f us (medians)\n", threads, thr_ms[runs / 2],
	       (thr_ms[runs / 2] - steady_ms[runs / 2]) * 1e3 / ((double)n * (threads - 1)));
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		waitpid(kids[i], NULL, 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd))
		return 1;
	free(kids);
	return 0;
}
