/* SPDX-License-Identifier: MIT */
/*
 * rd_pidns.h - finding a producer's process from outside its pid namespace.
 *
 * A producer in a container records its pid as it sees it and the inode of
 * its pid namespace (header 1.2).  A reader whose /proc shows another
 * namespace (the host's) finds that process by looking at which namespace
 * each process under the proc root lives in (a stat of <root>/<pid>/ns/pid:
 * one look serves every namespace) and, for the namespaces segments name,
 * what those processes call themselves there (NSpid: of their status, read
 * once each).  What it found is kept, so a full look at /proc happens only
 * when a segment names a process not found yet, and then at most once a
 * second — never once per cycle.
 *
 * Not thread-safe: the reader's collecting thread and rtm-shmdump call it.
 */
#ifndef RD_PIDNS_H
#define RD_PIDNS_H

#include <stdint.h>
#include <sys/types.h>

#include "rd_segment.h"

/* The inode of the initial pid namespace (PROC_PID_INIT_INO): a proc root
 * showing it shows every process of the machine. */
#define RD_PIDNS_INITIAL 0xEFFFFFFCull

/* The pid namespace the proc root shows; 0 when it cannot be told. */
uint64_t rd_pidns_root(void);

/* The inode of <root>/<pid>/ns/<kind> ("pid", "user"): 0 when it cannot be
 * read (gone, or not ours to inspect). */
uint64_t rd_ns_inode(pid_t pid, const char *kind);

/* The user namespace the reader itself runs in. */
uint64_t rd_userns_self(void);

/*
 * rd_pidns_find - the process that calls itself ns_pid in pid namespace ns
 * (0: a producer that did not record one, taken to share the proc root's)
 * and started at start_ticks.  *proc_pid is its pid under the proc root
 * when it is RD_ALIVE, or the pid now holding its place when
 * RD_PID_REUSED (0 otherwise).  RD_EXITED: no such process, and its
 * namespace is visible; RD_HIDDEN: its namespace is not visible under the
 * proc root, so whether it runs cannot be told.
 */
enum rd_liveness rd_pidns_find(uint64_t ns, pid_t ns_pid, uint64_t start_ticks,
			       pid_t *proc_pid);

/* Full looks at /proc made so far (for the benchmark and tests). */
uint64_t rd_pidns_scans(void);

/* Drops what is cached (the proc root changed). */
void rd_pidns_forget(void);

#endif /* RD_PIDNS_H */
