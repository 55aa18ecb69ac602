/* SPDX-License-Identifier: MIT */
/*
 * rd_final.h - short commands' final values by datagram (rtm_shm_final.h,
 * FORMAT.md §11): the reader's socket in the segment directory, and each
 * record as a source already dead, exported once and forgotten.
 */
#ifndef RD_FINAL_H
#define RD_FINAL_H

#include <stddef.h>
#include <sys/types.h>

#include "rd_source.h"
#include "rtm_shm_final.h"

/*
 * rd_final_listen - binds RTM_SHM_FINAL_SOCKET in the directory (dirfd,
 * path dir), mode 0666, with SO_PASSCRED: the kernel names each sender.
 * Replaces a socket of this user's left by an earlier reader; refuses
 * anything else there.  Sets *out to the non-blocking socket, or -1.
 * Returns 0 or -errno with why set.
 */
int rd_final_listen(int dirfd, const char *dir, int *out, char *why, size_t whylen);

/*
 * rd_final_queue_len - how many datagrams a socket created now may hold
 * before senders get EAGAIN: net.unix.max_dgram_qlen of the reader's
 * network namespace, which the kernel copies into each new socket; 10
 * (the kernel's default) when it cannot be read.
 */
int rd_final_queue_len(void);

/* Removes the socket (this user's only): senders then write files. */
void rd_final_unlink(int dirfd);

/*
 * rd_final_source - the source for one received datagram (buf, len), sent
 * by pid as uid (SO_PASSCRED, the reader's namespaces): dead, its final
 * values in place, no file and no /proc behind it.  Returns 0, or -errno
 * with why set (a bad record: refused as a bad segment would be).
 */
int rd_final_source(struct rd_source **out, const void *buf, size_t len, pid_t pid, uid_t uid,
		    char *why, size_t whylen);

#endif /* RD_FINAL_H */
