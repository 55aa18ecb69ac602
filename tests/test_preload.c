/* SPDX-License-Identifier: MIT */
/* librtm-preload.so under real, unmodified programs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include "rd_dir.h"
#include "rtm_shm_presence.h"
#include "rd_proc.h"
#include "rtm_shm_final.h"
#include "test_util.h"

/* The one segment in dir, opened with the reader library. */
static void only_segment(const char *dir, struct rd_segment *rd)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char **names;
	int n = rd_dir_list(dfd, &names);

	/* A just-started program may not have published yet: wait for it
	 * (bounded; correctness, not speed, is under test). */
	for (int i = 0; n == 0 && i < 2000; i++) {
		rd_dir_names_free(names);
		usleep(10000);
		n = rd_dir_list(dfd, &names);
	}
	if (n != 1)
		fail_msg("%d segments in %s, expected 1", n, dir);
	/* rd->path is the name it was opened by, which must outlive it:
	 * kept here, for the few segments a test holds at once. */
	{
		static char kept[4][NAME_MAX + 1];
		static unsigned next;
		char *name = kept[next++ % 4];

		snprintf(name, sizeof kept[0], "%s", names[0]);
		if (rd_segment_open(rd, dfd, name, 0))
			fail_msg("%s: %s", name, rd->err);
	}
	rd_dir_names_free(names);
	close(dfd);
}

static int64_t value(struct rd_segment *rd, struct rd_snapshot *s, const char *name)
{
	assert_int_equal(rd_segment_snapshot(rd, s), 0);
	return s->values[tu_find(rd, name, NULL, NULL)].i;
}

/* Threads of pid, from /proc. */
static long thread_count(pid_t pid)
{
	return tu_proc_stat(pid).num_threads;
}

/* alloc_truth's N blocks of M bytes (usable size U each), K of them
 * freed, then T threads: each allocator series grows by exactly that. */
static void counts_are_exact(int N, int M, int64_t U, int K, int T)
{
	const char *const *names = tu_alloc_names;
	int64_t want[5], before[5];
	char *dir;
	int to, from;
	char buf[8];
	pid_t pid;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };

	dir = tu_mkdir();
	tu_alloc_delta(want, N, M, K);
	want[3] = (int64_t)(N - K) * U;
	pid = tu_start_alloc_truth(dir, NULL, N, M, K, T, &to, &from);
	only_segment(dir, &rd); /* opened by the preload before main() */
	assert_string_equal(rd.hdr.service_name, "alloc_truth");
	/* Its start-up allocations done: it waits in read() for "go" (the
	 * segment opens before main(), whose first malloc is not ours to
	 * count; on a loaded machine it came after the first reading). */
	for (int i = 0; i < 3000; i++) {
		char path[64], *text;
		size_t len;
		long nr = -1;

		snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
		text = tu_slurp(path, &len);
		if (text)
			nr = strtol(text, NULL, 10);
		free(text);
		if (nr == SYS_read)
			break;
		usleep(10000);
	}
	for (int i = 0; i < 5; i++)
		before[i] = value(&rd, &s, names[i]);
	assert_int_equal(write(to, "g", 1), 1);
	assert_int_equal(read(from, buf, 2), 2);
	for (int i = 0; i < 5; i++) {
		int64_t delta = value(&rd, &s, names[i]) - before[i];

		if (delta != want[i])
			fail_msg("%s grew by %lld, expected %lld", names[i], (long long)delta,
				 (long long)want[i]);
	}
	/* One thread: the preload starts none of its own in a program that
	 * has none... */
	assert_int_equal(thread_count(pid), 1);
	assert_int_equal(write(to, "g", 1), 1);
	assert_int_equal(read(from, buf, 2), 2);
	/* ...until the program starts its first: main + T + the sampler. */
	assert_int_equal(thread_count(pid), T + 2);
	assert_int_equal(write(to, "g", 1), 1);
	waitpid(pid, NULL, 0);
	close(to);
	close(from);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.state, RTM_SHM_STATE_CLOSED); /* exit ran the destructor */
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

/* Heap chunks: malloc_usable_size(1000) == 1000. */
static void allocator_counts_are_exact(void **state)
{
	(void)state;
	TU_SKIP_IF_SANITIZED();
	counts_are_exact(1000, 1000, 1000, 300, 3);
}

/* Blocks of their own mapping (glibc: 128 KiB and up, while no such free
 * has raised the threshold), which the hooks size with the real
 * malloc_usable_size rather than from the chunk header.  glibc maps the
 * request rounded to 16 with its size word, plus one more word, in whole
 * pages, and the usable size is that less the two header words. */
static void mapped_blocks_count_exactly(void **state)
{
	enum { M = 200000 };
	int64_t page = sysconf(_SC_PAGESIZE);
	int64_t chunk = ((M + 8 + 15) & ~15) + 8;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	counts_are_exact(40, M, (chunk + page - 1) / page * page - 16, 15, 1);
}

/* Runs a shell command with the preload and RTM_DIR; returns its status. */
static int run_preloaded(const char *dir, const char *cmd)
{
	char line[4096];
	int st;

	snprintf(line, sizeof line, "env RTM_DIR=%s LD_PRELOAD=%s %s", dir, tu_prog("RTM_PRELOAD"),
		 cmd);
	st = system(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Every segment in dir is valid, and allocations >= frees >= 0. */
static int check_segments(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char **names;
	int n = rd_dir_list(dfd, &names);

	for (int i = 0; i < n; i++) {
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };

		if (rd_segment_open(&rd, dfd, names[i], 0))
			fail_msg("%s: %s", names[i], rd.err);
		assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
		assert_true(s.values[tu_find(&rd, "runtime.native.mem.alloc.mallocs", NULL, NULL)].i >=
			    s.values[tu_find(&rd, "runtime.native.mem.alloc.frees", NULL, NULL)].i);
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
	}
	rd_dir_names_free(names);
	close(dfd);
	return n;
}

/* Files (segments, temporaries) in dir, the reader's presence file aside. */
static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		     strcmp(de->d_name, RTM_SHM_READER_FILE) && strcmp(de->d_name, RTM_SHM_FINAL_SOCKET);
	closedir(d);
	return n;
}

/* The segments in dir: pid, service and state of each (at most cap). */
struct seg_info {
	int pid;
	char service[64];
	uint32_t state;
	int64_t mallocs;
};

static int segments_in(const char *dir, struct seg_info *out, int cap)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char **names;
	int n = rd_dir_list(dfd, &names), k = 0;

	for (int i = 0; i < n && k < cap; i++) {
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };

		if (rd_segment_open(&rd, dfd, names[i], 0))
			fail_msg("%s: %s", names[i], rd.err);
		assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
		out[k].pid = rd.hdr.pid;
		snprintf(out[k].service, sizeof out[k].service, "%s", rd.hdr.service_name);
		out[k].state = s.state;
		/* -1 while the producer is still registering its series: a
		 * segment is published before its series are. */
		out[k].mallocs = -1;
		for (uint32_t m = 0; m < rd.n_metrics; m++)
			if (!strcmp(rd.metrics[m].name, "runtime.native.mem.alloc.mallocs"))
				out[k].mallocs = s.values[m].i;
		k++;
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
	}
	rd_dir_names_free(names);
	close(dfd);
	return k;
}

#define TRUE_500 "sh -c 'i=0; while [ $i -lt 500 ]; do /bin/true; i=$((i+1)); done'"

static void short_commands_leave_nothing_behind_without_a_reader(void **state)
{
	struct seg_info si[4];
	char *dir;
	int n;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* Each ends within RTM_PUBLISH_DELAY_MS, with nobody to export its
	 * final values: none ever has a file.  (The shell running them may
	 * outlive the delay on a slow machine, and have its own.) */
	assert_int_equal(run_preloaded(dir, TRUE_500), 0);
	n = segments_in(dir, si, 4);
	if (files_in(dir) > 1 || n != files_in(dir) || (n && strcmp(si[0].service, "sh")))
		fail_msg("%d files left behind by 500 short commands (%s)", files_in(dir),
			 n ? si[0].service : "");
	/* Published at once, each leaves its closed segment; the next
	 * publishing producer removes its user's segments of processes that
	 * are gone: what is left is the last few. */
	assert_int_equal(run_preloaded(dir, "RTM_PUBLISH_DELAY_MS=0 " TRUE_500), 0);
	if (files_in(dir) > 3)
		fail_msg("%d files left behind by 500 short commands", files_in(dir));
	tu_rmdir(dir);
}

static pid_t start_leaker(const char *dir, const char *ms, const char *trim, const char *mode,
			  const char *arg, const char *until);

/* Waits (bounded: correctness, not speed, is under test) for dir's one
 * segment, and for its allocation count to pass above. */
static int64_t mallocs_above(const char *dir, int64_t above)
{
	struct seg_info si[4];
	int n = 0;

	for (int i = 0; i < 3000; i++) {
		n = segments_in(dir, si, 4);
		if (n == 1 && si[0].mallocs > above)
			return si[0].mallocs;
		usleep(10000);
	}
	fail_msg("%d segments, none counting past %lld", n, (long long)above);
	return 0;
}

/*
 * RTM_PUBLISH_DELAY_MS: a process gets its file once it has run for the
 * delay (seen by its own allocator calls), before its first thread, or as
 * it starts a wait that would outlast the delay; one that does none of
 * these has none.  Published, its updates land in the
 * file: the mapping was swapped under the running program.
 */
static void a_deferred_segment_is_published_when_it_pays(void **state)
{
	struct seg_info si[4];
	int64_t first;
	char *dir, cmd[1024];
	pid_t pid;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* 640 allocations a second, published after 200 ms. */
	setenv("RTM_PUBLISH_DELAY_MS", "200", 1);
	pid = start_leaker(dir, "10000", NULL, "heap", "640000", "ready");
	first = mallocs_above(dir, 0);
	mallocs_above(dir, first);
	assert_int_equal(segments_in(dir, si, 4), 1);
	assert_int_equal(si[0].pid, pid);
	assert_int_equal(si[0].state, RTM_SHM_STATE_LIVE);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tu_rmdir(dir);

	/* An hour's delay: a program that holds its heap never publishes
	 * (its waits, 100 ms each, end long before it is due)... */
	dir = tu_mkdir();
	setenv("RTM_PUBLISH_DELAY_MS", "3600000", 1);
	pid = start_leaker(dir, "10000", NULL, "steady", "100000", "ready");
	assert_int_equal(files_in(dir), 0);
	/* rtm-shmdump says why there is nothing to show. */
	snprintf(cmd, sizeof cmd, "%s --dir %s %d 2>&1", tu_prog("RTM_SHMDUMP"), dir, (int)pid);
	tu_run_says(cmd, 1, "it runs under librtm-preload.so");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* ...one that starts threads publishes before the first. */
	pid = start_leaker(dir, "10000", NULL, "threads", "10", "ready");
	mallocs_above(dir, 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unsetenv("RTM_PUBLISH_DELAY_MS");
	tu_rmdir(dir);
}

/*
 * With a reader attached, an image that ends or execs within the delay
 * still publishes: nothing it counted is lost.  A forked child's copy of
 * its parent's segment is never published (its pid is not the header's):
 * alloc_truth fork's child execs /bin/true, which publishes its own.
 */
static void a_deferred_segment_reaches_a_reader_through_exec_and_fork(void **state)
{
	static const char *const execs[] = { "execl", "execlp", "execle", "execv", "execvp",
					     "execvpe", "execve", "fexecve", "execveat" };
	struct seg_info si[16];
	char *dir, cmd[512];
	int n, exec_pid = 0, sh = 0, child = 0, truths = 0;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	tu_announce_reader(dir);
	assert_int_equal(run_preloaded(dir, "sh -c 'ls / >/dev/null; exec true'"), 0);
	n = segments_in(dir, si, 16);
	for (int i = 0; i < n; i++)
		if (!strcmp(si[i].service, "true")) {
			exec_pid = si[i].pid;
			assert_int_equal(si[i].state, RTM_SHM_STATE_CLOSED);
		}
	assert_true(exec_pid > 0);
	/* sh published before its exec, under the same pid. */
	for (int i = 0; i < n; i++)
		if (si[i].pid == exec_pid && !strcmp(si[i].service, "sh")) {
			sh++;
			assert_true(si[i].mallocs > 0);
		}
	assert_int_equal(sh, 1);
	tu_rmdir(dir);

	/* Every member of the exec family publishes the image it replaces
	 * (glibc's list and path forms reach the system call directly, so
	 * each is interposed). */
	for (size_t k = 0; k < sizeof execs / sizeof execs[0]; k++) {
		int before = 0, after = 0;

		dir = tu_mkdir();
		tu_announce_reader(dir);
		snprintf(cmd, sizeof cmd, "%s exec %s", tu_prog("RTM_ALLOC_TRUTH"), execs[k]);
		assert_int_equal(run_preloaded(dir, cmd), 0);
		n = segments_in(dir, si, 16);
		for (int i = 0; i < n; i++) {
			before += !strcmp(si[i].service, "alloc_truth") && si[i].mallocs > 0;
			after += !strcmp(si[i].service, "true") && si[i].state == RTM_SHM_STATE_CLOSED;
		}
		if (before != 1 || after != 1)
			fail_msg("%s: %d segments of the image before, %d after", execs[k], before, after);
		tu_rmdir(dir);
	}

	dir = tu_mkdir();
	tu_announce_reader(dir);
	snprintf(cmd, sizeof cmd, "%s fork", tu_prog("RTM_ALLOC_TRUTH"));
	assert_int_equal(run_preloaded(dir, cmd), 0);
	n = segments_in(dir, si, 16);
	for (int i = 0; i < n; i++) {
		truths += !strcmp(si[i].service, "alloc_truth");
		if (!strcmp(si[i].service, "true"))
			child = si[i].pid;
	}
	/* The parent's, and the child's own after its exec; nothing else
	 * under the child's pid. */
	assert_int_equal(truths, 1);
	assert_true(child > 0);
	for (int i = 0; i < n; i++)
		if (si[i].pid == child)
			assert_string_equal(si[i].service, "true");
	tu_rmdir(dir);
}

/* Distinct process.pid values of resources named service in the reader's
 * OTLP/JSON lines; *points counts those resources. */
static int pids_of(const char *out, const char *service, int *points)
{
	int pids[4096], n = 0;
	const char *line = out;

	*points = 0;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		char *one = strndup(line, nl ? (size_t)(nl - line) : strlen(line));
		json_object *o = json_tokener_parse(one);
		json_object *rms = tu_json_get(o, "resourceMetrics");

		free(one);
		line = nl ? nl + 1 : NULL;
		for (size_t i = 0; rms && i < json_object_array_length(rms); i++) {
			json_object *attrs = tu_json_get(
				tu_json_get(json_object_array_get_idx(rms, i), "resource"), "attributes");
			const char *svc = tu_otlp_attr(attrs, "service.name");
			const char *pid = tu_otlp_attr(attrs, "process.pid");
			int j = 0;

			if (!svc || strcmp(svc, service) || !pid || !atoi(pid))
				continue;
			(*points)++;
			while (j < n && pids[j] != atoi(pid))
				j++;
			if (j == n && n < 4096)
				pids[n++] = atoi(pid);
		}
		json_object_put(o);
	}
	return n;
}

static void short_commands_are_all_exported_with_a_reader(void **state)
{
	struct tu_reader r;
	char *dir, *out, presence[300];
	int distinct, points, left = -1;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "stdout", "--interval", "100ms",
						   "--prometheus", "off", NULL });
	/* The reader announces itself on its first cycle. */
	snprintf(presence, sizeof presence, "%s/%s", dir, RTM_SHM_READER_FILE);
	for (int i = 0; i < 3000 && access(presence, F_OK); i++)
		usleep(10000);
	assert_int_equal(run_preloaded(dir, TRUE_500), 0);
	/* The reader removes a segment once its final values are out (most
	 * come by datagram and make none); every one is exported within the
	 * next cycles. */
	for (int i = 0; i < 6000 && (left = files_in(dir)); i++)
		usleep(10000);
	assert_int_equal(left, 0);
	for (int i = 0; i < 300; i++) {
		out = tu_reader_stdout(&r);
		distinct = pids_of(out, "true", &points);
		free(out);
		if (distinct == 500)
			break;
		usleep(100000);
	}
	assert_int_equal(tu_reader_stop(&r), 0);
	if (distinct != 500)
		fail_msg("%d of 500 short commands exported (%d resources)", distinct, points);
	tu_rmdir(dir);
}

/* Short commands hand their final values to the reader's socket, no file
 * made (a reader keeping dead producers' files shows none), with their
 * allocation counts; with the socket gone they write files instead, and
 * every one is still exported. */
#define TRUE_50 "sh -c 'i=0; while [ $i -lt 50 ]; do /bin/true; i=$((i+1)); done'"
#define LS_50 "sh -c 'i=0; while [ $i -lt 50 ]; do ls / >/dev/null; i=$((i+1)); done'"
static void short_commands_send_final_values_by_datagram(void **state)
{
	(void)state;
	TU_SKIP_IF_SANITIZED();
	for (int socket_gone = 0; socket_gone < 2; socket_gone++) {
		struct tu_reader r;
		char *dir = tu_mkdir(), *out, path[300];
		int n_true = 0, n_ls = 0, points;

		tu_reader_start(&r, dir, (const char *[]){ "--exporter", "stdout", "--interval", "100ms",
							   "--prometheus", "off", "--keep-dead", NULL });
		snprintf(path, sizeof path, "%s/%s", dir, RTM_SHM_FINAL_SOCKET);
		for (int i = 0; i < 3000 && access(path, F_OK); i++)
			usleep(10000);
		assert_int_equal(access(path, F_OK), 0);
		if (socket_gone)
			assert_int_equal(unlink(path), 0);
		assert_int_equal(run_preloaded(dir, TRUE_50), 0);
		assert_int_equal(run_preloaded(dir, LS_50), 0);
		for (int i = 0; i < 300 && (n_true < 50 || n_ls < 50); i++) {
			usleep(50000);
			out = tu_reader_stdout(&r);
			n_true = pids_of(out, "true", &points);
			n_ls = pids_of(out, "ls", &points);
			free(out);
		}
		out = tu_reader_stdout(&r);
		assert_int_equal(tu_reader_stop(&r), 0);
		if (n_true != 50 || n_ls != 50)
			fail_msg("%d of 50 true, %d of 50 ls exported", n_true, n_ls);
		/* Kept dead producers' files: one each without the socket; with
		 * it, none but those whose datagram met a full queue (ten
		 * records between two of the reader's 5 ms takes: a fast
		 * machine may get there now and then). */
		if (socket_gone)
			assert_int_equal(files_in(dir), 100);
		else if (files_in(dir) > 20)
			fail_msg("%d of 100 short commands wrote a file beside the socket", files_in(dir));
		/* ls allocates: its counts and heap came in the record. */
		assert_non_null(strstr(out, "\"runtime.native.mem.heap.idle_ratio\""));
		assert_non_null(strstr(out, "\"runtime.native.mem.alloc.mallocs\""));
		free(out);
		tu_rmdir(dir);
	}
}

/* Starts cmd (a shell command line) under the preload with the
 * environment env, publishing into dir; returns the shell's pid, which
 * execs the command (one process). */
static pid_t start_preloaded(const char *dir, const char *env, const char *cmd)
{
	char line[4096];

	snprintf(line, sizeof line, "exec env RTM_DIR=%s LD_PRELOAD=%s %s %s", dir,
		 tu_prog("RTM_PRELOAD"), env, cmd);
	return tu_start_shell(line);
}

static void an_exec_chain_leaves_one_live_segment(void **state)
{
	char *dir;
	int dfd, n = 0, live = 0, closed = 0;
	char **names;
	pid_t pid;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	tu_announce_reader(dir); /* nothing is removed behind our back */
	/* One process: sh, exec'ing sh, exec'ing sleep.  Each image publishes;
	 * each new one closes the earlier images' segments, found by name. */
	pid = start_preloaded(dir, "RTM_PUBLISH_DELAY_MS=0", "sh -c 'exec sh -c \"exec sleep 30\"'");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < 3000; i++) {
		char exe[64], target[64] = "";

		snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
		if (readlink(exe, target, sizeof target - 1) > 0 && strstr(target, "sleep") &&
		    (n = rd_dir_list(dfd, &names)) >= 3)
			break;
		if (n > 0)
			rd_dir_names_free(names);
		n = 0;
		usleep(10000);
	}
	assert_int_equal(n, 3);
	for (int i = 0; i < n; i++) {
		struct rd_segment rd;
		struct rd_snapshot snap = { 0 };

		if (rd_segment_open(&rd, dfd, names[i], 0))
			fail_msg("%s: %s", names[i], rd.err);
		assert_int_equal(rd.hdr.pid, pid);
		assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
		if (snap.state == RTM_SHM_STATE_LIVE) {
			live++;
			assert_string_equal(rd.hdr.service_name, "sleep");
		} else {
			closed += snap.state == RTM_SHM_STATE_CLOSED;
			assert_string_equal(rd.hdr.service_name, "sh");
		}
		rd_snapshot_free(&snap);
		rd_segment_close(&rd);
	}
	rd_dir_names_free(names);
	assert_int_equal(live, 1);
	assert_int_equal(closed, 2);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(dfd);
	tu_rmdir(dir);
}

/* Segments published by `sh -c 'ls; true'` under RTM_PUBLISH=policy; the
 * services' names, comma-separated, in sorted file order, into names. */
static int published_under(const char *policy, char *services, size_t cap, char **err)
{
	char *dir = tu_mkdir(), cmd[2048], errf[300];
	char **names;
	int dfd, n, st;

	tu_announce_reader(dir); /* nothing removed behind our back */
	snprintf(errf, sizeof errf, "%s.err", dir);
	snprintf(cmd, sizeof cmd, "env RTM_DIR=%s RTM_PUBLISH='%s' RTM_PUBLISH_DELAY_MS=0 LD_PRELOAD=%s "
		 "sh -c 'ls / >/dev/null; /bin/true' 2>%s", dir, policy, tu_prog("RTM_PRELOAD"), errf);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	*err = tu_slurp(errf, &(size_t){ 0 });
	unlink(errf);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	n = rd_dir_list(dfd, &names);
	services[0] = '\0';
	for (int i = 0; i < n; i++) {
		struct rd_segment rd;

		if (rd_segment_open(&rd, dfd, names[i], 0))
			fail_msg("%s: %s", names[i], rd.err);
		snprintf(services + strlen(services), cap - strlen(services), "%s%s", i ? "," : "",
			 rd.hdr.service_name);
		rd_segment_close(&rd);
	}
	rd_dir_names_free(names);
	close(dfd);
	tu_rmdir(dir);
	return n;
}

static void rtm_publish_chooses_the_processes_that_publish(void **state)
{
	char services[256], *err;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	/* all (the default): the shell and both children. */
	assert_int_equal(published_under("all", services, sizeof services, &err), 3);
	free(err);
	/* top: the shell only; its children know they are not the top. */
	assert_int_equal(published_under("top", services, sizeof services, &err), 1);
	assert_string_equal(services, "sh");
	free(err);
	/* exe:GLOB: the programs that match. */
	assert_int_equal(published_under("exe:l[s]", services, sizeof services, &err), 1);
	assert_string_equal(services, "ls");
	free(err);
	/* A bad value: one line naming it, and the default. */
	assert_int_equal(published_under("sometimes", services, sizeof services, &err), 3);
	assert_non_null(strstr(err, "RTM_PUBLISH=sometimes is not all, top or exe:GLOB"));
	free(err);
}

static void unmodified_programs_run_unharmed(void **state)
{
	char *dir;
	char cmd[512];

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* Announced the way rtm-reader announces itself: producers then
	 * leave ended segments for the reader, and they stay to be checked. */
	tu_announce_reader(dir);
	/* Same output with and without the preload. */
	assert_int_equal(system("ls -R /usr/share/doc > /tmp/rtm-ls-plain 2>&1"), 0);
	assert_int_equal(run_preloaded(dir, "ls -R /usr/share/doc > /tmp/rtm-ls-preload 2>&1"), 0);
	assert_int_equal(system("cmp -s /tmp/rtm-ls-plain /tmp/rtm-ls-preload"), 0);
	unlink("/tmp/rtm-ls-plain");
	unlink("/tmp/rtm-ls-preload");
	if (system("command -v python3 >/dev/null") == 0)
		assert_int_equal(run_preloaded(dir, "python3 -c 'import json; json.dumps(list(range(100000)))'"),
				 0);
	snprintf(cmd, sizeof cmd, "%s stress", tu_prog("RTM_ALLOC_TRUTH"));
	assert_int_equal(run_preloaded(dir, cmd), 0);
	snprintf(cmd, sizeof cmd, "%s fork", tu_prog("RTM_ALLOC_TRUTH"));
	assert_int_equal(run_preloaded(dir, cmd), 0);
	assert_int_equal(run_preloaded(dir, "sh -c 'ls / >/dev/null; exec true'"), 0);
	assert_true(check_segments(dir) >= 5);
	tu_rmdir(dir);
}

static void the_stress_program_balances(void **state)
{
	char *dir;
	char cmd[512];
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	snprintf(cmd, sizeof cmd, "%s stress", tu_prog("RTM_ALLOC_TRUTH"));
	assert_int_equal(run_preloaded(dir, cmd), 0);
	only_segment(dir, &rd);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	/* 8 threads x 200000 iterations, each freeing what it allocated: at
	 * least that many allocations, and the heap back near empty. */
	assert_true(s.values[tu_find(&rd, "runtime.native.mem.alloc.mallocs", NULL, NULL)].i >=
		    8 * 200000);
	assert_true(s.values[tu_find(&rd, "runtime.native.mem.heap.objects", NULL, NULL)].i < 1000);
	assert_int_equal(s.torn, 0);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Whether rtm-shmdump PID prints the idle-heap hint. */
static bool shmdump_hints(pid_t pid, const char *dir)
{
	char cmd[512], line[512];
	bool hint = false;
	FILE *f;

	snprintf(cmd, sizeof cmd, "RTM_DIR=%s %s %d", dir, tu_prog("RTM_SHMDUMP"), (int)pid);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f))
		hint |= strstr(line, "  hint: ") && strstr(line, "of the heap is idle");
	pclose(f);
	return hint;
}

/* leaker MODE ARG under the preload in dir, RTM_SAMPLE_INTERVAL_MS=ms and,
 * unless NULL, RTM_TRIM_IDLE_RATIO=trim: started, and past its line until. */
static pid_t start_leaker(const char *dir, const char *ms, const char *trim, const char *mode,
			  const char *arg, const char *until)
{
	char buf[64] = "";
	size_t got = 0;
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* not outliving a failed test */
		dup2(p[1], 1);
		close(p[0]);
		setenv("RTM_DIR", dir, 1);
		setenv("LD_PRELOAD", tu_prog("RTM_PRELOAD"), 1);
		/* Its segment at once, unless the test says otherwise. */
		setenv("RTM_PUBLISH_DELAY_MS", "0", 0);
		setenv("RTM_SAMPLE_INTERVAL_MS", ms, 1);
		if (trim)
			setenv("RTM_TRIM_IDLE_RATIO", trim, 1);
		{
			/* "BYTES MS": the modes that take two. */
			char args[64], *second;

			snprintf(args, sizeof args, "%s", arg);
			second = strchr(args, ' ');
			if (second)
				*second++ = '\0';
			execl(tu_prog("RTM_LEAKER"), "leaker", mode, args, second, (char *)NULL);
		}
		_exit(127);
	}
	close(p[1]);
	while (!strstr(buf, until) && got < sizeof buf - 1) {
		ssize_t n = read(p[0], buf + got, sizeof buf - 1 - got);

		assert_true(n > 0);
		got += (size_t)n;
		buf[got] = '\0';
	}
	close(p[0]);
	return pid;
}

/* leaker MODE BYTES under the preload: its lowest RSS over 2 s after it
 * freed what it frees (sampled every 100 ms), the trims it counted, and
 * whether rtm-shmdump hinted at the idle heap. */
static long rss_after(const char *dir, const char *mode, const char *trim, int64_t *trims,
		      bool *hint)
{
	pid_t pid = start_leaker(dir, "100", trim, mode, "200000000",
				 strcmp(mode, "freemost") ? "ready" : "freed");
	long low = -1;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };

	for (int i = 0; i < 20; i++) {
		long kb = rss_kb(pid);

		if (low < 0 || kb < low)
			low = kb;
		usleep(100000);
	}
	*hint = shmdump_hints(pid, dir);
	only_segment(dir, &rd);
	*trims = value(&rd, &s, "runtime.native.mem.heap.trims");
	assert_true(fabs(s.values[tu_find(&rd, "runtime.native.mem.heap.idle_ratio", NULL, NULL)].d) <= 1);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return low;
}

/* RTM_TRIM_IDLE_RATIO gives a freed heap back; without it glibc keeps it,
 * and rtm-shmdump says how much could be given back. */
static void trim_idle_ratio_gives_memory_back(void **state)
{
	char *dir;
	long kept, trimmed, used;
	int64_t trims_off, trims_on, trims_used;
	bool hint_off, hint_on, hint_used;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	kept = rss_after(dir, "freemost", NULL, &trims_off, &hint_off);
	tu_rmdir(dir);
	dir = tu_mkdir();
	trimmed = rss_after(dir, "freemost", "0.5", &trims_on, &hint_on);
	tu_rmdir(dir);
	/* A heap in use: neither trimmed nor hinted at. */
	dir = tu_mkdir();
	used = rss_after(dir, "steady", "0.5", &trims_used, &hint_used);
	tu_rmdir(dir);
	if (kept < 150000 || trimmed > 50000 || used < 150000)
		fail_msg("RSS after freeing 200 MB: %ld kB without trimming, %ld kB with; "
			 "%ld kB holding it", kept, trimmed, used);
	assert_int_equal(trims_off, 0);
	assert_true(trims_on >= 1);
	assert_int_equal(trims_used, 0);
	assert_true(hint_off);
	assert_false(hint_on);
	assert_false(hint_used);
}

/* lock_truth under the preload (env: extra assignments), N waits of
 * HOLD ms on each kind: its truth line, and its segment open in rd while
 * the program holds it (until pclose(*p)). */
static FILE *run_lock_truth(const char *dir, const char *env, int waits, int hold_ms,
			    struct rd_segment *rd, int n[2], unsigned long long truth[2])
{
	char cmd[2048], truthf[512], *text = NULL;
	size_t len;
	FILE *p;

	snprintf(truthf, sizeof truthf, "%s/truth.txt", dir);
	snprintf(cmd, sizeof cmd, "env RTM_DIR=%s %s RTM_PUBLISH_DELAY_MS=0 LD_PRELOAD=%s %s %d %d 1000 > %s", dir, env,
		 tu_prog("RTM_PRELOAD"), tu_prog("RTM_LOCK_TRUTH"), waits, hold_ms, truthf);
	p = popen(cmd, "w");
	assert_non_null(p);
	only_segment(dir, rd);
	for (int i = 0; i < 3000 && !(text && strchr(text, '\n')); i++) {
		free(text);
		usleep(10000);
		text = tu_slurp(truthf, &len);
	}
	assert_non_null(text);
	assert_int_equal(sscanf(text, "mutex %d %llu rwlock %d %llu", &n[0], &truth[0], &n[1],
				&truth[1]), 4);
	free(text);
	return p;
}

/* The OTel default-aggregation variable reaches the preload's own
 * histogram: lock waits as an exponential histogram, every wait in it,
 * near a ~50 ms bucket. */
static void lock_waits_become_exponential_on_request(void **state)
{
	char *dir;
	struct rd_segment rd;
	struct rd_snapshot snap = { 0 };
	unsigned long long truth[2];
	int n[2], h;
	FILE *p;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	p = run_lock_truth(dir, "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION="
			   "base2_exponential_bucket_histogram", 3, 50, &rd, n, truth);
	assert_int_equal(rd_segment_refresh(&rd) >= 0, 1);
	assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
	h = tu_find(&rd, "runtime.native.sync.wait.duration", "lock.kind", "mutex");
	assert_int_equal(rd.metrics[h].kind, RD_KIND_EXPHIST);
	assert_int_equal(snap.values[h].count, (uint64_t)n[0]);
	assert_true(snap.values[h].min >= 0.045 && snap.values[h].max < 1);
	rd_snapshot_free(&snap);
	pclose(p);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

/* rtm-shmdump --locks --json on the segment at path: the parsed answer. */
static json_object *locks_json(const char *dir, const char *name, int *status)
{
	char cmd[1200], *out;
	json_object *o;

	snprintf(cmd, sizeof cmd, "%s --locks --json %s/%s", tu_prog("RTM_SHMDUMP"), dir, name);
	out = tu_run(cmd, status, NULL);
	o = json_tokener_parse(out);
	free(out);
	return o;
}

static unsigned long long json_ull(json_object *o, const char *k)
{
	const char *v = json_object_get_string(tu_json_get(o, k));

	return v ? strtoull(v, NULL, 10) : 0;
}

/* Contended waits, against the waiting thread's own clock: counted once
 * each, their total within a hair of the truth, uncontended acquisitions
 * not at all; and the profile names the function that waited. */
static void lock_contention_matches_the_ground_truth(void **state)
{
	static const char *const kinds[2] = { "mutex", "rwlock" };
	static const char *const sites[2] = { "wait_for_mutex", "wait_for_rwlock" };
	char *dir;
	struct rd_segment rd;
	struct rd_snapshot snap = { 0 };
	unsigned long long truth[2];
	int n[2], cnt[2], tot[2], hist[2], status;
	double got[2];
	json_object *o, *arr;
	FILE *p;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* Five waits of ~50 ms on each kind, among 1000 uncontended pairs. */
	p = run_lock_truth(dir, "", 5, 50, &rd, n, truth);
	assert_int_equal(rd_segment_refresh(&rd) >= 0, 1);
	assert_int_equal(rd_segment_snapshot(&rd, &snap), 0);
	for (int k = 0; k < 2; k++) {
		double want = (double)truth[k] / 1e9;

		cnt[k] = tu_find(&rd, "runtime.native.sync.contentions", "lock.kind", kinds[k]);
		tot[k] = tu_find(&rd, "runtime.native.sync.wait.time", "lock.kind", kinds[k]);
		hist[k] = tu_find(&rd, "runtime.native.sync.wait.duration", "lock.kind", kinds[k]);
		/* Counted once per wait; the 2000 uncontended pairs not at all. */
		assert_int_equal(snap.values[cnt[k]].i, n[k]);
		assert_int_equal(snap.values[hist[k]].count, (uint64_t)n[k]);
		/* The wait, as the waiter timed it (its clock also covers the
		 * failed trylock, so ours is a hair less). */
		got[k] = snap.values[tot[k]].d;
		if (!(got[k] <= want + 1e-4 && got[k] >= want - 2e-3 - 0.02 * want))
			fail_msg("%s: exported %.6f s of waiting, the waiter measured %.6f s", kinds[k],
				 got[k], want);
		assert_true(fabs(snap.values[hist[k]].sum - got[k]) < 1e-9);
	}
	/* The profile: each kind's waits under the one call site that made
	 * them, resolved to its function and source line while it runs. */
	o = locks_json(dir, rd.path, &status);
	assert_int_equal(status, 0);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(tu_json_get(o, "schema")), "rtm-shmdump-locks/1");
	assert_int_equal(json_object_get_int(tu_json_get(o, "sample")), 1);
	assert_true(json_object_get_boolean(tu_json_get(o, "resolved")));
	arr = tu_json_get(o, "sites");
	assert_int_equal(json_object_array_length(arr), 2);
	for (size_t i = 0; i < 2; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *fn = json_object_get_string(tu_json_get(e, "function"));
		int k = fn && !strcmp(fn, sites[1]);

		if (!fn || strcmp(fn, sites[k]))
			fail_msg("call site resolved to %s, not %s or %s", fn ? fn : "nothing",
				 sites[0], sites[1]);
		assert_string_equal(json_object_get_string(tu_json_get(e, "kind")), kinds[k]);
		assert_string_equal(json_object_get_string(tu_json_get(e, "file")), "lock_truth.c");
		assert_true(json_object_get_int(tu_json_get(e, "line")) > 0);
		assert_int_equal(json_ull(e, "contentions"), (unsigned long long)n[k]);
		/* The same waits as the metric, in nanoseconds. */
		if (fabs((double)json_ull(e, "wait_ns") / 1e9 - got[k]) > 1e-6)
			fail_msg("%s: %llu ns at the site, %.9f s in the metric", kinds[k],
				 json_ull(e, "wait_ns"), got[k]);
		assert_true(json_ull(e, "max_wait_ns") * (unsigned long long)n[k] >= json_ull(e, "wait_ns"));
	}
	json_object_put(o);
	rd_snapshot_free(&snap);
	pclose(p);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

static bool has_series(const struct rd_segment *rd, const char *name)
{
	for (uint32_t i = 0; i < rd->n_metrics; i++)
		if (!strcmp(rd->metrics[i].name, name))
			return true;
	return false;
}

/* A single-threaded program stays single-threaded (glibc malloc keeps
 * its single-thread fast path) whatever RTM_SAMPLE_INTERVAL_MS says, its
 * heap sampled at start all the same; a bad value is one line and the
 * default. */
static void a_single_threaded_program_stays_so(void **state)
{
	static const char *const settings[3] = { "0", "", "soon" };

	(void)state;
	TU_SKIP_IF_SANITIZED();
	for (int k = 0; k < 3; k++) {
		char *dir = tu_mkdir(), cmd[2048], errf[600], *err;
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };
		size_t len;
		pid_t pid;
		int st;

		snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
		snprintf(cmd, sizeof cmd, "env RTM_DIR=%s RTM_SAMPLE_INTERVAL_MS=%s RTM_PUBLISH_DELAY_MS=0 LD_PRELOAD=%s "
			 "sleep 30 >/dev/null 2>%s & echo $!", dir, settings[k], tu_prog("RTM_PRELOAD"), errf);
		err = tu_run(cmd, &st, NULL);
		pid = (pid_t)atoi(err);
		free(err);
		assert_true(pid > 0);
		only_segment(dir, &rd);
		/* The lock metrics are registered last: once they are there,
		 * start-up is over. */
		for (int i = 0; i < 2000 && !has_series(&rd, "runtime.native.sync.contentions"); i++) {
			usleep(10000);
			assert_true(rd_segment_refresh(&rd) >= 0);
		}
		if (thread_count(pid) != 1)
			fail_msg("RTM_SAMPLE_INTERVAL_MS=%s: %ld threads, expected 1", settings[k],
				 thread_count(pid));
		/* Sampled at start, before main(): the heap has bytes in use. */
		assert_true(value(&rd, &s, "runtime.native.mem.heap.inuse") > 0);
		assert_int_equal(s.values[tu_find(&rd, "runtime.native.mem.heap.arenas", NULL, NULL)].i, 1);
		err = tu_slurp(errf, &len);
		if (k == 2)
			assert_non_null(strstr(err, "RTM_SAMPLE_INTERVAL_MS=soon is not a number"));
		else
			assert_int_equal(len, 0);
		free(err);
		kill(pid, SIGTERM);
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
		tu_rmdir(dir);
	}
}

/* Without a thread of ours, a single-threaded program's own allocator
 * calls sample its heap: heap.inuse follows a growing heap while the
 * program keeps its one thread.  With RTM_SAMPLE_INTERVAL_MS=0 the heap is
 * sampled at start and exit only. */
static void own_calls_sample_a_single_threaded_heap(void **state)
{
	static const char *const settings[2] = { "100", "0" };
	enum { GROWN = 8 << 20 };

	(void)state;
	TU_SKIP_IF_SANITIZED();
	for (int k = 0; k < 2; k++) {
		char *dir = tu_mkdir();
		pid_t pid = start_leaker(dir, settings[k], NULL, "heap", "4000000", "ready");
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };
		int64_t inuse0, inuse;
		int i;

		only_segment(dir, &rd);
		inuse0 = value(&rd, &s, "runtime.native.mem.heap.inuse");
		/* heap.alloc is counted on every call: exact, not sampled. */
		for (i = 0; i < 1200 && value(&rd, &s, "runtime.native.mem.heap.alloc") < GROWN; i++)
			usleep(50000);
		if (i == 1200)
			fail_msg("leaker heap 4000000 did not grow by %d bytes in 60 s", GROWN);
		inuse = value(&rd, &s, "runtime.native.mem.heap.inuse");
		if (k == 0 && inuse - inuse0 < GROWN / 2)
			fail_msg("heap.inuse %lld -> %lld while the program allocated %d bytes",
				 (long long)inuse0, (long long)inuse, GROWN);
		if (k == 1)
			assert_int_equal(inuse, inuse0);
		assert_int_equal(thread_count(pid), 1);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		rd_snapshot_free(&s);
		rd_segment_close(&rd);
		tu_rmdir(dir);
	}
}

/* The one segment of pid in dir, once it is there (30 s at most, while pid
 * runs); fails the test naming what when there is none. */
static void segment_of(const char *dir, pid_t pid, const char *what, struct rd_segment *rd)
{
	for (int i = 0; i < 3000; i++) {
		struct seg_info si[4];
		int n = segments_in(dir, si, 4);

		for (int k = 0; k < n; k++)
			if (si[k].pid == pid) {
				char path[4200];
				int dfd = open(dir, O_RDONLY | O_DIRECTORY), m;
				char **names;

				m = rd_dir_list(dfd, &names);
				for (int j = 0; j < m; j++) {
					snprintf(path, sizeof path, "%s/%s", dir, names[j]);
					if (!rd_segment_open(rd, AT_FDCWD, path, 0) && rd->hdr.pid == pid)
						break;
					rd_segment_close(rd);
				}
				rd_dir_names_free(names);
				close(dfd);
				return;
			}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	fail_msg("%s: no segment while it ran", what);
}

/*
 * Issue 23's cases, as a user runs them: a Python program that builds a
 * 20 MB heap, then sleeps, and sleep(1) under prlimit, which allocates
 * nothing after its start.  Each has its segment while it sleeps (it would
 * never make another allocator call), with and without a reader attached;
 * Python's live heap is there, and with a reader it is exported.
 */
static void an_idle_process_is_published_while_it_waits(void **state)
{
	static const char env[] = "RTM_PUBLISH_DELAY_MS=300 RTM_SAMPLE_INTERVAL_MS=1000";
	char py[512];

	(void)state;
	TU_SKIP_IF_SANITIZED();
	snprintf(py, sizeof py, "/usr/bin/python3 -c 'x=[bytearray(1000) for _ in range(20000)]; "
		 "import time; time.sleep(30)'");
	for (int with_reader = 0; with_reader < 2; with_reader++) {
		char *dir = tu_mkdir();
		struct tu_reader r;
		struct rd_segment rd;
		struct rd_snapshot s = { 0 };
		pid_t pid;

		if (with_reader)
			tu_reader_start(&r, dir, (const char *[]){ "--exporter", "stdout", "--interval",
								   "200ms", "--prometheus", "off", NULL });
		if (!access("/usr/bin/python3", X_OK)) {
			pid = start_preloaded(dir, env, py);
			segment_of(dir, pid, "an idle python3", &rd);
			/* 20000 blocks of 1000 bytes, live (the segment may open
			 * while Python builds them). */
			for (int i = 0; i < 3000 &&
			     value(&rd, &s, "runtime.native.mem.heap.alloc") < 20000 * 1000; i++) {
				usleep(10000);
				assert_true(rd_segment_refresh(&rd) >= 0);
			}
			assert_true(value(&rd, &s, "runtime.native.mem.heap.alloc") >= 20000 * 1000);
			assert_int_equal(thread_count(pid), 1);
			rd_snapshot_free(&s);
			rd_segment_close(&rd);
			if (with_reader) {
				char *out = NULL;

				for (int i = 0; i < 3000; i++) {
					free(out);
					out = tu_reader_stdout(&r);
					if (strstr(out, "\"stringValue\":\"python3\"") &&
					    strstr(out, "runtime.native.mem.heap.alloc"))
						break;
					usleep(10000);
				}
				assert_non_null(strstr(out, "\"stringValue\":\"python3\""));
				free(out);
			}
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		} else {
			printf("no /usr/bin/python3: the idle Python case not run\n");
		}
		pid = start_preloaded(dir, env, "prlimit --as=4000000000 sleep 30");
		segment_of(dir, pid, "sleep under prlimit", &rd);
		assert_int_equal(rd.liveness, RD_ALIVE);
		rd_segment_close(&rd);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (with_reader)
			assert_int_equal(tu_reader_stop(&r), 0);
		tu_rmdir(dir);
	}
}

/* An idle program's heap gauges are current to a sampling interval: what
 * it allocated before it went to wait is sampled by the wait that would
 * outlast the next sample, on the program's own thread (it keeps one). */
static void an_idle_heap_is_sampled_as_the_wait_begins(void **state)
{
	char *dir;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	int64_t inuse = 0, before;
	pid_t pid;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* After 500 ms, 512 KiB in 1000-byte blocks (inside the 1 MiB band
	 * that would sample by itself), then 100 ms waits and no allocator
	 * call: sampled on its own thread within a sampling interval (1 s). */
	pid = start_leaker(dir, "1000", NULL, "once", "524288 500", "ready");
	only_segment(dir, &rd);
	before = value(&rd, &s, "runtime.native.mem.heap.inuse");
	for (int i = 0; i < 3000 && inuse - before < 512000; i++) {
		usleep(10000);
		assert_true(rd_segment_refresh(&rd) >= 0);
		inuse = value(&rd, &s, "runtime.native.mem.heap.inuse");
	}
	if (inuse - before < 512000)
		fail_msg("heap.inuse %lld -> %lld after the program allocated 512 KiB and waited",
			 (long long)before, (long long)inuse);
	assert_int_equal(thread_count(pid), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

/* A C++ site prints as C++ (demangled), as perf and gdb print it. */
static void cxx_call_sites_are_demangled(void **state)
{
	char *dir, cmd[2048], outf[512], *text = NULL;
	struct rd_segment rd;
	json_object *o, *e;
	size_t len;
	int st;
	FILE *p;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	if (!*tu_prog("RTM_LOCK_TRUTH_CXX"))
		skip(); /* built without a C++ compiler */
	dir = tu_mkdir();
	snprintf(outf, sizeof outf, "%s/out.txt", dir);
	snprintf(cmd, sizeof cmd, "env RTM_DIR=%s RTM_PUBLISH_DELAY_MS=0 LD_PRELOAD=%s %s > %s", dir,
		 tu_prog("RTM_PRELOAD"), tu_prog("RTM_LOCK_TRUTH_CXX"), outf);
	p = popen(cmd, "w");
	assert_non_null(p);
	only_segment(dir, &rd);
	for (int i = 0; i < 3000 && !(text && strstr(text, "done")); i++) {
		free(text);
		usleep(10000);
		text = tu_slurp(outf, &len);
	}
	assert_non_null(text);
	free(text);
	o = locks_json(dir, rd.path, &st);
	assert_int_equal(st, 0);
	e = json_object_array_get_idx(tu_json_get(o, "sites"), 0);
	assert_non_null(e);
	assert_string_equal(json_object_get_string(tu_json_get(e, "function")),
			    "rtmtest::Contender::wait_here()");
	assert_string_equal(json_object_get_string(tu_json_get(e, "file")), "lock_truth_cxx.cc");
	/* Three rounds; a waiter stalled past the holder's 20 ms would find
	 * the lock free, so this asks only that some were counted. */
	assert_true(json_ull(e, "contentions") >= 1 && json_ull(e, "contentions") <= 3);
	json_object_put(o);
	pclose(p);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

/* A program with its own librtm segment, under the preload: two copies of
 * librtm in one image, and neither may take the other's segment for an
 * earlier image's (the preload's was mapped before it had its name). */
static void an_apps_own_segment_lives_beside_the_preloads(void **state)
{
	char *dir, cmd[2048], *out, **names = NULL;
	int st, n = 0, live = 0, dfd;
	pid_t pid;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	snprintf(cmd, sizeof cmd, "env RTM_DIR=%s RTM_PUBLISH_DELAY_MS=0 LD_PRELOAD=%s %s >/dev/null 2>&1 & echo $!", dir,
		 tu_prog("RTM_PRELOAD"), tu_prog("RTM_EXAMPLE"));
	out = tu_run(cmd, &st, NULL);
	pid = (pid_t)atoi(out);
	free(out);
	assert_true(pid > 0);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	/* The example publishes right after start; wait for both (bounded). */
	for (int i = 0; i < 2000 && live < 2; i++) {
		usleep(10000);
		rd_dir_names_free(names);
		n = rd_dir_list(dfd, &names);
		live = 0;
		for (int k = 0; k < n; k++) {
			struct rd_segment rd;

			if (rd_segment_open(&rd, dfd, names[k], 0) == 0 &&
			    rd.hdr.state == RTM_SHM_STATE_LIVE && rd.hdr.pid == pid)
				live++;
			rd_segment_close(&rd);
		}
	}
	if (live != 2)
		fail_msg("%d live segments of pid %d (%d files), expected the preload's and the app's",
			 live, (int)pid, n);
	/* --locks with the pid finds the one of them that keeps lock sites. */
	snprintf(cmd, sizeof cmd, "%s --dir %s --locks %d", tu_prog("RTM_SHMDUMP"), dir, (int)pid);
	tu_run_says(cmd, 0, "lock sites");
	kill(pid, SIGTERM);
	rd_dir_names_free(names);
	close(dfd);
	tu_rmdir(dir);
}

/* RTM_LOCK_SAMPLE=N puts 1 in N of each thread's contended waits in the
 * profile, counted N times; 0 keeps no profile (the metrics stay exact). */
static void lock_sampling_scales_the_profile(void **state)
{
	struct rd_segment rd;
	unsigned long long truth[2], sum = 0;
	int n[2], status;
	json_object *o, *arr;
	char *dir;
	FILE *p;

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* One waiting thread, 5 mutex then 5 rwlock waits: with N = 2 its
	 * 2nd and 4th (mutex) and 6th, 8th, 10th (rwlock) are kept. */
	p = run_lock_truth(dir, "RTM_LOCK_SAMPLE=2", 5, 10, &rd, n, truth);
	o = locks_json(dir, rd.path, &status);
	assert_int_equal(status, 0);
	assert_int_equal(json_object_get_int(tu_json_get(o, "sample")), 2);
	arr = tu_json_get(o, "sites");
	assert_int_equal(json_object_array_length(arr), 2);
	for (size_t i = 0; i < 2; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		bool mutex = !strcmp(json_object_get_string(tu_json_get(e, "kind")), "mutex");

		assert_int_equal(json_ull(e, "contentions"), mutex ? 4 : 6);
		sum += json_ull(e, "contentions");
	}
	assert_int_equal(sum, 10);
	json_object_put(o);
	pclose(p);
	rd_segment_close(&rd);
	tu_rmdir(dir);

	dir = tu_mkdir();
	p = run_lock_truth(dir, "RTM_LOCK_SAMPLE=0", 2, 10, &rd, n, truth);
	o = locks_json(dir, rd.path, &status);
	assert_int_equal(status, 1);
	assert_null(o);
	pclose(p);
	rd_segment_close(&rd);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allocator_counts_are_exact),
		cmocka_unit_test(mapped_blocks_count_exactly),
		cmocka_unit_test(lock_contention_matches_the_ground_truth),
		cmocka_unit_test(lock_waits_become_exponential_on_request),
		cmocka_unit_test(lock_sampling_scales_the_profile),
		cmocka_unit_test(an_apps_own_segment_lives_beside_the_preloads),
		cmocka_unit_test(cxx_call_sites_are_demangled),
		cmocka_unit_test(a_single_threaded_program_stays_so),
		cmocka_unit_test(an_idle_process_is_published_while_it_waits),
		cmocka_unit_test(an_idle_heap_is_sampled_as_the_wait_begins),
		cmocka_unit_test(own_calls_sample_a_single_threaded_heap),
		cmocka_unit_test(unmodified_programs_run_unharmed),
		cmocka_unit_test(an_exec_chain_leaves_one_live_segment),
		cmocka_unit_test(rtm_publish_chooses_the_processes_that_publish),
		cmocka_unit_test(short_commands_leave_nothing_behind_without_a_reader),
		cmocka_unit_test(short_commands_are_all_exported_with_a_reader),
		cmocka_unit_test(short_commands_send_final_values_by_datagram),
		cmocka_unit_test(a_deferred_segment_is_published_when_it_pays),
		cmocka_unit_test(a_deferred_segment_reaches_a_reader_through_exec_and_fork),
		cmocka_unit_test(the_stress_program_balances),
		cmocka_unit_test(trim_idle_ratio_gives_memory_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
