/* SPDX-License-Identifier: MIT */
/* Producer internals shared by the cold-path files of librtm. */
#ifndef RTM_SEGMENT_PRIV_H
#define RTM_SEGMENT_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "rtm.h"

/* The segment directory unless RTM_DIR or the options say otherwise. */
#define RTM__DEFAULT_DIR "/dev/shm/rtm"

struct rtm_segment {
	struct rtm__seg_head head; /* must stay first: rtm.h reads it */
	unsigned char *base;
	size_t size;
	struct rtm_shm_header *hdr;
	int fd;                    /* -1 while deferred and once closed */
	bool closed;
	/* Deferred (rtm__segment_open_deferred): built in private anonymous
	 * memory, written to a file only at close, for a reader.  path holds
	 * the directory.  Under lock. */
	bool deferred;
	mode_t mode;
	unsigned seq;              /* this process's segment number, for the name */
	uint32_t way;              /* its entry in threads' shard caches (rtm__way) */
	pthread_mutex_t lock;      /* registration only; never on a hot path */
	uint32_t strings_used;     /* absolute end of used string space */
	uint32_t data_used;        /* bytes used in each shard */
	uint8_t *shard_busy;       /* [shard_count]: owned by a live thread */
	/* rtm_reserve.c: file pages reserved so far (all under lock). */
	uint64_t res_meta;         /* header and descriptors, up to here */
	uint64_t res_strings;      /* string space, up to here */
	uint32_t res_data;         /* from the start of each shard < shard_hwm */
	bool shard0_ready;         /* atomic: shard 0 has its pages (rtm__reserve_shard0) */
	uint64_t res_sites;        /* the lock-site table, once it is in use */
	struct rtm_segment *next;  /* process registry, for fork and exit */
	char path[PATH_MAX];
};

/*
 * rtm__segment_open_deferred - rtm_segment_open() without the file: the
 * segment is built in private anonymous memory and nothing touches the
 * directory (no system call but the mapping).  Updates work as usual; at
 * rtm_segment_close() the finished image is written as a closed segment
 * when a reader is attached to take its final values, and never
 * otherwise.  For the preload, whose short commands need no file.
 */
int rtm__segment_open_deferred(struct rtm_segment **out, const struct rtm_segment_opts *o);

/* Never updated: handles from a failed create point here. */
extern struct rtm_segment rtm__null_segment;

/* The registry of open segments; rtm_shard.c walks it at thread exit. */
extern pthread_mutex_t rtm__registry_lock;
extern struct rtm_segment *rtm__registry;

uint64_t rtm__now_ns(clockid_t clk);
/* This process's n-th segment name (FORMAT.md §1): "rtm.<pid>.<start>.<n>.rtm". */
void rtm__segment_name(char *buf, size_t cap, uint64_t start_ticks, unsigned n);
/* Writes v in decimal at p (at most 20 characters, no NUL); returns the
 * end.  No stdio: a short command's first snprintf costs it ~20 us
 * (rtm-bench-exec), and the preload's start and a short command's export
 * at exit format numbers. */
char *rtm__put_decimal(char *p, uint64_t v);
/* getpid(), as the system call itself where the architecture is known:
 * the preload's start asks in every process, and libc's getpid() first
 * called there costs a page fault of its code (~3 us). */
pid_t rtm__pid_now(void);
void rtm__shard_forget(const struct rtm_segment *seg);

/* seg->lock, noting that this thread holds it (rtm_shard.c): an update made
 * while it is held (a signal handler, an allocation) must not wait for it. */
extern __thread bool rtm__holds_lock __attribute__((tls_model("initial-exec")));
void rtm__lock(struct rtm_segment *seg);
void rtm__unlock(struct rtm_segment *seg);

/* rtm_env.c: the OTel resource variables of this process's environment. */
struct rtm__env_resource {
	char *service_name;     /* OTEL_SERVICE_NAME, or NULL */
	struct rtm_attr *attrs; /* OTEL_RESOURCE_ATTRIBUTES, decoded; keys unique */
	size_t n;
};
/* Fills r (empty when unset); -EINVAL, with the attributes discarded, when
 * OTEL_RESOURCE_ATTRIBUTES does not decode. */
int rtm__env_resource(struct rtm__env_resource *r);
void rtm__env_resource_free(struct rtm__env_resource *r);
/* getenv(name), read here rather than by libc, for all of librtm: the
 * preload's start runs in every process under it, and a short command's
 * export at exit opens a segment, and a libc function first called there
 * costs that process a page fault of libc's code (~2-3 us,
 * rtm-bench-exec), where this one's code is on pages already in use. */
const char *rtm__env_get(const char *name);
/* The unsigned number in the environment variable name, within [min, max]:
 * true and *out when it holds one; false, *out untouched, when it is unset
 * or empty, or — after one line on stderr naming it, the range and what is
 * used instead (fallback) — when it holds anything else. */
bool rtm__env_number(const char *name, unsigned long min, unsigned long max,
		     const char *fallback, unsigned long *out);

/* rtm_reap.c: field 22 of /proc/<pid>/stat (pid 0: this process), which
 * tells a process from a later one with its pid; 0 when it is gone (or
 * /proc is not mounted). */
uint64_t rtm__start_ticks(pid_t pid);
/* Records the pid and user namespaces the process lives in (format 1.2),
 * so that a reader outside them finds it: 0 where /proc cannot tell. */
void rtm__own_namespaces(struct rtm_shm_header *h);
/* Marks CLOSED the segments an earlier image of this process (before an
 * exec) left LIVE; found by name, so the cost does not grow with the
 * directory. */
void rtm__close_stale(int dfd, uint64_t start_ticks);
/* With no reader attached, removes this user's segments (and temporaries)
 * of processes that are gone, and closed ones. */
void rtm__reap_gone(int dfd);

/* Shard i of seg (0: the shared one). */
static inline unsigned char *rtm__shard_base(const struct rtm_segment *seg, uint32_t i)
{
	return seg->base + seg->hdr->data_offset + (size_t)i * seg->hdr->shard_size;
}

/* An empty histogram slot: min +inf, max -inf (FORMAT.md), so the first
 * record sets both. */
static inline void rtm__hist_slot_init(unsigned char *slot, const struct rtm_shm_desc *e)
{
	struct rtm_shm_hist *h = (struct rtm_shm_hist *)(void *)slot;

	h->min_bits = rtm_shm_f64_bits(__builtin_inf());
	h->max_bits = rtm_shm_f64_bits(-__builtin_inf());
	if (e->flags & RTM_SHM_DESC_EXPONENTIAL) {
		struct rtm_shm_exphist *x = (struct rtm_shm_exphist *)(void *)slot;

		/* Empty windows (top below base) at the finest scale asked. */
		x->scale = e->exp_max_scale;
		x->pos_base = x->neg_base = 0;
		x->pos_top = x->neg_top = -1;
	}
}

/* rtm_metric.c: OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION
 * asks for exponential histograms where no bounds were chosen (rtm's own
 * defaults included). */
bool rtm__default_exponential(void);

/* rtm_exphist.c: a record into shard 0's exponential slot. */
void rtm__exp_record_shared(struct rtm_shm_exphist *s, uint32_t size, double v);

/* rtm_reserve.c.  Each returns 0 or -errno (-ENOSPC on a full tmpfs);
 * callers hold seg->lock.  Taking data pages (rtm__reserve_data, and
 * rtm__reserve_shard for a private shard) also reserves shard 0 when the
 * filesystem is nearly full (< 4 MiB free), so that it is there for
 * threads that find no room for a shard of their own. */
int rtm__reserve(struct rtm_segment *seg, uint64_t *mark, uint64_t end);
int rtm__reserve_data(struct rtm_segment *seg, uint32_t need);
int rtm__reserve_shard(struct rtm_segment *seg, uint32_t shard);
/* Shard 0 is reserved lazily, when the first gauge is registered or the
 * first thread falls back to it (FORMAT.md: a reader reads it for nothing
 * else); until then it costs nothing.  Idempotent. */
int rtm__reserve_shard0(struct rtm_segment *seg);
/* Whether shard 0 may be written; acquire, pairs with the release in
 * rtm__reserve_shard0().  Any thread, no lock. */
static inline bool rtm__shard0_ready(const struct rtm_segment *seg)
{
	return __atomic_load_n(&seg->shard0_ready, __ATOMIC_ACQUIRE);
}

/* rtm_lock_sites.c: the lock-site table (FORMAT.md, "Lock sites"), one
 * page of 64 entries after the shards of every segment. */
#define RTM__LOCK_SITES 64u
/* Reserves the table and starts it, recording 1 in every waits.  Cold
 * path; 0 or -errno. */
int rtm__lock_sites_start(struct rtm_segment *seg, uint32_t every);
/* Adds a sampled wait of wait_ns at call site addr, standing for scale
 * waits.  Lock-free, no system call; only on a contended path. */
void rtm__lock_site_record(struct rtm_segment *seg, uintptr_t addr, uint32_t kind,
			   uint64_t wait_ns, uint32_t scale);

#endif /* RTM_SEGMENT_PRIV_H */
