/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

/* Set once at start-up, before any reading thread exists. */
static char proc_root[256] = "/proc";

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

int rd_proc_parse_uids(const char *buf, size_t len, uid_t *real, uid_t *eff, uid_t *saved)
{
	const char *p = memmem(buf, len, "\nUid:", 5);
	unsigned long v[3];
	char *end;

	if (!p)
		return -EINVAL;
	p += 5;
	for (int i = 0; i < 3; i++) {
		v[i] = strtoul(p, &end, 10);
		if (end == p)
			return -EINVAL;
		p = end;
	}
	*real = (uid_t)v[0];
	*eff = (uid_t)v[1];
	*saved = (uid_t)v[2];
	return 0;
}

int rd_proc_parse_nspid(const char *buf, size_t len, pid_t *pid, int *levels)
{
	const char *p = memmem(buf, len, "\nNSpid:", 7), *end;
	long last = 0;
	int n = 0;

	if (!p)
		return -EINVAL;
	p += 7;
	end = memchr(p, '\n', len - (size_t)(p - buf));
	if (!end)
		end = buf + len;
	/* One number per pid namespace, outermost first: the last is the
	 * process's own. */
	while (p < end) {
		char *q;
		long v;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end)
			break;
		v = strtol(p, &q, 10);
		if (q == p || v <= 0)
			return -EINVAL;
		last = v;
		n++;
		p = q;
	}
	if (!last)
		return -EINVAL;
	*pid = (pid_t)last;
	if (levels)
		*levels = n;
	return 0;
}

int rd_proc_set_root(const char *root)
{
	struct statfs fs;
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (!n || n >= sizeof proc_root)
		return -ENAMETOOLONG;
	if (statfs(root, &fs))
		return -errno;
	if (fs.f_type != PROC_SUPER_MAGIC)
		return -EMEDIUMTYPE;
	memcpy(proc_root, root, n);
	proc_root[n] = '\0';
	return 0;
}

const char *rd_proc_root(void)
{
	return proc_root;
}

int rd_proc_path(char *buf, size_t size, pid_t pid, const char *file)
{
	if (!pid)
		return snprintf(buf, size, "%s/self/%s", proc_root, file);
	return snprintf(buf, size, "%s/%d/%s", proc_root, (int)pid, file);
}

ssize_t rd_proc_read(pid_t pid, const char *file, char *buf, size_t size)
{
	char path[384];
	ssize_t n;
	int fd;

	rd_proc_path(path, sizeof path, pid, file);
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
