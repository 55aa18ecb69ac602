/* SPDX-License-Identifier: MIT */
/*
 * bench_child.h - a benchmark that measures itself in children: this
 * program re-run as "SELF --child ARGS", plainly or under a preload, and
 * the first line it prints.  Separate processes are the only fair way to
 * compare a program with and without LD_PRELOAD.
 */
#ifndef BENCH_CHILD_H
#define BENCH_CHILD_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
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

/* The shell command that runs "self VERB args": with preload not NULL,
 * under LD_PRELOAD=preload with env (assignments, may be "") and its own
 * fresh RTM_DIR, removed after it. */
static inline void bench_command(char *cmd, size_t n, const char *self, const char *preload,
				 const char *env, const char *verb, const char *args)
{
	if (preload)
		snprintf(cmd, n,
			 "d=$(mktemp -d) && RTM_DIR=$d %.500s LD_PRELOAD='%.2000s' '%.2000s' %s %.500s; rm -rf $d",
			 env, preload, self, verb, args);
	else
		snprintf(cmd, n, "exec '%.2000s' %s %.500s", self, verb, args);
}

/* Runs "self --child args" (bench_command()); its first line of output goes
 * to line.  0 or -1. */
static inline int bench_child(const char *self, const char *preload, const char *env,
			      const char *args, char *line, size_t n)
{
	char cmd[9000];
	FILE *p;
	int ok;

	bench_command(cmd, sizeof cmd, self, preload, env, "--child", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	ok = fgets(line, (int)n, p) != NULL;
	pclose(p);
	return ok ? 0 : -1;
}

/*
 * A child that stays: "self --serve args", started once (plainly or as
 * bench_child() starts it), then asked for one measurement at a time —
 * a byte on its stdin, a line back.  Asking several in turn, a round at a
 * time, puts measurements that are compared milliseconds apart instead of
 * seconds: a shared machine's slow and fast spells then hit both sides.
 */
struct bench_server {
	pid_t pid;
	int to;
	FILE *from;
};

static inline int bench_server_start(struct bench_server *s, const char *self,
				     const char *preload, const char *env, const char *args)
{
	char cmd[9000];
	int in[2], out[2];

	bench_command(cmd, sizeof cmd, self, preload, env, "--serve", args);
	/* Close-on-exec: a later child must not hold this one's stdin open
	 * (dup2 clears the flag on the child's own 0 and 1). */
	if (pipe2(in, O_CLOEXEC))
		return -1;
	if (pipe2(out, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	s->pid = fork();
	if (s->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->to = in[1];
	s->from = fdopen(out[0], "r");
	return s->pid > 0 && s->from ? 0 : -1;
}

/* One measurement: its line.  0 or -1. */
static inline int bench_server_ask(struct bench_server *s, char *line, size_t n)
{
	signal(SIGPIPE, SIG_IGN);
	if (write(s->to, "m", 1) != 1)
		return -1;
	return fgets(line, (int)n, s->from) ? 0 : -1;
}

/* Ends it (its stdin closes) and waits for it. */
static inline void bench_server_stop(struct bench_server *s)
{
	close(s->to);
	fclose(s->from);
	waitpid(s->pid, NULL, 0);
}

/* A thread that only exists: with it, glibc takes no single-thread
 * shortcuts, as in any process with a second thread. */
static inline void *bench_idle_thread(void *arg)
{
	pause();
	return arg;
}

#endif /* BENCH_CHILD_H */
