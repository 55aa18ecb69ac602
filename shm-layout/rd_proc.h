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

/* The three uids of the Uid: line of /proc/<pid>/status (as the reader's
 * user namespace sees them).  Returns 0 or -EINVAL. */
int rd_proc_parse_uids(const char *buf, size_t len, uid_t *real, uid_t *eff, uid_t *saved);

/* The last number of the NSpid: line of /proc/<pid>/status: the pid as the
 * process sees it in its own pid namespace; *levels (may be NULL) the count
 * of numbers, 1 when the proc mount shows the process's own namespace.
 * Returns 0 or -EINVAL. */
int rd_proc_parse_nspid(const char *buf, size_t len, pid_t *pid, int *levels);

/*
 * rd_proc_set_root - where procfs is mounted ("/proc" by default), for
 * every /proc read of this library and the reader: a reader in a container
 * reads the host's through a bind mount (--proc-root /host/proc).  Refuses
 * a path that is not a procfs mount.  Call before reading segments, from
 * one thread.  Returns 0 or -errno.
 */
int rd_proc_set_root(const char *root);
const char *rd_proc_root(void);

/* "<root>/<pid>/<file>" into buf ("<root>/self/<file>" for pid 0: the
 * caller as the proc root's namespace sees it).  Returns what snprintf()
 * does. */
int rd_proc_path(char *buf, size_t size, pid_t pid, const char *file);

/* Reads <root>/<pid>/<file> into buf (NUL-terminated; pid 0: self).  Returns the length,
 * -ESRCH when the process is gone, or -errno. */
ssize_t rd_proc_read(pid_t pid, const char *file, char *buf, size_t size);

#endif /* RD_PROC_H */
