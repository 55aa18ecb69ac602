/* SPDX-License-Identifier: MIT */
/*
 * Process metrics read from /proc, encoded with the names, units and
 * instrument kinds of the OpenTelemetry process semantic conventions.
 * docs/reference/metrics.md lists each with the /proc file and field it
 * comes from.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rd_encode.h"
#include "rd_groups.h"
#include "rd_source.h"
#include "rtm.h"

static otlp_scope proc_scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;

/* The most metrics the process scope can hold (19 today, with every group
 * and the leak detector's four); add() checks it. */
#define PROC_METRICS_MAX 24

struct builder {
	struct rd_batch *b;
	otlp_sm *sm;
	uint64_t start, now;
	bool no_value;
};

static void add(struct builder *x, const char *name, const char *unit, const char *desc,
		int kind, const struct rd_num_point *pts, size_t n)
{
	if (x->sm->n_metrics >= PROC_METRICS_MAX)
		abort(); /* a metric added here without raising PROC_METRICS_MAX */
	rd_encode_numbers(x->b, x->sm, name, unit, desc, kind, x->start, x->now, x->no_value,
			  pts, n);
}

/* The leak detector's measured growth rates, and whether each resource is
 * a suspect, once it has seen a full window (docs/tuning.md, "Leak detection"). */
static void add_leaks(struct builder *x, const struct rd_source *s)
{
	static const char *const names[RD_LEAK_N] = {
		"rtm.process.heap.growth", "rtm.process.thread.growth", "rtm.process.fd.growth",
	};
	static const char *const units[RD_LEAK_N] = { "By/s", "{thread}/s", "{file_descriptor}/s" };
	static const char *const descs[RD_LEAK_N] = {
		"Growth of the live heap (allocator metrics, else RSS), least squares over the leak window.",
		"Growth of the thread count, least squares over the leak window.",
		"Growth of the open file descriptor count, least squares over the leak window.",
	};
	struct rd_num_point flags[RD_LEAK_N];
	size_t n = 0;

	for (int k = 0; s->leak && k < RD_LEAK_N; k++) {
		if (!s->leak->has_rate[k])
			continue;
		add(x, names[k], units[k], descs[k], RTM_SHM_KIND_GAUGE,
		    (struct rd_num_point[]){ { .dbl = true, .d = s->leak->rate[k] } }, 1);
		flags[n++] = (struct rd_num_point){ .i = s->leak->suspect[k], .key = "rtm.leak.resource",
						    .val = rd_leak_name((enum rd_leak_kind)k) };
	}
	if (n)
		add(x, "rtm.process.leak.suspect", "",
		    "1 while the resource grows steadily above its leak threshold over a full window.",
		    RTM_SHM_KIND_GAUGE, flags, n);
}

otlp_sm *rd_encode_process_scope(struct rd_batch *b, struct rd_source *s,
				 unsigned groups, bool no_value, uint64_t now)
{
	static long tck;
	struct builder x = { .b = b, .now = now, .no_value = no_value };
	const struct rd_proc_stat *st = &s->stat;
	double ticks;

	if (no_value ? !s->proc_seen : !s->stat_ok)
		return NULL;
	if (!tck)
		tck = sysconf(_SC_CLK_TCK);
	ticks = (double)tck;
	if (!s->proc_start_unix_nano)
		/* The boot time the kernel states (btime), plus the process's
		 * start: the same start for every reader that ever looks, so a
		 * restarted reader continues the streams (two clocks read one
		 * after the other would move it by nanoseconds each time). */
		s->proc_start_unix_nano = rd_boot_unix_nano() + (uint64_t)st->start_ticks * (1000000000u / (uint64_t)tck);
	x.start = s->proc_start_unix_nano;
	/* The first read of the thread files happens after this cycle's
	 * timestamp was taken; a start after the point's time is invalid. */
	if (s->threads_since_unix_nano > now)
		s->threads_since_unix_nano = now;
	proc_scope.name = (char *)"rtm/process";
	proc_scope.version = (char *)RTM_VERSION;
	x.sm = rd_arena_alloc(&b->arena, sizeof *x.sm);
	opentelemetry__proto__metrics__v1__scope_metrics__init(x.sm);
	x.sm->scope = &proc_scope;
	x.sm->metrics = rd_arena_alloc(&b->arena, PROC_METRICS_MAX * sizeof *x.sm->metrics);

#define ON(g) (groups & (1u << (g)))
	if (ON(RD_GROUP_PROCESS))
	add(&x, "process.cpu.time", "s", "Total CPU seconds broken down by different CPU modes.",
	    RTM_SHM_KIND_COUNTER,
	    (struct rd_num_point[]){ { .dbl = true, .d = (double)st->utime / ticks, .key = "cpu.mode", .val = "user" },
			   { .dbl = true, .d = (double)st->stime / ticks, .key = "cpu.mode", .val = "system" } }, 2);
	if (ON(RD_GROUP_MEMORY) && (s->status_ok || (no_value && s->proc_seen)))
		add(&x, "process.memory.usage", "By",
		    "The amount of physical memory in use.", RTM_SHM_KIND_UPDOWN,
		    (struct rd_num_point[]){ { .i = (int64_t)s->status.rss_bytes } }, 1);
	if (ON(RD_GROUP_MEMORY))
	add(&x, "process.memory.virtual", "By", "The amount of committed virtual memory.",
	    RTM_SHM_KIND_UPDOWN, (struct rd_num_point[]){ { .i = (int64_t)st->vsize } }, 1);
	if (ON(RD_GROUP_THREADS))
	add(&x, "process.thread.count", "{thread}", "Process threads count.", RTM_SHM_KIND_UPDOWN,
	    (struct rd_num_point[]){ { .i = st->num_threads } }, 1);
	if (ON(RD_GROUP_PROCESS) && s->fd_count >= 0)
		add(&x, "process.unix.file_descriptor.count", "{file_descriptor}",
		    "Number of unix file descriptors in use by the process.", RTM_SHM_KIND_UPDOWN,
		    (struct rd_num_point[]){ { .i = s->fd_count } }, 1);
	/* Summed over threads, with exited threads' last values kept: those
	 * of threads that ended before this reader first looked are lost, so
	 * the stream starts then (a restarted reader starts a new stream
	 * instead of going backwards). */
	x.start = s->threads_since_unix_nano ? s->threads_since_unix_nano : x.start;
	if (ON(RD_GROUP_SCHEDULER) && s->n_tids)
		add(&x, "process.context_switches", "{context_switch}",
		    "Number of times the process has been context switched.", RTM_SHM_KIND_COUNTER,
		    (struct rd_num_point[]){ { .i = (int64_t)s->threads_total.ctx_voluntary,
				     .key = "process.context_switch.type", .val = "voluntary" },
				   { .i = (int64_t)s->threads_total.ctx_involuntary,
				     .key = "process.context_switch.type", .val = "involuntary" } }, 2);
	x.start = s->proc_start_unix_nano;
	if (ON(RD_GROUP_MEMORY))
	add(&x, "process.paging.faults", "{fault}", "Number of page faults the process has made.",
	    RTM_SHM_KIND_COUNTER,
	    (struct rd_num_point[]){ { .i = (int64_t)st->majflt, .key = "system.paging.fault.type", .val = "major" },
			   { .i = (int64_t)st->minflt, .key = "system.paging.fault.type", .val = "minor" } },
	    2);
	if (ON(RD_GROUP_PROCESS) && s->io_ok)
		add(&x, "process.disk.io", "By", "Disk bytes transferred.", RTM_SHM_KIND_COUNTER,
		    (struct rd_num_point[]){ { .i = (int64_t)s->io_read, .key = "disk.io.direction", .val = "read" },
				   { .i = (int64_t)s->io_write, .key = "disk.io.direction", .val = "write" } },
		    2);
	/* The limits the process runs under, as go.memory.limit and
	 * go.processor.limit describe a Go program's; absent when none. */
	if (ON(RD_GROUP_PROCESS) && s->limits.memory_bytes)
		add(&x, "rtm.process.memory.limit", "By",
		    "The memory the process may use (against process.memory.usage): the smallest of "
		    "its cgroups' memory limits.", RTM_SHM_KIND_UPDOWN,
		    (struct rd_num_point[]){ { .i = (int64_t)s->limits.memory_bytes } }, 1);
	if (ON(RD_GROUP_PROCESS) && s->limits.virtual_bytes)
		add(&x, "rtm.process.memory.virtual.limit", "By",
		    "The address space the process may map (against process.memory.virtual): "
		    "RLIMIT_AS.", RTM_SHM_KIND_UPDOWN,
		    (struct rd_num_point[]){ { .i = (int64_t)s->limits.virtual_bytes } }, 1);
	if (ON(RD_GROUP_PROCESS) && s->limits.cpus > 0)
		add(&x, "rtm.process.cpu.limit", "{cpu}",
		    "The CPUs the process may use: its cgroups' CPU quota over period, and its "
		    "affinity mask when that is smaller than the CPUs online.", RTM_SHM_KIND_UPDOWN,
		    (struct rd_num_point[]){ { .dbl = true, .d = s->limits.cpus } }, 1);
	if (ON(RD_GROUP_PROCESS))
	add(&x, "process.uptime", "s", "The time the process has been running.", RTM_SHM_KIND_GAUGE,
	    (struct rd_num_point[]){ { .dbl = true,
			     .d = now > x.start ? (double)(now - x.start) / 1e9 : 0 } }, 1);
	x.start = s->threads_since_unix_nano ? s->threads_since_unix_nano : x.start;
	if (ON(RD_GROUP_SCHEDULER) && s->n_tids)
		add(&x, "rtm.process.runqueue.wait", "s",
		    "Time the process's threads spent runnable, waiting for a CPU (schedstat).",
		    RTM_SHM_KIND_COUNTER,
		    (struct rd_num_point[]){ { .dbl = true, .d = (double)s->threads_total.wait_ns / 1e9 } }, 1);
#undef ON
	x.start = s->proc_start_unix_nano;
	if (!s->no_segment) {
		/* The producer's segment health, for alerting on it. */
		add(&x, "rtm.process.metrics.dropped", "{metric}",
		    "Metrics the producer could not register because its segment was full.",
		    RTM_SHM_KIND_COUNTER, (struct rd_num_point[]){ { .i = s->snap.dropped_metrics } }, 1);
		add(&x, "rtm.process.slots.torn", "{slot}",
		    "Reads of the producer's histogram shards that never settled (a writer died "
		    "mid-update, or kept the seqlock busy).",
		    RTM_SHM_KIND_COUNTER, (struct rd_num_point[]){ { .i = (int64_t)s->torn_total } }, 1);
		add(&x, "rtm.process.points.invalid", "{point}",
		    "The producer's points left out for values OTLP cannot carry: a monotonic counter "
		    "below zero or not finite, a histogram sum not finite.",
		    RTM_SHM_KIND_COUNTER, (struct rd_num_point[]){ { .i = (int64_t)s->invalid_points } }, 1);
	}
	add_leaks(&x, s);
	s->proc_seen = true;
	if (!x.sm->n_metrics)
		return NULL;
	return x.sm;
}
