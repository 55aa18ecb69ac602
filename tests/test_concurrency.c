/* SPDX-License-Identifier: MIT */
/*
 * Writers and a reader at full speed on the same segment.  Runs under
 * ThreadSanitizer too (tools/run-tests): every shared access is atomic.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#define WRITERS 4
#define WAVES   3
#define OPS     100000

static rtm_counter_t counter;
static rtm_updown_t active;
static rtm_hist_t hist;
static int stop_reader;

static void *writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < OPS; i++) {
		rtm_updown_add(&active, 1);
		rtm_counter_add(&counter, 1);
		/* Every record is 1.0: a consistent snapshot has sum == count. */
		rtm_hist_record(&hist, 1.0);
		rtm_updown_add(&active, -1);
	}
	return NULL;
}

struct reader_stats {
	struct rtm_segment *seg;
	long snapshots;
	long torn;
	char failure[320];
};

static void *reader(void *arg)
{
	struct reader_stats *st = arg;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	int64_t last_counter = 0;
	uint64_t last_count = 0;

	if (rd_segment_open(&rd, AT_FDCWD, rtm_segment_path(st->seg), 0)) {
		snprintf(st->failure, sizeof st->failure, "open: %s", rd.err);
		return NULL;
	}
	while (!__atomic_load_n(&stop_reader, __ATOMIC_ACQUIRE) && !st->failure[0]) {
		uint64_t buckets = 0;
		const struct rd_value *c, *h;

		if (rd_segment_snapshot(&rd, &s)) {
			snprintf(st->failure, sizeof st->failure, "snapshot: %s", rd.err);
			break;
		}
		/* Release: the main thread waits for the first (below). */
		__atomic_store_n(&st->snapshots, st->snapshots + 1, __ATOMIC_RELEASE);
		c = &s.values[0];
		h = &s.values[2];
		st->torn += s.torn;
		for (uint32_t b = 0; b <= rd.metrics[2].n_bounds; b++)
			buckets += h->buckets[b];
		if (c->i < last_counter)
			snprintf(st->failure, sizeof st->failure,
				 "counter went backwards: %lld after %lld",
				 (long long)c->i, (long long)last_counter);
		else if (h->count < last_count)
			snprintf(st->failure, sizeof st->failure, "histogram count went backwards");
		else if (h->count != buckets)
			snprintf(st->failure, sizeof st->failure, "count %llu != bucket sum %llu",
				 (unsigned long long)h->count, (unsigned long long)buckets);
		else if (!s.torn && h->sum != (double)h->count)
			snprintf(st->failure, sizeof st->failure,
				 "torn read not detected: sum %.1f, count %llu", h->sum,
				 (unsigned long long)h->count);
		else if (h->count && (h->min != 1.0 || h->max != 1.0))
			snprintf(st->failure, sizeof st->failure, "min/max wrong");
		else if (s.values[1].i < 0 || s.values[1].i > WRITERS)
			snprintf(st->failure, sizeof st->failure, "active out of range: %lld",
				 (long long)s.values[1].i);
		last_counter = c->i;
		last_count = h->count;
	}
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	return NULL;
}

static void writers_and_reader_agree_at_every_snapshot(void **state)
{
	char *dir = tu_mkdir();
	struct rtm_segment *seg = tu_open(dir, "stress");
	struct reader_stats st = { .seg = seg };
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	pthread_t r, w[WRITERS];

	(void)state;
	assert_int_equal(rtm_counter_create(seg, &counter, &(struct rtm_metric_def){
		.name = "s.counter" }), 0);
	assert_int_equal(rtm_updown_create(seg, &active, &(struct rtm_metric_def){
		.name = "s.active" }), 0);
	assert_int_equal(rtm_hist_create(seg, &hist, &(struct rtm_metric_def){
		.name = "s.hist" }), 0);
	pthread_create(&r, NULL, reader, &st);
	/* The writers start once the reader is reading: on a loaded machine
	 * they could otherwise all be done before its first snapshot.
	 * Acquire pairs with the reader's release of its count; failure is
	 * read only after the join, unless the count never moves. */
	for (int i = 0; i < 20000 && !__atomic_load_n(&st.snapshots, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	/* Waves of threads: later waves reuse the shards of exited ones. */
	for (int wave = 0; wave < WAVES; wave++) {
		for (int i = 0; i < WRITERS; i++)
			pthread_create(&w[i], NULL, writer, NULL);
		for (int i = 0; i < WRITERS; i++)
			pthread_join(w[i], NULL);
	}
	__atomic_store_n(&stop_reader, 1, __ATOMIC_RELEASE);
	pthread_join(r, NULL);
	if (st.failure[0])
		fail_msg("after %ld snapshots: %s", st.snapshots, st.failure);
	assert_true(st.snapshots > 0);
	print_message("%ld snapshots, %ld torn retries exhausted\n", st.snapshots, st.torn);

	tu_read(seg, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.values[0].i, (int64_t)WRITERS * WAVES * OPS);
	assert_int_equal(s.values[1].i, 0);
	assert_int_equal(s.values[2].count, (uint64_t)WRITERS * WAVES * OPS);
	assert_true(s.values[2].sum == (double)WRITERS * WAVES * OPS);
	assert_int_equal(s.torn, 0);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	rtm_segment_close(seg);
	tu_rmdir(dir);
}

/* A child stops inside a histogram write (seq odd) and is SIGKILLed there:
 * the reader must report the slot torn and return. */
static void writer_killed_mid_write_leaves_a_reported_torn_slot(void **state)
{
	char *dir = tu_mkdir();
	int pipefd[2];
	char path[4096] = "";
	pid_t pid;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };

	(void)state;
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rtm_segment *seg = tu_open(dir, "doomed");
		rtm_hist_t h;
		ssize_t n;

		rtm_hist_create(seg, &h, &(struct rtm_metric_def){ .name = "d.h" });
		rtm_hist_record(&h, 0.5); /* claims and caches this thread's shard */
		rtm_shm_seq_write_begin((uint64_t *)(void *)(rtm__way(h.way)->shard + h.off));
		n = write(pipefd[1], rtm_segment_path(seg), strlen(rtm_segment_path(seg)) + 1);
		(void)n;
		for (;;)
			pause();
	}
	close(pipefd[1]);
	assert_true(read(pipefd[0], path, sizeof path) > 0);
	close(pipefd[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);

	assert_int_equal(rd_segment_open(&rd, AT_FDCWD, path, 0), 0);
	assert_int_equal(rd_segment_liveness(&rd), RD_EXITED);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.torn, 1);
	assert_int_equal(s.values[0].torn, 1);
	assert_int_equal(s.values[0].count, 1); /* last read still reported */
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

/* Kill a busy writer at arbitrary moments; every read must finish. */
static void writers_killed_at_random_moments_never_hang_the_reader(void **state)
{
	char *dir = tu_mkdir();
	unsigned seed = 7;

	(void)state;
	for (int round = 0; round < 10; round++) {
		int pipefd[2];
		char path[4096] = "";
		pid_t pid;
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };

		assert_int_equal(pipe(pipefd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct rtm_segment *seg = tu_open(dir, "busy");
			rtm_hist_t h;
			ssize_t n;

			rtm_hist_create(seg, &h, &(struct rtm_metric_def){ .name = "b.h" });
			rtm_hist_record(&h, 0); /* at least one, however late the kill */
			n = write(pipefd[1], rtm_segment_path(seg),
				  strlen(rtm_segment_path(seg)) + 1);
			(void)n;
			for (double v = 0;; v += 1e-6)
				rtm_hist_record(&h, v);
		}
		close(pipefd[1]);
		assert_true(read(pipefd[0], path, sizeof path) > 0);
		close(pipefd[0]);
		usleep(1000 + (unsigned)(rand_r(&seed) % 20000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		assert_int_equal(rd_segment_open(&rd, AT_FDCWD, path, 0), 0);
		assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
		assert_true(s.torn <= 1);
		assert_true(s.values[0].count > 0);
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
		unlink(path);
	}
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writers_and_reader_agree_at_every_snapshot),
		cmocka_unit_test(writer_killed_mid_write_leaves_a_reported_torn_slot),
		cmocka_unit_test(writers_killed_at_random_moments_never_hang_the_reader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
