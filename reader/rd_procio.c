/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_procio.h"

#include <errno.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define RING_ENTRIES 256u

struct rd_procio {
	bool uring;
	struct io_uring ring;
};

int rd_procio_open(struct rd_procio **out, enum rd_io_mode mode)
{
	struct rd_procio *p = calloc(1, sizeof *p);
	int rc;

	if (!p)
		return -ENOMEM;
	/* auto means sync: procfs reads cannot be non-blocking, so io_uring
	 * punts every one to a worker thread and loses (see the README's
	 * figures from rtm-bench-reader). */
	if (mode == RD_IO_URING) {
		rc = io_uring_queue_init(RING_ENTRIES, &p->ring, 0);
		if (rc < 0) {
			free(p);
			return rc;
		}
		p->uring = true;
	}
	*out = p;
	return 0;
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

int rd_procio_read(struct rd_procio *p, struct rd_procio_req *req, size_t n)
{
	if (p->uring)
		return read_uring(p, req, n);
	for (size_t i = 0; i < n; i++) {
		ssize_t r = pread(req[i].fd, req[i].buf, req[i].size - 1, 0);

		finish(&req[i], r < 0 ? -errno : r);
	}
	return 0;
}
