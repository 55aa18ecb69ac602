/* SPDX-License-Identifier: MIT */
/* shmdump_locks.h - rtm-shmdump --locks: a process's lock-contention profile. */
#ifndef SHMDUMP_LOCKS_H
#define SHMDUMP_LOCKS_H

#include <stdbool.h>

/* Prints the lock-site table of the segment at path (text, or JSON when
 * json), call sites resolved to function, file and line against the live
 * process's mappings.  Returns 0, or 1 after printing why to stderr; 2,
 * silently, for a segment that keeps no table when quiet_if_none (one of a
 * process's several segments: its own librtm one beside the preload's). */
int locks_dump(const char *path, bool json, bool quiet_if_none);

#endif /* SHMDUMP_LOCKS_H */
