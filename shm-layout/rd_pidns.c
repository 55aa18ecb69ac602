/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_pidns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rd_proc.h"

/* A full look at /proc at most this often: a hostile segment naming a
 * namespace that does not exist costs the reader one look a second. */
#define RESCAN_NS 1000000000ull
/* Namespaces asked about that a look at /proc gathers processes of. */
#define WANT_MAX 256

struct ns_proc {
	uint64_t ns;
	pid_t ns_pid, proc_pid;
};

struct ns_want {
	uint64_t ns;
	uint64_t asked;    /* monotonic ns, for replacing the least recent */
	uint64_t scan;     /* the look that last gathered it (0: none yet) */
	bool seen;         /* that look found a process in it */
};

static struct {
	char root[256];           /* the proc root the rest was learnt under */
	uint64_t root_ns;
	struct ns_proc *procs;
	size_t n_procs, cap_procs;
	struct ns_want wants[WANT_MAX];
	size_t n_wants;
	uint64_t scans;           /* looks made: the id of the last one */
	uint64_t scan_mono;       /* when it began */
	uint64_t scan_ticks;      /* the same, in clock ticks since boot */
} c;

static uint64_t mono_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Now in the unit of /proc/<pid>/stat's starttime. */
static uint64_t boot_ticks(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	return mono_ns(CLOCK_BOOTTIME) / (1000000000u / (uint64_t)(hz > 0 ? hz : 100));
}

uint64_t rd_ns_inode(pid_t pid, const char *kind)
{
	char path[384], file[16];
	struct stat st;

	snprintf(file, sizeof file, "ns/%s", kind);
	rd_proc_path(path, sizeof path, pid, file);
	return stat(path, &st) ? 0 : (uint64_t)st.st_ino;
}

uint64_t rd_userns_self(void)
{
	static uint64_t ino;
	struct stat st;

	if (!ino && !stat("/proc/self/ns/user", &st))
		ino = (uint64_t)st.st_ino;
	return ino;
}

void rd_pidns_forget(void)
{
	free(c.procs);
	memset(&c, 0, sizeof c);
}

uint64_t rd_pidns_root(void)
{
	char path[384], buf[4096];
	struct stat st;
	ssize_t n;
	int fd;

	if (*c.root && !strcmp(c.root, rd_proc_root()))
		return c.root_ns;
	rd_pidns_forget();
	snprintf(c.root, sizeof c.root, "%s", rd_proc_root());
	/* Pid 1 of a proc mount is its namespace's init (needs the right to
	 * inspect it: root).  Else the mount shows our own namespace when our
	 * NSpid there has one entry. */
	c.root_ns = rd_ns_inode(1, "pid");
	if (c.root_ns)
		return c.root_ns;
	snprintf(path, sizeof path, "%s/self/status", c.root);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	{
		const char *p = strstr(buf, "\nNSpid:");
		int fields = 0;

		for (p = p ? p + 7 : NULL; p && *p && *p != '\n';) {
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p >= '0' && *p <= '9')
				fields++;
			while (*p >= '0' && *p <= '9')
				p++;
			if (*p != ' ' && *p != '\t')
				break;
		}
		snprintf(path, sizeof path, "%s/self/ns/pid", c.root);
		if (fields == 1 && !stat(path, &st))
			c.root_ns = (uint64_t)st.st_ino;
	}
	return c.root_ns;
}

/* The process at pid under the proc root, against the start time claimed. */
static enum rd_liveness at_pid(pid_t pid, uint64_t start_ticks)
{
	struct rd_proc_stat st;
	char buf[1024];
	ssize_t n = rd_proc_read(pid, "stat", buf, sizeof buf);

	if (n == -ESRCH)
		return RD_EXITED;
	if (n < 0 || rd_proc_parse_stat(buf, (size_t)n, &st))
		return RD_UNKNOWN;
	if (st.state == 'Z' || st.state == 'X')
		return RD_EXITED;
	return st.start_ticks == start_ticks ? RD_ALIVE : RD_PID_REUSED;
}

static struct ns_want *want(uint64_t ns)
{
	struct ns_want *w = NULL;

	for (size_t i = 0; i < c.n_wants; i++)
		if (c.wants[i].ns == ns)
			w = &c.wants[i];
	if (!w && c.n_wants < WANT_MAX) {
		w = &c.wants[c.n_wants++];
		*w = (struct ns_want){ .ns = ns };
	} else if (!w) {
		w = &c.wants[0];
		for (size_t i = 1; i < c.n_wants; i++)
			if (c.wants[i].asked < w->asked)
				w = &c.wants[i];
		*w = (struct ns_want){ .ns = ns };
	}
	w->asked = mono_ns(CLOCK_MONOTONIC);
	return w;
}

static struct ns_want *wanted(uint64_t ns)
{
	for (size_t i = 0; i < c.n_wants; i++)
		if (c.wants[i].ns == ns)
			return &c.wants[i];
	return NULL;
}

static const struct ns_proc *lookup(uint64_t ns, pid_t ns_pid)
{
	for (size_t i = 0; i < c.n_procs; i++)
		if (c.procs[i].ns == ns && c.procs[i].ns_pid == ns_pid)
			return &c.procs[i];
	return NULL;
}

static void add_proc(uint64_t ns, pid_t ns_pid, pid_t proc_pid)
{
	if (c.n_procs == c.cap_procs) {
		size_t cap = c.cap_procs ? c.cap_procs * 2 : 64;
		struct ns_proc *p = realloc(c.procs, cap * sizeof *p);

		if (!p)
			return;
		c.procs = p;
		c.cap_procs = cap;
	}
	c.procs[c.n_procs++] = (struct ns_proc){ ns, ns_pid, proc_pid };
}

/* One look at every process under the proc root: which namespace each
 * lives in, and, for the namespaces asked about, its pid there. */
static void scan(void)
{
	struct dirent *de;
	DIR *d = opendir(c.root);

	c.scans++;
	c.scan_mono = mono_ns(CLOCK_MONOTONIC);
	c.scan_ticks = boot_ticks();
	c.n_procs = 0;
	for (size_t i = 0; i < c.n_wants; i++) {
		c.wants[i].scan = c.scans;
		c.wants[i].seen = false;
	}
	while (d && (de = readdir(d))) {
		char buf[4096];
		struct ns_want *w;
		pid_t pid = (pid_t)atoi(de->d_name), ns_pid;
		uint64_t ns;
		ssize_t n;

		if (pid <= 0 || !(ns = rd_ns_inode(pid, "pid")) || !(w = wanted(ns)))
			continue;
		w->seen = true;
		n = rd_proc_read(pid, "status", buf, sizeof buf);
		if (n > 0 && !rd_proc_parse_nspid(buf, (size_t)n, &ns_pid))
			add_proc(ns, ns_pid, pid);
	}
	if (d)
		closedir(d);
}

enum rd_liveness rd_pidns_find(uint64_t ns, pid_t ns_pid, uint64_t start_ticks,
			       pid_t *proc_pid)
{
	uint64_t root = rd_pidns_root();
	const struct ns_proc *p;
	struct ns_want *w;
	enum rd_liveness l;

	*proc_pid = 0;
	if (!ns || ns == root) {
		l = at_pid(ns_pid, start_ticks);
		if (l == RD_ALIVE || l == RD_PID_REUSED)
			*proc_pid = ns_pid;
		/* That pid under the proc root, but living in a namespace
		 * below it: another process than the one the segment names. */
		if (l == RD_ALIVE && ns) {
			uint64_t there = rd_ns_inode(ns_pid, "pid");

			if (there && there != ns)
				l = RD_PID_REUSED;
		}
		return l;
	}
	/* A start in the future names no process that can exist. */
	if (start_ticks > boot_ticks() + 100)
		return RD_EXITED;
	w = want(ns);
	p = lookup(ns, ns_pid);
	if (p && at_pid(p->proc_pid, start_ticks) == RD_ALIVE &&
	    rd_ns_inode(p->proc_pid, "pid") == ns) {
		*proc_pid = p->proc_pid;
		return RD_ALIVE;
	}
	/* What the last look says is final only if it gathered this
	 * namespace and began after the process did. */
	if (w->scan != c.scans || !c.scans || c.scan_ticks <= start_ticks) {
		if (c.scans && mono_ns(CLOCK_MONOTONIC) - c.scan_mono < RESCAN_NS)
			return RD_UNKNOWN; /* looked a moment ago: ask again later */
		scan();
	}
	p = lookup(ns, ns_pid);
	if (p) {
		l = at_pid(p->proc_pid, start_ticks);
		if (l == RD_ALIVE || l == RD_PID_REUSED)
			*proc_pid = p->proc_pid;
		return l;
	}
	return w->seen || root == RD_PIDNS_INITIAL ? RD_EXITED : RD_HIDDEN;
}

uint64_t rd_pidns_scans(void)
{
	return c.scans;
}
