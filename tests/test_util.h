/* SPDX-License-Identifier: MIT */
/* Helpers shared by the cmocka tests. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "rd_proc.h"
#include "rd_segment.h"
#include "rtm.h"

/* A fresh private segment directory under /tmp, removed with all it
 * holds by tu_rmdir() (which frees dir). */
char *tu_mkdir(void);
void tu_rmdir(char *dir);
/* Announces a reader in dir the way rtm-reader does (its presence file,
 * interval 10 s), without running one: producers then count it attached. */
void tu_announce_reader(const char *dir);

/* Opens a producer segment in dir with small, explicit sizes. */
struct rtm_segment *tu_open(const char *dir, const char *service);

/* Opens seg's file with the reader library, asserting success. */
void tu_read(const struct rtm_segment *seg, struct rd_segment *rd);

/* Index of the metric called name with attribute key=value (NULL: any). */
int tu_find(const struct rd_segment *rd, const char *name, const char *key,
	    const char *value);

/* The start time (ns) of the series name{k=v} in the segment at path. */
uint64_t tu_start_time(const char *path, const char *name, const char *k, const char *v);

/* Writes text to path (created or truncated); false when it cannot. */
bool tu_write_file(const char *path, const char *text);

/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
void *tu_slurp(const char *path, size_t *len);

/* Skips the calling test in sanitizer builds, where the malloc interposer
 * cannot be preloaded (the sanitizer runtime owns malloc). */
#define TU_SKIP_IF_SANITIZED()                                              \
	do {                                                                \
		const char *san_ = getenv("RTM_SANITIZED");                 \
		if (san_ && san_[0] == '1')                                 \
			skip();                                             \
	} while (0)

/* The allocator series a ground-truth run checks, in the order of
 * tu_alloc_delta(): mallocs, frees, bytes, live bytes, live objects. */
extern const char *const tu_alloc_names[5];

/* What allocating n blocks of m bytes (m with malloc_usable_size(m) == m)
 * and freeing k of them must add to each of tu_alloc_names. */
void tu_alloc_delta(int64_t out[5], int n, int m, int k);

/* Starts tests/alloc_truth N M K T under librtm-preload.so, publishing into
 * dir (as service, or under its executable's name when NULL).  *to is its
 * stdin, *from its stdout: see alloc_truth.c for the protocol. */
pid_t tu_start_alloc_truth(const char *dir, const char *service, int n, int m, int k,
			   int t, int *to, int *from);

/* A producer process forked by tu_spawn(). */
struct tu_producer {
	pid_t pid;
	char path[4096];
	char note[128]; /* what the producer function reported */
};

/* Set by a producer function in the child; tu_spawn() hands it back in
 * the producer's note. */
extern char tu_child_note[128];

typedef void (*tu_produce_fn)(struct rtm_segment *seg, int arg);

/* Forks a producer that opens a segment in dir (service, version "2.0",
 * resource attribute team=core), runs fn(seg, arg), reports its path and
 * waits to be killed (or closes the segment first when close_it). */
void tu_spawn(struct tu_producer *p, const char *dir, const char *service,
	      tu_produce_fn fn, int arg, bool close_it);
/* SIGKILLs the producer and reaps it. */
void tu_reap(struct tu_producer *p);

/* rtm-reader run in the background with RTM_DIR=dir. */
struct tu_reader {
	pid_t pid;
	char log[256]; /* its stderr */
	char out[256]; /* its stdout */
	char url[128]; /* its /metrics URL, when it serves one */
	int port;
};

/* Starts rtm-reader with the NULL-terminated args; with --prometheus among
 * them, waits (up to 30 s) for the line naming the URL. */
void tu_reader_start(struct tu_reader *r, const char *dir, const char *const *args);
/* SIGTERMs the reader, removes its log; returns its exit status. */
int tu_reader_stop(struct tu_reader *r);
/* What the reader has logged so far (malloc'd). */
char *tu_reader_log(const struct tu_reader *r);
/* The reader's stderr once it holds needle (polled for up to 30 s, then
 * the test fails naming it): for a line a cycle logs, however slow the
 * run (sanitizers, a loaded CI machine).  Caller frees. */
char *tu_reader_await_log(const struct tu_reader *r, const char *needle);
/* What it has written to stdout so far (malloc'd). */
char *tu_reader_stdout(const struct tu_reader *r);

/* One HTTP GET with libcurl: status, response headers and body (gzip
 * decoded when asked for with gzip). */
struct tu_http {
	long status;
	char headers[4096];
	char *body;
	size_t len;
};
void tu_http_get(const char *url, const char *accept, bool gzip, struct tu_http *h);
void tu_http_free(struct tu_http *h);

/* A producer function for tu_spawn() with known values and descriptions:
 * app.requests{route=/a} = 100k, {route=/b} = k, app.active = -k,
 * app.ratio = 0.25k (unit 1), app.latency (s, bounds 0.01, 0.1, 1): 0.005,
 * 0.5 and k times 2.0. */
void tu_produce_known(struct rtm_segment *seg, int k);

/* pid's /proc/<pid>/stat, parsed by the reader's own parser (the test
 * fails when it cannot be read). */
struct rd_proc_stat tu_proc_stat(pid_t pid);

/* Runs a shell command line: its whole stdout (malloc'd, NUL-terminated),
 * its length in *len and its exit status (128 when it did not exit) in
 * *status; either may be NULL. */
char *tu_run(const char *cmd, int *status, size_t *len);
/* Runs cmd as tu_run() does; the test fails, showing what it printed,
 * unless it exits 0.  Returns its stdout (malloc'd). */
char *tu_run_ok(const char *cmd);
/* Runs cmd as tu_run() does; the test fails, showing what it printed,
 * unless it exits with status and its stdout holds needle. */
void tu_run_says(const char *cmd, int status, const char *needle);

/* Runs rtm-reader (RTM_DIR=/tmp, with the env assignments and args, no
 * stdin): its exit status, and the first line it wrote to stderr. */
int tu_reader_fails(const char *env, const char *args, char *line, size_t cap);

/* Starts `sh -c cmd` in a child that dies with the test; returns its pid
 * (cmd usually starts with exec, so the pid is the command's). */
pid_t tu_start_shell(const char *cmd);

/* Real promtool (RTM_PROMTOOL), when installed, parses a text-format
 * page: the test fails on a parse error (lint findings, such as a family
 * without HELP, are not). */
void tu_promtool_parses(const char *page);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tu_free_port(void);

/* Path of a built program, from the environment meson's test() sets. */
const char *tu_prog(const char *env);

/* A test OTLP receiver (a Node program under tests/otlp-receiver) on a free
 * loopback port, recording each request as a JSON line in out. */
struct tu_recv {
	pid_t pid;
	int port;
	char out[256];
	char url[128];       /* http://127.0.0.1:PORT */
};

/* Starts the receiver named by the environment variable js_env with args
 * (NULL-terminated) after "--out FILE"; fails the test if it does not
 * report its port. */
void tu_recv_start(struct tu_recv *r, const char *js_env, const char *const *args);
void tu_recv_stop(struct tu_recv *r);
/* Every request the receiver saw, in order, as a JSON array. */
json_object *tu_recv_requests(struct tu_recv *r);

/* OTLP/JSON as json-c objects: o's member k (NULL if o is NULL or has
 * none), and the string or int value of key in an attribute list. */
json_object *tu_json_get(json_object *o, const char *k);
const char *tu_otlp_attr(json_object *attrs, const char *key);
/* The metric called name in the resource of service among the received
 * requests reqs (request index req, or -1 for the first request that has
 * it); NULL if none. */
json_object *tu_otlp_metric(json_object *reqs, int req, const char *service, const char *name);

#endif /* TEST_UTIL_H */
