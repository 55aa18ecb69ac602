/* SPDX-License-Identifier: MIT */
/*
 * rd_segment.h - the one implementation of reading an rtm segment, used by
 * rtm-reader and rtm-shmdump alike.
 *
 * A segment is hostile input: it lives in a world-writable directory and its
 * producer may be buggy or malicious.  Every function here treats it so:
 * each field is loaded once into local memory, then checked; every offset,
 * length and count is bounds-checked before use; loops over segment data are
 * bounded by validated counts; and a file that shrinks under the mapping
 * (SIGBUS) is caught and reported as an error for that segment alone.
 * Errors are returned as -errno with a one-line reason in seg->err.
 */
#ifndef RD_SEGMENT_H
#define RD_SEGMENT_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "rtm_shm.h"

struct rd_attr {
	char *key;
	char *value;
};

/* rd_metric.kind of a histogram whose descriptor has
 * RTM_SHM_DESC_EXPONENTIAL: not a kind of the format, the reader's own. */
#define RD_KIND_EXPHIST 5

/* One series, copied out of the segment and validated. */
struct rd_metric {
	char *name;
	char *unit;
	char *description;
	uint8_t kind;       /* enum rtm_shm_kind, or RD_KIND_EXPHIST */
	uint8_t value_type; /* enum rtm_shm_value_type */
	int8_t exp_scale;   /* exponential: the scale it starts at */
	bool no_sum;        /* RTM_SHM_DESC_NO_SUM: no sum, min or max to export */
	uint16_t exp_size;  /* exponential: buckets per sign */
	uint32_t n_attrs;
	struct rd_attr *attrs;
	uint32_t n_bounds;
	double *bounds;
	uint64_t start_unix_nano;
	uint32_t slot_offset;
};

/* One metric's values, summed over shards. */
struct rd_value {
	union {
		int64_t i; /* int counters, up-down counters, gauges */
		double d;  /* double ones (RTM_SHM_VALUE_DOUBLE) */
	};
	uint64_t count;    /* histograms: sum of buckets */
	double sum, min, max;
	uint64_t *buckets; /* n_bounds + 1 entries, inside the snapshot */
	/* Exponential histograms: the shards merged at one scale, inside the
	 * snapshot (count is zero_count plus every bucket; exp->count is not
	 * used).  Read with rtm_shm_exphist_counts(exp, exp_size, neg). */
	struct rtm_shm_exphist *exp;
	uint32_t torn;     /* shards whose seqlock never settled */
};

/* What a snapshot needs of each series, packed: 8 bytes instead of a
 * whole struct rd_metric, since reading is memory-bound. */
struct rd_slot_plan {
	uint32_t slot_offset;
	uint8_t kind;
	uint8_t value_type;
	uint16_t n_bounds; /* exponential: buckets per sign */
};

struct rd_snapshot {
	uint32_t n;
	struct rd_slot_plan *plan; /* [n] */
	struct rd_value *values; /* [n], parallel to seg->metrics */
	uint64_t *bucket_store;
	size_t n_buckets;        /* entries in bucket_store */
	struct rtm_shm_exphist *exp_tmp; /* one shard's exponential slot, while merging */
	uint64_t generation;     /* of the table the arrays were sized for */
	uint32_t state;          /* enum rtm_shm_state at snapshot time */
	uint64_t heartbeat_unix_nano;
	uint64_t closed_unix_nano;
	uint32_t dropped_metrics;
	uint32_t shard_fallbacks;
	uint32_t torn;           /* torn shards over all metrics */
};

struct rd_segment {
	/* The name it was opened by: the caller's string, which must outlive
	 * the segment ("(memory)" for a buffer; NULL when not opened).  Not a
	 * copy: a reader holds thousands of these, most never printed. */
	const char *path;
	int fd;
	const unsigned char *base; /* read-only mapping, or caller's buffer */
	size_t size;
	bool mapped;
	struct stat st;
	struct rtm_shm_header hdr; /* once-fields, copied and validated */
	uint64_t generation;       /* of the parsed descriptor table */
	uint32_t n_metrics;
	struct rd_metric *metrics;
	uint32_t n_resource;
	struct rd_attr *resource;
	uint32_t n_left_out;       /* series past the limits, not parsed */
	uint64_t string_bytes;     /* of the parsed descriptors */
	pid_t proc_pid;            /* its process under the proc root; 0: not found */
	int liveness;              /* enum rd_liveness as the owner check found it */
	char err[256];
};

/* What one segment may cost a reader: beyond either limit its further
 * series are left out (counted in n_left_out), whoever wrote it. */
#define RD_LIMIT_SERIES_DEFAULT  20000u
#define RD_LIMIT_STRINGS_DEFAULT (8u << 20) /* names, units, descriptions, attributes */
#define RD_LIMIT_USER_SERIES_DEFAULT 200000u /* the reader applies it, across one owner's segments */

/*
 * rd_segment_set_limits - the per-segment limits every later parse
 * applies (process-wide; call before opening segments).  0 means the
 * default.
 */
void rd_segment_set_limits(uint32_t series, uint64_t string_bytes);

/* How a segment's creator relates to the process now holding its pid. */
enum rd_liveness {
	RD_ALIVE,      /* same pid, same start time */
	RD_EXITED,     /* no such process */
	RD_PID_REUSED, /* a different process now has the pid */
	RD_UNKNOWN,    /* /proc not readable, or not looked at yet */
	RD_HIDDEN,     /* in a pid namespace the proc root does not show */
};

/* rd_source_open()'s and rd_segment_open()'s answer for a live segment
 * whose process cannot be found from here (RD_HIDDEN, or not yet looked
 * for): keep it, export nothing of it, ask again later. */
#define RD_ERR_NOT_VISIBLE (-EREMOTE)

/* Reason codes beyond -errno. */
#define RD_FLAG_NO_OWNER_CHECK 1u /* tests: skip the /proc owner check */

/*
 * rd_segment_open - open, check and parse the segment at dirfd/name
 * (dirfd may be AT_FDCWD).  Refuses symlinks, non-regular files, files with
 * more than one hard link, files whose owner differs from the uid in the
 * header (mapped through the process's user namespace when it is another
 * than ours) or from any of the real, effective and saved uids of the live
 * process it names, a process whose pid or user namespace is not the one
 * the header claims, and any structural error.  The process is looked for
 * across pid namespaces (rd_pidns.h): seg->proc_pid and seg->liveness say
 * what was found.  On failure seg->err holds a one-line reason and nothing
 * needs closing.  name must outlive seg (seg->path is it).  Returns 0 or
 * -errno.
 */
int rd_segment_open(struct rd_segment *seg, int dirfd, const char *name,
		    unsigned flags);

/*
 * rd_segment_parse_mem - parse a segment image held in memory (fuzzing,
 * tests).  The buffer must outlive seg.  Returns 0 or -errno.
 */
int rd_segment_parse_mem(struct rd_segment *seg, const void *buf, size_t len);

/*
 * rd_segment_refresh - re-read the descriptor table if the producer changed
 * it since the last parse.  Returns 1 when it changed, 0 when not, -errno
 * (segment now invalid) on error.
 */
int rd_segment_refresh(struct rd_segment *seg);

/*
 * rd_segment_snapshot - read every metric's current value.  Histogram slots
 * are read under their seqlock with a bounded number of retries; a slot
 * that never settles is counted as torn and its last read used.  snap is
 * (re)allocated to fit; free it with rd_snapshot_free().  Returns 0 or -errno.
 */
int rd_segment_snapshot(struct rd_segment *seg, struct rd_snapshot *snap);
void rd_snapshot_free(struct rd_snapshot *snap);

/* rd_segment_liveness - find the header's process (its pid namespace,
 * pid and start time) under the proc root, and set seg->proc_pid.  A
 * segment closed at birth (written whole at exit) whose process cannot be
 * seen counts as exited: it needs none. */
enum rd_liveness rd_segment_liveness(struct rd_segment *seg);
const char *rd_liveness_name(enum rd_liveness l);

/* One entry of a segment's lock-site table (FORMAT.md, "Lock sites"). */
struct rd_lock_site {
	uint64_t address;     /* in the producer's address space */
	uint64_t contentions; /* scaled by the sampling, like wait_ns */
	uint64_t wait_ns;
	uint64_t max_wait_ns;
	uint32_t kind;        /* enum rtm_shm_lock_kind; 0 unknown */
};

struct rd_lock_sites {
	uint32_t n;
	struct rd_lock_site *sites; /* [n], most wait first */
	uint32_t sample;            /* 1 in sample waits recorded; 0: table unused */
	uint64_t dropped;           /* sampled waits that found no free entry */
};

/*
 * rd_segment_lock_sites - copy out the used entries of the segment's
 * lock-site table, sorted by total wait.  A segment without a table (1.0,
 * or a producer that records no locks) gives n = 0, sample = 0.  Free with
 * rd_lock_sites_free().  Returns 0 or -errno.
 */
int rd_segment_lock_sites(struct rd_segment *seg, struct rd_lock_sites *out);
void rd_lock_sites_free(struct rd_lock_sites *l);

/* rd_segment_close - unmap and free; safe on a zeroed or failed segment. */
void rd_segment_close(struct rd_segment *seg);

const char *rd_kind_name(uint8_t kind);

#endif /* RD_SEGMENT_H */
