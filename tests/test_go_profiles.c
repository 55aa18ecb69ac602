/* SPDX-License-Identifier: MIT */
/*
 * The Go producer's lock sites and heap hint, with a real Go program
 * (producer/go/cmd/rtm-go-profiles) and known truths: two goroutines
 * contending on one sync.Mutex (rtm-shmdump --locks names the waiting
 * function and line, the wait within 10% of what the program measured),
 * and a heap with 256 MiB freed beside 192 MiB live (the idle ratio and
 * rtm-shmdump's hint; RTM_TRIM_IDLE_RATIO gives it back to the system).
 * Exits 77 when no Go toolchain built the program.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

struct prog {
	pid_t pid;
	int in;  /* its stdin: closing it ends the program */
	FILE *out;
};

static void prog_start(struct prog *p, const char *dir, const char *mode, const char *env)
{
	int to[2], from[2];

	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(to[0], 0);
		dup2(from[1], 1);
		setenv("RTM_DIR", dir, 1);
		if (env)
			putenv((char *)env);
		execl(tu_prog("RTM_GO_PROFILES"), "rtm-go-profiles", mode, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	p->in = to[1];
	p->out = fdopen(from[0], "r");
	assert_non_null(p->out);
}

/* The program's next line of output, without its newline. */
static void prog_line(struct prog *p, char *buf, size_t cap)
{
	if (!fgets(buf, (int)cap, p->out))
		fail_msg("rtm-go-profiles ended early");
	buf[strcspn(buf, "\n")] = '\0';
}

static void prog_stop(struct prog *p)
{
	int st;

	close(p->in);
	fclose(p->out);
	waitpid(p->pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void go_lock_sites_name_the_waiting_line(void **state)
{
	char *dir = tu_mkdir(), path[4096], line[64], waited[64], cmd[8300];
	struct prog p;
	json_object *site = NULL, *root = NULL;
	long want_line;
	double truth;

	(void)state;
	prog_start(&p, dir, "locks", "RTM_LOCK_SAMPLE=1");
	prog_line(&p, path, sizeof path);
	prog_line(&p, line, sizeof line);
	prog_line(&p, waited, sizeof waited);
	assert_int_equal(sscanf(line, "line %ld", &want_line), 1);
	assert_int_equal(sscanf(waited, "waited %lf", &truth), 1);
	snprintf(cmd, sizeof cmd, "%s --dir %s --json --locks %d", tu_prog("RTM_SHMDUMP"), dir,
		 (int)p.pid);
	/* Folded at each runtime sample (100 ms): all ten waits, soon. */
	for (int i = 0; i < 100; i++) {
		int status;
		char *out = tu_run(cmd, &status, NULL);
		json_object *sites;

		json_object_put(root);
		root = json_tokener_parse(out);
		free(out);
		sites = root ? tu_json_get(root, "sites") : NULL;
		site = sites && json_object_array_length(sites) ?
			       json_object_array_get_idx(sites, 0) : NULL;
		if (site && atoll(json_object_get_string(tu_json_get(site, "contentions"))) >= 10)
			break;
		usleep(100000);
	}
	assert_non_null(site);
	assert_string_equal(json_object_get_string(tu_json_get(site, "kind")), "mutex");
	assert_int_equal(atoll(json_object_get_string(tu_json_get(site, "contentions"))), 10);
	assert_string_equal(json_object_get_string(tu_json_get(site, "function")), "main.waiter");
	assert_string_equal(json_object_get_string(tu_json_get(site, "file")), "main.go");
	assert_int_equal(json_object_get_int(tu_json_get(site, "line")), want_line);
	{
		double got = (double)atoll(json_object_get_string(tu_json_get(site, "wait_ns")));

		if (got < truth * 0.9 || got > truth * 1.1)
			fail_msg("wait %.0f ns at the site, the program measured %.0f", got, truth);
	}
	assert_int_equal(json_object_get_int(tu_json_get(root, "sample")), 1);
	json_object_put(root);
	prog_stop(&p);
	tu_rmdir(dir);
}

static long rss_kib(pid_t pid)
{
	char path[64], text[4096], *l;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	l = strstr(text, "\nVmRSS:");
	return l ? strtol(l + 7, NULL, 10) : -1;
}

/* What rtm-shmdump says of the process. */
static char *shmdump(const char *dir, pid_t pid)
{
	char cmd[8300];
	int status;

	snprintf(cmd, sizeof cmd, "%s --dir %s %d", tu_prog("RTM_SHMDUMP"), dir, (int)pid);
	return tu_run(cmd, &status, NULL);
}

/* The idle ratio above a half, the hint naming debug.FreeOSMemory; with
 * RTM_TRIM_IDLE_RATIO=0.5 the program gives the free heap back (a trim
 * counted, its resident memory 128 MiB and more below the other's). */
static void go_heap_hint_and_trim(void **state)
{
	char *dir = tu_mkdir(), buf[4096], *plain = NULL, *trimmed = NULL;
	struct prog keep, trim;
	bool ok = false;
	long rss[2] = { 0, 0 };

	(void)state;
	prog_start(&keep, dir, "heap", NULL);
	prog_start(&trim, dir, "heap", "RTM_TRIM_IDLE_RATIO=0.5");
	for (int i = 0; i < 2; i++) {
		struct prog *p = i ? &trim : &keep;

		prog_line(p, buf, sizeof buf);
		prog_line(p, buf, sizeof buf);
		assert_string_equal(buf, "freed");
	}
	for (int i = 0; i < 100 && !ok; i++) {
		usleep(100000);
		free(plain);
		free(trimmed);
		plain = shmdump(dir, keep.pid);
		trimmed = shmdump(dir, trim.pid);
		rss[0] = rss_kib(keep.pid);
		rss[1] = rss_kib(trim.pid);
		ok = strstr(plain, "hint: ") && strstr(trimmed, "runtime.native.mem.heap.trims  1 ") &&
		     rss[1] >= 0 && rss[1] + 128 * 1024 < rss[0];
	}
	if (!ok)
		fail_msg("resident %ld KiB kept, %ld KiB trimmed\nkept:\n%s\ntrimmed:\n%s", rss[0],
			 rss[1], plain, trimmed);
	assert_non_null(strstr(plain, "of the heap is idle: debug.FreeOSMemory() could return up to"));
	assert_non_null(strstr(plain, "runtime.native.mem.heap.trims  0 "));
	{
		const char *r = strstr(plain, "runtime.native.mem.heap.idle_ratio  ");

		assert_non_null(r);
		assert_true(strtod(r + strlen("runtime.native.mem.heap.idle_ratio  "), NULL) > 0.5);
	}
	assert_null(strstr(trimmed, "hint: "));
	free(plain);
	free(trimmed);
	prog_stop(&keep);
	prog_stop(&trim);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(go_lock_sites_name_the_waiting_line),
		cmocka_unit_test(go_heap_hint_and_trim),
	};
	const char *go = getenv("RTM_GO_PROFILES");

	if (!go || !*go || access(go, X_OK)) {
		printf("no Go toolchain built rtm-go-profiles: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
