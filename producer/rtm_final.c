/* SPDX-License-Identifier: MIT */
/*
 * A short command's final values to the reader's socket: one datagram
 * (rtm_shm_final.h, FORMAT.md §11) instead of a segment built in memory and
 * written to a file at exit.  Four system calls; no allocation, no /proc,
 * no file.  Whatever the socket cannot take goes the file's way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rtm_alloc.h"
#include "rtm_segment_priv.h"
#include "rtm_shm_final.h"
#include "rtm_shm_text.h"

/* s into a record field of 64 bytes, or -EINVAL (empty, too long, not
 * UTF-8): the file's way then, where the full rules apply. */
static int put_text(char out[64], const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= 64 || !rtm_shm_utf8_valid(s, n))
		return -EINVAL;
	memcpy(out, s, n + 1);
	return 0;
}

int rtm__final_send(const char *dir, const char *service)
{
	struct rtm_shm_final rec = { .magic = RTM_SHM_FINAL_MAGIC, .version = RTM_SHM_FINAL_VERSION,
				     .size = sizeof rec };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *attrs = rtm__env_get("OTEL_RESOURCE_ATTRIBUTES");
	size_t n = strlen(dir);
	struct timespec ts;
	struct stat st;
	uint64_t w[5];
	int fd, rc = 0;

	/* A record names a service and an executable, nothing more: a
	 * resource described further goes in a file. */
	if (attrs && *attrs)
		return -EINVAL;
	if (!service || !*service)
		service = rtm__env_get("OTEL_SERVICE_NAME");
	if (!service || !*service)
		service = program_invocation_short_name;
	if (put_text(rec.service_name, service) ||
	    put_text(rec.executable, program_invocation_short_name) ||
	    n + sizeof "/" RTM_SHM_FINAL_SOCKET > sizeof a.sun_path)
		return -EINVAL;
	memcpy(a.sun_path, dir, n);
	memcpy(a.sun_path + n, "/" RTM_SHM_FINAL_SOCKET, sizeof "/" RTM_SHM_FINAL_SOCKET);
	/* Only a socket of root's or this user's takes the record: any user
	 * may create files here, and one planted would read our counts. */
	if (fstatat(AT_FDCWD, a.sun_path, &st, AT_SYMLINK_NOFOLLOW) || !S_ISSOCK(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()))
		return -ENOTCONN;
	rec.pid = (int32_t)rtm__alloc_early(w);
	rec.mallocs = w[0], rec.frees = w[1], rec.bytes = w[2];
	rec.live_bytes = (int64_t)w[3], rec.live_objects = (int64_t)w[4];
	/* The heap as it ends, when there is one: malloc set itself up at
	 * the first allocation (/bin/true has made none). */
	if (rec.mallocs) {
		struct mallinfo2 mi = mallinfo2();

		rec.flags |= RTM_SHM_FINAL_HEAP;
		rec.heap_inuse = (int64_t)mi.uordblks;
		rec.heap_idle = (int64_t)mi.fordblks;
		rec.heap_releasable = (int64_t)mi.keepcost;
		rec.heap_mmapped = (int64_t)mi.hblkhd;
		rec.heap_arenas = 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	rec.exit_unix_nano = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Never wait: a reader behind on its queue gets the file instead. */
	if (sendto(fd, &rec, sizeof rec, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a,
		   sizeof a) != (ssize_t)sizeof rec)
		rc = -errno;
	/* Sent or not, the process is ending: its exit closes the socket,
	 * one system call fewer; a failure closes it for the file's way. */
	if (rc)
		close(fd);
	return rc;
}
