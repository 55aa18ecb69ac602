/* SPDX-License-Identifier: MIT */
/*
 * rd_log.h - the daemon's log: one line per problem on stderr, naming the
 * segment or input, rate-limited per key so that a bad producer that fails
 * every cycle cannot flood the log.
 */
#ifndef RD_LOG_H
#define RD_LOG_H

#include <stdint.h>

/* Logs unless the same key logged within the last RD_LOG_QUIET_S seconds;
 * the next line for a quieted key says how many were suppressed. */
#define RD_LOG_QUIET_S 60
void rd_log_limited(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Logs always (startup, shutdown, outage begin/end). */
void rd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Forgets a key, so its next problem is logged at once. */
void rd_log_forget(const char *key);

#endif /* RD_LOG_H */
