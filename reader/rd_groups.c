/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_groups.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rd_config.h"
#include "rd_segment.h"

static const char *const names[RD_GROUP_N] = {
	"memory", "process", "threads", "scheduler", "allocator",
};

const char *rd_group_name(enum rd_group g)
{
	return names[g];
}

/* The seed's DefaultConfig and ProductionConfig.  Leak thresholds: the
 * seed's production heap growth of 10 MB/s over ten minutes; the default
 * preset watches a tenth of that over five, and threads or fds that keep
 * appearing at one every ten seconds (production: one a second). */
static int apply_preset(struct rd_settings *s, const char *name)
{
	if (!strcmp(name, "default")) {
		s->interval_ns = 10000000000ull;
		for (int g = 0; g < RD_GROUP_N; g++)
			s->groups[g] = (struct rd_group_cfg){ true, 0 };
		s->leak = (struct rd_leak_cfg){ .enabled = true, .window_ns = 300000000000ull,
						.threshold = { 1e6, 0.1, 0.1 } };
	} else if (!strcmp(name, "production")) {
		/* Longer interval; the scheduler group reads a file per thread
		 * each time, so it is off. */
		s->interval_ns = 30000000000ull;
		for (int g = 0; g < RD_GROUP_N; g++)
			s->groups[g] = (struct rd_group_cfg){ g != RD_GROUP_SCHEDULER, 0 };
		s->leak = (struct rd_leak_cfg){ .enabled = true, .window_ns = 600000000000ull,
						.threshold = { 10e6, 1, 1 } };
	} else {
		return -EINVAL;
	}
	s->preset = !strcmp(name, "default") ? "default" : "production";
	return 0;
}

static int find_group(const char *name, size_t len)
{
	for (int g = 0; g < RD_GROUP_N; g++)
		if (strlen(names[g]) == len && !strncasecmp(names[g], name, len))
			return g;
	return -1;
}

/* "on", "off", or a duration (on, at that interval). */
static int group_value(struct rd_group_cfg *g, const char *v)
{
	uint64_t ns;

	if (!strcmp(v, "on") || !strcmp(v, "true")) {
		g->enabled = true;
	} else if (!strcmp(v, "off") || !strcmp(v, "false")) {
		g->enabled = false;
	} else if (rd_parse_duration(v, &ns) == 0 && ns) {
		g->enabled = true;
		g->interval_ns = ns;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* A rate per second: "2", "0.5/s", "30/m" (per minute); with bytes, a
 * size suffix too: "10MB/s", "1MiB", "512k". */
static int rate_value(const char *v, bool bytes, double *out)
{
	static const struct { const char *sfx; double mult; } sizes[] = {
		{ "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
		{ "Ki", 1024.0 }, { "Mi", 1048576.0 }, { "Gi", 1073741824.0 },
		{ "kB", 1e3 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 },
		{ "k", 1e3 }, { "K", 1e3 }, { "M", 1e6 }, { "G", 1e9 }, { "B", 1 },
	};
	char *end;
	double x, mult = 1;

	if (!v || !*v || isspace((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || !(x >= 0) || x > 1e15)
		return -EINVAL;
	for (size_t i = 0; bytes && i < sizeof sizes / sizeof sizes[0]; i++)
		if (!strncmp(end, sizes[i].sfx, strlen(sizes[i].sfx))) {
			mult = sizes[i].mult;
			end += strlen(sizes[i].sfx);
			break;
		}
	if (!strcmp(end, "/m") || !strcmp(end, "/min"))
		mult /= 60;
	else if (*end && strcmp(end, "/s"))
		return -EINVAL;
	*out = x * mult;
	return 0;
}

/* One leak setting: key "" (on|off), "window", "heap", "threads", "fds". */
static int leak_value(struct rd_leak_cfg *c, const char *key, const char *v)
{
	static const char *const kinds[RD_LEAK_N] = { "heap", "threads", "fds" };
	uint64_t ns;

	if (!*key) {
		if (!strcmp(v, "on") || !strcmp(v, "true"))
			c->enabled = true;
		else if (!strcmp(v, "off") || !strcmp(v, "false"))
			c->enabled = false;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "window")) {
		if (rd_parse_duration(v, &ns) || ns < 1000000000ull)
			return -EINVAL;
		c->window_ns = ns;
		return 0;
	}
	for (int k = 0; k < RD_LEAK_N; k++)
		if (!strcmp(key, kinds[k]))
			return rate_value(v, k == RD_LEAK_HEAP, &c->threshold[k]);
	return -ENOENT;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * The config file: "key = value" lines, '#' comments.  Keys:
 *   preset = default | production      (must come first if given)
 *   interval = DURATION
 *   group.<name> = on | off | DURATION
 *   prometheus = [HOST:]PORT | off      (serve /metrics; see rd_config.h)
 *   prometheus.created = on | off       (OpenMetrics _created samples)
 *   leak = on | off, leak.window = DURATION (>= 1s),
 *   leak.heap = BYTES/s, leak.threads = N/s, leak.fds = N/s
 *   limit.series = N, limit.strings = BYTES   (what one segment may cost)
 *   limit.user-series = N               (all segments of one owner)
 */
#define CONFIG_MAX (1u << 20)

/* The whole file, if it is a regular file of at most CONFIG_MAX bytes
 * without NUL bytes (malloc'd, NUL-terminated), else NULL with a one-line
 * error: /dev/zero, a FIFO or a directory are not configuration. */
static char *read_config(const char *path, char *err, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	char *buf;
	ssize_t got;
	size_t len = 0;

	if (fd < 0) {
		rd_errorf(err, n, "config file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX) {
		rd_errorf(err, n, "config file %s: %s", path,
			  S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a regular file");
		close(fd);
		return NULL;
	}
	buf = malloc(CONFIG_MAX + 1);
	while (buf && len < CONFIG_MAX && (got = read(fd, buf + len, CONFIG_MAX - len)) > 0)
		len += (size_t)got;
	close(fd);
	if (!buf)
		return NULL;
	buf[len] = '\0';
	if (strlen(buf) != len) {
		int line = 1;

		for (const char *p = buf; *p; p++)
			line += *p == '\n';
		rd_errorf(err, n, "%s:%d: a NUL byte", path, line);
		free(buf);
		return NULL;
	}
	return buf;
}

static int load_file(struct rd_settings *s, const char *path, bool preset_locked,
		     char *err, size_t n)
{
	char *text = read_config(path, err, n), *next, *line;
	int lineno = 0, rc = 0;

	if (!text)
		return -EINVAL;
	for (line = text; line; line = next) {
		char *eq, *key, *val;
		uint64_t ns;
		int g;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		line[strcspn(line, "#\r")] = '\0';
		key = trim(line);
		if (!*key)
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			rc = rd_errorf(err, n, "%s:%d: expected key = value", path, lineno);
			goto out;
		}
		*eq = '\0';
		val = trim(eq + 1);
		key = trim(key);
		if (!strcmp(key, "preset")) {
			/* A preset named by a flag or RTM_PRESET outranks the
			 * file's; the file's line is still checked. */
			if (preset_locked ? strcmp(val, "default") && strcmp(val, "production") :
					    apply_preset(s, val)) {
				rc = rd_errorf(err, n, "%s:%d: preset '%s' is not default or production", path,
					   lineno, val);
				goto out;
			}
			continue;
		}
		if (!strcmp(key, "interval")) {
			if (rd_parse_duration(val, &ns) || ns < 1000000) {
				rc = rd_errorf(err, n, "%s:%d: interval '%s' is not a duration of at least 1ms",
					   path, lineno, val);
				goto out;
			}
			s->interval_ns = ns;
			continue;
		}
		if (!strcmp(key, "leak") || !strncmp(key, "leak.", 5) || !strncmp(key, "limit.", 6)) {
			bool leak = strncmp(key, "limit.", 6) != 0;
			int bad = leak ? leak_value(&s->leak, key[4] ? key + 5 : "", val) :
					 rd_limit_value(s, key + 6, val);

			if (bad) {
				rc = bad == -ENOENT ?
					rd_errorf(err, n, "%s:%d: unknown key '%s'", path, lineno, key) :
					rd_errorf(err, n, "%s:%d: %s '%s' is not valid (see %s)",
						  path, lineno, key, val,
						  leak ? "docs/tuning.md, \"Leak detection\"" :
							 "docs/reference/reader.md, \"What segments may cost\"");
				goto out;
			}
			continue;
		}
		if (!strcmp(key, "prometheus")) {
			char host[128], port[8];

			if (strcmp(val, "off") &&
			    rd_parse_listen(val, host, sizeof host, port, sizeof port)) {
				rc = rd_errorf(err, n, "%s:%d: prometheus '%s' is not [HOST:]PORT or off",
					   path, lineno, val);
				goto out;
			}
			snprintf(s->prometheus, sizeof s->prometheus, "%s", val);
			continue;
		}
		if (!strcmp(key, "prometheus.created")) {
			if (strcmp(val, "on") && strcmp(val, "off")) {
				rc = rd_errorf(err, n, "%s:%d: prometheus.created '%s' is not on or off",
					   path, lineno, val);
				goto out;
			}
			s->prometheus_created = !strcmp(val, "on");
			continue;
		}
		if (!strcmp(key, "proc-root") || !strcmp(key, "cgroup-root")) {
			char *to = key[0] == 'p' ? s->proc_root : s->cgroup_root;

			if (val[0] != '/' || strlen(val) >= sizeof s->proc_root) {
				rc = rd_errorf(err, n, "%s:%d: %s '%s' is not an absolute path", path,
					   lineno, key, val);
				goto out;
			}
			snprintf(to, sizeof s->proc_root, "%s", val);
			continue;
		}
		if (!strncmp(key, "group.", 6) && (g = find_group(key + 6, strlen(key + 6))) >= 0) {
			if (group_value(&s->groups[g], val)) {
				rc = rd_errorf(err, n, "%s:%d: %s '%s' is not on, off or a duration", path,
					   lineno, key, val);
				goto out;
			}
			continue;
		}
		rc = rd_errorf(err, n, "%s:%d: unknown key '%s'", path, lineno, key);
		goto out;
	}
out:
	/* After the message: it may quote the text. */
	free(text);
	return rc;
}

int rd_limit_value(struct rd_settings *s, const char *key, const char *v)
{
	static const struct { const char *sfx; unsigned long long mult; } sizes[] = {
		{ "KiB", 1ull << 10 }, { "MiB", 1ull << 20 }, { "GiB", 1ull << 30 },
		{ "Ki", 1ull << 10 }, { "Mi", 1ull << 20 }, { "Gi", 1ull << 30 }, { "B", 1 },
	};
	unsigned long long x, mult = 1;
	char num[32];
	size_t len;

	if (!strcmp(key, "series")) {
		if (rd_parse_dec(v, 1u << 20, &x) || !x)
			return -EINVAL;
		s->limit_series = (uint32_t)x;
		return 0;
	}
	if (!strcmp(key, "user-series")) {
		if (rd_parse_dec(v, 100000000, &x) || !x)
			return -EINVAL;
		s->limit_user_series = (uint32_t)x;
		return 0;
	}
	if (strcmp(key, "strings"))
		return -ENOENT;
	len = strspn(v, "0123456789");
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		if (!strcmp(v + len, sizes[i].sfx)) {
			mult = sizes[i].mult;
			break;
		}
	if (!len || len >= sizeof num || (v[len] && mult == 1 && strcmp(v + len, "B")))
		return -EINVAL;
	memcpy(num, v, len);
	num[len] = '\0';
	if (rd_parse_dec(num, 1ull << 30, &x) || x * mult < 4096 || x * mult > 1ull << 30)
		return -EINVAL;
	s->limit_strings = x * mult;
	return 0;
}

int rd_settings_limits(struct rd_settings *s, char *const *flags, size_t n_flags, char *err,
		       size_t n)
{
	for (size_t i = 0; i < n_flags; i++) {
		const char *f = flags[i], *eq = strchr(f, '=');
		char key[16];

		if (!eq || (size_t)(eq - f) >= sizeof key)
			return rd_errorf(err, n, "--limit: '%s' is not series=N or strings=BYTES", f);
		snprintf(key, sizeof key, "%.*s", (int)(eq - f), f);
		if (rd_limit_value(s, key, eq + 1))
			return rd_errorf(err, n, "--limit: '%s' is not series=1..1048576, "
					 "user-series=1..100000000 or strings=4096..1GiB (Ki/Mi/Gi allowed)", f);
	}
	return 0;
}

int rd_settings_load(struct rd_settings *s, const char *config_flag,
		     const char *preset_flag, char *const *group_flags, size_t n_group_flags,
		     char *const *leak_flags, size_t n_leak_flags, char *err, size_t n)
{
	const char *path = config_flag, *v;
	int rc;

	memset(s, 0, sizeof *s);
	/* The preset is the base every other layer edits. */
	v = preset_flag ? preset_flag : getenv("RTM_PRESET");
	if (v && *v) {
		if (apply_preset(s, v))
			return rd_errorf(err, n, "%s: '%s' is not default or production",
				   preset_flag ? "--preset" : "RTM_PRESET", v);
	} else {
		apply_preset(s, "default");
	}
	s->limit_series = RD_LIMIT_SERIES_DEFAULT;
	s->limit_strings = RD_LIMIT_STRINGS_DEFAULT;
	s->limit_user_series = RD_LIMIT_USER_SERIES_DEFAULT;
	if (!path && (v = getenv("RTM_CONFIG")) && *v)
		path = v;
	/* Neither named: the default file, when there is one (a missing
	 * default is no error; a named file must exist). */
	if (!path && access(RTM_DEFAULT_CONFIG, F_OK) == 0)
		path = RTM_DEFAULT_CONFIG;
	if (path && (rc = load_file(s, path, (preset_flag && *preset_flag) ||
					     ((v = getenv("RTM_PRESET")) && *v), err, n)))
		return rc;
	for (int g = 0; g < RD_GROUP_N; g++) {
		char var[64];

		snprintf(var, sizeof var, "RTM_GROUP_%s", names[g]);
		for (char *p = var; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		v = getenv(var);
		if (v && *v && group_value(&s->groups[g], v))
			return rd_errorf(err, n, "%s: '%s' is not on, off or a duration", var, v);
	}
	{
		static const char *const keys[] = { "", "window", "heap", "threads", "fds" };
		static const char *const vars[] = { "RTM_LEAK", "RTM_LEAK_WINDOW", "RTM_LEAK_HEAP",
						    "RTM_LEAK_THREADS", "RTM_LEAK_FDS" };

		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if ((v = getenv(vars[i])) && *v && leak_value(&s->leak, keys[i], v))
				return rd_errorf(err, n, "%s: '%s' is not valid (see docs/tuning.md, \"Leak detection\")",
						 vars[i], v);
	}
	if ((v = getenv("RTM_LIMIT_SERIES")) && *v && rd_limit_value(s, "series", v))
		return rd_errorf(err, n, "RTM_LIMIT_SERIES: '%s' is not in 1..1048576", v);
	if ((v = getenv("RTM_LIMIT_USER_SERIES")) && *v && rd_limit_value(s, "user-series", v))
		return rd_errorf(err, n, "RTM_LIMIT_USER_SERIES: '%s' is not in 1..100000000", v);
	if ((v = getenv("RTM_LIMIT_STRINGS")) && *v && rd_limit_value(s, "strings", v))
		return rd_errorf(err, n, "RTM_LIMIT_STRINGS: '%s' is not 4096..1GiB bytes", v);
	for (size_t i = 0; i < n_leak_flags; i++) {
		const char *f = leak_flags[i], *eq = strchr(f, '=');
		char key[16];

		snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - f) : 0, f);
		if (eq ? (strlen(key) != (size_t)(eq - f) || !*key ||
			  leak_value(&s->leak, key, eq + 1)) : leak_value(&s->leak, "", f))
			return rd_errorf(err, n, "--leak: '%s' is not on, off or KEY=VALUE with KEY one of "
				   "window, heap, threads, fds", f);
	}
	for (size_t i = 0; i < n_group_flags; i++) {
		const char *f = group_flags[i], *eq = strchr(f, '=');
		int g = eq ? find_group(f, (size_t)(eq - f)) : -1;

		if (g < 0 || group_value(&s->groups[g], eq + 1))
			return rd_errorf(err, n, "--group: '%s' is not GROUP=on|off|DURATION with GROUP one of "
				   "memory, process, threads, scheduler, allocator", f);
	}
	return 0;
}
