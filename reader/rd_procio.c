/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_procio.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_ENTRIES 256u

struct rd_procio {
	bool uring;
	struct io_uring ring;
	char why[160]; /* how the mode was chosen */
};

static int read_uring(struct rd_procio *p, struct rd_procio_req *req, size_t n);
static void read_sync(struct rd_procio_req *req, size_t n);

/* CPU time of the whole process: io_uring's worker threads are threads of
 * the reader, and what a path costs is the CPU it burns in all of them, not
 * the wall time (the workers may run beside the reader, on other cores). */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* --io auto: a cycle's reads in miniature, the reader's own stat, status
 * and io files on kept fds (procfs formats them as it does any process's),
 * read both ways in turn; the cheaper median in CPU time wins.  Whether io_uring pays
 * depends on the kernel (procfs reads cannot be non-blocking, so the ring
 * may punt each to a worker thread) and on the machine: it is measured
 * where the reader runs, once, at start (a few ms). */
#define PROBE_FILES 48
#define PROBE_ROUNDS 9
static bool uring_measures_faster(struct rd_procio *p)
{
	static const char *const files[] = { "/proc/self/stat", "/proc/self/status",
					     "/proc/self/io" };
	struct rd_procio_req req[PROBE_FILES];
	uint64_t t[2][PROBE_ROUNDS];
	char *bufs = malloc((size_t)PROBE_FILES * 4096);
	int n = 0;
	bool faster = false;

	if (!bufs)
		return false;
	for (int i = 0; i < PROBE_FILES; i++) {
		int fd = open(files[i % 3], O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			continue;
		req[n++] = (struct rd_procio_req){ .fd = fd, .buf = bufs + (size_t)i * 4096,
						   .size = 4096 };
	}
	for (int r = 0; n && r < PROBE_ROUNDS; r++) {
		uint64_t t0 = cpu_ns();

		if (read_uring(p, req, (size_t)n)) {
			n = 0; /* a ring that fails is no choice */
			break;
		}
		t[0][r] = cpu_ns() - t0;
		t0 = cpu_ns();
		read_sync(req, (size_t)n);
		t[1][r] = cpu_ns() - t0;
	}
	if (n) {
		qsort(t[0], PROBE_ROUNDS, sizeof t[0][0], cmp_u64);
		qsort(t[1], PROBE_ROUNDS, sizeof t[1][0], cmp_u64);
		faster = t[0][PROBE_ROUNDS / 2] < t[1][PROBE_ROUNDS / 2];
		snprintf(p->why, sizeof p->why,
			 "auto: %d reads of /proc took %.1f us of CPU by io_uring, %.1f us by pread",
			 n, (double)t[0][PROBE_ROUNDS / 2] / 1e3, (double)t[1][PROBE_ROUNDS / 2] / 1e3);
	} else {
		snprintf(p->why, sizeof p->why, "auto: the io_uring probe failed");
	}
	for (int i = 0; i < n; i++)
		close(req[i].fd);
	free(bufs);
	return faster;
}

int rd_procio_open(struct rd_procio **out, enum rd_io_mode mode)
{
	struct rd_procio *p = calloc(1, sizeof *p);
	int rc;

	if (!p)
		return -ENOMEM;
	snprintf(p->why, sizeof p->why, "%s", mode == RD_IO_URING ? "--io uring" : "--io sync");
	if (mode != RD_IO_SYNC) {
		rc = io_uring_queue_init(RING_ENTRIES, &p->ring, 0);
		if (rc < 0 && mode == RD_IO_URING) {
			free(p);
			return rc;
		}
		if (rc < 0) {
			snprintf(p->why, sizeof p->why, "auto: no io_uring here (%s)", strerror(-rc));
		} else if (mode == RD_IO_AUTO && !uring_measures_faster(p)) {
			io_uring_queue_exit(&p->ring);
		} else {
			p->uring = true;
		}
	}
	*out = p;
	return 0;
}

const char *rd_procio_why(const struct rd_procio *p)
{
	return p->why;
}

void rd_procio_close(struct rd_procio *p)
{
	if (!p)
		return;
	if (p->uring)
		io_uring_queue_exit(&p->ring);
	free(p);
}

const char *rd_procio_mode(const struct rd_procio *p)
{
	return p->uring ? "io_uring" : "sync";
}

static void finish(struct rd_procio_req *r, ssize_t res)
{
	/* A kept fd on /proc/<pid>/... reads ESRCH once the process is gone. */
	r->result = res;
	r->buf[res > 0 ? res : 0] = '\0';
}

static int read_uring(struct rd_procio *p, struct rd_procio_req *req, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t batch = n - done < RING_ENTRIES ? n - done : RING_ENTRIES;
		struct io_uring_cqe *cqe;
		int rc;

		for (size_t i = 0; i < batch; i++) {
			struct rd_procio_req *r = &req[done + i];
			struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

			io_uring_prep_read(sqe, r->fd, r->buf, (unsigned)(r->size - 1), 0);
			io_uring_sqe_set_data64(sqe, done + i);
		}
		rc = io_uring_submit_and_wait(&p->ring, (unsigned)batch);
		if (rc < 0)
			return rc;
		for (size_t got = 0; got < batch;) {
			unsigned head, seen = 0;

			rc = io_uring_wait_cqe(&p->ring, &cqe);
			if (rc < 0)
				return rc;
			io_uring_for_each_cqe(&p->ring, head, cqe) {
				finish(&req[io_uring_cqe_get_data64(cqe)], cqe->res);
				seen++;
			}
			io_uring_cq_advance(&p->ring, seen);
			got += seen;
		}
		done += batch;
	}
	return 0;
}

static void read_sync(struct rd_procio_req *req, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ssize_t r = pread(req[i].fd, req[i].buf, req[i].size - 1, 0);

		finish(&req[i], r < 0 ? -errno : r);
	}
}

int rd_procio_read(struct rd_procio *p, struct rd_procio_req *req, size_t n)
{
	if (p->uring)
		return read_uring(p, req, n);
	read_sync(req, n);
	return 0;
}
