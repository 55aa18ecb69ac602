/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rd_delta.h"
#include "rd_encode.h"
#include "rtm_shm_text.h"

static void iso8601(uint64_t unix_nano, char *out, size_t n)
{
	time_t secs = (time_t)(unix_nano / 1000000000u);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(unix_nano / 1000000u % 1000u));
}

/* The command line, arguments joined by spaces, as valid UTF-8 (it is
 * whatever bytes the process was given). */
static char *read_cmdline(pid_t pid)
{
	char buf[4096], *out;
	ssize_t n = rd_proc_read(pid, "cmdline", buf, sizeof buf);

	if (n <= 0)
		return NULL;
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	out = malloc((size_t)n * 3 + 1);
	if (out)
		rtm_shm_utf8_repair(buf, (size_t)n, out, (size_t)n * 3 + 1);
	return out;
}

/* The executable's name: basename of /proc/<pid>/exe, else comm; as
 * valid UTF-8 (file names are any bytes). */
static void exe_name(pid_t pid, char *out, size_t n)
{
	char path[384], target[PATH_MAX];
	const char *name = NULL;
	ssize_t len;

	rd_proc_path(path, sizeof path, pid, "exe");
	len = readlink(path, target, sizeof target - 1);
	if (len > 0) {
		target[len] = '\0';
		name = strrchr(target, '/');
		name = name ? name + 1 : target;
	} else if ((len = rd_proc_read(pid, "comm", target, sizeof target)) > 0) {
		target[strcspn(target, "\n")] = '\0';
		name = target;
	}
	if (name)
		rtm_shm_utf8_repair(name, strlen(name), out, n);
}

/* One file or directory of the process under the proc root. */
static int open_in(pid_t pid, const char *file, int flags)
{
	char path[384];

	rd_proc_path(path, sizeof path, pid, file);
	return open(path, O_RDONLY | O_CLOEXEC | flags);
}

/* Opens the /proc files read every cycle, and the process's names and
 * container. */
static void open_proc(struct rd_source *s, pid_t pid, bool command_line)
{
	char cgroup[4096];

	s->stat_fd = open_in(pid, "stat", 0);
	s->status_fd = open_in(pid, "status", 0);
	/* io and fd need the process's uid or CAP_SYS_PTRACE: without them
	 * those metrics are simply absent. */
	s->io_fd = open_in(pid, "io", 0);
	s->fd_dir_fd = open_in(pid, "fd", O_DIRECTORY);
	s->task_dir_fd = open_in(pid, "task", O_DIRECTORY);
	exe_name(pid, s->exe_name, sizeof s->exe_name);
	if (command_line)
		s->command_line = read_cmdline(pid);
	if (rd_proc_read(pid, "cgroup", cgroup, sizeof cgroup) > 0)
		rd_container_parse(cgroup, &s->container);
}

struct rd_source *rd_source_new(void)
{
	static uint64_t seq;
	struct rd_source *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	/* Relaxed: only uniqueness matters, and the order within one thread. */
	s->seq = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
	s->stat_fd = s->status_fd = s->io_fd = s->fd_dir_fd = s->task_dir_fd = -1;
	s->seg.fd = -1;
	s->fd_count = -1;
	return s;
}

int rd_source_open(struct rd_source **out, int dirfd, const char *name,
		   bool command_line)
{
	struct rd_source *s = rd_source_new();
	int rc;

	if (!s)
		return -ENOMEM;
	/* The segment keeps s->name as its path: a name cut short would
	 * open another file, so a longer one is refused. */
	if ((size_t)snprintf(s->name, sizeof s->name, "%s", name) >= sizeof s->name) {
		snprintf(s->seg.err, sizeof s->seg.err, "a name longer than %d bytes", NAME_MAX);
		*out = s;
		return -ENAMETOOLONG;
	}
	rc = rd_segment_open(&s->seg, dirfd, s->name, 0);
	if (rc) {
		*out = s; /* the caller reads s->seg.err, then frees */
		return rc;
	}
	s->ino = s->seg.st.st_ino;
	s->budget_gen = UINT64_MAX;
	/* One stream identity per producer incarnation: a restarted producer
	 * or a reused pid has another start time, hence new streams. */
	snprintf(s->instance_id, sizeof s->instance_id, "%d-%llu-%llu", s->seg.hdr.pid,
		 (unsigned long long)s->seg.hdr.pid_start_ticks,
		 (unsigned long long)s->seg.hdr.created_unix_nano);
	iso8601(s->seg.hdr.created_unix_nano, s->creation_time, sizeof s->creation_time);
	switch ((enum rd_liveness)s->seg.liveness) {
	case RD_ALIVE:
		open_proc(s, s->seg.proc_pid, command_line);
		break;
	case RD_HIDDEN:
	case RD_UNKNOWN:
		/* Whether it runs cannot be told from here: never taken for
		 * dead (that would remove a live segment), nor exported
		 * without the owner check its process allows. */
		snprintf(s->seg.err, sizeof s->seg.err, s->seg.liveness == RD_HIDDEN ?
			 "its process (pid %d of pid namespace %llu) is not visible under %s: kept, "
			 "not exported (give the host's /proc with --proc-root)" :
			 "its process (pid %d of pid namespace %llu) is not found yet under %s: kept, "
			 "looked for again", s->seg.hdr.pid, (unsigned long long)s->seg.hdr.pidns_ino,
			 rd_proc_root());
		*out = s;
		return RD_ERR_NOT_VISIBLE;
	default:
		break; /* gone: its final values, then the segment goes */
	}
	*out = s;
	return 0;
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "btime" of /proc/stat: the boot time, in whole seconds, fixed per boot;
 * the two clocks' difference when it cannot be read.  Line by line, since
 * the "intr" line before it runs to many kilobytes on large machines. */
uint64_t rd_boot_unix_nano(void)
{
	static uint64_t boot;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (boot)
		return boot;
	f = fopen("/proc/stat", "re");
	while (f && getline(&line, &cap, f) > 0)
		if (!strncmp(line, "btime ", 6)) {
			boot = strtoull(line + 6, NULL, 10) * 1000000000ull;
			break;
		}
	free(line);
	if (f)
		fclose(f);
	if (!boot)
		boot = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
	return boot;
}

int rd_source_open_pid(struct rd_source **out, pid_t pid, bool command_line)
{
	struct rd_source *s = rd_source_new();
	struct rd_proc_stat st;
	char buf[1024];
	ssize_t n = rd_proc_read(pid, "stat", buf, sizeof buf);

	if (!s)
		return -ENOMEM;
	if (n <= 0 || rd_proc_parse_stat(buf, (size_t)n, &st) || st.state == 'Z') {
		free(s);
		return -ESRCH;
	}
	s->no_segment = true;
	s->seen = true;
	/* A stand-in header: identity only, no metrics of its own. */
	/* process.pid as the process sees itself (in a container, its pid
	 * there), as for a producer's; the proc root's is how it is read. */
	{
		char status[4096];
		pid_t own = pid;
		ssize_t m = rd_proc_read(pid, "status", status, sizeof status);

		if (m <= 0 || rd_proc_parse_nspid(status, (size_t)m, &own, NULL))
			own = pid;
		s->seg.hdr.pid = (int32_t)own;
	}
	s->seg.proc_pid = pid;
	s->seg.liveness = RD_ALIVE;
	s->seg.hdr.pid_start_ticks = st.start_ticks;
	s->seg.hdr.created_unix_nano = rd_boot_unix_nano() +
		(uint64_t)st.start_ticks * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
	open_proc(s, pid, command_line);
	snprintf(s->seg.hdr.service_name, sizeof s->seg.hdr.service_name, "%.*s",
		 (int)sizeof s->seg.hdr.service_name - 1, *s->exe_name ? s->exe_name : "unknown");
	snprintf(s->instance_id, sizeof s->instance_id, "%d-%llu", (int)pid,
		 (unsigned long long)st.start_ticks);
	iso8601(s->seg.hdr.created_unix_nano, s->creation_time, sizeof s->creation_time);
	*out = s;
	return 0;
}

static void close_tid(struct rd_tid_stats *t);

void rd_source_free(struct rd_source *s)
{
	if (!s)
		return;
	int fds[] = { s->stat_fd, s->status_fd, s->io_fd, s->fd_dir_fd, s->task_dir_fd };

	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (size_t i = 0; i < s->n_tids; i++)
		close_tid(&s->tids[i]);
	free(s->tids);
	free(s->bufs);
	free(s->leak);
	rd_delta_free(s->delta);
	rd_snapshot_free(&s->snap);
	if (s->datagram) {
		/* Its series name rd_final.c's table: not the segment's to free. */
		free(s->seg.metrics);
		s->seg.metrics = NULL;
		s->seg.n_metrics = 0;
	}
	rd_segment_close(&s->seg);
	free(s->command_line);
	free(s);
}

static void add_req(struct rd_source *s, struct rd_procio_req *req, int fd,
		    char *buf, size_t size)
{
	if (fd < 0)
		return;
	req[s->n_reqs] = (struct rd_procio_req){ .fd = fd, .buf = buf, .size = size };
	s->n_reqs++;
}

size_t rd_source_proc_requests(struct rd_source *s, struct rd_procio_req *req)
{
	s->n_reqs = 0;
	if (s->stat_fd < 0)
		return 0;
	/* Without memory for them, no reads: the results find stat_ok false,
	 * as for a process that ended. */
	if (!s->bufs && !(s->bufs = malloc(sizeof *s->bufs)))
		return 0;
	add_req(s, req, s->stat_fd, s->bufs->stat, sizeof s->bufs->stat);
	add_req(s, req, s->status_fd, s->bufs->status, sizeof s->bufs->status);
	add_req(s, req, s->io_fd, s->bufs->io, sizeof s->bufs->io);
	return s->n_reqs;
}

/* Since Linux 6.2 the size of /proc/<pid>/fd is its number of open
 * descriptors: one fstat instead of a listing.  Probed once on our own
 * directory, which always holds a descriptor or more. */
static bool fd_dir_has_size(void)
{
	static int known; /* 0 unknown, 1 yes, -1 no; the reader's one thread */
	struct stat st;

	if (!known)
		known = stat("/proc/self/fd", &st) == 0 && st.st_size > 0 ? 1 : -1;
	return known > 0;
}

/* Open descriptors: entries of /proc/<pid>/fd, minus "." and "..". */
static int64_t count_fds(int dirfd)
{
	char buf[8192];
	int64_t n = 0;
	long got;
	struct stat st;

	if (dirfd < 0)
		return -1;
	if (fd_dir_has_size())
		return fstat(dirfd, &st) == 0 ? (int64_t)st.st_size : -1;
	if (lseek(dirfd, 0, SEEK_SET) < 0)
		return -1;
	while ((got = syscall(SYS_getdents64, dirfd, buf, sizeof buf)) > 0) {
		for (long pos = 0; pos < got;) {
			const char *name = buf + pos + 19; /* d_name in linux_dirent64 */
			unsigned short reclen;

			memcpy(&reclen, buf + pos + 16, sizeof reclen);
			n += name[0] != '.';
			pos += reclen;
		}
	}
	return got < 0 ? -1 : n;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = ((const struct rd_tid_stats *)a)->tid, y = ((const struct rd_tid_stats *)b)->tid;

	return (x > y) - (x < y);
}

/* One of a thread's files: through *fd, opened on first use and kept for
 * the next cycles (a thread's files are read every cycle: reopening them
 * was the reader's largest cost with the scheduler group on); opened for
 * this read only when no descriptor is left. */
static ssize_t read_tid(int dirfd, const char *tid, const char *file, int *fd, char *buf,
			size_t size)
{
	char path[64];
	ssize_t r;
	int once = -1;

	if (*fd < 0) {
		snprintf(path, sizeof path, "%.16s/%s", tid, file);
		*fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0) {
			once = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
			if (once < 0)
				return -1;
		}
	}
	r = pread(once >= 0 ? once : *fd, buf, size - 1, 0);
	if (once >= 0)
		close(once);
	if (r > 0)
		buf[r] = '\0';
	return r;
}

static void close_tid(struct rd_tid_stats *t)
{
	if (t->sched_fd >= 0)
		close(t->sched_fd);
	if (t->status_fd >= 0)
		close(t->status_fd);
	t->sched_fd = t->status_fd = -1;
}

/* The previous cycle's entry for tid, if any (s->tids is sorted). */
static struct rd_tid_stats *old_tid(struct rd_source *s, pid_t tid)
{
	size_t lo = 0, hi = s->n_tids;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->tids[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n_tids && s->tids[lo].tid == tid ? &s->tids[lo] : NULL;
}

static void add_sums(struct rd_thread_sums *a, const struct rd_thread_sums *b)
{
	a->wait_ns += b->wait_ns;
	a->ctx_voluntary += b->ctx_voluntary;
	a->ctx_involuntary += b->ctx_involuntary;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Reads thread tid's files into *t, taking over the descriptors its entry
 * of the previous cycle kept.  A single-threaded process's one thread is
 * its leader, whose status the cycle already read: then only schedstat.
 * Returns false when the thread is gone. */
static bool read_one_tid(struct rd_source *s, pid_t tid, bool only, struct rd_tid_stats *t)
{
	struct rd_tid_stats *prev = old_tid(s, tid);
	struct rd_proc_status st;
	char name[16], text[4096];
	ssize_t r;

	snprintf(name, sizeof name, "%d", (int)tid);
	*t = (struct rd_tid_stats){ .tid = tid, .sched_fd = -1, .status_fd = -1 };
	if (prev) { /* its files move to this cycle's entry */
		t->sched_fd = prev->sched_fd;
		t->status_fd = prev->status_fd;
		prev->sched_fd = prev->status_fd = -1;
	}
	r = read_tid(s->task_dir_fd, name, "schedstat", &t->sched_fd, text, sizeof text);
	if (r <= 0 || rd_proc_parse_schedstat(text, (size_t)r, &t->v.wait_ns)) {
		close_tid(t);
		return false;
	}
	if (only && s->status_ok) {
		st = s->status;
	} else {
		r = read_tid(s->task_dir_fd, name, "status", &t->status_fd, text, sizeof text);
		if (r <= 0 || rd_proc_parse_status(text, (size_t)r, &st))
			return true;
	}
	t->v.ctx_voluntary = st.ctx_voluntary;
	t->v.ctx_involuntary = st.ctx_involuntary;
	return true;
}

static bool grow_tids(struct rd_tid_stats **now, size_t n, size_t *cap)
{
	struct rd_tid_stats *p;

	if (n < *cap)
		return true;
	p = realloc(*now, (*cap ? *cap * 2 : 16) * sizeof *p);
	if (!p)
		return false;
	*now = p;
	*cap = *cap ? *cap * 2 : 16;
	return true;
}

/*
 * Runqueue wait and context switches of the whole process: sums over its
 * threads (/proc/<pid>/task/<tid>/{schedstat,status}), since both files
 * count one thread only.  A thread's last values are kept when it exits,
 * so the totals never go backwards (they miss at most what an exiting
 * thread did after the last cycle).  A process that had one thread when
 * its stat was read is not listed: its thread is its leader (a thread of
 * the last cycle that is not in stat's count has exited).
 */
static void read_threads(struct rd_source *s)
{
	struct rd_tid_stats *now = NULL;
	struct rd_thread_sums sum = { 0, 0, 0 };
	size_t n = 0, cap = 0, old = 0;
	char buf[8192];
	long got = 0;

	if (s->task_dir_fd < 0)
		return;
	if (!s->threads_since_unix_nano)
		s->threads_since_unix_nano = clock_ns(CLOCK_REALTIME);
	if (s->stat.num_threads == 1) {
		if (grow_tids(&now, n, &cap) && read_one_tid(s, s->seg.proc_pid, true, &now[n]))
			add_sums(&sum, &now[n++].v);
	} else if (lseek(s->task_dir_fd, 0, SEEK_SET) == 0) {
		while ((got = syscall(SYS_getdents64, s->task_dir_fd, buf, sizeof buf)) > 0) {
			for (long pos = 0; pos < got;) {
				const char *name = buf + pos + 19;
				unsigned short reclen;

				memcpy(&reclen, buf + pos + 16, sizeof reclen);
				pos += reclen;
				if (name[0] == '.' || !grow_tids(&now, n, &cap))
					continue;
				if (read_one_tid(s, (pid_t)atoi(name), false, &now[n]))
					add_sums(&sum, &now[n++].v);
			}
		}
	}
	if (!n) { /* gone, or unreadable: keep the last cycle's threads */
		free(now);
		return;
	}
	qsort(now, n, sizeof *now, cmp_tid);
	/* Threads seen last cycle and gone now: keep their final values. */
	for (size_t i = 0; i < s->n_tids; i++) {
		while (old < n && now[old].tid < s->tids[i].tid)
			old++;
		if (old >= n || now[old].tid != s->tids[i].tid)
			add_sums(&s->threads_retired, &s->tids[i].v);
		close_tid(&s->tids[i]); /* only the gone still hold files */
	}
	free(s->tids);
	s->tids = now;
	s->n_tids = n;
	add_sums(&sum, &s->threads_retired);
	s->threads_total.wait_ns = max_u64(s->threads_total.wait_ns, sum.wait_ns);
	s->threads_total.ctx_voluntary = max_u64(s->threads_total.ctx_voluntary, sum.ctx_voluntary);
	s->threads_total.ctx_involuntary =
		max_u64(s->threads_total.ctx_involuntary, sum.ctx_involuntary);
}

void rd_source_proc_results(struct rd_source *s, const struct rd_procio_req *req,
			    bool want_threads)
{
	unsigned i = 0;

	s->stat_ok = false;
	s->status_ok = false;
	s->io_ok = false;
	if (!s->n_reqs) {
		/* No reads were asked for (rd_source_proc_requests()): no stat
		 * fd (the producer was gone when we found it), or no memory to
		 * read into. */
		return;
	}
	if (req[i].result > 0 &&
	    rd_proc_parse_stat(s->bufs->stat, (size_t)req[i].result, &s->stat) == 0 &&
	    s->stat.state != 'Z' && s->stat.state != 'X' &&
	    s->stat.start_ticks == s->seg.hdr.pid_start_ticks)
		s->stat_ok = true;
	i++;
	if (s->status_fd >= 0) {
		s->status_ok = s->stat_ok && req[i].result > 0 &&
			rd_proc_parse_status(s->bufs->status, (size_t)req[i].result, &s->status) == 0;
		i++;
	}
	if (s->io_fd >= 0)
		s->io_ok = s->stat_ok && req[i].result > 0 &&
			rd_proc_parse_io(s->bufs->io, (size_t)req[i].result, &s->io_read,
					 &s->io_write) == 0;
	if (s->stat_ok) {
		s->fd_count = count_fds(s->fd_dir_fd);
		if (want_threads)
			read_threads(s);
	}
}

int rd_source_collect(struct rd_source *s)
{
	int rc;

	if (s->no_segment) {
		if (s->state == RD_SRC_LIVE && !s->stat_ok)
			s->state = RD_SRC_DEAD;
		return 0;
	}
	if (s->datagram)
		return 0; /* dead from birth, its values in place */
	rc = rd_segment_refresh(&s->seg);

	if (rc < 0)
		return rc;
	rc = rd_segment_snapshot(&s->seg, &s->snap);
	if (rc)
		return rc;
	/* Dead when closed cleanly, or when its process is gone: the kept
	 * fd reads ESRCH after exit, even if the pid is reused meanwhile. */
	if (s->state == RD_SRC_LIVE &&
	    (s->snap.state == RTM_SHM_STATE_CLOSED || !s->stat_ok))
		s->state = RD_SRC_DEAD;
	return 0;
}

/* The producer's live-heap series from the allocator metrics, if it
 * publishes them (looked up once per descriptor table). */
static int64_t heap_index(struct rd_source *s)
{
	if (s->heap_generation != s->seg.generation || !s->heap_generation) {
		s->heap_idx = -1;
		for (uint32_t i = 0; !s->no_segment && i < s->seg.n_metrics; i++)
			if (!s->seg.metrics[i].n_attrs &&
			    !strcmp(s->seg.metrics[i].name, "runtime.native.mem.heap.alloc")) {
				s->heap_idx = i;
				break;
			}
		s->heap_generation = s->seg.generation;
	}
	return s->heap_idx;
}

void rd_source_leak_observe(struct rd_source *s, const struct rd_leak_cfg *c, uint64_t t_ns,
			    unsigned *became, unsigned *stopped)
{
	double v[RD_LEAK_N];
	bool have[RD_LEAK_N] = { false };
	int64_t h = heap_index(s);

	*became = *stopped = 0;
	if (!c->enabled || !s->stat_ok)
		return;
	if (!s->leak && !(s->leak = calloc(1, sizeof *s->leak)))
		return; /* no history without memory: nothing is flagged */
	if (h >= 0 && s->snap.values) {
		v[RD_LEAK_HEAP] = (double)s->snap.values[h].i;
		have[RD_LEAK_HEAP] = true;
	} else if (s->status_ok) {
		v[RD_LEAK_HEAP] = (double)s->status.rss_bytes;
		have[RD_LEAK_HEAP] = true;
	}
	v[RD_LEAK_THREADS] = (double)s->stat.num_threads;
	have[RD_LEAK_THREADS] = true;
	v[RD_LEAK_FDS] = (double)s->fd_count;
	have[RD_LEAK_FDS] = s->fd_count >= 0;
	for (int k = 0; k < RD_LEAK_N; k++) {
		int tr;

		if (!have[k])
			continue;
		tr = rd_leak_observe(s->leak, c, (enum rd_leak_kind)k, t_ns, v[k]);
		if (tr > 0)
			*became |= 1u << k;
		else if (tr < 0)
			*stopped |= 1u << k;
	}
}
