/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_pidns.h"

#include <dirent.h>
#include <errno.h>
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

/* One process of the last look: its namespace, its pid under the proc
 * root, and its pid in its namespace once asked for (0: not read yet). */
struct ns_proc {
	uint64_t ns;
	pid_t proc_pid, ns_pid;
};

static struct {
	char root[256];           /* the proc root the rest was learnt under */
	uint64_t root_ns;
	struct ns_proc *procs;    /* sorted by namespace */
	size_t n_procs, cap_procs;
	uint64_t scans;           /* looks made */
	uint64_t scan_mono;       /* when the last began */
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
	char buf[4096];
	pid_t self;
	ssize_t n;
	int levels;

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
	n = rd_proc_read(0, "status", buf, sizeof buf);
	if (n > 0 && !rd_proc_parse_nspid(buf, (size_t)n, &self, &levels) && levels == 1)
		c.root_ns = rd_ns_inode(0, "pid");
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

static int cmp_proc(const void *a, const void *b)
{
	const struct ns_proc *x = a, *y = b;

	return x->ns != y->ns ? (x->ns > y->ns) - (x->ns < y->ns) :
				(x->proc_pid > y->proc_pid) - (x->proc_pid < y->proc_pid);
}

/* The last look's processes in namespace ns: [*first, return). */
static size_t in_ns(uint64_t ns, size_t *first)
{
	size_t lo = 0, hi = c.n_procs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (c.procs[mid].ns < ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = lo;
	while (hi < c.n_procs && c.procs[hi].ns == ns)
		hi++;
	return lo < c.n_procs && c.procs[lo].ns == ns ? hi : lo;
}

/* Among them, the one that calls itself ns_pid (reading NSpid: of each
 * only once, when first asked). */
static struct ns_proc *lookup(uint64_t ns, pid_t ns_pid)
{
	size_t first, end = in_ns(ns, &first);

	for (size_t i = first; i < end; i++) {
		struct ns_proc *p = &c.procs[i];

		if (!p->ns_pid) {
			char buf[4096];
			ssize_t n = rd_proc_read(p->proc_pid, "status", buf, sizeof buf);

			if (n <= 0 || rd_proc_parse_nspid(buf, (size_t)n, &p->ns_pid, NULL))
				p->ns_pid = -1; /* gone, or unreadable */
		}
		if (p->ns_pid == ns_pid)
			return p;
	}
	return NULL;
}

/* One look at every process under the proc root: which namespace each
 * lives in (a stat of its ns/pid, nothing read); their pids there are read
 * only for the namespaces segments name. */
static void scan(void)
{
	struct dirent *de;
	DIR *d = opendir(c.root);

	c.scans++;
	c.scan_mono = mono_ns(CLOCK_MONOTONIC);
	c.scan_ticks = boot_ticks();
	c.n_procs = 0;
	while (d && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		uint64_t ns;

		if (pid <= 0 || !(ns = rd_ns_inode(pid, "pid")) || ns == c.root_ns)
			continue;
		if (c.n_procs == c.cap_procs) {
			size_t cap = c.cap_procs ? c.cap_procs * 2 : 256;
			struct ns_proc *p = realloc(c.procs, cap * sizeof *p);

			if (!p)
				break;
			c.procs = p;
			c.cap_procs = cap;
		}
		c.procs[c.n_procs++] = (struct ns_proc){ ns, pid, 0 };
	}
	if (d)
		closedir(d);
	if (c.n_procs)
		qsort(c.procs, c.n_procs, sizeof *c.procs, cmp_proc);
}

enum rd_liveness rd_pidns_find(uint64_t ns, pid_t ns_pid, uint64_t start_ticks,
			       pid_t *proc_pid)
{
	uint64_t root = rd_pidns_root();
	struct ns_proc *p;
	enum rd_liveness l;
	size_t first;

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
	p = lookup(ns, ns_pid);
	if (p && at_pid(p->proc_pid, start_ticks) == RD_ALIVE &&
	    rd_ns_inode(p->proc_pid, "pid") == ns) {
		*proc_pid = p->proc_pid;
		return RD_ALIVE;
	}
	/* What the last look says is final only if it began after the
	 * process did: else look again (at most once a second). */
	if (!c.scans || c.scan_ticks <= start_ticks) {
		if (c.scans && mono_ns(CLOCK_MONOTONIC) - c.scan_mono < RESCAN_NS)
			return RD_UNKNOWN; /* looked a moment ago: ask again later */
		scan();
		p = lookup(ns, ns_pid);
	}
	if (p) {
		/* That pid no longer a process of the namespace (gone, or
		 * reused by another's): the one the look found has ended. */
		if (rd_ns_inode(p->proc_pid, "pid") != ns)
			return RD_EXITED;
		l = at_pid(p->proc_pid, start_ticks);
		if (l == RD_ALIVE || l == RD_PID_REUSED)
			*proc_pid = p->proc_pid;
		return l;
	}
	/* None of that pid: gone, if its namespace is there to be seen. */
	return in_ns(ns, &first) > first || root == RD_PIDNS_INITIAL ? RD_EXITED : RD_HIDDEN;
}

uint64_t rd_pidns_scans(void)
{
	return c.scans;
}
