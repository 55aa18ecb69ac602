/* SPDX-License-Identifier: MIT */
/*
 * rd_source.h - one producer segment as the daemon tracks it across cycles:
 * the validated segment, its latest snapshot, the /proc files read for it
 * each cycle, and where it is in its life (live, dead, finished).
 */
#ifndef RD_SOURCE_H
#define RD_SOURCE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rd_container.h"
#include "rd_leak.h"
#include "rd_procio.h"
#include "rd_proc.h"
#include "rd_limits.h"
#include "rd_segment.h"

enum rd_source_state {
	RD_SRC_LIVE,     /* export every cycle */
	RD_SRC_DEAD,     /* producer gone: export final values, then end streams */
	RD_SRC_FINISHED, /* streams ended; the segment may be removed */
};

struct rd_source {
	char name[NAME_MAX + 1]; /* file name in the segment directory */
	ino_t ino;
	struct rd_segment seg;
	struct rd_snapshot snap;
	enum rd_source_state state;
	bool seen;               /* found by this cycle's directory scan */
	bool no_segment;         /* a process collected from /proc alone (--pid, --match) */
	bool datagram;           /* final values from a datagram (rd_final.h): no file */

	/* /proc/<pid>/stat through a kept fd: liveness each cycle. */
	int stat_fd;
	struct rd_proc_stat stat;
	bool stat_ok;

	/* Process metrics from outside, read each cycle (docs/reference/metrics.md: "Process
	 * metrics").  fds are kept open between cycles: cheaper than opening,
	 * and a read on one fails with ESRCH once the process is gone. */
	int status_fd, io_fd, fd_dir_fd, task_dir_fd;
	unsigned n_reqs;          /* batched reads this cycle */
	/* What those reads fill, allocated at the first: a source that never
	 * reads /proc (a short command's datagram, a thousand a second) stays
	 * small, and its calloc does not fault in pages it will not touch. */
	struct rd_proc_bufs {
		char stat[1024];
		char status[4096];
		char io[512];
	} *bufs;
	struct rd_proc_status status;
	bool status_ok, io_ok;
	uint64_t io_read, io_write;
	int64_t fd_count;         /* -1: unknown */
	/* Per-thread counters summed over the process's threads; the kernel
	 * keeps no total for exited threads, so their last values are kept. */
	struct rd_thread_sums {
		uint64_t wait_ns;  /* schedstat field 2: runnable, waiting */
		uint64_t ctx_voluntary, ctx_involuntary; /* status */
	} threads_total, threads_retired;
	/* Per thread, sorted by tid: its last values and its two files, kept
	 * open across cycles (-1: open each time). */
	struct rd_tid_stats {
		pid_t tid;
		int sched_fd, status_fd;
		struct rd_thread_sums v;
	} *tids;
	size_t n_tids;
	bool proc_seen;           /* process metrics exported at least once */
	uint64_t threads_since_unix_nano; /* first read of the per-thread files */
	uint64_t proc_start_unix_nano;

	uint32_t left_out_said;   /* seg.n_left_out when last logged */
	uint64_t end_epoch;       /* cycle whose outbox ends its streams; 0: none */
	uint64_t budget_gen;      /* descriptor generation last counted against its owner */
	uint64_t seq;             /* the order it was found in, never reused: the key
				   * later stages keep their own state under */
	uint64_t torn_total;      /* torn shard reads over the source's life */
	uint64_t invalid_points;  /* points left out for values OTLP cannot carry */

	/* The leak detector's history of heap, threads and fds, from its
	 * first observation (3 KiB: NULL while there is none). */
	struct rd_leak *leak;
	int64_t heap_idx;         /* runtime.native.mem.heap.alloc: -1 none */
	uint64_t heap_generation; /* of the table heap_idx was found in */

	/* Resource identity, fixed at discovery. */
	char instance_id[96];
	char exe_name[256];
	char creation_time[64];  /* ISO 8601, from the header */
	char *command_line;
	struct rd_container container; /* from its cgroup, when in one */

	struct rd_source *next;
	struct rd_source *hnext; /* the reader's index by name (rd_collect.c) */
	struct rd_delta *delta;  /* its streams' last delivered values (rd_delta.h) */
	struct rd_limits limits; /* memory and CPU limits (rd_limits.h) */
	uint64_t limits_mono;    /* when they were read; 0: never */
};

/* A source with nothing open, its seq the next one: every source starts
 * here.  NULL without memory. */
struct rd_source *rd_source_new(void);

/* Opens dir/name as a source, its process found under the proc root
 * (seg.proc_pid).  Returns 0, RD_ERR_NOT_VISIBLE when whether its process
 * runs cannot be told yet (*out is set: the caller reads seg.err, then
 * frees), or -errno with seg.err set. */
int rd_source_open(struct rd_source **out, int dirfd, const char *name,
		   bool command_line);
void rd_source_free(struct rd_source *s);

/* A process without a segment, collected from /proc alone (--pid and
 * --match): service.name is its executable's name.  Returns 0 or -ESRCH. */
int rd_source_open_pid(struct rd_source **out, pid_t pid, bool command_line);

/* The wall-clock time of boot as the kernel states it (btime in
 * /proc/stat), in nanoseconds: a process's start derived from it is the
 * same for every reader, before and after a restart. */
uint64_t rd_boot_unix_nano(void);

/* Adds this source's /proc reads to a batch; returns how many it added. */
size_t rd_source_proc_requests(struct rd_source *s, struct rd_procio_req *req);
/* Consumes the batch results; decides liveness.  Reads the per-thread
 * files only when want_threads (the scheduler group is due). */
void rd_source_proc_results(struct rd_source *s, const struct rd_procio_req *req,
			    bool want_threads);

/* Feeds this cycle's heap (the allocator's live bytes where the producer
 * publishes them, else its RSS), thread and fd counts to the leak detector
 * (time t_ns, monotonic).  Returns a bit per enum rd_leak_kind that became
 * a suspect in *became and stopped being one in *stopped. */
void rd_source_leak_observe(struct rd_source *s, const struct rd_leak_cfg *c, uint64_t t_ns,
			    unsigned *became, unsigned *stopped);

/* Re-reads the table if it changed and snapshots the values.  Returns 0 or
 * -errno with seg.err set (the segment became invalid). */
int rd_source_collect(struct rd_source *s);

#endif /* RD_SOURCE_H */
