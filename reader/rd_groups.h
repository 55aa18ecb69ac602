/* SPDX-License-Identifier: MIT */
/*
 * rd_groups.h - metric groups, presets and the config file.
 *
 * The process and runtime metrics come in groups that can each be turned
 * off or given their own interval, as the seed's DefaultConfig and
 * ProductionConfig do.  Precedence: flags, then environment, then the
 * config file, then the preset.
 *
 *   group      metrics                                              source
 *   memory     process.memory.usage/.virtual, process.paging.faults  stat, status
 *   process    process.cpu.time, process.uptime, process.disk.io,
 *              process.unix.file_descriptor.count                    stat, io, fd/
 *   threads    process.thread.count                                  stat
 *   scheduler  process.context_switches, rtm.process.runqueue.wait   task/<tid>/{schedstat,status}
 *   allocator  runtime.native.mem.* (from librtm-preload/-alloc)      the segment
 */
#ifndef RD_GROUPS_H
#define RD_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_leak.h"

enum rd_group {
	RD_GROUP_MEMORY,
	RD_GROUP_PROCESS,
	RD_GROUP_THREADS,
	RD_GROUP_SCHEDULER,
	RD_GROUP_ALLOCATOR,
	RD_GROUP_N,
};

struct rd_group_cfg {
	bool enabled;
	uint64_t interval_ns; /* 0: every cycle */
};

struct rd_settings {
	const char *preset;            /* "default" or "production" */
	uint64_t interval_ns;          /* the preset's or the file's; 0: none */
	struct rd_group_cfg groups[RD_GROUP_N];
	char prometheus[160];          /* "prometheus = " from the file: "" unset */
	bool prometheus_created;       /* "prometheus.created = on" */
	char proc_root[256];           /* "proc-root = ": "" unset */
	char cgroup_root[256];         /* "cgroup-root = ": "" unset */
	struct rd_leak_cfg leak;       /* the leak detector's window and thresholds */
	uint32_t limit_series;         /* per segment (rd_segment_set_limits) */
	uint64_t limit_strings;        /* string bytes per segment */
	uint32_t limit_user_series;    /* in all segments of one owner */
};

/* One limit setting: key "series" (1..1048576), "user-series"
 * (1..100000000) or "strings" (bytes, with an optional Ki/Mi/Gi suffix,
 * 4096..1 GiB).  0, -EINVAL or -ENOENT. */
int rd_limit_value(struct rd_settings *s, const char *key, const char *v);

const char *rd_group_name(enum rd_group g);

/*
 * rd_settings_load - apply the preset, the config file (path from --config,
 * else $RTM_CONFIG, else none), RTM_PRESET, RTM_GROUP_<NAME> and RTM_LEAK*,
 * then the --preset, --group and --leak flags (already collected by the
 * caller: group flags as "name=on|off|DURATION", leak flags as "on", "off"
 * or "key=value" with key window, heap, threads or fds).  Returns 0 or -EINVAL with a one-line error
 * naming the file and line, the variable or the flag.
 */
int rd_settings_load(struct rd_settings *s, const char *config_flag,
		     const char *preset_flag, char *const *group_flags, size_t n_group_flags,
		     char *const *leak_flags, size_t n_leak_flags, char *err, size_t errlen);

/* Applies --limit flags ("series=N", "strings=BYTES") after the rest. */
int rd_settings_limits(struct rd_settings *s, char *const *flags, size_t n_flags, char *err,
		       size_t errlen);

#endif /* RD_GROUPS_H */
