/* SPDX-License-Identifier: MIT */
/*
 * bench_child.h - a benchmark that measures itself in children: this
 * program re-run as "SELF --child ARGS", plainly or under a preload, and
 * the first line it prints.  Separate processes are the only fair way to
 * compare a program with and without LD_PRELOAD.
 */
#ifndef BENCH_CHILD_H
#define BENCH_CHILD_H

#include <stdio.h>
#include <unistd.h>

/* This program's path, for re-running it.  0 or -1. */
static inline int bench_self(char *buf, size_t n)
{
	ssize_t len = readlink("/proc/self/exe", buf, n - 1);

	if (len <= 0)
		return -1;
	buf[len] = '\0';
	return 0;
}

/* Runs "self --child args": with preload not NULL, under LD_PRELOAD=preload
 * with env (assignments, may be "") and its own fresh RTM_DIR.  Its first
 * line of output goes to line.  0 or -1. */
static inline int bench_child(const char *self, const char *preload, const char *env,
			      const char *args, char *line, size_t n)
{
	char cmd[9000];
	FILE *p;
	int ok;

	if (preload)
		snprintf(cmd, sizeof cmd,
			 "d=$(mktemp -d) && RTM_DIR=$d %.500s LD_PRELOAD='%.2000s' '%.2000s' --child %.500s; rm -rf $d",
			 env, preload, self, args);
	else
		snprintf(cmd, sizeof cmd, "'%.2000s' --child %.500s", self, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	ok = fgets(line, (int)n, p) != NULL;
	pclose(p);
	return ok ? 0 : -1;
}

/* A thread that only exists: with it, glibc takes no single-thread
 * shortcuts, as in any process with a second thread. */
static inline void *bench_idle_thread(void *arg)
{
	pause();
	return arg;
}

#endif /* BENCH_CHILD_H */
