/* SPDX-License-Identifier: MIT */
/* rtm-shmdump as a user runs it: a real child process, its real output. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rd_dir.h"
#include "rd_proc.h"
#include "rtm_shm_presence.h"
#include "test_util.h"

struct fx {
	char *dir;
	struct rtm_segment *seg;
	rtm_counter_t c, cd;
	rtm_updown_t u;
	rtm_gauge_t g;
	rtm_hist_t h;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const double bounds[] = { 0.5, 1, 2.5 };

	f->dir = tu_mkdir();
	assert_int_equal(rtm_segment_open(&f->seg, &(struct rtm_segment_opts){
		.service_name = "dumped", .service_version = "9.9", .dir = f->dir,
		.resource_attrs = (struct rtm_attr[]){ { "team", "infra" }, { "zone", "eu-1" } },
		.n_resource_attrs = 2 }), 0);
	rtm_counter_create(f->seg, &f->c, &(struct rtm_metric_def){
		.name = "d.requests", .unit = "{request}", .description = "Requests \"quoted\"",
		.attrs = (struct rtm_attr[]){ { "method", "GET" }, { "code", "200" } }, .n_attrs = 2 });
	rtm_counter_create(f->seg, &f->cd, &(struct rtm_metric_def){
		.name = "d.cpu", .unit = "s", .is_double = 1 });
	rtm_updown_create(f->seg, &f->u, &(struct rtm_metric_def){
		.name = "d.active", .attrs = (struct rtm_attr[]){ { "pool", "né" } }, .n_attrs = 1 });
	rtm_gauge_create(f->seg, &f->g, &(struct rtm_metric_def){ .name = "d.temp", .unit = "Cel" });
	rtm_hist_create(f->seg, &f->h, &(struct rtm_metric_def){
		.name = "d.latency", .unit = "s", .bounds = bounds, .n_bounds = 3 });
	rtm_counter_add(&f->c, 123456789012ull);
	rtm_counter_add_f64(&f->cd, 1.5);
	rtm_updown_add(&f->u, -4);
	rtm_gauge_set(&f->g, 21);
	rtm_hist_record(&f->h, 0.25);
	rtm_hist_record(&f->h, 0.75);
	rtm_hist_record(&f->h, 3);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	rtm_segment_close(f->seg);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("key %s missing", key);
	return v;
}

static const char *gets_(json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

static json_object *metric(json_object *root, const char *name)
{
	json_object *ms = get(root, "metrics");

	for (size_t i = 0; i < json_object_array_length(ms); i++) {
		json_object *m = json_object_array_get_idx(ms, i);
		if (!strcmp(gets_(m, "name"), name))
			return m;
	}
	fail_msg("metric %s missing from JSON", name);
	return NULL;
}

static void every_kind_and_attribute_round_trips_through_json(void **state)
{
	struct fx *f = *state;
	char cmd[1024];
	int st;
	char *out;
	json_object *root, *m, *a;
	struct rd_segment rd;

	snprintf(cmd, sizeof cmd, "%s --dir %s --json %d", tu_prog("RTM_SHMDUMP"), f->dir,
		 (int)getpid());
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 0);
	root = json_tokener_parse(out);
	assert_non_null(root);
	assert_string_equal(gets_(root, "schema"), "rtm-shmdump/2");
	/* 64-bit integers are strings (as in OTLP/JSON); doubles the shortest
	 * that round-trip. */
	assert_non_null(strstr(out, "\"value\":\"123456789012\""));
	assert_non_null(strstr(out, "\"bounds\":[0.5,1,2.5]"));
	assert_non_null(strstr(out, "\"bucket_counts\":[\"1\",\"1\",\"0\",\"1\"]"));
	assert_int_equal(json_object_get_type(get(root, "heartbeat_unix_nano")), json_type_string);
	assert_string_equal(gets_(root, "service_name"), "dumped");
	assert_string_equal(gets_(root, "service_version"), "9.9");
	assert_string_equal(gets_(root, "layout"), "1.3");
	/* In our own pid namespace: the host pid is the pid. */
	assert_int_equal(json_object_get_int(get(root, "host_pid")), getpid());
	assert_string_equal(gets_(root, "process"), "alive");
	assert_string_equal(gets_(root, "state"), "live");
	assert_string_equal(gets_(get(root, "resource"), "zone"), "eu-1");
	assert_int_equal(json_object_get_int(get(root, "pid")), getpid());
	assert_int_equal(json_object_array_length(get(root, "metrics")), 5);

	tu_read(f->seg, &rd); /* start times must match the segment exactly */
	m = metric(root, "d.requests");
	assert_string_equal(gets_(m, "kind"), "counter");
	assert_string_equal(gets_(m, "unit"), "{request}");
	assert_string_equal(gets_(m, "description"), "Requests \"quoted\"");
	assert_string_equal(gets_(m, "value_type"), "int");
	assert_int_equal(json_object_get_int64(get(m, "value")), 123456789012ll);
	a = get(m, "attributes");
	assert_string_equal(gets_(a, "method"), "GET");
	assert_string_equal(gets_(a, "code"), "200");
	assert_int_equal(json_object_get_uint64(get(m, "start_time_unix_nano")),
			 rd.metrics[tu_find(&rd, "d.requests", NULL, NULL)].start_unix_nano);
	m = metric(root, "d.cpu");
	assert_string_equal(gets_(m, "value_type"), "double");
	assert_true(json_object_get_double(get(m, "value")) == 1.5);
	m = metric(root, "d.active");
	assert_string_equal(gets_(m, "kind"), "updowncounter");
	assert_int_equal(json_object_get_int64(get(m, "value")), -4);
	assert_string_equal(gets_(get(m, "attributes"), "pool"), "né");
	m = metric(root, "d.temp");
	assert_string_equal(gets_(m, "kind"), "gauge");
	assert_int_equal(json_object_get_int64(get(m, "value")), 21);
	m = metric(root, "d.latency");
	assert_string_equal(gets_(m, "kind"), "histogram");
	assert_int_equal(json_object_get_int(get(m, "count")), 3);
	assert_true(json_object_get_double(get(m, "sum")) == 4.0);
	assert_true(json_object_get_double(get(m, "min")) == 0.25);
	assert_true(json_object_get_double(get(m, "max")) == 3.0);
	assert_int_equal(json_object_array_length(get(m, "bounds")), 3);
	assert_true(json_object_get_double(json_object_array_get_idx(get(m, "bounds"), 2)) == 2.5);
	a = get(m, "bucket_counts");
	assert_int_equal(json_object_array_length(a), 4);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(a, 0)), 1);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(a, 1)), 1);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(a, 2)), 0);
	assert_int_equal(json_object_get_int(json_object_array_get_idx(a, 3)), 1);
	rd_segment_close(&rd);
	json_object_put(root);
	free(out);
}

static void filter_selects_metrics_by_glob(void **state)
{
	struct fx *f = *state;
	char cmd[1024];
	int st;
	char *out;
	json_object *root;

	snprintf(cmd, sizeof cmd, "%s --json --filter 'd.*t*' %s", tu_prog("RTM_SHMDUMP"),
		 rtm_segment_path(f->seg));
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 0);
	root = json_tokener_parse(out);
	assert_non_null(root);
	/* d.requests, d.active, d.temp, d.latency match; d.cpu does not. */
	assert_int_equal(json_object_array_length(get(root, "metrics")), 4);
	json_object_put(root);
	free(out);
}

static void listing_shows_good_segments_next_to_bad_ones(void **state)
{
	struct fx *f = *state;
	char cmd[1024], path[512];
	int st, fd;
	char *out;

	snprintf(path, sizeof path, "%s/garbage.rtm", f->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "not a segment at all, just some text....", 40), 40);
	close(fd);
	snprintf(cmd, sizeof cmd, "%s --dir %s", tu_prog("RTM_SHMDUMP"), f->dir);
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "dumped"));
	assert_non_null(strstr(out, "alive"));
	assert_non_null(strstr(out, "garbage.rtm: truncated"));
	free(out);
}

static void listing_says_whether_a_reader_is_attached(void **state)
{
	struct fx *f = *state;
	char cmd[1024], want[64];
	int st, dfd, fd = -1;
	char *out;

	snprintf(cmd, sizeof cmd, "%s --dir %s --json", tu_prog("RTM_SHMDUMP"), f->dir);
	tu_run_says(cmd, 0, "\"reader\":{\"attached\":false}");
	/* Announced the way rtm-reader does it, by this process. */
	dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(rd_dir_presence_touch(dfd, &fd, 2000000000u), 0);
	snprintf(cmd, sizeof cmd, "%s --dir %s", tu_prog("RTM_SHMDUMP"), f->dir);
	out = tu_run(cmd, &st, NULL);
	snprintf(want, sizeof want, "reader: attached (pid %d, every 2s", (int)getpid());
	assert_non_null(strstr(out, want));
	free(out);
	/* Two intervals and the grace later it is stale: a file dated back. */
	assert_int_equal(futimens(fd, (struct timespec[]){ { time(NULL) - 40, 0 },
							     { time(NULL) - 40, 0 } }), 0);
	out = tu_run(cmd, &st, NULL);
	assert_non_null(strstr(out, "reader: none attached (its last sign of life is stale)"));
	free(out);
	close(fd);
	unlinkat(dfd, RTM_SHM_READER_FILE, 0);
	close(dfd);
}

static void check_passes_a_good_segment_and_fails_a_corrupt_one(void **state)
{
	struct fx *f = *state;
	char cmd[1024], path[512];
	size_t len;
	unsigned char *img = tu_slurp(rtm_segment_path(f->seg), &len);
	int st, fd;
	char *out;

	snprintf(cmd, sizeof cmd, "%s --check %s", tu_prog("RTM_SHMDUMP"),
		 rtm_segment_path(f->seg));
	tu_run_says(cmd, 0, ": ok (layout 1.3, 5 metrics");

	((struct rtm_shm_header *)(void *)img)->major = 3;
	snprintf(path, sizeof path, "%s/corrupt.rtm", f->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof cmd, "%s --check %s 2>&1", tu_prog("RTM_SHMDUMP"), path);
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 1);
	{
		char want[64];

		snprintf(want, sizeof want, "corrupt.rtm: unsupported layout 3.%d", RTM_SHM_MINOR);
		assert_non_null(strstr(out, want));
	}
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
	free(out);
	free(img);
}

static void watch_reports_rates(void **state)
{
	struct fx *f = *state;
	char cmd[1024];
	int st;
	char *out, *second;
	json_object *root;

	/* A writer keeps counting while shmdump watches. */
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 400; i++) {
			rtm_counter_add(&f->c, 10);
			usleep(10000);
		}
		_exit(0);
	}
	/* Two reports need 0.3 s; 3 s leaves room for a loaded machine. */
	snprintf(cmd, sizeof cmd, "timeout -s INT 3 %s --json --watch=0.3 %s",
		 tu_prog("RTM_SHMDUMP"), rtm_segment_path(f->seg));
	out = tu_run(cmd, &st, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	second = strchr(out, '\n');
	assert_non_null(second);
	root = json_tokener_parse(second + 1);
	assert_non_null(root);
	assert_non_null(get(metric(root, "d.requests"), "rate"));
	json_object_put(root);
	free(out);
}

static void bad_flags_are_one_line_errors(void **state)
{
	char cmd[1024];

	(void)state;
	snprintf(cmd, sizeof cmd, "%s --watch=abc 1 2>&1", tu_prog("RTM_SHMDUMP"));
	tu_run_says(cmd, 2, "--watch: 'abc'");
	snprintf(cmd, sizeof cmd, "%s --dir /nonexistent 999999 2>&1", tu_prog("RTM_SHMDUMP"));
	tu_run_says(cmd, 1, "/nonexistent");
}

/* docs/c.md's example is tools/rtm_example.c verbatim, and running it
 * shows its metrics in rtm-shmdump, as the guide promises. */
static void readme_example_runs_and_shows_up(void **state)
{
	char path[4096], cmd[4096];
	size_t rlen, elen;
	char *readme, *example, *block, *out;
	pid_t pid;
	int st, fds[2];
	json_object *root, *m;
	struct fx *f = *state;

	snprintf(path, sizeof path, "%s/docs/c.md", tu_prog("RTM_SOURCE_ROOT"));
	readme = tu_slurp(path, &rlen);
	readme[rlen] = '\0';
	snprintf(path, sizeof path, "%s/tools/rtm_example.c", tu_prog("RTM_SOURCE_ROOT"));
	example = tu_slurp(path, &elen);
	block = strstr(readme, "```c\n");
	assert_non_null(block);
	assert_memory_equal(block + 5, example, elen);
	assert_memory_equal(block + 5 + elen, "```", 3);

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		char direnv[600];

		snprintf(direnv, sizeof direnv, "RTM_DIR=%s", f->dir);
		putenv(direnv);
		dup2(fds[1], 1);
		execl(tu_prog("RTM_EXAMPLE"), "example", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	{
		char line[512] = "";
		assert_true(read(fds[0], line, sizeof line - 1) > 0); /* "published to ..." */
		assert_non_null(strstr(line, "published to"));
	}
	close(fds[0]);
	snprintf(cmd, sizeof cmd, "%s --dir %s --json %d", tu_prog("RTM_SHMDUMP"), f->dir, (int)pid);
	out = tu_run(cmd, &st, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(st, 0);
	root = json_tokener_parse(out);
	assert_non_null(root);
	assert_string_equal(gets_(root, "service_name"), "example");
	m = metric(root, "example.jobs");
	assert_int_equal(json_object_get_int(get(m, "value")), 100);
	assert_string_equal(gets_(get(m, "attributes"), "queue"), "default");
	assert_int_equal(json_object_get_int(get(metric(root, "example.queue.depth"), "value")), 0);
	assert_int_equal(json_object_get_int(get(metric(root, "example.job.duration"), "count")), 100);
	json_object_put(root);
	free(out);
	free(readme);
	free(example);
}

/* The list and the detail view describe a segment under the same keys. */
static void list_and_detail_share_their_keys(void **state)
{
	struct fx *f = *state;
	static const char *const keys[] = { "path", "service_name", "pid", "process", "state",
					    "metric_count", "size", "memory", "heartbeat_unix_nano" };
	char cmd[1024], *out;
	json_object *list, *one, *detail;
	int st;

	snprintf(cmd, sizeof cmd, "%s --dir %s --json", tu_prog("RTM_SHMDUMP"), f->dir);
	out = tu_run(cmd, &st, NULL);
	list = json_tokener_parse(out);
	free(out);
	assert_string_equal(gets_(list, "schema"), "rtm-shmdump-list/2");
	one = json_object_array_get_idx(get(list, "segments"), 0);
	snprintf(cmd, sizeof cmd, "%s --dir %s --json %d", tu_prog("RTM_SHMDUMP"), f->dir, (int)getpid());
	out = tu_run(cmd, &st, NULL);
	detail = json_tokener_parse(out);
	free(out);
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		json_object *a = get(one, keys[k]), *b = get(detail, keys[k]);

		assert_int_equal(json_object_get_type(a), json_object_get_type(b));
		if (strcmp(keys[k], "heartbeat_unix_nano") && strcmp(keys[k], "memory"))
			assert_string_equal(json_object_get_string(a), json_object_get_string(b));
	}
	assert_string_equal(gets_(one, "path"), rtm_segment_path(f->seg));
	json_object_put(list);
	json_object_put(detail);
}

/* --watch on a real terminal (tmux): one screen of at most 80x24, values
 * humanised, histogram percentiles; and all producers without a PID. */
static void watch_draws_one_screen_on_a_terminal(void **state)
{
	struct fx *f = *state;
	char cmd[2048], *out, *line, *save = NULL;
	int st, lines = 0;

	out = tu_run("command -v tmux", &st, NULL);
	free(out);
	if (st)
		skip();
	for (int all = 0; all < 2; all++) {
		char pid[16] = "";

		if (!all)
			snprintf(pid, sizeof pid, "%d", (int)getpid());
		snprintf(cmd, sizeof cmd, "tmux -L rtmtest%d kill-server 2>/dev/null; "
			 "tmux -L rtmtest%d new-session -d -x 80 -y 24 '%s --dir %s --watch 0.2 %s; sleep 9' && "
			 "sleep 1.5 && tmux -L rtmtest%d capture-pane -p; tmux -L rtmtest%d kill-server",
			 (int)getpid(), (int)getpid(), tu_prog("RTM_SHMDUMP"), f->dir, pid, (int)getpid(),
			 (int)getpid());
		out = tu_run(cmd, &st, NULL);
		assert_non_null(out);
		if (!all) {
			assert_non_null(strstr(out, "rtm-shmdump  dumped@9.9"));
			assert_non_null(strstr(out, "d.requests{code=200,method=GET"));
			assert_non_null(strstr(out, "123.5G")); /* 123456789012 {request} */
			assert_non_null(strstr(out, "1.50 s"));  /* d.cpu */
			assert_non_null(strstr(out, "P99"));
		} else {
			assert_non_null(strstr(out, "1 producers"));
			assert_non_null(strstr(out, "dumped"));
		}
		lines = 0;
		for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			assert_true(strlen(line) <= 80);
			lines++;
		}
		assert_true(lines <= 24);
		free(out);
	}
}

/* --wait: a live process's segment may come a moment after it starts. */
static void wait_gives_a_starting_process_its_moment(void **state)
{
	struct fx *f = *state;
	char cmd[1024], go = 1;
	int p[2];
	pid_t kid;

	assert_int_equal(pipe(p), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct rtm_segment *seg;

		/* Told to go once the first rtm-shmdump found nothing; then
		 * late enough that the second must wait for it. */
		close(p[1]);
		if (read(p[0], &go, 1) != 1)
			_exit(1);
		usleep(600000);
		if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "late",
								      .dir = f->dir }))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[0]);
	snprintf(cmd, sizeof cmd, "%s --dir %s %d 2>&1", tu_prog("RTM_SHMDUMP"), f->dir, (int)kid);
	tu_run_says(cmd, 1, "no valid segment for pid");
	assert_int_equal(write(p[1], &go, 1), 1);
	close(p[1]);
	snprintf(cmd, sizeof cmd, "%s --dir %s --wait 10 %d 2>&1", tu_prog("RTM_SHMDUMP"), f->dir,
		 (int)kid);
	tu_run_says(cmd, 0, "service=late");
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
}

/* --prune removes what ended processes left, and nothing else. */
static void prune_removes_segments_of_ended_processes(void **state)
{
	struct fx *f = *state;
	char cmd[1024], path[4096];
	int p[2];
	pid_t kid;

	assert_int_equal(pipe(p), 0);
	kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		struct rtm_segment *seg;

		if (rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = "gone",
								      .dir = f->dir }))
			_exit(1);
		if (write(p[1], rtm_segment_path(seg), strlen(rtm_segment_path(seg)) + 1) < 0)
			_exit(1);
		pause();
	}
	close(p[1]);
	memset(path, 0, sizeof path);
	assert_true(read(p[0], path, sizeof path - 1) > 0);
	close(p[0]);
	kill(kid, SIGKILL); /* no close: its segment stays LIVE */
	waitpid(kid, NULL, 0);
	snprintf(cmd, sizeof cmd, "%s --dir %s --prune", tu_prog("RTM_SHMDUMP"), f->dir);
	tu_run_says(cmd, 0, "1 removed, 0 kept");
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(access(rtm_segment_path(f->seg), F_OK), 0); /* ours: alive */
}

/* A golden fixture as this test's own live segment: uid, pid and start
 * time made ours, so the owner checks pass and --locks resolves against
 * this process's mappings.  Returns the copy's path (malloc'd). */
static char *fixture_as_ours(const char *dir, const char *name)
{
	char path[4096], *img, *out;
	struct rtm_shm_header *h;
	struct rd_proc_stat st;
	size_t len;
	int fd;

	snprintf(path, sizeof path, "%s/%s", tu_prog("RTM_FIXTURES"), name);
	img = tu_slurp(path, &len);
	assert_non_null(img);
	st = tu_proc_stat(getpid());
	h = (struct rtm_shm_header *)(void *)img;
	h->uid = (uint32_t)getuid();
	h->pid = (int32_t)getpid();
	h->pid_start_ticks = st.start_ticks;
	if (asprintf(&out, "%s/%s", dir, name) < 0)
		fail();
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	close(fd);
	free(img);
	return out;
}

/* --locks: the lock-site table, most wait first, its sampling said; a
 * segment without one (layout 1.0, or a producer that records no locks)
 * is a one-line error; --locks needs a target and no other mode. */
static void locks_prints_the_table_or_says_why_not(void **state)
{
	struct fx *f = *state;
	char cmd[8400], *seg11 = fixture_as_ours(f->dir, "layout-1.1.seg"),
	     *seg10 = fixture_as_ours(f->dir, "layout-1.0.seg"), *out;
	json_object *o, *e;
	int st;

	snprintf(cmd, sizeof cmd, "%s --locks %s 2>&1", tu_prog("RTM_SHMDUMP"), seg11);
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "2 lock sites, 1 in 2 contended waits sampled"));
	/* 3 + 1 ms at one site, counted twice: 8 ms over 4 waits. */
	assert_non_null(strstr(out, "    0.008000          4     2000.0     3000.0  mutex   0x401234"));
	assert_true(strstr(out, "0x401234") < strstr(out, "0x402000"));
	free(out);
	snprintf(cmd, sizeof cmd, "%s --locks --json %s", tu_prog("RTM_SHMDUMP"), seg11);
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 0);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "sample")), 2);
	e = json_object_array_get_idx(json_object_object_get(o, "sites"), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "address")), "0x402000");
	assert_string_equal(json_object_get_string(json_object_object_get(e, "kind")), "rwlock");
	assert_string_equal(json_object_get_string(json_object_object_get(e, "wait_ns")), "1000000");
	/* Nothing of this process is mapped there: no function is made up. */
	assert_null(json_object_object_get(e, "function"));
	json_object_put(o);
	free(out);
	{
		/* A site inside ld.so's span but not in code (its data): no
		 * module either, though libdwfl's range for ld.so covers it. */
		FILE *maps = fopen("/proc/self/maps", "re");
		char line[4096];
		unsigned long long lo = 0, hi;
		struct rtm_shm_header h;
		int fd;

		while (maps && fgets(line, sizeof line, maps)) {
			char perms[8];

			if (strstr(line, "ld-linux") && sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 &&
			    !strchr(perms, 'x') && lo > 0)
				break;
			lo = 0;
		}
		if (maps)
			fclose(maps);
		assert_true(lo != 0);
		fd = open(seg11, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
		lo += 64; /* a return address: the byte before it is what is looked up */
		for (uint32_t i = 0; i < h.sites_capacity; i++) {
			uint64_t a;

			assert_int_equal(pread(fd, &a, 8, h.sites_offset + 64u * i), 8);
			if (a == 0x402000) {
				assert_int_equal(pwrite(fd, &lo, 8, h.sites_offset + 64u * i), 8);
				break;
			}
		}
		close(fd);
		snprintf(cmd, sizeof cmd, "%s --locks --json %s", tu_prog("RTM_SHMDUMP"), seg11);
		out = tu_run(cmd, &st, NULL);
		assert_int_equal(st, 0);
		o = json_tokener_parse(out);
		assert_non_null(o);
		e = json_object_array_get_idx(json_object_object_get(o, "sites"), 1);
		if (json_object_object_get(e, "module"))
			fail_msg("a data address of ld.so resolved to module %s",
				 json_object_get_string(json_object_object_get(e, "module")));
		assert_null(json_object_object_get(e, "function"));
		json_object_put(o);
		free(out);
	}
	snprintf(cmd, sizeof cmd, "%s --locks %s 2>&1", tu_prog("RTM_SHMDUMP"), seg10);
	tu_run_says(cmd, 1, "its producer writes no lock-site table");
	snprintf(cmd, sizeof cmd, "%s --locks %s 2>&1", tu_prog("RTM_SHMDUMP"), rtm_segment_path(f->seg));
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 1);
	assert_non_null(strstr(out, "records no lock contention"));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one line */
	free(out);
	snprintf(cmd, sizeof cmd, "%s --locks 2>&1; %s --locks --watch 1 %s 2>&1", tu_prog("RTM_SHMDUMP"),
		 tu_prog("RTM_SHMDUMP"), seg11);
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 2);
	assert_non_null(strstr(out, "need a PID or PATH"));
	assert_non_null(strstr(out, "--locks goes with neither"));
	free(out);
	free(seg11);
	free(seg10);
}

/* A directory not made yet holds no segments: exit 0 in text and JSON
 * alike (the JSON says it does not exist); a path that is not a
 * directory is an error in both. */
static void a_missing_directory_is_no_segments_in_every_form(void **state)
{
	char cmd[600];
	json_object *o;
	char *out;
	int st;

	(void)state;
	snprintf(cmd, sizeof cmd, "%s --dir /nonexistent/rtm 2>&1", tu_prog("RTM_SHMDUMP"));
	tu_run_says(cmd, 0, "no segments: /nonexistent/rtm does not exist");
	snprintf(cmd, sizeof cmd, "%s --dir /nonexistent/rtm --json", tu_prog("RTM_SHMDUMP"));
	out = tu_run(cmd, &st, NULL);
	assert_int_equal(st, 0);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_false(json_object_get_boolean(tu_json_get(o, "exists")));
	assert_int_equal(json_object_array_length(tu_json_get(o, "segments")), 0);
	json_object_put(o);
	free(out);
	snprintf(cmd, sizeof cmd, "%s --dir /etc/passwd 2>&1", tu_prog("RTM_SHMDUMP"));
	tu_run_says(cmd, 1, "/etc/passwd: Not a directory");
	snprintf(cmd, sizeof cmd, "%s --dir /etc/passwd --json 2>&1", tu_prog("RTM_SHMDUMP"));
	tu_run_says(cmd, 1, "/etc/passwd: Not a directory");
}

/* "--watch 2" is two seconds, as the usage says: pid 2 (a kernel thread)
 * has no segment.  In three seconds it draws at most two screens. */
static void watch_takes_a_lone_number_as_seconds(void **state)
{
	char *dir = tu_mkdir(), cmd[4200], *out;
	int status, screens = 0;

	(void)state;
	snprintf(cmd, sizeof cmd, "timeout 3 %s --dir %s --watch 2 2>&1", tu_prog("RTM_SHMDUMP"), dir);
	out = tu_run(cmd, &status, NULL);
	assert_int_equal(status, 124); /* still watching when timeout stopped it */
	for (const char *p = strstr(out, "(no segments in"); p; p = strstr(p + 1, "(no segments in"))
		screens++;
	if (screens < 1 || screens > 2 || strstr(out, "pid 2"))
		fail_msg("--watch 2 printed:\n%s", out);
	free(out);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_missing_directory_is_no_segments_in_every_form),
		cmocka_unit_test(watch_takes_a_lone_number_as_seconds),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(every_kind_and_attribute_round_trips_through_json),
		T(filter_selects_metrics_by_glob),
		T(listing_shows_good_segments_next_to_bad_ones),
		T(listing_says_whether_a_reader_is_attached),
		T(check_passes_a_good_segment_and_fails_a_corrupt_one),
		T(watch_reports_rates),
		T(bad_flags_are_one_line_errors),
		T(readme_example_runs_and_shows_up),
		T(list_and_detail_share_their_keys),
		T(watch_draws_one_screen_on_a_terminal),
		T(wait_gives_a_starting_process_its_moment),
		T(prune_removes_segments_of_ended_processes),
		T(locks_prints_the_table_or_says_why_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
