/* SPDX-License-Identifier: MIT */
/*
 * rd_limits.h - the memory and CPU limits a process runs under, as the Go
 * runtime's go.memory.limit and go.processor.limit describe its own: from
 * cgroup v2 (memory.max, cpu.max) or v1 (memory.limit_in_bytes,
 * cpu.cfs_quota_us / cpu.cfs_period_us) — the smallest up the hierarchy —
 * RLIMIT_AS (/proc/<pid>/limits) and the CPU affinity mask.  Cgroup
 * hierarchies are looked for where systemd and Docker mount them, under
 * /sys/fs/cgroup, or under --cgroup-root.  For a process in a container
 * these are its container's limits: its cgroup, as the reader's cgroup
 * namespace names it.
 */
#ifndef RD_LIMITS_H
#define RD_LIMITS_H

#include <stdint.h>
#include <sys/types.h>

struct rd_limits {
	uint64_t memory_bytes; /* its cgroups' memory limit (what RSS counts against); 0: none */
	uint64_t virtual_bytes; /* RLIMIT_AS (what its address space counts against); 0: none */
	double cpus;           /* CPUs the process may use; 0: unlimited */
};

/* Where the cgroup hierarchies are mounted (default /sys/fs/cgroup; a
 * reader in a container: the host's, bind-mounted).  Call at start-up.
 * Returns 0 or -errno (-ENOTDIR for a file). */
int rd_limits_set_cgroup_root(const char *root);

/* Reads pid's limits; what cannot be read counts as unlimited. */
void rd_limits_read(pid_t pid, struct rd_limits *out);

/* The parsers, for the tests.  rd_limits_parse_as: the soft "Max address
 * space" of /proc/<pid>/limits (UINT64_MAX when unlimited; -EINVAL when
 * absent).  rd_limits_parse_cpu_max: cgroup v2 cpu.max ("max 100000" is
 * unlimited: 0). */
int rd_limits_parse_as(const char *text, uint64_t *bytes);
/* The number of CPUs in a list such as "0-3,8,10-11" (status's
 * Cpus_allowed_list); -1 when it is not one. */
long rd_limits_parse_cpu_list(const char *text);
double rd_limits_parse_cpu_max(const char *text);

#endif /* RD_LIMITS_H */
