/* SPDX-License-Identifier: MIT */
/*
 * rtm_shm_presence.h - whether a reader is attached to a segment directory.
 *
 * A reader keeps the file RTM_SHM_READER_FILE in the directory and touches
 * it every cycle.  Producers use it to decide who removes the segments of
 * processes that are gone: while a reader is attached it does (after
 * exporting their final values); when none is, a starting producer removes
 * its own user's (FORMAT.md, "Segments without a reader").
 */
#ifndef RTM_SHM_PRESENCE_H
#define RTM_SHM_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Contents: "rtm-reader <pid> <interval_ns>\n".  The leading dot keeps it
 * out of every reader's segment list. */
#define RTM_SHM_READER_FILE ".rtm-reader"
/* A reader is attached while its file was touched within two of its
 * intervals plus this grace (a restart, a slow cycle). */
#define RTM_SHM_READER_GRACE_NS (30ull * 1000000000ull)

struct rtm_shm_presence {
	bool attached;        /* a reader touched the file recently enough */
	bool present;         /* the file exists and is trusted */
	pid_t pid;            /* the reader's pid, as it wrote it */
	uint64_t interval_ns; /* its cycle */
	uint64_t age_ns;      /* since it last touched the file */
};

/*
 * rtm_shm_presence_read - look at dfd's reader file.  Trusted only when it
 * is a regular file (never followed as a symbolic link) owned by root or by
 * trust_uid: any user may create files in the directory, and a planted
 * file must not stop other users' producers from cleaning up.  Returns 0
 * (see out->present) or -errno for an unexpected error.
 */
int rtm_shm_presence_read(int dfd, uid_t trust_uid, uint64_t now_unix_nano,
			  struct rtm_shm_presence *out);

/*
 * rtm_shm_presence_attached - whether a reader is attached to the directory
 * dir (relative to dfd, or AT_FDCWD) for this process (trusting root and
 * its effective uid), as rtm_shm_presence_read() would say: in one system
 * call (fstatat) when there is no file or it was touched within the grace,
 * which every interval allows; older, the whole file is read.  For a
 * producer's exit path, before it opens the directory.
 */
bool rtm_shm_presence_attached(int dfd, const char *dir);

#endif /* RTM_SHM_PRESENCE_H */
