/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rd_proc.h"

/* Where the cgroup hierarchies are mounted: set once at start-up. */
static char cg_root[256] = "/sys/fs/cgroup";
/* v1 writes "no limit" as the largest page-aligned counter. */
#define UNLIMITED_ABOVE (1ull << 62)

/* A small cgroup file's text (NUL-terminated); -1 when unreadable. */
static ssize_t slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

int rd_limits_parse_as(const char *text, uint64_t *bytes)
{
	const char *p = strstr(text, "Max address space");
	char soft[32];

	if (!p || sscanf(p + 17, " %31s", soft) != 1)
		return -EINVAL;
	*bytes = !strcmp(soft, "unlimited") ? UINT64_MAX : strtoull(soft, NULL, 10);
	return 0;
}

double rd_limits_parse_cpu_max(const char *text)
{
	char quota[32];
	unsigned long long period;

	if (sscanf(text, "%31s %llu", quota, &period) != 2 || !period || !strcmp(quota, "max"))
		return 0;
	return (double)strtoull(quota, NULL, 10) / (double)period;
}

/* Keeps the smaller of two limits, 0 meaning none. */
static void tighter_u(uint64_t *have, uint64_t v)
{
	if (v && v < UNLIMITED_ABOVE && (!*have || v < *have))
		*have = v;
}

static void tighter_d(double *have, double v)
{
	if (v > 0 && (!*have || v < *have))
		*have = v;
}

/* The memory and CPU limits of cgroup path rel under the hierarchy at root,
 * and of every cgroup above it. */
static void walk(const char *root, const char *rel, bool v2, struct rd_limits *out,
		 bool want_mem, bool want_cpu)
{
	char dir[1024], path[1200], text[128];

	snprintf(dir, sizeof dir, "%s%s", root, rel);
	for (;;) {
		size_t len = strlen(dir);

		if (want_mem) {
			snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
			if (slurp(path, text, sizeof text) > 0 && strncmp(text, "max", 3))
				tighter_u(&out->memory_bytes, strtoull(text, NULL, 10));
		}
		if (want_cpu && v2) {
			snprintf(path, sizeof path, "%s/cpu.max", dir);
			if (slurp(path, text, sizeof text) > 0)
				tighter_d(&out->cpus, rd_limits_parse_cpu_max(text));
		} else if (want_cpu) {
			char period[64];

			snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
			if (slurp(path, text, sizeof text) > 0 && atoll(text) > 0) {
				snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
				if (slurp(path, period, sizeof period) > 0 && atoll(period) > 0)
					tighter_d(&out->cpus, (double)atoll(text) / (double)atoll(period));
			}
		}
		/* Up to the hierarchy's root, and no further. */
		if (len <= strlen(root) + 1)
			break;
		*strrchr(dir, '/') = '\0';
		if (strlen(dir) < strlen(root))
			break;
	}
}

int rd_limits_set_cgroup_root(const char *root)
{
	struct stat st;
	size_t n = strlen(root);

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (!n || n >= sizeof cg_root)
		return -ENAMETOOLONG;
	if (stat(root, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	memcpy(cg_root, root, n);
	cg_root[n] = '\0';
	return 0;
}

static void cgroups(pid_t pid, struct rd_limits *out)
{
	char text[4096], probe[320], under[320];
	bool v2;

	snprintf(probe, sizeof probe, "%s/cgroup.controllers", cg_root);
	v2 = access(probe, F_OK) == 0;

	if (rd_proc_read(pid, "cgroup", text, sizeof text) <= 0)
		return;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* "id:controllers:path"; v2 is "0::path". */
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *ctrl;

		if (!c2 || c2[1] != '/' || strstr(c2 + 1, "/.."))
			continue;
		*c2 = '\0';
		ctrl = c1 + 1;
		if (!*ctrl) {
			if (v2)
				walk(cg_root, c2 + 1, true, out, true, true);
			continue;
		}
		if (v2)
			continue; /* v1 lines on a v2 host: named hierarchies only */
		if (!strcmp(ctrl, "memory")) {
			snprintf(under, sizeof under, "%s/memory", cg_root);
			walk(under, c2 + 1, false, out, true, false);
		} else if (!strncmp(ctrl, "cpu", 3) && (!ctrl[3] || ctrl[3] == ',')) {
			/* "cpu" or "cpu,cpuacct": mounted under either name. */
			snprintf(under, sizeof under, "%s/%s", cg_root, ctrl);
			if (access(under, F_OK))
				snprintf(under, sizeof under, "%s/cpu", cg_root);
			walk(under, c2 + 1, false, out, false, true);
		}
	}
}

void rd_limits_read(pid_t pid, struct rd_limits *out)
{
	char text[4096];
	const char *allowed;
	uint64_t as;
	long online = sysconf(_SC_NPROCESSORS_ONLN), cpus;

	*out = (struct rd_limits){ 0, 0, 0 };
	cgroups(pid, out);
	/* RLIMIT_AS bounds the address space, not the memory in use: its own
	 * limit, beside process.memory.virtual. */
	if (rd_proc_read(pid, "limits", text, sizeof text) > 0 && rd_limits_parse_as(text, &as) == 0 &&
	    as != UINT64_MAX)
		tighter_u(&out->virtual_bytes, as);
	/* Fewer CPUs in the affinity mask than are online is a limit too.
	 * From status, not sched_getaffinity(): pid is a pid under the proc
	 * root, which may show another pid namespace than ours. */
	if (rd_proc_read(pid, "status", text, sizeof text) > 0 &&
	    (allowed = strstr(text, "\nCpus_allowed_list:")) &&
	    (cpus = rd_limits_parse_cpu_list(allowed + 19)) > 0 && online > 0 && cpus < online)
		tighter_d(&out->cpus, (double)cpus);
}

long rd_limits_parse_cpu_list(const char *text)
{
	long n = 0;
	const char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	while (*p >= '0' && *p <= '9') {
		char *end;
		unsigned long a = strtoul(p, &end, 10), b = a;

		if (*end == '-') {
			p = end + 1;
			b = strtoul(p, &end, 10);
			if (end == p || b < a)
				return -1;
		}
		n += (long)(b - a + 1);
		p = end;
		if (*p != ',')
			break;
		p++;
	}
	return n ? n : -1;
}
