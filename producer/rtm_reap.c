/* SPDX-License-Identifier: MIT */
/*
 * Segments nobody will write again: an earlier image's (after an exec),
 * and, when no reader is attached to the directory, those of processes that
 * are gone.  Without a reader nothing else would ever remove them (the JVM's
 * hsperfdata directory has the same problem and the same answer: a starting
 * process cleans up after dead ones).  While a reader is attached it does
 * the removing, after exporting the final values.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "rtm_segment_priv.h"
#include "rtm_shm_presence.h"

/* Stop probing names after this many consecutive absent ones: an image
 * that opened (and the reader removed) more segments than this before
 * exec'ing is unusual; its remaining ones are left to the reader's
 * pid-and-start-time check. */
#define STALE_MISSES 8

uint64_t rtm__start_ticks(pid_t pid)
{
	char buf[1024], path[64];
	uint64_t ticks = 0;
	ssize_t n;
	char *p;
	int fd;

	/* pid 0 without stdio: a short command exported at exit asks. */
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(pid ? path : "/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	/* comm may contain spaces and ')': the last ')' ends it.  After it
	 * come fields 3..; starttime (22) is the 20th of them.  By hand, for
	 * the same reason (strtoull's first call alone costs ~5 us). */
	for (p = buf + n; p > buf && p[-1] != ')'; p--)
		;
	if (p == buf)
		return 0;
	for (int spaces = 0; p < buf + n && spaces < 20; p++)
		spaces += *p == ' ';
	for (; p < buf + n && *p >= '0' && *p <= '9'; p++) {
		if (ticks > (UINT64_MAX - 9) / 10)
			return 0;
		ticks = ticks * 10 + (uint64_t)(*p - '0');
	}
	return ticks;
}

static uint64_t ns_inode(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

void rtm__own_namespaces(struct rtm_shm_header *h)
{
	h->pidns_ino = ns_inode("/proc/self/ns/pid");
	h->userns_ino = ns_inode("/proc/self/ns/user");
}

/* A header field of the segment open at fd: 0 when it cannot be read. */
static uint64_t header_field(int fd, size_t off, size_t size)
{
	uint64_t v = 0; /* little-endian: a narrower field reads into its low bytes */

	if (pread(fd, &v, size, (off_t)off) != (ssize_t)size)
		return 0;
	return v;
}

/* Whether a segment's pids are ours to judge: a file of a producer in
 * another pid namespace (a container sharing the directory with the host)
 * names a pid our /proc cannot show, or shows as another process. */
static bool same_pidns(int fd)
{
	static uint64_t own;
	uint64_t ns = header_field(fd, offsetof(struct rtm_shm_header, pidns_ino), 8);

	if (!own)
		own = ns_inode("/proc/self/ns/pid");
	return !ns || !own || ns == own;
}

/* Whether this process maps the file open at fd.  By device and inode,
 * not by name: a segment mapped before it was published (O_TMPFILE, then
 * linkat) is listed as "/dev/shm/rtm/#123 (deleted)", never by its name. */
static bool mapped_here(int fd)
{
	char line[4096];
	bool found = false;
	struct stat st;
	FILE *f;

	if (fstat(fd, &st))
		return true; /* cannot tell: leave it alone */
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return true;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned int maj, min;
		unsigned long long ino;

		/* start-end perms offset major:minor inode [path] */
		found = sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) == 3 &&
			ino == (unsigned long long)st.st_ino && makedev(maj, min) == st.st_dev;
	}
	fclose(f);
	return found;
}

static uint32_t state_of(int fd)
{
	return (uint32_t)header_field(fd, offsetof(struct rtm_shm_header, state), 4);
}

void rtm__close_stale(int dfd, uint64_t start_ticks)
{
	unsigned misses = 0;

	for (unsigned n = 0; misses < STALE_MISSES && n < 4096; n++) {
		uint32_t closed = RTM_SHM_STATE_CLOSED;
		uint64_t now;
		char name[96];
		int fd;

		rtm__segment_name(name, sizeof name, start_ticks, n);
		fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			misses++;
			continue;
		}
		misses = 0;
		/* Still mapped here: another copy of librtm in this image (a
		 * preload library beside the app's own) owns it. */
		if (state_of(fd) == RTM_SHM_STATE_LIVE && same_pidns(fd) && !mapped_here(fd)) {
			now = rtm__now_ns(CLOCK_REALTIME);
			pwrite(fd, &now, sizeof now, offsetof(struct rtm_shm_header, closed_unix_nano));
			pwrite(fd, &closed, sizeof closed, offsetof(struct rtm_shm_header, state));
		}
		close(fd);
	}
}

/* Whether name is one of ours to remove: a segment or temporary of a
 * process that is gone (or a closed segment), owned by this user. */
static bool reapable(int dfd, const char *name, uid_t me)
{
	unsigned long long ticks = 0;
	unsigned idx;
	struct stat st;
	bool temp = name[0] == '.';
	int pid = 0, end = 0, fd;
	bool gone;

	if (temp) {
		size_t len = strlen(name);

		if (sscanf(name, ".rtm.%d.%*[0-9a-f].tm%*1[p]%n", &pid, &end) != 1 || !end ||
		    (size_t)end != len)
			return false;
	} else if (sscanf(name, "rtm.%d.%llu.%u.rt%*1[m]%n", &pid, &ticks, &idx, &end) != 3 ||
		   !end || name[end]) {
		return false;
	}
	if (pid <= 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || st.st_uid != me)
		return false;
	/* A temporary's pid may be of another pid namespace, where it runs:
	 * gone from here and a minute old (a producer builds one in
	 * microseconds) is gone everywhere. */
	if (temp)
		return !rtm__start_ticks(pid) &&
		       rtm__now_ns(CLOCK_REALTIME) / 1000000000u > (uint64_t)st.st_mtime + 60;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	gone = state_of(fd) == RTM_SHM_STATE_CLOSED ||
	       (same_pidns(fd) && rtm__start_ticks(pid) != ticks);
	close(fd);
	return gone;
}

void rtm__reap_gone(int dfd)
{
	struct rtm_shm_presence p;
	uid_t me = geteuid();
	struct dirent *de;
	DIR *d;
	int fd;

	if (rtm_shm_presence_read(dfd, me, rtm__now_ns(CLOCK_REALTIME), &p) || p.attached)
		return;
	fd = dup(dfd);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (reapable(dfd, de->d_name, me))
			unlinkat(dfd, de->d_name, 0);
	closedir(d);
}
