/* SPDX-License-Identifier: MIT */
/* rd_proc.h - parse the /proc files the reader needs (pure functions over
 * buffers, so the same code serves plain reads and io_uring batches). */
#ifndef RD_PROC_H
#define RD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rd_proc_stat {
	char state;
	uint64_t utime, stime;   /* clock ticks */
	uint64_t minflt, majflt;
	int64_t num_threads;
	uint64_t start_ticks;    /* field 22 */
	uint64_t vsize;          /* bytes */
	int64_t rss_pages;
};

/* Parses /proc/<pid>/stat text.  Returns 0 or -EINVAL. */
int rd_proc_parse_stat(const char *buf, size_t len, struct rd_proc_stat *out);

struct rd_proc_status {
	uint64_t rss_bytes;      /* VmRSS */
	uint64_t ctx_voluntary;  /* voluntary_ctxt_switches */
	uint64_t ctx_involuntary;
};

/* Parses /proc/<pid>/status text.  Returns 0 or -EINVAL. */
int rd_proc_parse_status(const char *buf, size_t len, struct rd_proc_status *out);

/* read_bytes and write_bytes from /proc/<pid>/io.  Returns 0 or -EINVAL. */
int rd_proc_parse_io(const char *buf, size_t len, uint64_t *read_bytes,
		     uint64_t *write_bytes);

/* The second field of /proc/<pid>/task/<tid>/schedstat: nanoseconds the
 * task spent runnable, waiting for a CPU.  Returns 0 or -EINVAL. */
int rd_proc_parse_schedstat(const char *buf, size_t len, uint64_t *wait_ns);

/* Real uid from /proc/<pid>/status text.  Returns 0 or -EINVAL. */
int rd_proc_parse_uid(const char *buf, size_t len, uid_t *uid);

/* Reads /proc/<pid>/<file> into buf (NUL-terminated).  Returns the length,
 * -ESRCH when the process is gone, or -errno. */
ssize_t rd_proc_read(pid_t pid, const char *file, char *buf, size_t size);

#endif /* RD_PROC_H */
