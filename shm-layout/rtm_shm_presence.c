/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rtm_shm_presence.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The one rule for trusting the file: regular, owned by root or by uid. */
static bool trusted(const struct stat *st, uid_t uid)
{
	return S_ISREG(st->st_mode) && (st->st_uid == 0 || st->st_uid == uid);
}

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

int rtm_shm_presence_read(int dfd, uid_t trust_uid, uint64_t now, struct rtm_shm_presence *out)
{
	char buf[96];
	struct stat st;
	unsigned long long interval = 0;
	uint64_t mtime;
	ssize_t n;
	int pid = 0, fd;

	memset(out, 0, sizeof *out);
	fd = openat(dfd, RTM_SHM_READER_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -errno;
	if (fstat(fd, &st) || !trusted(&st, trust_uid)) {
		close(fd);
		return 0;
	}
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "rtm-reader %d %llu", &pid, &interval) != 2 || pid <= 0 || !interval ||
	    interval > 86400ull * 1000000000ull)
		return 0;
	mtime = mtime_ns(&st);
	out->present = true;
	out->pid = pid;
	out->interval_ns = interval;
	out->age_ns = now > mtime ? now - mtime : 0;
	out->attached = out->age_ns <= 2 * interval + RTM_SHM_READER_GRACE_NS;
	return 0;
}

bool rtm_shm_presence_attached(int dfd, const char *dir)
{
	struct rtm_shm_presence p;
	struct timespec ts;
	char path[4096];
	struct stat st;
	size_t n = strlen(dir);
	uint64_t now, mtime;
	bool attached;
	uid_t uid;
	int fd;

	/* No stdio: a short command's first snprintf would cost ~10 us. */
	if (n + sizeof "/" RTM_SHM_READER_FILE > sizeof path)
		return false;
	memcpy(path, dir, n);
	memcpy(path + n, "/" RTM_SHM_READER_FILE, sizeof "/" RTM_SHM_READER_FILE);
	/* The file first: without one (no reader), nothing else is asked. */
	if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) || !trusted(&st, uid = geteuid()))
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	mtime = mtime_ns(&st);
	if (now <= mtime || now - mtime <= RTM_SHM_READER_GRACE_NS)
		return st.st_size > 0;
	fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	attached = !rtm_shm_presence_read(fd, uid, now, &p) && p.attached;
	close(fd);
	return attached;
}
