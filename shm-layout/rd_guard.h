/* SPDX-License-Identifier: MIT */
/*
 * rd_guard.h - survive a segment that shrinks under our mapping.
 * A producer can ftruncate its file while we read the mapping; touching a
 * page past the new end raises SIGBUS.  rd_guard_run() runs a reading
 * function with a per-thread recovery point, so the fault becomes -EFAULT
 * for that segment instead of killing the reader.
 */
#ifndef RD_GUARD_H
#define RD_GUARD_H

/* Installs the SIGBUS handler (rd_guard_run does so on first use).  Call
 * it again after other code in the process replaced the handler, as a test
 * harness does; the previous handler still gets faults that are not ours. */
void rd_guard_install(void);

/* Runs fn(arg) and returns its result, or -EFAULT if it raised SIGBUS.
 * Any thread.  fn must not allocate memory it would leak on a fault. */
int rd_guard_run(int (*fn)(void *arg), void *arg);

#endif /* RD_GUARD_H */
