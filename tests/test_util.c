/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

char *tu_mkdir(void)
{
	char *dir = strdup("/tmp/rtm-test.XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

void tu_rmdir(char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char p[4096];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
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
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
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
