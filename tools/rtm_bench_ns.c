/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-ns - what a producer in another pid namespace (a container)
 * costs the reader, against a producer in the reader's own, in one run.
 * N steady producers of M series each publish into one directory from the
 * host's pid namespace, N more into another from pid namespaces of their
 * own (unshare(CLONE_NEWPID), each its namespace's pid 1, as containers
 * are).  Two readers (the daemon's own cycle, every group on, no exporter)
 * read one directory each, in turn, R times; reported per producer per
 * cycle: the host figure, the namespaced one and their ratio (min, median,
 * max over the rounds).  Also the first cycle of each (finding the
 * processes: for the namespaced ones one look at /proc for all of them)
 * and how many looks at /proc the steady rounds made (none is the design).
 * Needs root (pid namespaces).
 *
 * usage: rtm-bench-ns [--producers N] [--series M] [--rounds R]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_runs.h"

#include "rd_collect.h"
#include "rd_config.h"
#include "rd_dir.h"
#include "rd_pidns.h"
#include "rtm.h"

static int series = 20;

static double thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A steady producer: its series, then alive until its parent goes. */
static _Noreturn void steady(const char *dir)
{
	struct rtm_segment *seg;
	rtm_counter_t c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "steady",
							      .dir = dir }))
		_exit(1);
	for (int k = 0; k < series; k++) {
		char name[32];

		snprintf(name, sizeof name, "steady.ops.%d", k);
		rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = name });
		rtm_counter_add(&c, (uint64_t)k + 1);
	}
	for (;;)
		pause();
}

/* Starts a producer into dir, in a pid namespace of its own when ns. */
static pid_t start(const char *dir, bool ns)
{
	pid_t p = fork();

	if (p < 0) {
		perror("rtm-bench-ns: fork");
		exit(1);
	}
	if (p)
		return p;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (ns) {
		if (unshare(CLONE_NEWPID)) {
			perror("rtm-bench-ns: unshare(CLONE_NEWPID) (root needed)");
			_exit(1);
		}
		p = fork();
		if (p == 0)
			steady(dir);
		waitpid(p, NULL, 0);
		_exit(0);
	}
	steady(dir);
}

/* Empties and removes dir. */
static void remove_dir(const char *dir)
{
	char **names;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	if (fd < 0)
		return;
	n = rd_dir_list(fd, &names);
	for (int i = 0; i < n; i++)
		unlinkat(fd, names[i], 0);
	if (n >= 0)
		rd_dir_names_free(names);
	close(fd);
	rmdir(dir);
}

static int segments_in(const char *dir)
{
	char **names;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	if (fd < 0)
		return 0;
	n = rd_dir_list(fd, &names);
	close(fd);
	if (n > 0)
		rd_dir_names_free(names);
	return n < 0 ? 0 : n;
}

static void open_reader(struct rd_reader *r, struct rd_config *c, char *dir)
{
	char *argv[] = { "rtm-reader", "--dir", dir, "--exporter", "none", "--interval", "1h",
			 "--group", "scheduler=on", "--leak", "off", NULL };
	char err[512];

	if (rd_config_load(c, 11, argv, err, sizeof err) || rd_reader_init(r, c, err, sizeof err)) {
		fprintf(stderr, "rtm-bench-ns: %s\n", err);
		exit(1);
	}
}

/* One cycle's CPU per producer, in microseconds. */
static double cycle_us(struct rd_reader *r, int producers)
{
	double t0 = thread_cpu_us();

	rd_reader_cycle(r);
	return (thread_cpu_us() - t0) / producers;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "producers", required_argument, NULL, 'n' },
		{ "series", required_argument, NULL, 'm' },
		{ "rounds", required_argument, NULL, 'r' },
		{ 0 },
	};
	int producers = 200, rounds = 21, opt;
	char host_dir[] = "/tmp/rtm-bench-ns-host.XXXXXX", ns_dir[] = "/tmp/rtm-bench-ns-ns.XXXXXX";
	struct rd_config hc, nc;
	struct rd_reader hr, nr;
	double *h, *n, *ratio, first_h, first_n;
	pid_t *kids;
	uint64_t scans;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'n': producers = atoi(optarg); break;
		case 'm': series = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: rtm-bench-ns [--producers N] [--series M] [--rounds R]\n");
			return 2;
		}
	}
	if (producers < 1 || series < 1 || rounds < 1) {
		fprintf(stderr, "rtm-bench-ns: --producers, --series and --rounds must be positive\n");
		return 2;
	}
	if (!mkdtemp(host_dir) || !mkdtemp(ns_dir)) {
		perror("rtm-bench-ns: mkdtemp");
		return 1;
	}
	kids = calloc((size_t)producers * 2, sizeof *kids);
	for (int i = 0; kids && i < producers; i++) {
		kids[2 * i] = start(host_dir, false);
		kids[2 * i + 1] = start(ns_dir, true);
	}
	for (int i = 0; i < 1000 && (segments_in(host_dir) < producers ||
				     segments_in(ns_dir) < producers); i++)
		usleep(10000);
	if (segments_in(host_dir) < producers || segments_in(ns_dir) < producers) {
		fprintf(stderr, "rtm-bench-ns: the producers did not all publish\n");
		return 1;
	}
	open_reader(&hr, &hc, host_dir);
	open_reader(&nr, &nc, ns_dir);
	/* First cycles: every segment opened, its process found. */
	first_h = cycle_us(&hr, producers);
	first_n = cycle_us(&nr, producers);
	if (hr.self.segments != producers || nr.self.segments != producers) {
		fprintf(stderr, "rtm-bench-ns: exported %lld host and %lld namespaced producers of %d\n",
			(long long)hr.self.segments, (long long)nr.self.segments, producers);
		return 1;
	}
	h = calloc((size_t)rounds, sizeof *h);
	n = calloc((size_t)rounds, sizeof *n);
	ratio = calloc((size_t)rounds, sizeof *ratio);
	scans = rd_pidns_scans();
	for (int k = 0; k < rounds; k++) {
		/* In turn, so both see the same machine. */
		h[k] = cycle_us(&hr, producers);
		n[k] = cycle_us(&nr, producers);
		ratio[k] = n[k] / h[k];
	}
	scans = rd_pidns_scans() - scans;
	bench_runs_sort(h, rounds);
	bench_runs_sort(n, rounds);
	bench_runs_sort(ratio, rounds);
	printf("rtm-bench-ns: %d producers x %d series in the host's pid namespace, %d in namespaces "
	       "of their own; every group, %d rounds in turn\n", producers, series, producers, rounds);
	printf("first cycle, per producer:  host %.1f us, namespaced %.1f us (finding them: %.2fx)\n",
	       first_h, first_n, first_n / first_h);
	printf("steady cycle, per producer: host %.1f / %.1f / %.1f us, namespaced %.1f / %.1f / "
	       "%.1f us (min / median / max)\n", h[0], h[rounds / 2], h[rounds - 1], n[0],
	       n[rounds / 2], n[rounds - 1]);
	printf("namespaced / host:          %.3f / %.3f / %.3f (target <= 1.1)\n", ratio[0],
	       ratio[rounds / 2], ratio[rounds - 1]);
	printf("looks at /proc in the steady rounds: %llu\n", (unsigned long long)scans);
	rd_reader_fini(&hr);
	rd_reader_fini(&nr);
	rd_config_free(&hc);
	rd_config_free(&nc);
	free(h);
	free(n);
	free(ratio);
	for (int i = 0; i < producers * 2; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	free(kids);
	remove_dir(host_dir);
	remove_dir(ns_dir);
	return 0;
}
