/* SPDX-License-Identifier: MIT */
/*
 * The leak detector against real processes with known behaviour
 * (tests/leaker.c), read back from the reader's /metrics and its log:
 * a heap leak, a thread leak and an fd leak are measured within 10 % and
 * flagged, each with one log line; a large steady heap, a sawtooth and a
 * one-time growth are never flagged.
 *
 * In the normal build the children run under librtm-preload.so, so their
 * heap series is the allocator's live bytes; in sanitizer builds (where the
 * preload cannot run) they are collected with --pid and the heap series is
 * their RSS.
 */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

struct child {
	const char *name, *mode, *a, *b;
	const char *leaks;   /* the resource it leaks, or NULL */
	double rate;         /* its true growth per second */
	pid_t pid;
	bool flagged;        /* seen with suspect 1 */
};

static pid_t start(struct child *c, const char *dir, bool preload)
{
	int p[2];
	char buf[16] = "";
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char svc[64];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		close(p[0]);
		snprintf(svc, sizeof svc, "leak-%s", c->name);
		setenv("RTM_DIR", dir, 1);
		setenv("RTM_SERVICE_NAME", svc, 1);
		if (preload) {
			setenv("LD_PRELOAD", tu_prog("RTM_PRELOAD"), 1);
			setenv("RTM_PUBLISH_DELAY_MS", "0", 1); /* its segment at once */
			setenv("RTM_SAMPLE_INTERVAL_MS", "250", 1);
		}
		execl(tu_prog("RTM_LEAKER"), "leaker", c->mode, c->a, c->b, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	assert_true(read(p[0], buf, sizeof buf - 1) > 0);
	assert_true(!strncmp(buf, "ready", 5));
	close(p[0]);
	return pid;
}

/* The value of the first sample line of metric whose labels hold
 * instance="<pid>-... and, if given, extra; NAN when there is none. */
static double sample(const char *page, const char *metric, pid_t pid, const char *extra)
{
	char inst[48];
	size_t mlen = strlen(metric);

	snprintf(inst, sizeof inst, "instance=\"%d-", (int)pid);
	for (const char *l = page; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *end = strchr(l, '\n'), *brace = strchr(l, '}');

		if (strncmp(l, metric, mlen) || l[mlen] != '{' || !brace || (end && brace > end))
			continue;
		if (!memmem(l, (size_t)(brace - l), inst, strlen(inst)))
			continue;
		if (extra && !memmem(l, (size_t)(brace - l), extra, strlen(extra)))
			continue;
		return strtod(brace + 2, NULL);
	}
	return NAN;
}

static int count_lines(const char *log, const char *what, pid_t pid, const char *kind)
{
	char pidstr[32];
	int n = 0;

	snprintf(pidstr, sizeof pidstr, "(pid %d,", (int)pid);
	for (const char *l = log; (l = strstr(l, what)); l++) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);

		if (memmem(l, len, pidstr, strlen(pidstr)) && memmem(l, len, kind, strlen(kind)))
			n++;
	}
	return n;
}

static void leaks_are_measured_and_flagged_and_nothing_else_is(void **state)
{
	struct child kids[] = {
		{ "heap", "heap", "2000000", NULL, "heap", 2e6, 0, false },
		{ "threads", "threads", "2", NULL, "threads", 2, 0, false },
		{ "fds", "fds", "4", NULL, "fds", 4, 0, false },
		{ "steady", "steady", "100000000", NULL, NULL, 0, 0, false },
		{ "sawtooth", "sawtooth", "64000000", "1000", NULL, 0, 0, false },
		{ "once", "once", "100000000", "1500", NULL, 0, 0, false },
	};
	enum { N = sizeof kids / sizeof kids[0] };
	static const char *const metric_of[] = { "rtm_process_heap_growth_bytes_per_second",
						 "rtm_process_thread_growth_per_second",
						 "rtm_process_fd_growth_per_second" };
	static const char *const kinds[] = { "heap", "threads", "fds" };
	const char *san = getenv("RTM_SANITIZED");
	bool preload = !(san && san[0] == '1');
	const char *args[64] = { "--exporter", "none", "--prometheus", "127.0.0.1:0",
				 "--interval", "250ms", "--leak", "window=4s", "--leak", "heap=0.5MB/s",
				 "--leak", "threads=0.5", "--leak", "fds=1" };
	char pids[N][16], *dir = tu_mkdir(), *log;
	size_t na = 14;
	struct tu_reader r;
	bool measured[3] = { false };
	int all_flagged = -1;

	(void)state;
	if (!preload) {
		/* RSS must grow (or fall) exactly as the process means it to:
		 * the sanitizer's quarantine keeps freed blocks resident. */
		kids[0].mode = "heap-mmap";
		kids[4].mode = "sawtooth-mmap";
	}
	for (int i = 0; i < N; i++) {
		kids[i].pid = start(&kids[i], dir, preload);
		if (!preload) {
			snprintf(pids[i], sizeof pids[i], "%d", (int)kids[i].pid);
			args[na++] = "--pid";
			args[na++] = pids[i];
		}
	}
	args[na] = NULL;
	tu_reader_start(&r, dir, args);

	/* Watch for two windows after the last leak is flagged (at most a
	 * minute): the leakers must be flagged and measured, the others
	 * never flagged on any page. */
	for (int scrape = 0; scrape < 600; scrape++) {
		struct tu_http h;
		bool done = true;

		tu_http_get(r.url, "text/plain", false, &h);
		for (int i = 0; i < N; i++) {
			for (int k = 0; k < 3; k++) {
				char extra[48];
				double flag;

				snprintf(extra, sizeof extra, "rtm_leak_resource=\"%s\"", kinds[k]);
				flag = sample(h.body, "rtm_process_leak_suspect", kids[i].pid, extra);
				if (flag != 1)
					continue;
				if (!kids[i].leaks || strcmp(kids[i].leaks, kinds[k]))
					fail_msg("%s flagged as a %s leak (rate %g/s)", kids[i].name, kinds[k],
						 sample(h.body, metric_of[k], kids[i].pid, NULL));
				kids[i].flagged = true;
				if (!measured[k]) {
					double rate = sample(h.body, metric_of[k], kids[i].pid, NULL);

					if (!(fabs(rate - kids[i].rate) <= 0.1 * kids[i].rate))
						fail_msg("%s: measured %g/s, true rate %g/s", kids[i].name, rate,
							 kids[i].rate);
					measured[k] = true;
				}
			}
			done &= !kids[i].leaks || kids[i].flagged;
		}
		tu_http_free(&h);
		if (done && all_flagged < 0)
			all_flagged = scrape;
		if (all_flagged >= 0 && scrape - all_flagged >= 40) /* 2 windows at 0.2 s */
			break;
		usleep(200000);
	}
	for (int i = 0; i < N; i++)
		if (kids[i].leaks && !kids[i].flagged)
			fail_msg("%s was never flagged as a %s leak", kids[i].name, kids[i].leaks);

	/* One line when it became a suspect; none for the others. */
	log = tu_reader_log(&r);
	for (int i = 0; i < N; i++)
		for (int k = 0; k < 3; k++) {
			int want = kids[i].leaks && !strcmp(kids[i].leaks, kinds[k]);

			if (count_lines(log, "leak suspect: ", kids[i].pid, kinds[k]) != want)
				fail_msg("%s %s: %d 'leak suspect' lines, want %d\n%s", kids[i].name, kinds[k],
					 count_lines(log, "leak suspect: ", kids[i].pid, kinds[k]), want, log);
		}
	free(log);
	assert_int_equal(tu_reader_stop(&r), 0);
	for (int i = 0; i < N; i++) {
		kill(kids[i].pid, SIGKILL);
		waitpid(kids[i].pid, NULL, 0);
	}
	tu_rmdir(dir);
}

/* Whether a reader run with env and args flags a 2 MB/s heap leak within
 * a 2 s window (thresholds from the layers under test). */
static bool flags_leak(const char *dir, pid_t leaker, const char *env_k, const char *env_v,
		       const char *const *args)
{
	struct tu_reader r;
	const char *argv[32] = { "--exporter", "none", "--prometheus", "127.0.0.1:0",
				 "--interval", "200ms" };
	char pid[16], *log;
	size_t n = 6;
	bool flagged = false;

	snprintf(pid, sizeof pid, "%d", (int)leaker);
	argv[n++] = "--pid";
	argv[n++] = pid;
	for (; *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	if (env_k)
		setenv(env_k, env_v, 1);
	tu_reader_start(&r, dir, argv);
	for (int i = 0; i < 50 && !flagged; i++) {
		usleep(100000);
		log = tu_reader_log(&r);
		flagged = strstr(log, "leak suspect: ") != NULL;
		free(log);
	}
	tu_reader_stop(&r);
	if (env_k)
		unsetenv(env_k);
	return flagged;
}

static void leak_settings_layer_and_bad_values_name_themselves(void **state)
{
	char *dir = tu_mkdir(), conf[300], arg[400], line[512];
	struct child c = { "heap", "heap-mmap", "2000000", NULL, "heap", 2e6, 0, false };
	FILE *f;

	(void)state;
	/* Bad values: one line naming the input, exit 2. */
	assert_int_equal(tu_reader_fails("", "--once --leak heap=fast", line, sizeof line), 2);
	assert_non_null(strstr(line, "--leak: 'heap=fast'"));
	assert_int_equal(tu_reader_fails("", "--once --leak colour=red", line, sizeof line), 2);
	assert_non_null(strstr(line, "--leak: 'colour=red'"));
	assert_int_equal(tu_reader_fails("RTM_LEAK_WINDOW=0.5s", "--once", line, sizeof line), 2);
	assert_non_null(strstr(line, "RTM_LEAK_WINDOW: '0.5s'"));
	assert_int_equal(tu_reader_fails("RTM_LEAK_FDS=-1", "--once", line, sizeof line), 2);
	assert_non_null(strstr(line, "RTM_LEAK_FDS: '-1'"));
	snprintf(conf, sizeof conf, "%s/reader.conf", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "interval = 1s\nleak.threads = lots\n");
	fclose(f);
	snprintf(arg, sizeof arg, "--once --config %s", conf);
	assert_int_equal(tu_reader_fails("", arg, line, sizeof line), 2);
	assert_non_null(strstr(line, "reader.conf:2: leak.threads 'lots'"));

	/* Layers: the file's 100 MB/s misses the 2 MB/s leak, the variable's
	 * 0.5 MB/s catches it, and the flag turns the detector off. */
	c.pid = start(&c, dir, false);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "leak.window = 2s\nleak.heap = 100MB/s\n");
	fclose(f);
	assert_false(flags_leak(dir, c.pid, NULL, NULL, (const char *[]){ "--config", conf, NULL }));
	assert_true(flags_leak(dir, c.pid, "RTM_LEAK_HEAP", "0.5MB/s",
			       (const char *[]){ "--config", conf, NULL }));
	assert_false(flags_leak(dir, c.pid, "RTM_LEAK_HEAP", "0.5MB/s",
				(const char *[]){ "--config", conf, "--leak", "off", NULL }));
	assert_true(flags_leak(dir, c.pid, NULL, NULL,
			       (const char *[]){ "--config", conf, "--leak", "heap=500k", NULL }));
	kill(c.pid, SIGKILL);
	waitpid(c.pid, NULL, 0);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leaks_are_measured_and_flagged_and_nothing_else_is),
		cmocka_unit_test(leak_settings_layer_and_bad_values_name_themselves),
	};
	srandom((unsigned)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
