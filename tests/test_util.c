/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "test_util.h"
#include "rd_dir.h"

#include <curl/curl.h>
#include <dirent.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_mkdir(void)
{
	char *dir = strdup("/tmp/rtm-test.XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

void tu_announce_reader(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd = -1;

	assert_int_equal(rd_dir_presence_touch(dfd, &fd, 10000000000ull), 0);
	close(fd);
	close(dfd);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void tu_rmdir(char *dir)
{
	/* Depth first, not following links: what tests build under it
	 * (a build tree, a copied Go module, segment subdirectories) goes
	 * too. */
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

struct rtm_segment *tu_open(const char *dir, const char *service)
{
	struct rtm_segment *seg = NULL;

	assert_int_equal(rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = service, .dir = dir, .max_metrics = 64,
		.max_threads = 8, .shard_bytes = 4096, .string_bytes = 8192 }), 0);
	return seg;
}

void tu_read(const struct rtm_segment *seg, struct rd_segment *rd)
{
	int rc = rd_segment_open(rd, AT_FDCWD, rtm_segment_path(seg), 0);

	if (rc)
		fail_msg("rd_segment_open(%s): %s", rtm_segment_path(seg), rd->err);
}

int tu_find(const struct rd_segment *rd, const char *name, const char *key,
	    const char *value)
{
	for (uint32_t i = 0; i < rd->n_metrics; i++) {
		const struct rd_metric *m = &rd->metrics[i];

		if (strcmp(m->name, name))
			continue;
		if (!key)
			return (int)i;
		for (uint32_t a = 0; a < m->n_attrs; a++)
			if (!strcmp(m->attrs[a].key, key) && !strcmp(m->attrs[a].value, value))
				return (int)i;
	}
	fail_msg("metric %s not found", name);
	return -1;
}

bool tu_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	bool ok = f && fputs(text, f) >= 0;

	return f && !fclose(f) && ok;
}

void *tu_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	/* A file another process is rewriting (a reader's log it truncated
	 * on start) may hold less by now: what is there is the answer. */
	n = (long)fread(buf, 1, (size_t)n, f);
	fclose(f);
	buf[n] = '\0'; /* callers search it as a string */
	*len = (size_t)n;
	return buf;
}

const char *tu_prog(const char *env)
{
	const char *p = getenv(env);

	if (!p)
		fail_msg("%s is not set (run the tests through meson test)", env);
	return p;
}

const char *const tu_alloc_names[5] = {
	"runtime.native.mem.alloc.mallocs", "runtime.native.mem.alloc.frees",
	"runtime.native.mem.alloc.total", "runtime.native.mem.heap.alloc",
	"runtime.native.mem.heap.objects",
};

void tu_alloc_delta(int64_t out[5], int n, int m, int k)
{
	out[0] = n;
	out[1] = k;
	out[2] = (int64_t)n * m;
	out[3] = (int64_t)(n - k) * m;
	out[4] = n - k;
}

pid_t tu_start_alloc_truth(const char *dir, const char *service, int n, int m, int k,
			   int t, int *to, int *from)
{
	int in[2], out[2];
	pid_t pid;

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char a[4][16];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		setenv("RTM_DIR", dir, 1);
		if (service)
			setenv("RTM_SERVICE_NAME", service, 1);
		setenv("LD_PRELOAD", tu_prog("RTM_PRELOAD"), 1);
		setenv("RTM_PUBLISH_DELAY_MS", "0", 1); /* its segment at once */
		snprintf(a[0], 16, "%d", n);
		snprintf(a[1], 16, "%d", m);
		snprintf(a[2], 16, "%d", k);
		snprintf(a[3], 16, "%d", t);
		execl(tu_prog("RTM_ALLOC_TRUTH"), "alloc_truth", a[0], a[1], a[2], a[3], (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	*to = in[1];
	*from = out[0];
	return pid;
}

char tu_child_note[128];

void tu_spawn(struct tu_producer *p, const char *dir, const char *service,
	      tu_produce_fn fn, int arg, bool close_it)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		struct rtm_segment *seg;
		char path[4096];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		if (rtm_segment_open(&seg, &(struct rtm_segment_opts){
			    .service_name = service, .service_version = "2.0", .dir = dir,
			    .resource_attrs = (struct rtm_attr[]){ { "team", "core" } },
			    .n_resource_attrs = 1 }))
			_exit(1);
		fn(seg, arg);
		snprintf(path, sizeof path, "%s", rtm_segment_path(seg));
		if (close_it)
			rtm_segment_close(seg);
		{
			/* Fixed size, so the parent knows when it has it all. */
			char msg[4096 + sizeof tu_child_note] = "";

			snprintf(msg, 4096, "%s", path);
			memcpy(msg + 4096, tu_child_note, sizeof tu_child_note);
			if (write(fds[1], msg, sizeof msg) != (ssize_t)sizeof msg)
				_exit(1);
		}
		for (;;)
			pause();
	}
	close(fds[1]);
	{
		char buf[4096 + sizeof tu_child_note];
		size_t got = 0;
		ssize_t n;

		while (got < sizeof buf && (n = read(fds[0], buf + got, sizeof buf - got)) > 0)
			got += (size_t)n;
		assert_int_equal(got, sizeof buf);
		buf[4095] = '\0';
		memcpy(p->path, buf, 4096);
		snprintf(p->note, sizeof p->note, "%s", buf + 4096);
	}
	close(fds[0]);
}

void tu_reap(struct tu_producer *p)
{
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
}

void tu_reader_start(struct tu_reader *r, const char *dir, const char *const *args)
{
	const char *argv[64] = { "rtm-reader" };
	bool prom = false;
	size_t n = 1;

	memset(r, 0, sizeof *r);
	snprintf(r->log, sizeof r->log, "/tmp/rtm-reader-log.%d.%ld", (int)getpid(), random());
	snprintf(r->out, sizeof r->out, "/tmp/rtm-reader-out.%d.%ld", (int)getpid(), random());
	for (; args && *args && n < 63; args++) {
		prom |= !strcmp(*args, "--prometheus") && args[1] && strcmp(args[1], "off");
		argv[n++] = *args;
	}
	argv[n] = NULL;
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("RTM_DIR", dir, 1);
		freopen(r->out, "w", stdout);
		freopen(r->log, "w", stderr);
		execv(tu_prog("RTM_READER"), (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; prom && i < 3000; i++) {
		char *log = tu_reader_log(r), *p = strstr(log, "prometheus: serving ");

		if (p && strchr(p, '\n')) {
			sscanf(p + 20, "%127s", r->url);
			sscanf(strrchr(r->url, ':') + 1, "%d", &r->port);
			free(log);
			return;
		}
		free(log);
		if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
			fail_msg("rtm-reader exited before serving /metrics");
		usleep(10000);
	}
	if (prom)
		fail_msg("rtm-reader never said where it serves /metrics");
}

/* The file's contents, "" while the child has not made it yet. */
static char *slurp_or_empty(const char *path)
{
	size_t len;

	return access(path, F_OK) ? strdup("") : tu_slurp(path, &len);
}

char *tu_reader_log(const struct tu_reader *r)
{
	return slurp_or_empty(r->log);
}

char *tu_reader_await_log(const struct tu_reader *r, const char *needle)
{
	for (int i = 0; i < 600; i++) {
		char *log = tu_reader_log(r);

		if (strstr(log, needle))
			return log;
		free(log);
		usleep(50000);
	}
	fail_msg("the reader never logged '%s'", needle);
	return NULL;
}

char *tu_reader_stdout(const struct tu_reader *r)
{
	return slurp_or_empty(r->out);
}

int tu_reader_stop(struct tu_reader *r)
{
	int status = 0;

	kill(r->pid, SIGTERM);
	waitpid(r->pid, &status, 0);
	unlink(r->log);
	unlink(r->out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct tu_http *h = ctx;
	char *nb = realloc(h->body, h->len + size * n + 1);

	assert_non_null(nb);
	h->body = nb;
	memcpy(h->body + h->len, p, size * n);
	h->len += size * n;
	h->body[h->len] = '\0';
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct tu_http *h = ctx;
	size_t used = strlen(h->headers);

	snprintf(h->headers + used, sizeof h->headers - used, "%.*s", (int)(size * n), p);
	return size * n;
}

void tu_http_get(const char *url, const char *accept, bool gzip, struct tu_http *h)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char line[512];
	CURLcode rc;

	memset(h, 0, sizeof *h);
	h->body = calloc(1, 1);
	assert_non_null(c);
	if (accept) {
		snprintf(line, sizeof line, "Accept: %s", accept);
		hdrs = curl_slist_append(hdrs, line);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (gzip)
		curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
}

void tu_http_free(struct tu_http *h)
{
	free(h->body);
	h->body = NULL;
}

int tu_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

void tu_produce_known(struct rtm_segment *seg, int k)
{
	rtm_counter_t c;
	rtm_updown_t u;
	rtm_gauge_t g;
	rtm_hist_t h;

	rtm_counter_create(seg, &c, &(struct rtm_metric_def){
		.name = "app.requests", .unit = "{request}", .description = "Requests served",
		.attrs = (struct rtm_attr[]){ { "route", "/a" } }, .n_attrs = 1 });
	rtm_counter_add(&c, (uint64_t)(100 * k));
	rtm_counter_create(seg, &c, &(struct rtm_metric_def){
		.name = "app.requests", .unit = "{request}", .description = "Requests served",
		.attrs = (struct rtm_attr[]){ { "route", "/b" } }, .n_attrs = 1 });
	rtm_counter_add(&c, (uint64_t)k);
	rtm_updown_create(seg, &u, &(struct rtm_metric_def){
		.name = "app.active", .unit = "{request}", .description = "Requests in flight" });
	rtm_updown_add(&u, -k);
	rtm_gauge_create(seg, &g, &(struct rtm_metric_def){
		.name = "app.ratio", .unit = "1", .description = "Cache hit ratio", .is_double = 1 });
	rtm_gauge_set_f64(&g, 0.25 * k);
	rtm_hist_create(seg, &h, &(struct rtm_metric_def){
		.name = "app.latency", .unit = "s", .description = "Request latency",
		.bounds = (const double[]){ 0.01, 0.1, 1 }, .n_bounds = 3 });
	rtm_hist_record(&h, 0.005);
	rtm_hist_record(&h, 0.5);
	for (int i = 0; i < k; i++)
		rtm_hist_record(&h, 2.0);
}

struct rd_proc_stat tu_proc_stat(pid_t pid)
{
	struct rd_proc_stat st;
	char buf[1024];
	ssize_t n = rd_proc_read(pid, "stat", buf, sizeof buf);

	assert_true(n > 0);
	assert_int_equal(rd_proc_parse_stat(buf, (size_t)n, &st), 0);
	return st;
}

char *tu_run(const char *cmd, int *status, size_t *len)
{
	FILE *p = popen(cmd, "r");
	size_t cap = 1 << 16, n = 0, got;
	char *out = malloc(cap);
	int st;

	assert_non_null(p);
	assert_non_null(out);
	while ((got = fread(out + n, 1, cap - n - 1, p)) > 0) {
		n += got;
		if (n + 1 == cap) {
			out = realloc(out, cap *= 2);
			assert_non_null(out);
		}
	}
	out[n] = '\0';
	st = pclose(p);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	if (len)
		*len = n;
	return out;
}

char *tu_run_ok(const char *cmd)
{
	int st;
	char *out = tu_run(cmd, &st, NULL);

	if (st)
		fail_msg("%s: exit %d\n%s", cmd, st, out ? out : "");
	return out;
}

void tu_run_says(const char *cmd, int status, const char *needle)
{
	int st;
	char *out = tu_run(cmd, &st, NULL);

	if (st != status || !strstr(out, needle))
		fail_msg("%s: exit %d (want %d), printed (want '%s'):\n%s", cmd, st, status,
			 needle, out);
	free(out);
}

int tu_reader_fails(const char *env, const char *args, char *line, size_t cap)
{
	char cmd[2048], *dir = tu_mkdir();
	FILE *f;
	int st;

	/* A reader that should have refused but runs on is a failure (status
	 * 137), not a test that hangs. Its directory is its own and empty:
	 * "--once finds nothing, 1" must not depend on what other tests running
	 * alongside leave in a shared one. */
	snprintf(cmd, sizeof cmd, "env RTM_DIR=%s %s timeout -s KILL 60 %s %s 2>&1 >/dev/null </dev/null",
		 dir, env, tu_prog("RTM_READER"), args);
	f = popen(cmd, "r");
	assert_non_null(f);
	if (!fgets(line, (int)cap, f))
		line[0] = '\0';
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	tu_rmdir(dir);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

uint64_t tu_start_time(const char *path, const char *name, const char *k, const char *v)
{
	struct rd_segment rd;
	uint64_t t;

	if (rd_segment_open(&rd, AT_FDCWD, path, RD_FLAG_NO_OWNER_CHECK))
		fail_msg("%s: %s", path, rd.err);
	t = rd.metrics[tu_find(&rd, name, k, v)].start_unix_nano;
	rd_segment_close(&rd);
	return t;
}

json_object *tu_json_get(json_object *o, const char *k)
{
	json_object *v = NULL;

	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

const char *tu_otlp_attr(json_object *attrs, const char *key)
{
	for (size_t i = 0; attrs && i < json_object_array_length(attrs); i++) {
		json_object *kv = json_object_array_get_idx(attrs, i);

		if (!strcmp(json_object_get_string(tu_json_get(kv, "key")), key)) {
			json_object *v = tu_json_get(kv, "value");
			json_object *s = tu_json_get(v, "stringValue");

			return json_object_get_string(s ? s : tu_json_get(v, "intValue"));
		}
	}
	return NULL;
}

json_object *tu_otlp_metric(json_object *reqs, int req, const char *service, const char *name)
{
	for (size_t q = 0; q < json_object_array_length(reqs); q++) {
		json_object *rms = tu_json_get(tu_json_get(json_object_array_get_idx(reqs, q), "body"),
				       "resourceMetrics");

		if (req >= 0 && (int)q != req)
			continue;
		for (size_t i = 0; rms && i < json_object_array_length(rms); i++) {
			json_object *rm = json_object_array_get_idx(rms, i);
			const char *svc = tu_otlp_attr(tu_json_get(tu_json_get(rm, "resource"), "attributes"), "service.name");
			json_object *sms = tu_json_get(rm, "scopeMetrics");

			if (!svc || strcmp(svc, service))
				continue;
			for (size_t s = 0; s < json_object_array_length(sms); s++) {
				json_object *ms = tu_json_get(json_object_array_get_idx(sms, s), "metrics");

				for (size_t m = 0; m < json_object_array_length(ms); m++) {
					json_object *mo = json_object_array_get_idx(ms, m);

					if (!strcmp(json_object_get_string(tu_json_get(mo, "name")), name))
						return mo;
				}
			}
		}
	}
	return NULL;
}

void tu_recv_start(struct tu_recv *r, const char *js_env, const char *const *args)
{
	const char *argv[32] = { "node", tu_prog(js_env), "--out", r->out };
	size_t n = 4;
	char line[64] = "";
	ssize_t got;
	int p[2];

	snprintf(r->out, sizeof r->out, "/tmp/rtm-recv.%d.%ld.jsonl", (int)getpid(), random());
	unlink(r->out);
	for (; args && *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		char errlog[300];

		/* Die with the test, and hold none of its output pipes: a
		 * leftover child must never keep the test harness waiting. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		snprintf(errlog, sizeof errlog, "%s.stderr", r->out);
		freopen(errlog, "w", stderr);
		dup2(p[1], 1);
		close(p[0]);
		execvp(tu_prog("RTM_NODE"), (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	got = read(p[0], line, sizeof line - 1);
	close(p[0]);
	if (got <= 0 || sscanf(line, "listening %d", &r->port) != 1)
		fail_msg("receiver did not start (is tests/otlp-receiver installed? npm ci)");
	snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", r->port);
}

void tu_recv_stop(struct tu_recv *r)
{
	kill(r->pid, SIGTERM);
	waitpid(r->pid, NULL, 0);
	unlink(r->out);
}

/* Whether the receiver's file ends with a whole line (or is empty or
 * absent): it appends a request and its newline in one write, which a
 * read may still see half done. */
static bool ends_whole(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;
	char c = '\n';

	if (end > 0 && pread(fd, &c, 1, end - 1) != 1)
		c = 0;
	if (fd >= 0)
		close(fd);
	return c == '\n';
}

json_object *tu_recv_requests(struct tu_recv *r)
{
	json_object *arr = json_object_new_array();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	/* A request being written now: wait for its end (the receiver is a
	 * live process, and the reader's last export may be under way). */
	for (int i = 0; i < 500 && !ends_whole(r->out); i++)
		usleep(10000);
	f = fopen(r->out, "r");
	while (f && (n = getline(&line, &cap, f)) > 0) {
		json_object *o;

		if (line[n - 1] != '\n')
			break; /* still half written after 5 s: left out */
		o = json_tokener_parse(line);
		assert_non_null(o);
		json_object_array_add(arr, o);
	}
	free(line);
	if (f)
		fclose(f);
	return arr;
}

void tu_promtool_parses(const char *page)
{
	const char *promtool = getenv("RTM_PROMTOOL");
	char path[] = "/tmp/rtm-page.XXXXXX", cmd[600], *out;
	int fd, status;

	if (!promtool || !*promtool)
		return;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, page, strlen(page)), (ssize_t)strlen(page));
	close(fd);
	snprintf(cmd, sizeof cmd, "%s check metrics < %s 2>&1", promtool, path);
	out = tu_run(cmd, &status, NULL);
	unlink(path);
	if (strstr(out, "parsing error") || strstr(out, "error while"))
		fail_msg("promtool: %s\npage:\n%s", out, page);
	free(out);
}

pid_t tu_start_shell(const char *cmd)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}
