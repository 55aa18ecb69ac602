/* SPDX-License-Identifier: MIT */
/*
 * The shipped alert rules (tools/rtm-alerts.yml): promtool accepts them,
 * their unit tests (tests/alerts/rtm-alerts.test.yml) pass and cover every
 * rule both firing and not firing, and every metric a rule names is one a
 * real rtm-reader serves.  Exits 77 when promtool is not installed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test_util.h"

static char rules[4096], tests_file[4096];

/* The rules or their tests, as a string. */
static char *slurp_text(const char *path)
{
	size_t len;

	return tu_slurp(path, &len);
}

static void promtool_checks_and_tests_the_rules(void **state)
{
	char cmd[9000], *out;
	int st;

	(void)state;
	snprintf(cmd, sizeof cmd, "%s check rules %s 2>&1", tu_prog("RTM_PROMTOOL"), rules);
	out = tu_run(cmd, &st, NULL);
	if (st != 0 || !strstr(out, "SUCCESS: 17 rules found"))
		fail_msg("promtool check rules: %s", out);
	free(out);
	/* promtool resolves rule_files relative to the test file. */
	snprintf(cmd, sizeof cmd, "%s test rules %s 2>&1", tu_prog("RTM_PROMTOOL"), tests_file);
	out = tu_run(cmd, &st, NULL);
	if (st != 0 || !strstr(out, "SUCCESS"))
		fail_msg("promtool test rules: %s", out);
	free(out);
}

/* Each "- alert: X" has a test where it fires and one where it does not
 * (each firing test also has a neighbour process that must not trip it). */
static void every_rule_is_tested_firing_and_quiet(void **state)
{
	char *r = slurp_text(rules), *t = slurp_text(tests_file);
	int n = 0;

	(void)state;
	for (char *p = r; (p = strstr(p, "- alert: ")); p++) {
		char name[64], fires[160], quiet[160], *q;

		sscanf(p + 9, "%63s", name);
		snprintf(fires, sizeof fires, "alertname: %s\n        exp_alerts:\n          - exp_labels:",
			 name);
		snprintf(quiet, sizeof quiet, "alertname: %s\n        exp_alerts: []", name);
		q = strstr(t, fires);
		if (!q)
			fail_msg("%s: no test where it fires", name);
		if (!strstr(t, quiet))
			fail_msg("%s: no test where it stays quiet", name);
		n++;
	}
	assert_int_equal(n, 17);
	free(r);
	free(t);
}

/* The standard series. */
static void produce_limited(struct rtm_segment *seg, int k)
{
	tu_produce_known(seg, k);
}

/* pid into a new memory cgroup with a 64 GiB limit (cgroup v2, else v1),
 * so that rtm_process_memory_limit_bytes is served for it (RLIMIT_AS is no
 * memory limit: the address space has its own).  The cgroup's path, or ""
 * where this machine lets the test make none. */
static void memory_cgroup(pid_t pid, char *cg, size_t cap)
{
	bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	char f[512], v[32];

	snprintf(cg, cap, v2 ? "/sys/fs/cgroup/rtm-alerts-%d" : "/sys/fs/cgroup/memory/rtm-alerts-%d",
		 (int)getpid());
	snprintf(v, sizeof v, "%d", (int)pid);
	if ((!v2 && access("/sys/fs/cgroup/memory/cgroup.procs", F_OK)) || mkdir(cg, 0755)) {
		*cg = '\0';
		return;
	}
	snprintf(f, sizeof f, "%s/%s", cg, v2 ? "memory.max" : "memory.limit_in_bytes");
	if (!tu_write_file(f, "68719476736")) {
		rmdir(cg);
		*cg = '\0';
		return;
	}
	snprintf(f, sizeof f, "%s/cgroup.procs", cg);
	if (!tu_write_file(f, v)) {
		rmdir(cg);
		*cg = '\0';
	}
}

/* Whether the text page serves name: as a sample, or as a histogram
 * family (the name a rule gives a native histogram: rtm-alerts.yml's
 * rules take the classic buckets or the native series, whichever is
 * stored). */
static bool served(const char *page, const char *name)
{
	char line[160];

	snprintf(line, sizeof line, "\n%.95s{", name);
	if (strstr(page, line))
		return true;
	snprintf(line, sizeof line, "# TYPE %.95s histogram\n", name);
	return strstr(page, line) != NULL;
}

/* The metric names in the rules' expressions. */
static size_t rule_metrics(char names[][96], size_t cap)
{
	char *r = slurp_text(rules), *p = r;
	regex_t re;
	regmatch_t mm[3], m;
	size_t n = 0;

	/* A metric name starts after a character that cannot be in one. */
	assert_int_equal(regcomp(&re, "(^|[^a-z0-9_])((target|process|runtime|rtm|go)_[a-z0-9_]+)",
				 REG_EXTENDED), 0);
	/* Only inside "expr:" blocks, which end at the next "for:", "labels:" key. */
	while ((p = strstr(p, "expr: |"))) {
		char *end = strstr(p, "labels:"), save;

		save = *end;
		*end = '\0';
		for (char *q = p; regexec(&re, q, 3, mm, 0) == 0; q += m.rm_eo) {
			char name[96];
			bool dup = false;

			m = mm[2];
			/* label names: process_pid in group_left (...), keys in {...} */
			if (q[m.rm_eo] == ')' || q[m.rm_eo] == '=')
				continue;
			snprintf(name, sizeof name, "%.*s", (int)(m.rm_eo - m.rm_so), q + m.rm_so);
			for (size_t i = 0; i < n; i++)
				dup |= !strcmp(names[i], name);
			if (!dup && n < cap)
				snprintf(names[n++], sizeof names[0], "%s", name);
		}
		*end = save;
		p = end;
	}
	regfree(&re);
	free(r);
	return n;
}

static void every_metric_a_rule_names_is_served(void **state)
{
	char names[64][96], *dir = tu_mkdir(), *page = NULL;
	size_t n = rule_metrics(names, 64);
	struct tu_reader r;
	struct tu_producer p;
	pid_t demo = 0, gofx = 0;
	char cg[256];
	const char *san = getenv("RTM_SANITIZED"), *go = getenv("RTM_GO_FIXTURE");
	bool sanitized = san && san[0] == '1', have_go = go && *go && !access(go, X_OK);
	int go_in[2] = { -1, -1 };

	(void)state;
	assert_true(n >= 12);
	if (sanitized) {
		/* The sanitizer owns malloc, so librtm-alloc's interposer (and
		 * with it rtm-demo and runtime_native_*) cannot run here; the
		 * normal build checks those names against the real library. */
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (strncmp(names[i], "runtime_native_", 15))
				memcpy(names[k++], names[i], sizeof names[0]);
		assert_true(k < n);
		n = k;
	}
	if (!have_go) {
		/* go_* come from a Go program: none was built here. */
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (strncmp(names[i], "go_", 3))
				memcpy(names[k++], names[i], sizeof names[0]);
		n = k;
	} else {
		/* The Go producer's runtime metrics (rtm-go-fixture holds its
		 * segments while its stdin stays open). */
		assert_int_equal(pipe2(go_in, O_CLOEXEC), 0);
		gofx = fork();
		assert_true(gofx >= 0);
		if (gofx == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			dup2(go_in[0], 0);
			close(go_in[1]);
			setenv("RTM_DIR", dir, 1);
			freopen("/dev/null", "w", stdout);
			execl(go, "rtm-go-fixture", (char *)NULL);
			_exit(127);
		}
		close(go_in[0]);
	}
	/* A producer with a segment (process and segment metrics), rtm-demo
	 * for the allocator metrics (librtm-alloc); the leak detector needs a
	 * short window to report within the test. */
	tu_spawn(&p, dir, "alerts", produce_limited, 1, false);
	memory_cgroup(p.pid, cg, sizeof cg);
	if (!*cg) {
		/* No cgroup to make here: the memory limit's name unchecked. */
		size_t k = 0;

		printf("no memory cgroup here: rtm_process_memory_limit_bytes not checked\n");
		for (size_t i = 0; i < n; i++)
			if (strcmp(names[i], "rtm_process_memory_limit_bytes"))
				memcpy(names[k++], names[i], sizeof names[0]);
		n = k;
	}
	demo = sanitized ? 0 : fork();
	assert_true(demo >= 0);
	if (!sanitized && demo == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("RTM_DIR", dir, 1);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execl(tu_prog("RTM_DEMO"), "rtm-demo", "--service", "alerts", "--duration", "120",
		      (char *)NULL);
		_exit(127);
	}
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "250ms", "--leak", "window=2s", NULL });
	/* Poll until every name is on the page (or 60 s pass). */
	for (int i = 0; i < 600; i++) {
		struct tu_http h;
		size_t missing = 0;

		tu_http_get(r.url, "text/plain", false, &h);
		free(page);
		page = h.body;
		for (size_t k = 0; k < n; k++)
			missing += !served(page, names[k]);
		if (!missing)
			break;
		usleep(100000);
	}
	for (size_t k = 0; k < n; k++)
		if (!served(page, names[k]))
			fail_msg("a rule uses %s, which /metrics does not serve", names[k]);
	free(page);
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_reap(&p);
	if (*cg) {
		/* Empty once its one process is reaped; retried while the
		 * kernel lets go of it. */
		for (int i = 0; i < 100 && rmdir(cg) && errno == EBUSY; i++)
			usleep(10000);
	}
	if (gofx > 0) {
		close(go_in[1]);
		waitpid(gofx, NULL, 0);
	}
	if (demo > 0) {
		kill(demo, SIGKILL);
		waitpid(demo, NULL, 0);
	}
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(promtool_checks_and_tests_the_rules),
		cmocka_unit_test(every_rule_is_tested_firing_and_quiet),
		cmocka_unit_test(every_metric_a_rule_names_is_served),
	};
	const char *tool = getenv("RTM_PROMTOOL");

	if (!tool || !*tool || access(tool, X_OK)) {
		printf("promtool not installed: skipped\n");
		return 77;
	}
	snprintf(rules, sizeof rules, "%s/tools/rtm-alerts.yml", tu_prog("RTM_SOURCE_ROOT"));
	snprintf(tests_file, sizeof tests_file, "%s/tests/alerts/rtm-alerts.test.yml",
		 tu_prog("RTM_SOURCE_ROOT"));
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
