/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rd_proc_parse_stat(const char *buf, size_t len, struct rd_proc_stat *o)
{
	const char *end = buf + len, *p;
	unsigned long long v[21];
	int n = 0;

	/* comm (field 2) may hold spaces and parentheses: skip to the last ')'. */
	p = memrchr(buf, ')', len);
	if (!p || p + 2 >= end)
		return -EINVAL;
	p += 2;
	o->state = *p++;
	/* Fields 4.. are integers; those up to rss (24) are used. */
	while (p < end && n < 21) {
		char *q;

		while (p < end && *p == ' ')
			p++;
		if (p >= end || *p == '\n')
			break;
		v[n++] = strtoull(p, &q, 10);
		if (q == p)
			return -EINVAL;
		p = q;
	}
	if (n < 21)
		return -EINVAL;
	/* v[k] holds field k + 4. */
	o->minflt = v[10 - 4];
	o->majflt = v[12 - 4];
	o->utime = v[14 - 4];
	o->stime = v[15 - 4];
	o->num_threads = (int64_t)v[20 - 4];
	o->start_ticks = v[22 - 4];
	o->vsize = v[23 - 4];
	o->rss_pages = (int64_t)v[24 - 4];
	return 0;
}

int rd_proc_parse_uid(const char *buf, size_t len, uid_t *uid)
{
	const char *p = memmem(buf, len, "\nUid:", 5);

	if (!p)
		return -EINVAL;
	*uid = (uid_t)strtoul(p + 5, NULL, 10);
	return 0;
}

ssize_t rd_proc_read(pid_t pid, const char *file, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/* The number after "\nKey:" in a status-like text. */
static int field_u64(const char *buf, size_t len, const char *key, uint64_t *out)
{
	char pat[64];
	const char *p;
	int n = snprintf(pat, sizeof pat, "\n%s:", key);

	p = memmem(buf, len, pat, (size_t)n);
	if (!p && len >= (size_t)n - 1 && !memcmp(buf, pat + 1, (size_t)n - 1))
		p = buf - 1; /* the key on the first line */
	if (!p)
		return -EINVAL;
	*out = strtoull(p + n, NULL, 10);
	return 0;
}

int rd_proc_parse_status(const char *buf, size_t len, struct rd_proc_status *o)
{
	uint64_t kb = 0;

	/* Kernel threads and zombies have no VmRSS: report 0 then. */
	field_u64(buf, len, "VmRSS", &kb);
	o->rss_bytes = kb * 1024;
	if (field_u64(buf, len, "voluntary_ctxt_switches", &o->ctx_voluntary) ||
	    field_u64(buf, len, "nonvoluntary_ctxt_switches", &o->ctx_involuntary))
		return -EINVAL;
	return 0;
}

int rd_proc_parse_io(const char *buf, size_t len, uint64_t *r, uint64_t *w)
{
	if (field_u64(buf, len, "read_bytes", r) || field_u64(buf, len, "write_bytes", w))
		return -EINVAL;
	return 0;
}

int rd_proc_parse_schedstat(const char *buf, size_t len, uint64_t *wait_ns)
{
	char *end;

	(void)len;
	strtoull(buf, &end, 10);
	if (end == buf || *end != ' ')
		return -EINVAL;
	*wait_ns = strtoull(end + 1, NULL, 10);
	return 0;
}
