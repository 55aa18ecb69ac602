/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rd_encode.h"

static void iso8601(uint64_t unix_nano, char *out, size_t n)
{
	time_t secs = (time_t)(unix_nano / 1000000000u);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(unix_nano / 1000000u % 1000u));
}

static char *read_cmdline(pid_t pid)
{
	char buf[4096];
	ssize_t n = rd_proc_read(pid, "cmdline", buf, sizeof buf);

	if (n <= 0)
		return NULL;
	for (ssize_t i = 0; i < n - 1; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return strdup(buf);
}

/* The executable's name: basename of /proc/<pid>/exe, else comm. */
static void exe_name(pid_t pid, char *out, size_t n)
{
	char path[64], target[PATH_MAX];
	ssize_t len;

	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	len = readlink(path, target, sizeof target - 1);
	if (len > 0) {
		const char *base;

		target[len] = '\0';
		base = strrchr(target, '/');
		snprintf(out, n, "%.*s", (int)n - 1, base ? base + 1 : target);
		return;
	}
	len = rd_proc_read(pid, "comm", target, sizeof target);
	if (len > 0) {
		target[strcspn(target, "\n")] = '\0';
		snprintf(out, n, "%.*s", (int)n - 1, target);
	}
}

int rd_source_open(struct rd_source **out, int dirfd, const char *name,
		   bool command_line)
{
	struct rd_source *s = calloc(1, sizeof *s);
	char path[64];
	int rc;

	if (!s)
		return -ENOMEM;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->stat_fd = -1;
	rc = rd_segment_open(&s->seg, dirfd, name, 0);
	if (rc) {
		*out = s; /* the caller reads s->seg.err, then frees */
		return rc;
	}
	s->ino = s->seg.st.st_ino;
	/* One stream identity per producer incarnation: a restarted producer
	 * or a reused pid has another start time, hence new streams. */
	snprintf(s->instance_id, sizeof s->instance_id, "%d-%llu-%llu", s->seg.hdr.pid,
		 (unsigned long long)s->seg.hdr.pid_start_ticks,
		 (unsigned long long)s->seg.hdr.created_unix_nano);
	iso8601(s->seg.hdr.created_unix_nano, s->creation_time, sizeof s->creation_time);
	if (rd_segment_liveness(&s->seg) == RD_ALIVE) {
		snprintf(path, sizeof path, "/proc/%d/stat", s->seg.hdr.pid);
		s->stat_fd = open(path, O_RDONLY | O_CLOEXEC);
		exe_name(s->seg.hdr.pid, s->exe_name, sizeof s->exe_name);
		if (command_line)
			s->command_line = read_cmdline(s->seg.hdr.pid);
	}
	*out = s;
	return 0;
}

void rd_source_free(struct rd_source *s)
{
	if (!s)
		return;
	if (s->stat_fd >= 0)
		close(s->stat_fd);
	rd_encode_cache_free(s);
	rd_snapshot_free(&s->snap);
	rd_segment_close(&s->seg);
	free(s->command_line);
	free(s);
}

size_t rd_source_proc_requests(struct rd_source *s, struct rd_procio_req *req)
{
	if (s->stat_fd < 0)
		return 0;
	req->fd = s->stat_fd;
	req->buf = s->stat_buf;
	req->size = sizeof s->stat_buf;
	req->result = 0;
	return 1;
}

void rd_source_proc_results(struct rd_source *s, const struct rd_procio_req *req)
{
	s->stat_ok = false;
	if (s->stat_fd < 0) {
		/* Never had one: the producer was gone when we found it. */
		return;
	}
	if (req->result > 0 &&
	    rd_proc_parse_stat(s->stat_buf, (size_t)req->result, &s->stat) == 0 &&
	    s->stat.state != 'Z' && s->stat.state != 'X' &&
	    s->stat.start_ticks == s->seg.hdr.pid_start_ticks)
		s->stat_ok = true;
}

int rd_source_collect(struct rd_source *s, uint64_t now)
{
	int rc = rd_segment_refresh(&s->seg);

	if (rc < 0)
		return rc;
	rc = rd_segment_snapshot(&s->seg, &s->snap);
	if (rc)
		return rc;
	s->snap_unix_nano = now;
	/* Dead when closed cleanly, or when its process is gone: the kept
	 * fd reads ESRCH after exit, even if the pid is reused meanwhile. */
	if (s->state == RD_SRC_LIVE &&
	    (s->snap.state == RTM_SHM_STATE_CLOSED || !s->stat_ok))
		s->state = RD_SRC_DEAD;
	return 0;
}
