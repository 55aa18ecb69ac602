/* SPDX-License-Identifier: MIT */
/*
 * Short commands' final values by datagram (rtm_shm_final.h, FORMAT.md
 * §11): the reader's socket, and each record turned into a source that is
 * already dead, exported once like a final segment and then forgotten.
 */
#define _GNU_SOURCE
#include "rd_final.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rd_proc.h"
#include "rtm_shm_text.h"

int rd_final_listen(int dirfd, const char *dir, int *out, char *why, size_t whylen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(dir);
	struct stat st;
	int fd, one = 1, rcvbuf = 1 << 20;

	*out = -1;
	if (n + sizeof "/" RTM_SHM_FINAL_SOCKET > sizeof a.sun_path) {
		snprintf(why, whylen, "the directory's path is too long for a socket");
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, dir, n);
	memcpy(a.sun_path + n, "/" RTM_SHM_FINAL_SOCKET, sizeof "/" RTM_SHM_FINAL_SOCKET);
	/* A socket left by an earlier reader of ours goes; anything else
	 * (another user's file: the directory is sticky) stays, and short
	 * commands then write files as before. */
	if (!fstatat(dirfd, RTM_SHM_FINAL_SOCKET, &st, AT_SYMLINK_NOFOLLOW)) {
		if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
			snprintf(why, whylen, "%s/%s exists and is not this user's socket", dir,
				 RTM_SHM_FINAL_SOCKET);
			return -EEXIST;
		}
		unlinkat(dirfd, RTM_SHM_FINAL_SOCKET, 0);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
	    /* Every user's short commands send; the sticky directory keeps
	     * them from removing it. */
	    fchmodat(dirfd, RTM_SHM_FINAL_SOCKET, 0666, 0) ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one)) {
		int err = errno;

		snprintf(why, whylen, "%s/%s: %s", dir, RTM_SHM_FINAL_SOCKET, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	/* Room for bursts between two drains; a full queue sends the rest
	 * the file's way, never blocks a sender. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	*out = fd;
	return 0;
}

int rd_final_queue_len(void)
{
	char buf[32] = "";
	int fd = open("/proc/sys/net/unix/max_dgram_qlen", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	long v = n > 0 ? strtol(buf, NULL, 10) : 0;

	if (fd >= 0)
		close(fd);
	return v >= 1 && v <= 1 << 20 ? (int)v : 10;
}

void rd_final_unlink(int dirfd)
{
	struct stat st;

	if (dirfd >= 0 && !fstatat(dirfd, RTM_SHM_FINAL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) &&
	    S_ISSOCK(st.st_mode) && st.st_uid == geteuid())
		unlinkat(dirfd, RTM_SHM_FINAL_SOCKET, 0);
}

/* A text field of the record: NUL-terminated inside it, UTF-8. */
static bool field_ok(const char *f, size_t cap, bool may_be_empty)
{
	const char *nul = memchr(f, '\0', cap);

	return nul && (nul > f || may_be_empty) && rtm_shm_utf8_valid(f, (size_t)(nul - f));
}

/* The record's own pid when the kernel's view of the sender (pid, in the
 * reader's namespace) says it is that process in its own namespace. */
static int32_t own_pid(const struct rtm_shm_final *rec, pid_t pid)
{
	char buf[4096];
	ssize_t n;
	pid_t inner;
	int levels;

	if (rec->pid == pid)
		return pid;
	n = rd_proc_read(pid, "status", buf, sizeof buf);
	if (n > 0 && !rd_proc_parse_nspid(buf, (size_t)n, &inner, &levels) && inner == rec->pid)
		return rec->pid;
	return pid;
}

int rd_final_source(struct rd_source **out, const void *buf, size_t len, pid_t pid, uid_t uid,
		    char *why, size_t whylen)
{
	const struct rtm_shm_final *rec = buf;
	struct rd_source *s;
	uint32_t n;

	*out = NULL;
	if (len != sizeof *rec || rec->magic != RTM_SHM_FINAL_MAGIC ||
	    rec->version != RTM_SHM_FINAL_VERSION || rec->size != sizeof *rec) {
		snprintf(why, whylen, "a final-values datagram of %zu bytes that is not version %d",
			 len, RTM_SHM_FINAL_VERSION);
		return -EINVAL;
	}
	if (pid <= 0 || !field_ok(rec->service_name, sizeof rec->service_name, false) ||
	    !field_ok(rec->executable, sizeof rec->executable, true)) {
		snprintf(why, whylen, "a final-values datagram from pid %d with a bad service name, "
			 "executable or sender", (int)pid);
		return -EINVAL;
	}
	s = rd_source_new();
	if (!s)
		return -ENOMEM;
	n = rec->flags & RTM_SHM_FINAL_HEAP ? RTM_SHM_ALLOC_N : RTM_SHM_ALLOC_OBJECTS + 1;
	s->seg.metrics = calloc(n, sizeof *s->seg.metrics);
	s->snap.values = calloc(n, sizeof *s->snap.values);
	if (!s->seg.metrics || !s->snap.values) {
		rd_source_free(s);
		return -ENOMEM;
	}
	s->datagram = true;
	s->state = RD_SRC_DEAD;
	s->budget_gen = UINT64_MAX;
	s->seg.st.st_uid = uid;
	s->seg.proc_pid = pid;
	s->seg.liveness = RD_EXITED;
	s->seg.generation = 1;
	s->seg.hdr.pid = own_pid(rec, pid);
	s->seg.hdr.uid = uid;
	s->seg.hdr.created_unix_nano = rec->exit_unix_nano;
	s->seg.hdr.closed_unix_nano = rec->exit_unix_nano;
	s->seg.hdr.state = RTM_SHM_STATE_CLOSED;
	memcpy(s->seg.hdr.service_name, rec->service_name, sizeof rec->service_name);
	snprintf(s->seg.hdr.producer, sizeof s->seg.hdr.producer, "rtm-c/");
	snprintf(s->exe_name, sizeof s->exe_name, "%s", rec->executable);
	snprintf(s->name, sizeof s->name, "final datagram of pid %d", (int)pid);
	/* Its own streams: the pid and the moment it ended (the record has no
	 * start time: reading it would cost the command a /proc look). */
	snprintf(s->instance_id, sizeof s->instance_id, "%d-0-%llu", s->seg.hdr.pid,
		 (unsigned long long)rec->exit_unix_nano);
	{
		int64_t v[RTM_SHM_ALLOC_N] = { (int64_t)rec->mallocs, (int64_t)rec->frees, (int64_t)rec->bytes,
				   rec->live_bytes, rec->live_objects, rec->heap_inuse,
				   rec->heap_idle, rec->heap_releasable, rec->heap_mmapped,
				   rec->heap_arenas, 0, 0 };

		for (uint32_t i = 0; i < n; i++) {
			struct rd_metric *m = &s->seg.metrics[i];

			const struct rtm_shm_series_def *d = &rtm_shm_alloc_series[i];

			/* The table's own strings: rd_source_free() frees only
			 * the array of a datagram source. */
			m->name = (char *)d->name;
			m->unit = (char *)d->unit;
			m->description = (char *)d->desc;
			m->kind = d->kind;
			m->value_type = i == RTM_SHM_ALLOC_IDLE_RATIO ? RTM_SHM_VALUE_DOUBLE :
									 RTM_SHM_VALUE_INT;
			m->start_unix_nano = rec->exit_unix_nano;
			if (i == RTM_SHM_ALLOC_IDLE_RATIO)
				s->snap.values[i].d = rec->heap_inuse + rec->heap_idle > 0 ?
					(double)rec->heap_idle /
					(double)(rec->heap_inuse + rec->heap_idle) : 0;
			else
				s->snap.values[i].i = v[i];
		}
	}
	s->seg.n_metrics = n;
	s->snap.n = n;
	s->snap.generation = 1;
	s->snap.state = RTM_SHM_STATE_CLOSED;
	s->snap.heartbeat_unix_nano = rec->exit_unix_nano;
	s->snap.closed_unix_nano = rec->exit_unix_nano;
	*out = s;
	return 0;
}
