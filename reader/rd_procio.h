/* SPDX-License-Identifier: MIT */
/*
 * rd_procio.h - the reader's batched per-cycle file I/O.  Each cycle reads
 * a handful of /proc files for every producer through kept-open fds; this
 * submits them as one batch on an io_uring ring, or as a plain pread() loop
 * when io_uring is unavailable (ENOSYS, EPERM from a seccomp profile,
 * kernel.io_uring_disabled) or not chosen.  tools/rtm-bench-reader measures
 * both; docs/reference/reader.md ("io_uring") gives the numbers behind the default.
 */
#ifndef RD_PROCIO_H
#define RD_PROCIO_H

#include <stddef.h>
#include <sys/types.h>

#include "rd_config.h"

struct rd_procio;

struct rd_procio_req {
	int fd;        /* read from offset 0 */
	char *buf;     /* result is NUL-terminated */
	size_t size;   /* including room for the NUL */
	ssize_t result; /* bytes read, or -errno (-ESRCH: process gone) */
};

/* Creates the batch reader.  RD_IO_AUTO measures both paths on the
 * reader's own /proc files (a few ms) and keeps the one that costs less
 * CPU (io_uring's workers included), sync when a ring
 * cannot be set up; RD_IO_URING fails with -errno if it cannot.  Returns 0
 * or -errno. */
int rd_procio_open(struct rd_procio **out, enum rd_io_mode mode);
void rd_procio_close(struct rd_procio *p);
/* "io_uring" or "sync", and why: the flag, or the measurement. */
const char *rd_procio_mode(const struct rd_procio *p);
const char *rd_procio_why(const struct rd_procio *p);

/* Reads every request; returns 0 or -errno for a ring failure (results of
 * individual files are in req[i].result). */
int rd_procio_read(struct rd_procio *p, struct rd_procio_req *req, size_t n);

#endif /* RD_PROCIO_H */
