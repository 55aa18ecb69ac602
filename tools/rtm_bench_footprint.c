/* SPDX-License-Identifier: MIT */
/*
 * rtm-bench-footprint: what a segment costs in tmpfs memory (Shmem), by
 * what the process registers and how many threads write.
 *
 *   rtm-bench-footprint [PRELOAD.so]
 *
 * Each row opens a segment with default options, registers M series, has T
 * threads (all alive at once) update every one, and reports the file's
 * allocated bytes (st_blocks, what tmpfs charges as Shmem).  The same-run
 * baseline is what rtm 0.1 reserved up front for every segment, whatever
 * it held: the whole file at its default 32 private shards.
 * With PRELOAD.so it also runs `sleep 1` under LD_PRELOAD and measures that
 * segment.  The figures are exact page counts, not timings.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rtm.h"

struct job {
	rtm_counter_t *c;
	rtm_hist_t *h;
	int nc, nh;
	pthread_barrier_t *bar;
};

static void *work(void *p)
{
	struct job *j = p;

	for (int i = 0; i < j->nc; i++)
		rtm_counter_add(&j->c[i], 1);
	for (int i = 0; i < j->nh; i++)
		rtm_hist_record(&j->h[i], 0.001);
	pthread_barrier_wait(j->bar); /* every thread holds its shard at once */
	return NULL;
}

static void file_bytes(const char *path, long *used, long *size)
{
	struct stat st;

	if (stat(path, &st)) {
		perror(path);
		exit(1);
	}
	*used = (long)st.st_blocks * 512;
	*size = (long)st.st_size;
}

/* Allocated and full bytes of a segment with nc counters, nh histograms
 * (default bounds) and threads writers. */
static void measure(const char *dir, int nc, int nh, int threads, long *used, long *size)
{
	struct rtm_segment *seg;
	rtm_counter_t *c = calloc((size_t)nc + 1, sizeof *c);
	rtm_hist_t *h = calloc((size_t)nh + 1, sizeof *h);
	pthread_t *t = calloc((size_t)threads, sizeof *t);
	pthread_barrier_t bar;
	struct job j = { c, h, nc, nh, &bar };
	char name[32];

	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "bench", .dir = dir })) {
		fprintf(stderr, "rtm-bench-footprint: cannot open a segment in %s\n", dir);
		exit(1);
	}
	for (int i = 0; i < nc; i++) {
		snprintf(name, sizeof name, "bench.counter.%d", i);
		rtm_counter_create(seg, &c[i], &(struct rtm_metric_def){ .name = name, .unit = "{op}" });
	}
	for (int i = 0; i < nh; i++) {
		snprintf(name, sizeof name, "bench.hist.%d", i);
		rtm_hist_create(seg, &h[i], &(struct rtm_metric_def){ .name = name, .unit = "s" });
	}
	pthread_barrier_init(&bar, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, work, &j);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	file_bytes(rtm_segment_path(seg), used, size);
	rtm_segment_close(seg);
	unlink(rtm_segment_path(seg));
	free(c);
	free(h);
	free(t);
}

static long before; /* bytes rtm 0.1 reserved per segment */

static void row(const char *dir, const char *what, int nc, int nh, int threads)
{
	long used, size;

	measure(dir, nc, nh, threads, &used, &size);
	printf("%-34s %4d %4d %4d %9.1f %8.2f\n", what, nc, nh, threads, used / 1024.0,
	       (double)used / (double)before);
}

/* The whole file of a segment with 0.1's defaults: what 0.1 reserved. */
static long reserved_before(const char *dir)
{
	struct rtm_segment *seg;
	long used, size;

	if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "bench",
			     .dir = dir, .max_threads = 32 }))
		exit(1);
	file_bytes(rtm_segment_path(seg), &used, &size);
	{
		/* 0.1's file ended with the shards: leave out 1.1's lock-site
		 * table after them (a sparse page that costs nothing unused). */
		struct rtm_shm_header h;
		int fd = open(rtm_segment_path(seg), O_RDONLY | O_CLOEXEC);

		if (fd >= 0 && pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h &&
		    (h.compat_features & RTM_SHM_COMPAT_LOCK_SITES))
			size = (long)h.sites_offset;
		if (fd >= 0)
			close(fd);
	}
	rtm_segment_close(seg);
	unlink(rtm_segment_path(seg));
	return size;
}

/* Slope of allocated bytes: (f(b) - f(a)) / (b - a), over counters or threads. */
static double slope(const char *dir, bool by_threads, int a, int b)
{
	long ua, ub, size;

	measure(dir, by_threads ? 16 : a, 0, by_threads ? a : 1, &ua, &size);
	measure(dir, by_threads ? 16 : b, 0, by_threads ? b : 1, &ub, &size);
	return (double)(ub - ua) / (b - a);
}

static void preloaded(const char *dir, const char *so)
{
	char env[4096], path[4096];
	pid_t pid = fork();
	long used = 0, size = 0;
	struct dirent *de;
	DIR *d;

	if (pid == 0) {
		snprintf(env, sizeof env, "LD_PRELOAD=%s", so);
		putenv(env);
		setenv("RTM_DIR", dir, 1);
		/* Its file while it runs: a published command's cost. */
		setenv("RTM_PUBLISH_DELAY_MS", "0", 1);
		execlp("sleep", "sleep", "1", (char *)NULL);
		_exit(127);
	}
	usleep(500000);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char pre[32];

		snprintf(pre, sizeof pre, "rtm.%d.", (int)pid);
		if (!strncmp(de->d_name, pre, strlen(pre))) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			file_bytes(path, &used, &size);
			unlink(path);
		}
	}
	if (d)
		closedir(d);
	waitpid(pid, NULL, 0);
	if (!size) {
		fprintf(stderr, "rtm-bench-footprint: no segment from the preloaded sleep\n");
		exit(1);
	}
	printf("%-34s %4s %4s %4d %9.1f %8.2f\n", "LD_PRELOAD sleep 1", "-", "-", 2,
	       used / 1024.0, (double)used / (double)before);
}

int main(int argc, char **argv)
{
	char dir[] = "/dev/shm/rtm-bench-footprint.XXXXXX";

	if (argc > 2 || (argc == 2 && !strcmp(argv[1], "--help"))) {
		fprintf(stderr, "usage: rtm-bench-footprint [PRELOAD.so]\n");
		return 2;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	before = reserved_before(dir);
	printf("segment memory (tmpfs Shmem) by what is used; baseline: rtm 0.1 reserved "
	       "%.1f KiB for every segment\n", before / 1024.0);
	printf("%-34s %4s %4s %4s %9s %8s\n", "case", "ctr", "hist", "thr", "used KiB",
	       "/0.1");
	row(dir, "empty segment", 0, 0, 1);
	row(dir, "README example (3 series)", 2, 1, 1);
	row(dir, "16 counters, 1 thread", 16, 0, 1);
	row(dir, "16 series (12 ctr + 4 hist), 4 thr", 12, 4, 4);
	row(dir, "16 counters, 4 threads", 16, 0, 4);
	row(dir, "64 counters, 4 threads", 64, 0, 4);
	row(dir, "256 counters, 4 threads", 256, 0, 4);
	row(dir, "16 counters, 64 threads", 16, 0, 64);
	row(dir, "16 counters, 256 threads", 16, 0, 256);
	if (argc == 2)
		preloaded(dir, argv[1]);
	printf("per counter (1 thread, 16..256 counters): %.0f bytes\n", slope(dir, false, 16, 256));
	printf("per writing thread (16 counters, 4..64 threads): %.0f bytes\n",
	       slope(dir, true, 4, 64));
	rmdir(dir);
	return 0;
}
