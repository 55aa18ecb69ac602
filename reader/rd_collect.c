/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_collect.h"
#include "rd_final.h"
#include "rd_delta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rd_config.h"
#include "rd_dir.h"
#include "rd_limits.h"
#include "rtm_shm_presence.h"
#include "rd_log.h"
#include "rd_proc.h"
#include "rtm.h"

#define REJECT_LINES 5 /* per minute, before rejections are summarised */
/* A full directory scan at least this often, even with inotify events. */
#define FULL_SCAN_NS (60 * 1000000000ull)

/* Below this queue length the reader says so at start. */
#define FINAL_QLEN_SHORT 64

struct rd_rejected {
	char name[NAME_MAX + 1];
	ino_t ino;
	struct timespec ctime;
	bool finished; /* exported to the end and kept (--keep-dead) */
	bool seen;
	/* Valid, but its process cannot be found from here (a pid namespace
	 * the proc root does not show, or not looked for yet): opened again
	 * at retry (monotonic ns), never taken for dead. */
	bool unresolved;
	uint64_t retry, retry_gap;
	struct rd_rejected *next;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The security model (docs/reference/reader.md, "Segment directory"): the directory is shared
 * and sticky, like /tmp, so every user can publish but none can remove or
 * replace another's files.  Says once what is unsafe about it. */
static void check_dir(struct rd_reader *r)
{
	struct stat st;

	if (fstat(r->dirfd, &st))
		return;
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
		rd_log("segment directory %s is writable by every user but not sticky: any user can "
		       "remove or replace others' segments (chmod +t %s)", r->dir, r->dir);
	/* The shared directory is root's (FORMAT.md §1): one a user made
	 * before the reader or systemd-tmpfiles did is taken back, as
	 * systemd-tmpfiles would. */
	if (st.st_uid != 0 && geteuid() == 0 && !strcmp(r->dir, RD_DEFAULT_DIR) &&
	    !fchown(r->dirfd, 0, 0) && !fchmod(r->dirfd, 01777)) {
		rd_log("segment directory %s belonged to uid %u, who could remove or rename any "
		       "segment in it: it is root's now (1777)", r->dir, (unsigned)st.st_uid);
		return;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid())
		rd_log("segment directory %s belongs to uid %u, who can remove or rename any segment in it",
		       r->dir, (unsigned)st.st_uid);
}

/* Why the directory did not open, in words. */
static const char *dir_failure(const char *dir, int err)
{
	struct stat st;

	if (!lstat(dir, &st) && S_ISLNK(st.st_mode))
		return "a symbolic link (refused; give the real path)";
	return strerror(err);
}

static int open_dir(struct rd_reader *r)
{
	int err;

	if (r->dirfd >= 0)
		return 0;
	/* Only the default directory is created (by root, when the reader runs
	 * as root), shared and sticky: never one named by --dir or RTM_DIR, so
	 * a typo creates no world-writable directory. */
	if (!strcmp(r->dir, RD_DEFAULT_DIR) && mkdir(r->dir, 0777) == 0)
		chmod(r->dir, 01777);
	/* O_NOFOLLOW: a symbolic link as the directory is refused, so no one
	 * can point the root reader somewhere else. */
	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r->dirfd < 0) {
		err = errno;
		rd_log_limited("dir", "segment directory %s: %s", r->dir, dir_failure(r->dir, err));
		return -err;
	}
	check_dir(r);
	/* Short commands' final values by datagram; a reader that will not
	 * come back for them (--once) takes none. */
	if (!r->cfg->once) {
		char why[300];

		r->final_qlen = rd_final_queue_len();
		if (rd_final_listen(r->dirfd, r->dir, &r->final_fd, why, sizeof why))
			rd_log("short commands' final values come as files: %s", why);
		else if (r->final_qlen < FINAL_QLEN_SHORT)
			/* The queue is fixed at the socket's creation: a short
			 * one costs senders a wake of the reader per few exits
			 * (docs/performance.md, rtm-bench-exec). */
			rd_log_limited("qlen", "%s/%s takes %d datagrams between wakes "
				       "(net.unix.max_dgram_qlen): short commands cost more "
				       "than with 512, the value systemd sets at boot",
				       r->dir, RTM_SHM_FINAL_SOCKET, r->final_qlen);
	}
	return 0;
}

int rd_reader_dir_error(struct rd_reader *r)
{
	return r->dirfd >= 0 ? 0 : open_dir(r);
}

/* With the host's /proc from a container, /proc/<pid>/cgroup names cgroups
 * from the reader's own cgroup namespace: "/../../kubepods/...", whose
 * limits cannot be found.  The host's namespace (its init's) names them
 * whole; joining it needs CAP_SYS_ADMIN, and is done before any thread
 * starts, so every thread is in it. */
static void join_host_cgroupns(void)
{
	char path[384];
	struct stat own, host;
	int fd;

	rd_proc_path(path, sizeof path, 1, "ns/cgroup");
	if (stat("/proc/self/ns/cgroup", &own) || stat(path, &host) || own.st_ino == host.st_ino)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWCGROUP))
		rd_log("cgroup namespace: cannot join the host's (%s): container limits are left out "
		       "for processes outside the reader's own cgroup (give it CAP_SYS_ADMIN, or run it "
		       "in the host's cgroup namespace)", strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The proc root and cgroup root the configuration names, checked. */
static int set_roots(const struct rd_config *cfg, char *err, size_t errlen)
{
	int rc = rd_proc_set_root(cfg->proc_root);

	if (rc)
		return rd_errorf(err, errlen, "%s %s: %s", cfg->proc_root_from ? cfg->proc_root_from :
				 "proc root", cfg->proc_root,
				 rc == -EMEDIUMTYPE ? "not a procfs mount" : strerror(-rc));
	rc = rd_limits_set_cgroup_root(cfg->cgroup_root);
	if (rc && cfg->cgroup_root_from)
		return rd_errorf(err, errlen, "%s %s: %s", cfg->cgroup_root_from, cfg->cgroup_root,
				 strerror(-rc));
	if (strcmp(cfg->proc_root, "/proc"))
		join_host_cgroupns();
	return 0;
}

static void log_conflict(void *ctx, const char *line)
{
	(void)ctx;
	rd_log("%s", line);
}

int rd_reader_init(struct rd_reader *r, const struct rd_config *cfg, char *err,
		   size_t errlen)
{
	int rc;

	memset(r, 0, sizeof *r);
	r->dirfd = -1;
	r->presence_fd = -1;
	r->final_fd = -1;
	rc = set_roots(cfg, err, errlen);
	if (rc)
		return rc;
	r->cfg = cfg;
	r->dir = rd_dir_path(cfg->dir);
	r->self.start_unix_nano = now_ns(CLOCK_REALTIME);
	r->self.cycle_min = 1e300;
	r->self.cycle_max = -1e300;
	rd_encode_env_init(&r->env, cfg->command_line);
	rc = rd_procio_open(&r->procio, cfg->io);
	if (rc) {
		snprintf(err, errlen, "--io uring: cannot set up an io_uring: %s", strerror(-rc));
		return rc;
	}
	rc = rd_exporter_open(&r->exporter, cfg, err, errlen);
	if (rc)
		return rc;
	r->leak = cfg->settings.leak;
	rd_segment_set_limits(cfg->settings.limit_series, cfg->settings.limit_strings);
	if (r->leak.enabled && r->leak.window_ns < 4 * cfg->interval_ns) {
		/* A window must hold four samples to judge a trend. */
		r->leak.window_ns = 4 * cfg->interval_ns;
		rd_log("leak detection: window stretched to %.3gs, four collection intervals",
		       (double)r->leak.window_ns / 1e9);
	}
	if (cfg->prometheus && !cfg->once) {
		char why[256];

		rc = rd_prom_server_start(&r->prom, cfg->prom_host, cfg->prom_port, cfg->interval_ns,
					  why, sizeof why);
		if (rc) {
			snprintf(err, errlen, "prometheus %s:%s: %s", cfg->prom_host, cfg->prom_port, why);
			return rc;
		}
		r->prom_r = rd_prom_renderer_new();
		rd_prom_renderer_on_conflict(r->prom_r, log_conflict, NULL);
		rd_prom_renderer_created(r->prom_r, r->cfg->prom_created);
	}
	/* Only protobuf bytes leave: no tree needs to outlive its producer. */
	r->batch.wire_only = !r->prom && !cfg->console_too &&
		(cfg->exporter == RD_EXPORT_NONE ||
		 (cfg->exporter == RD_EXPORT_OTLP && cfg->protocol != RD_PROTO_JSON));
	r->batch.max_bytes = cfg->max_request_bytes;
	r->batch.temporality = cfg->exporter == RD_EXPORT_NONE ? RD_TEMP_CUMULATIVE : cfg->temporality;
	r->batch.since_ns = r->self.start_unix_nano;
	open_dir(r);
	return 0;
}

/* Sources by name: a directory event touches one name, and with a
 * thousand producers a walk of the list per event was most of what a
 * short-lived producer cost. */
static size_t name_bucket(const struct rd_reader *r, const char *name)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return (size_t)h & (r->n_buckets - 1);
}

static void index_put(struct rd_reader *r, struct rd_source *s)
{
	size_t b = name_bucket(r, s->name);

	s->hnext = r->by_name[b];
	r->by_name[b] = s;
}

/* Puts s at the head of the list and in the index (grown to keep chains
 * short; aborts without memory, like the arena). */
static void link_source(struct rd_reader *r, struct rd_source *s)
{
	s->next = r->sources;
	r->sources = s;
	if (++r->n_sources > r->n_buckets) {
		size_t n = r->n_buckets ? r->n_buckets * 4 : 256;
		struct rd_source **b = calloc(n, sizeof *b);

		if (!b)
			abort();
		free(r->by_name);
		r->by_name = b;
		r->n_buckets = n;
		for (struct rd_source *o = r->sources; o; o = o->next)
			index_put(r, o);
	} else {
		index_put(r, s);
	}
}

/* Takes *pp (a link of the list) out of the list and the index, and frees it. */
static void drop_source(struct rd_reader *r, struct rd_source **pp)
{
	struct rd_source *s = *pp, **hp = &r->by_name[name_bucket(r, s->name)];

	while (*hp != s)
		hp = &(*hp)->hnext;
	*hp = s->hnext;
	*pp = s->next;
	r->n_sources--;
	rd_source_free(s);
}

void rd_reader_fini(struct rd_reader *r)
{
	while (r->sources)
		drop_source(r, &r->sources);
	free(r->by_name);
	r->by_name = NULL;
	r->n_buckets = 0;
	while (r->rejected) {
		struct rd_rejected *x = r->rejected;
		r->rejected = x->next;
		free(x);
	}
	rd_prom_server_stop(r->prom);
	rd_prom_renderer_free(r->prom_r);
	rd_batch_free(&r->prom_batch);
	rd_exporter_close(r->exporter);
	rd_procio_close(r->procio);
	rd_batch_free(&r->batch);
	rd_encode_env_free(&r->env);
	free(r->reqs);
	rd_reader_final_stop(r);
	if (r->dirfd >= 0)
		close(r->dirfd);
	/* The presence file stays: a restart within its grace keeps producers
	 * from removing what the next reader should export. */
	if (r->presence_fd >= 0)
		close(r->presence_fd);
}

void rd_reader_forget_rejected(struct rd_reader *r)
{
	while (r->rejected) {
		struct rd_rejected *x = r->rejected;

		r->rejected = x->next;
		rd_log_forget(x->name);
		free(x);
	}
}

static struct rd_rejected *find_rejected(struct rd_reader *r, const char *name)
{
	for (struct rd_rejected *x = r->rejected; x; x = x->next)
		if (!strcmp(x->name, name))
			return x;
	return NULL;
}

/* The entry for name among the refused, made when there is none (NULL
 * without memory). */
static struct rd_rejected *rejected_entry(struct rd_reader *r, const char *name)
{
	struct rd_rejected *x = find_rejected(r, name);

	if (!x) {
		x = calloc(1, sizeof *x);
		if (!x)
			return NULL;
		snprintf(x->name, sizeof x->name, "%s", name);
		x->next = r->rejected;
		r->rejected = x;
	}
	return x;
}

static void reject(struct rd_reader *r, const char *name, const struct stat *st,
		   const char *why)
{
	struct rd_rejected *x = rejected_entry(r, name);

	if (!x)
		return;
	x->ino = st ? st->st_ino : 0;
	x->ctime = st ? st->st_ctim : (struct timespec){ 0, 0 };
	x->seen = true;
	x->unresolved = false;
	r->self.segments_rejected++;
	/* One line per file for the first few in a minute; past that a
	 * summary, so thousands of junk files cannot flood the log. */
	if (r->rej_logged < REJECT_LINES) {
		r->rej_logged++;
		rd_log_limited(name, "segment %s/%s rejected: %s", r->dir, name, why);
	} else if (!r->rej_suppressed++) {
		snprintf(r->rej_example, sizeof r->rej_example, "%s: %s", name, why);
	}
}

void rd_reader_log_rejections(struct rd_reader *r, uint64_t mono, bool now)
{
	if (!now && mono - r->rej_window < 60000000000ull)
		return;
	if (r->rej_suppressed)
		rd_log("%llu more files rejected in the last minute in %s, e.g. %s",
		       (unsigned long long)r->rej_suppressed, r->dir, r->rej_example);
	r->rej_window = mono;
	r->rej_logged = 0;
	r->rej_suppressed = 0;
}

static struct rd_source *find_source(struct rd_reader *r, const char *name, ino_t ino)
{
	if (!r->n_buckets)
		return NULL;
	for (struct rd_source *s = r->by_name[name_bucket(r, name)]; s; s = s->hnext)
		if (s->ino == ino && !strcmp(s->name, name))
			return s;
	return NULL;
}

static bool have_pid(const struct rd_reader *r, pid_t pid)
{
	for (const struct rd_source *s = r->sources; s; s = s->next)
		if (s->seg.proc_pid == pid && s->state == RD_SRC_LIVE)
			return true;
	return false;
}

static void add_process(struct rd_reader *r, pid_t pid)
{
	struct rd_source *s;

	if (pid == getpid() || have_pid(r, pid))
		return;
	if (rd_source_open_pid(&s, pid, r->cfg->command_line))
		return; /* gone, or a zombie */
	link_source(r, s);
}

/* --pid and --match: processes without a segment, collected from /proc
 * alone, as process-exporter does.  A producer's own segment wins. */
static void scan_processes(struct rd_reader *r)
{
	const struct rd_config *c = r->cfg;
	struct dirent *de;
	DIR *d;

	for (size_t i = 0; i < c->n_pids; i++)
		add_process(r, c->pids[i]);
	if (!c->has_match || !(d = opendir(rd_proc_root())))
		return;
	while ((de = readdir(d))) {
		char cmd[4096];
		pid_t pid = (pid_t)atoi(de->d_name);
		ssize_t n;

		if (pid <= 0 || have_pid(r, pid))
			continue;
		n = rd_proc_read(pid, "cmdline", cmd, sizeof cmd);
		if (n <= 0)
			continue; /* gone, or a kernel thread */
		for (ssize_t k = 0; k < n - 1; k++)
			if (!cmd[k])
				cmd[k] = ' ';
		if (regexec(&c->match, cmd, 0, NULL, 0) == 0)
			add_process(r, pid);
	}
	closedir(d);
}

/* A valid segment whose process cannot be found from here: remembered
 * (quietly, beside the refused) and opened again next cycle.  Said once
 * when its pid namespace is not visible at all, which needs the operator. */
static void keep_unresolved(struct rd_reader *r, const char *name, const struct stat *st,
			    const struct rd_source *s)
{
	struct rd_rejected *x = rejected_entry(r, name);
	bool fresh;

	if (!x)
		return;
	fresh = !x->unresolved || x->ino != st->st_ino;

	if (fresh && s->seg.liveness == RD_HIDDEN)
		rd_log_limited(name, "segment %s/%s: %s", r->dir, name, s->seg.err);
	/* Not looked for yet: next cycle.  Not visible: a namespace stays
	 * out of sight, so every look costs a parse for nothing; ever more
	 * seldom, up to once a minute, whatever a user plants. */
	if (fresh || s->seg.liveness != RD_HIDDEN || !x->retry_gap)
		x->retry_gap = r->cfg->interval_ns / 2;
	else if (x->retry_gap < 60000000000ull)
		x->retry_gap *= 2;
	x->ino = st->st_ino;
	x->ctime = st->st_ctim;
	x->seen = true;
	x->unresolved = true;
	x->retry = now_ns(CLOCK_MONOTONIC) + x->retry_gap;
}

/* Looks at one file of the directory (st: its fstatat, not followed): a
 * new segment is validated and added (a bad one refused, once), a known one
 * marked seen. */
static void consider(struct rd_reader *r, const char *name, const struct stat *st)
{
	struct rd_rejected *x;
	struct rd_source *s;
	int rc;

	s = find_source(r, name, st->st_ino);
	if (s) {
		s->seen = true;
		return;
	}
	x = find_rejected(r, name);
	if (x && x->ino == st->st_ino &&
	    (x->finished || (x->ctime.tv_sec == st->st_ctim.tv_sec &&
			     x->ctime.tv_nsec == st->st_ctim.tv_nsec)) &&
	    (!x->unresolved || now_ns(CLOCK_MONOTONIC) < x->retry)) {
		x->seen = true; /* unchanged since refused: stay quiet */
		return;
	}
	rc = rd_source_open(&s, r->dirfd, name, r->cfg->command_line);
	if (rc == -EAGAIN) {
		rd_source_free(s); /* still initialising: look again later */
		return;
	}
	if (rc == RD_ERR_NOT_VISIBLE) {
		keep_unresolved(r, name, st, s);
		rd_source_free(s);
		return;
	}
	if (rc) {
		reject(r, name, st, s ? s->seg.err : strerror(-rc));
		rd_source_free(s);
		return;
	}
	if (x) {
		x->ino = 0; /* fixed now; forget the refusal */
		x->unresolved = false;
	}
	s->seen = true;
	link_source(r, s);
}

void rd_reader_scan(struct rd_reader *r)
{
	char **names;
	int n;

	if (open_dir(r))
		return;
	n = rd_dir_list(r->dirfd, &names);
	if (n < 0) {
		rd_log_limited("dir", "segment directory %s: %s", r->dir, strerror(-n));
		return;
	}
	for (struct rd_source *s = r->sources; s; s = s->next)
		s->seen = false;
	for (struct rd_rejected *x = r->rejected; x; x = x->next)
		x->seen = false;
	for (int i = 0; i < n; i++) {
		struct stat st;

		if (!fstatat(r->dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW)) /* else vanished */
			consider(r, names[i], &st);
	}
	rd_dir_names_free(names);
	/* Refusals for files that are gone or fixed are forgotten. */
	for (struct rd_rejected **pp = &r->rejected; *pp;) {
		struct rd_rejected *x = *pp;

		if (!x->seen || !x->ino) {
			*pp = x->next;
			free(x);
		} else {
			pp = &x->next;
		}
	}
	/* A live source whose file vanished (or was replaced) is over: its
	 * mapping still holds the final values. */
	for (struct rd_source *s = r->sources; s; s = s->next)
		if (!s->seen && !s->no_segment && s->state == RD_SRC_LIVE)
			s->state = RD_SRC_DEAD;
	r->last_full_scan = now_ns(CLOCK_MONOTONIC);
}

void rd_reader_dir_event(struct rd_reader *r, const char *name)
{
	struct stat st;
	bool exists;

	if (!rd_dir_is_segment_name(name) || open_dir(r))
		return;
	exists = !fstatat(r->dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
	/* A live source whose file is gone, or was replaced (a file renamed
	 * over it), is over: its mapping keeps the final values. */
	for (struct rd_source *s = r->n_buckets ? r->by_name[name_bucket(r, name)] : NULL; s;
	     s = s->hnext)
		if (!s->no_segment && s->state == RD_SRC_LIVE && !strcmp(s->name, name) &&
		    (!exists || s->ino != st.st_ino))
			s->state = RD_SRC_DEAD;
	if (exists) {
		consider(r, name, &st);
		return;
	}
	for (struct rd_rejected **pp = &r->rejected; *pp;) {
		struct rd_rejected *x = *pp;

		if (!strcmp(x->name, name)) {
			*pp = x->next;
			free(x);
		} else {
			pp = &x->next;
		}
	}
}

/* At most this many datagram sources wait for delivery: past it the queue
 * fills and senders write files (and meet the per-file limits). */
#define FINAL_SOURCES_MAX 4096

int rd_reader_final_drain(struct rd_reader *r)
{
	struct rtm_shm_final rec[2]; /* room to tell a longer datagram */
	int taken = 0;

	while (r->final_fd >= 0 && r->final_sources < FINAL_SOURCES_MAX) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct iovec iov = { rec, sizeof rec };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof ctl.buf };
		struct ucred cred = { .pid = 0 };
		struct rd_source *s;
		struct cmsghdr *c;
		char why[200];
		ssize_t n = recvmsg(r->final_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0)
			return taken; /* EAGAIN: all taken */
		taken++;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len == CMSG_LEN(sizeof cred))
				memcpy(&cred, CMSG_DATA(c), sizeof cred);
		if (rd_final_source(&s, rec, (mh.msg_flags & MSG_TRUNC) ? sizeof rec : (size_t)n,
				    cred.pid, cred.uid, why, sizeof why)) {
			r->self.segments_rejected++;
			rd_log_limited("final", "%s/%s: refused %s", r->dir, RTM_SHM_FINAL_SOCKET, why);
			continue;
		}
		link_source(r, s);
		r->final_sources++;
	}
	return taken;
}

void rd_reader_final_stop(struct rd_reader *r)
{
	if (r->final_fd < 0)
		return;
	rd_final_unlink(r->dirfd);
	rd_reader_final_drain(r);
	close(r->final_fd);
	r->final_fd = -1;
}

/* Segments whose process could not be found: looked for again once a
 * cycle (a look at /proc is cached per namespace and made at most once a
 * second, whatever they claim), and counted. */
static void retry_unresolved(struct rd_reader *r, uint64_t mono)
{
	int64_t n = 0;

	for (struct rd_rejected *x = r->rejected, *next; x; x = next) {
		struct stat st;

		next = x->next; /* consider() may drop x when the file changed */
		if (!x->unresolved)
			continue;
		if (mono >= x->retry && !fstatat(r->dirfd, x->name, &st, AT_SYMLINK_NOFOLLOW))
			consider(r, x->name, &st);
	}
	for (struct rd_rejected *x = r->rejected; x; x = x->next)
		n += x->unresolved && x->ino;
	r->self.segments_unresolved = n;
}

/* Temporaries (".rtm.<pid>.<anything>.tmp") whose producer is gone were
 * killed between creation and publication: remove them, with the care
 * taken for segments (a regular file, one link, not a symbolic link).  At
 * most once a minute: they are rare (producers build in unnamed files where
 * the filesystem allows it) and the directory may be large. */
static void sweep_temporaries(struct rd_reader *r, uint64_t mono)
{
	struct dirent *de;
	DIR *d;
	int fd, removed = 0;

	if (r->last_sweep && mono - r->last_sweep < 60000000000ull)
		return;
	r->last_sweep = mono;
	fd = dup(r->dirfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		char stat_buf[64];
		unsigned long pid;
		struct stat st;
		size_t len = strlen(de->d_name);
		int n = 0;

		if (strncmp(de->d_name, ".rtm.", 5) || len < 10 || strcmp(de->d_name + len - 4, ".tmp") ||
		    sscanf(de->d_name + 5, "%lu.%n", &pid, &n) != 1 || !n || !pid || pid > 4194304)
			continue;
		if (rd_proc_read((pid_t)pid, "stat", stat_buf, sizeof stat_buf) != -ESRCH)
			continue; /* its producer may still be building it */
		/* Its pid may be of a container's pid namespace, where it still
		 * runs: gone from here and a minute old (a producer builds one
		 * in microseconds) is gone everywhere. */
		if (fstatat(r->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
		    st.st_nlink != 1 || now_ns(CLOCK_REALTIME) / 1000000000u < (uint64_t)st.st_mtime + 60)
			continue;
		if (!unlinkat(r->dirfd, de->d_name, 0))
			removed++;
	}
	closedir(d);
	if (removed)
		rd_log("removed %d temporary file%s of producers killed before they published", removed,
		       removed == 1 ? "" : "s");
}

#define LIMITS_EVERY_NS 60000000000ull

static void read_proc(struct rd_reader *r)
{
	size_t n = 0, pos = 0;
	uint64_t mono = now_ns(CLOCK_MONOTONIC);

	for (struct rd_source *s = r->sources; s; s = s->next)
		n += 3; /* stat, status, io */
	if (n > r->reqs_cap) {
		struct rd_procio_req *p = realloc(r->reqs, n * sizeof *p);

		if (!p)
			return;
		r->reqs = p;
		r->reqs_cap = n;
	}
	for (struct rd_source *s = r->sources; s; s = s->next)
		pos += rd_source_proc_requests(s, &r->reqs[pos]);
	rd_procio_read(r->procio, r->reqs, pos);
	pos = 0;
	for (struct rd_source *s = r->sources; s; s = s->next) {
		rd_source_proc_results(s, &r->reqs[pos],
				       r->env.groups_due & (1u << RD_GROUP_SCHEDULER));
		pos += s->n_reqs;
		/* Limits change rarely (a cgroup edit, prlimit, taskset): read
		 * when first seen and once a minute, not every cycle. */
		if (s->stat_ok && (!s->limits_mono || mono - s->limits_mono >= LIMITS_EVERY_NS)) {
			rd_limits_read(s->seg.proc_pid, &s->limits);
			s->limits_mono = mono;
		}
	}
}

static int send_one(const struct rd_request *req, void *ctx)
{
	struct rd_reader *r = ctx;
	int rc = rd_exporter_send(r->exporter, req);

	/* A request the collector refuses for good (4xx) will never be
	 * accepted; carry on with the rest rather than retry it forever. */
	return rc == -EINVAL ? 0 : rc;
}

static int export_batch(struct rd_reader *r)
{
	int rc = rd_batch_requests(&r->batch, r->cfg->max_request_bytes, send_one, r);

	rd_batch_reset(&r->batch);
	return rc;
}

/* Removes the segment file if it is still the one we read. */
static void remove_segment(struct rd_reader *r, const struct rd_source *s)
{
	struct stat st;

	if (r->cfg->keep_dead || !s->seen || s->no_segment)
		return;
	if (fstatat(r->dirfd, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == s->ino)
		unlinkat(r->dirfd, s->name, 0);
}

/* One line when a producer becomes a leak suspect, one when it stops. */
static void watch_leaks(struct rd_reader *r, struct rd_source *s, uint64_t mono)
{
	static const char *const units[RD_LEAK_N] = { "bytes", "threads", "fds" };
	const struct rd_leak_cfg *c = &r->leak;
	unsigned became, stopped;

	rd_source_leak_observe(s, c, mono, &became, &stopped);
	for (int k = 0; k < RD_LEAK_N; k++) {
		if (!((became | stopped) & (1u << k)))
			continue;
		rd_log("%s: %s (pid %d, %s): %s growing %.4g %s/s over the last %.0fs (threshold %.4g)",
		       became & (1u << k) ? "leak suspect" : "no longer a leak suspect",
		       s->seg.hdr.service_name, (int)s->seg.hdr.pid, s->instance_id,
		       rd_leak_name((enum rd_leak_kind)k), s->leak->rate[k], units[k],
		       (double)c->window_ns / 1e9, c->threshold[k]);
	}
}

static void record_cycle(struct rd_reader *r, double secs)
{
	struct rd_self_stats *st = &r->self;
	uint32_t b = 0;

	while (b < RTM_DEFAULT_SECONDS_BOUNDS_N && secs > rtm_default_seconds_bounds[b])
		b++;
	st->cycle_buckets[b]++;
	st->cycles++;
	st->cycle_sum += secs;
	if (secs < st->cycle_min)
		st->cycle_min = secs;
	if (secs > st->cycle_max)
		st->cycle_max = secs;
}

static unsigned groups_enabled(const struct rd_reader *r)
{
	unsigned on = 0;

	for (int g = 0; g < RD_GROUP_N; g++)
		if (r->cfg->settings.groups[g].enabled)
			on |= 1u << g;
	return on;
}

/* Renders the cycle's model in the formats scrapers want and hands the
 * pages to the server (or nothing, when the last page was not scraped). */
static void publish_prom(struct rd_reader *r, const struct rd_batch *b, bool must)
{
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	unsigned wanted = rd_prom_server_wanted(r->prom, now, must);
	struct rd_prom_page body[RD_PROM_FORMATS] = { { 0 } };

	if (!wanted)
		return;
	for (int f = 0; f < RD_PROM_FORMATS; f++) {
		if (!(wanted & (1u << f)))
			continue;
		rd_prom_server_spare(r->prom, (enum rd_prom_format)f, &body[f]);
		rd_prom_render_page(r->prom_r, b->rms, b->owners, b->n_rms, (enum rd_prom_format)f,
				    &body[f], &r->prom_stats);
		r->self.prom_renamed = (int64_t)r->prom_stats.renamed;
		r->self.prom_dropped = (int64_t)r->prom_stats.dropped;
	}
	rd_prom_server_publish(r->prom, body, wanted, now);
}

/* Which groups export this cycle: enabled, and their interval (if any)
 * has passed, give or take half a cycle. */
static unsigned groups_due(struct rd_reader *r, uint64_t mono)
{
	unsigned due = 0;

	for (int g = 0; g < RD_GROUP_N; g++) {
		const struct rd_group_cfg *c = &r->cfg->settings.groups[g];

		if (!c->enabled)
			continue;
		if (c->interval_ns && r->group_last[g] &&
		    mono - r->group_last[g] + r->cfg->interval_ns / 2 < c->interval_ns)
			continue;
		r->group_last[g] = mono;
		due |= 1u << g;
	}
	return due;
}

/* Producers that are gone and whose final values and stream ends were
 * delivered: remove their segments and forget them.  Until then they are
 * exported (values, then ends) every cycle. */
static void reap_ended(struct rd_reader *r, uint64_t delivered)
{
	for (struct rd_source **pp = &r->sources; *pp;) {
		struct rd_source *s = *pp;

		if (s->state != RD_SRC_DEAD || !s->end_epoch || s->end_epoch > delivered) {
			pp = &s->next;
			continue;
		}
		remove_segment(r, s);
		if (s->datagram)
			r->final_sources--;
		if (r->cfg->keep_dead && !s->no_segment && !s->datagram) {
			/* Kept on disk: remember it so it is not exported
			 * again while it stays. */
			struct rd_rejected *x = rejected_entry(r, s->name);

			if (x) {
				x->ino = s->ino;
				x->finished = true;
				x->seen = true;
			}
		}
		drop_source(r, pp);
	}
}

int rd_reader_cycle(struct rd_reader *r)
{
	uint64_t t0 = now_ns(CLOCK_MONOTONIC), now = now_ns(CLOCK_REALTIME);
	struct rd_export_stats stats, *es = &stats;
	struct rd_source **pp;
	bool any_dead = false;
	int rc, last_rc = 0;

	if (r->batch.temporality != RD_TEMP_CUMULATIVE) {
		/* A delta is against the last delivered export: know how the
		 * previous one ended before computing the next. */
		uint64_t delivered;

		rd_exporter_wait(r->exporter);
		delivered = rd_exporter_delivered(r->exporter, NULL);
		for (struct rd_source *s = r->sources; s; s = s->next)
			rd_delta_delivered(s->delta, delivered);
		rd_delta_delivered(r->batch.self_delta, delivered);
	}
	rd_exporter_stats(r->exporter, &stats);
	r->epoch++;
	r->batch.epoch = r->epoch;
	reap_ended(r, rd_exporter_delivered(r->exporter, NULL));

	r->env.groups_due = groups_due(r, t0);
	rd_reader_log_rejections(r, t0, false);
	rd_reader_final_drain(r);
	/* With the directory watched, events keep the list current; a full
	 * scan is the fallback without a watch (or after lost events) and a
	 * safety net once a minute. */
	if (!r->dir_watched || !r->last_full_scan || t0 - r->last_full_scan >= FULL_SCAN_NS)
		rd_reader_scan(r);
	if (r->dirfd >= 0) {
		retry_unresolved(r, t0);
		sweep_temporaries(r, t0);
	}
	/* Producers remove the segments of processes gone only while no
	 * reader is attached; --once is not attached (nothing will come back
	 * for the final values). */
	if (r->dirfd >= 0 && !r->cfg->once &&
	    (rc = rd_dir_presence_touch(r->dirfd, &r->presence_fd, r->cfg->interval_ns)))
		rd_log_limited("presence", "cannot announce the reader in %s/%s: %s (producers "
			       "will remove segments of ended processes themselves)", r->dir,
			       RTM_SHM_READER_FILE, strerror(-rc));
	/* Segment-less processes only matter when collecting: not on every
	 * directory event, which also calls rd_reader_scan(). */
	scan_processes(r);
	read_proc(r);
	r->self.segments = 0;
	for (pp = &r->sources; *pp;) {
		struct rd_source *s = *pp;

		if (rd_source_collect(s)) {
			struct stat st = s->seg.st;

			reject(r, s->name, &st, s->seg.err);
			drop_source(r, pp);
			continue;
		}
		/* Datagram sources are bounded apart (FINAL_SOURCES_MAX); a
		 * look over every source for each of them would make a burst
		 * of short commands quadratic. */
		if (!s->datagram && s->seg.generation != s->budget_gen) {
			/* One user's segments together: a user cannot make the
			 * reader hold more than limit.user-series of theirs. */
			uint64_t mine = 0;

			s->budget_gen = s->seg.generation;
			for (struct rd_source *o = r->sources; o; o = o->next)
				if (!o->no_segment && !o->datagram && o->seg.st.st_uid == s->seg.st.st_uid)
					mine += o->seg.n_metrics;
			if (mine > r->cfg->settings.limit_user_series) {
				char why[200];
				struct stat st = s->seg.st;

				snprintf(why, sizeof why, "its owner, uid %u, would have %llu series in "
					 "segments, past limit.user-series=%u", (unsigned)st.st_uid,
					 (unsigned long long)mine, r->cfg->settings.limit_user_series);
				reject(r, s->name, &st, why);
				drop_source(r, pp);
				continue;
			}
		}
		if (s->seg.n_left_out != s->left_out_said) {
			s->left_out_said = s->seg.n_left_out;
			if (s->left_out_said)
				rd_log_limited(s->name, "segment %s/%s: %u series left out, past the limit of "
					       "%u series and %llu string bytes per segment (limit.series, "
					       "limit.strings)", r->dir, s->name, s->left_out_said,
					       r->cfg->settings.limit_series,
					       (unsigned long long)r->cfg->settings.limit_strings);
		}
		r->self.torn_slots += s->snap.torn;
		s->torn_total += s->snap.torn;
		r->self.segments++;
		if (s->state == RD_SRC_LIVE)
			watch_leaks(r, s, t0);
		any_dead |= s->state == RD_SRC_DEAD;
		{
			uint64_t before = s->invalid_points;

			rd_encode_source(&r->batch, &r->env, s, false, now);
			if (s->invalid_points > before) {
				r->self.points_invalid += s->invalid_points - before;
				rd_log_limited(s->name, "segment %s/%s: %llu points left out: a monotonic "
					       "counter below zero or a sum that is not finite", r->dir, s->name,
					       (unsigned long long)(s->invalid_points - before));
			}
		}
		pp = &s->next;
	}
	r->self.exports_ok = es->ok;
	r->self.exports_failed = es->failed;
	r->self.retries = es->retries;
	r->self.bytes_sent = es->bytes_sent;
	r->self.points_rejected = es->points_rejected;
	rd_encode_self(&r->batch, &r->env, r->cfg, &r->self, now);
	if (r->prom) {
		/* A scrape sees every enabled group each cycle, its latest
		 * values; a group's own interval paces only the OTLP export. */
		unsigned due = r->env.groups_due, all = groups_enabled(r);

		/* /metrics is cumulative: it shares the OTLP model only
		 * when that is cumulative and holds every group. */
		if (due == all && r->batch.temporality == RD_TEMP_CUMULATIVE) {
			publish_prom(r, &r->batch, any_dead);
		} else {
			r->env.groups_due = all;
			for (struct rd_source *s = r->sources; s; s = s->next) {
				uint64_t counted = s->invalid_points; /* counted once, above */

				rd_encode_source(&r->prom_batch, &r->env, s, false, now);
				s->invalid_points = counted;
			}
			rd_encode_self(&r->prom_batch, &r->env, r->cfg, &r->self, now);
			r->env.groups_due = due;
			publish_prom(r, &r->prom_batch, any_dead);
			rd_batch_reset(&r->prom_batch);
		}
	}
	rc = export_batch(r);

	/* Producers that are gone: after their final values, end their
	 * streams (NO_RECORDED_VALUE), in the same outbox; their segments go
	 * once it is delivered (reap_ended()). */
	if (!rc && any_dead) {
		uint64_t end = now_ns(CLOCK_REALTIME);

		for (struct rd_source *s = r->sources; s; s = s->next)
			if (s->state == RD_SRC_DEAD) {
				rd_encode_source(&r->batch, &r->env, s, true, end > now ? end : now + 1);
				s->end_epoch = r->epoch;
			}
		rc = export_batch(r);
	}
	{
		/* Even after a failure: what was serialised goes, values first. */
		int committed = rd_exporter_commit(r->exporter, r->epoch);

		rc = rc ? rc : committed;
	}
	if (r->cfg->once)
		rd_exporter_wait(r->exporter);
	reap_ended(r, rd_exporter_delivered(r->exporter, &last_rc));
	rc = rc ? rc : last_rc;
	rd_encode_env_sweep(&r->env);
	record_cycle(r, (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
	if (r->prom)
		rd_prom_server_cycle_done(r->prom, now_ns(CLOCK_MONOTONIC));
	return rc ? -EAGAIN : 0;
}
