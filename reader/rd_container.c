/* SPDX-License-Identifier: MIT */
#include "rd_container.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static bool lower_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

static bool ends_with(const char *c, size_t len, const char *sfx)
{
	size_t n = strlen(sfx);

	return len >= n && !memcmp(c + len - n, sfx, n);
}

/* A container's id in one path component: "<prefix><64 hex>[.scope]". */
static bool component_id(const char *c, size_t len, char out[65])
{
	static const char *const prefixes[] = { "docker-", "cri-containerd-", "crio-", "libpod-",
						"containerd-", "" };

	if (ends_with(c, len, ".scope"))
		len -= 6;
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		size_t p = strlen(prefixes[i]);

		if (len == p + 64 && !memcmp(c, prefixes[i], p) && lower_hex(c + p, 64)) {
			memcpy(out, c + p, 64);
			out[64] = '\0';
			return true;
		}
	}
	return false;
}

/* A pod's uid, 8-4-4-4-12 hex digits, written with '-' or (by systemd's
 * slice naming) '_'. */
static bool pod_uid(const char *u, size_t len, char out[37])
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? u[i] != '-' && u[i] != '_' : !lower_hex(u + i, 1))
			return false;
		out[i] = dash ? '-' : u[i];
	}
	out[36] = '\0';
	return true;
}

/* "pod<uid>" (cgroupfs) or "kubepods[-<qos>]-pod<uid>.slice" (systemd). */
static bool component_pod(const char *c, size_t len, char out[37])
{
	if (len > 3 && !memcmp(c, "pod", 3))
		return pod_uid(c + 3, len - 3, out);
	if (len > 8 && !memcmp(c, "kubepods", 8) && ends_with(c, len, ".slice")) {
		len -= 6;
		for (size_t i = len; i >= 4; i--)
			if (!memcmp(c + i - 4, "-pod", 4))
				return pod_uid(c + i, len - i, out);
	}
	return false;
}

/* Looks at one cgroup path's components, innermost first. */
static void parse_path(const char *p, size_t len, struct rd_container *out)
{
	size_t end = len;

	while (end > 0) {
		size_t start = end;

		while (start > 0 && p[start - 1] != '/')
			start--;
		if (end > start) {
			if (!*out->id)
				component_id(p + start, end - start, out->id);
			if (!*out->pod_uid)
				component_pod(p + start, end - start, out->pod_uid);
		}
		end = start ? start - 1 : 0;
	}
}

int rd_container_parse(const char *text, struct rd_container *out)
{
	*out = (struct rd_container){ { 0 }, { 0 } };
	/* The unified hierarchy's line first; v1 controllers' after. */
	for (int pass = 0; pass < 2; pass++) {
		for (const char *line = text; line && *line;) {
			const char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
			const char *c1 = memchr(line, ':', (size_t)(end - line));
			const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
			bool v2 = c1 && c2 == c1 + 1 && c1 - line == 1 && *line == '0';

			if (c2 && v2 == (pass == 0))
				parse_path(c2 + 1, (size_t)(end - c2 - 1), out);
			line = nl ? nl + 1 : NULL;
		}
	}
	return *out->id || *out->pod_uid;
}
