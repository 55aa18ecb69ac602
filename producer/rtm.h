/* SPDX-License-Identifier: MIT */
/*
 * rtm.h - publish runtime metrics into a shared-memory segment.
 *
 * The one header an application includes.  Cold-path calls (open, create,
 * close) live in librtm; the update calls below are static inline and cost a
 * thread-local compare plus a load and a store: they never allocate, never
 * make a system call, never block and, in the common case, use no
 * lock-prefixed instruction.
 *
 * Each thread that updates a metric writes its own shard of the segment, so
 * two threads updating the same counter never touch the same cache line; the
 * reader sums the shards.  A shard outlives its thread (the next thread to
 * start reuses it and keeps adding), so totals never go backwards.  Threads
 * beyond the shard count share shard 0 with atomic read-modify-writes.
 *
 * Minimal use:
 *
 *	struct rtm_segment *seg;
 *	rtm_counter_t reqs;
 *	rtm_segment_open(&seg, &(struct rtm_segment_opts){
 *		.service_name = "checkout" });
 *	rtm_counter_create(seg, &reqs, &(struct rtm_metric_def){
 *		.name = "http.server.requests", .unit = "{request}" });
 *	rtm_counter_add(&reqs, 1);
 *	rtm_segment_close(seg);
 */
#ifndef RTM_H
#define RTM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rtm_shm.h"
#include "rtm_shm_exp.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RTM_VERSION "0.1.0"

#if defined(__GNUC__)
#define RTM_LIKELY(x)   __builtin_expect(!!(x), 1)
#define RTM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define RTM__ALWAYS_INLINE __attribute__((always_inline))
#else
#define RTM_LIKELY(x)   (x)
#define RTM_UNLIKELY(x) (x)
#define RTM__ALWAYS_INLINE
#endif

struct rtm_segment; /* owned by librtm; begins with struct rtm__seg_head */

struct rtm_attr {
	const char *key;
	const char *value;
};

/* Options for rtm_segment_open(); zero means "the default". */
struct rtm_segment_opts {
	const char *service_name;      /* OTel service.name; see rtm_segment_open() */
	const char *service_version;   /* optional: service.version */
	const struct rtm_attr *resource_attrs; /* extra resource attributes (at
					* most RTM_SHM_ATTR_COUNT_MAX) */
	size_t n_resource_attrs;
	const char *dir;       /* default: $RTM_DIR, else /dev/shm/rtm */
	uint32_t max_metrics;  /* descriptor slots; default 256 */
	uint32_t max_threads;  /* private shards; default 256, at most 1023 */
	uint32_t shard_bytes;  /* slot bytes per shard; default 8192 */
	uint32_t string_bytes; /* names, units, attrs, bounds; default 32768 */
	mode_t mode;           /* file mode; default 0600 */
};

/* What to create with rtm_*_create(); only .name is required. */
struct rtm_metric_def {
	const char *name;        /* OTel instrument name, e.g. "app.jobs" */
	const char *unit;        /* UCUM as OTel uses it: "By", "s", "{job}" */
	const char *description;
	const struct rtm_attr *attrs; /* this series' attribute set */
	size_t n_attrs;
	int is_double;           /* values are binary64 rather than int64 */
	const double *bounds;    /* histograms: strictly increasing, finite */
	size_t n_bounds;         /* 0: RTM_DEFAULT_SECONDS_BOUNDS */
};

/* The seed's GC-pause buckets: 1us, 10us, 100us, 1ms, 10ms, 100ms, 1s. */
#define RTM_DEFAULT_SECONDS_BOUNDS_N 7
extern const double rtm_default_seconds_bounds[RTM_DEFAULT_SECONDS_BOUNDS_N];

/* Metric handles.  Plain values owned by the caller; they stay safe to use
 * after a failed create (updates are dropped) and after the segment is
 * closed (updates go to private memory nobody reads). */
typedef struct rtm_counter {
	struct rtm_segment *seg;
	uint32_t off;
	uint32_t way; /* the segment's entry in this thread's shard cache */
} rtm_counter_t;
typedef rtm_counter_t rtm_updown_t;
typedef rtm_counter_t rtm_gauge_t;
typedef struct rtm_hist {
	struct rtm_segment *seg; /* exponential: the segment's address + 1 */
	uint32_t off;
	uint16_t n_bounds;       /* exponential: buckets per sign */
	uint16_t way;
	const double *bounds; /* inside the segment's own mapping; NULL: exponential */
} rtm_hist_t;

/*
 * rtm_segment_open - create and publish a segment for this process.
 * Builds it in an unnamed file (O_TMPFILE; else under a random hidden name,
 * O_EXCL|O_NOFOLLOW) of its full size but sparse: tmpfs pages are reserved
 * here for the header and later, on cold paths only (registration, a
 * thread's first update), as they come into use, so a full /dev/shm fails
 * one of those calls rather than raising SIGBUS later.  Fills the header and
 * only then gives it its name, "rtm.<pid>.<starttime>.<n>.rtm", never
 * replacing a file (a taken name moves on to the next n).  Any thread; cold
 * path.  Returns 0, -EINVAL for bad options, -ENOSPC, -EPERM when the
 * directory is writable by other users but not sticky, -ELOOP when it is a
 * symbolic link, or another -errno.
 *
 * The resource follows the OTel environment under what the options say:
 * service.name is .service_name, else $OTEL_SERVICE_NAME, else the
 * service.name of $OTEL_RESOURCE_ATTRIBUTES, else the program's name;
 * service.version likewise from .service_version or the variable; every
 * other key of $OTEL_RESOURCE_ATTRIBUTES is added unless .resource_attrs
 * has it.  A variable that does not decode is ignored whole.
 *
 * After fork() the child's view of every open segment becomes a private
 * copy-on-write mapping: the child's updates never reach the parent's
 * segment.  A child that wants to publish opens its own segment.
 */
int rtm_segment_open(struct rtm_segment **out,
		     const struct rtm_segment_opts *opts);

/*
 * rtm_segment_close - mark the segment closed and release it.
 * The file stays for the reader to export final values and remove.  Handles
 * stay valid; later updates are discarded.  Call once; any thread.
 * Returns 0 or -EINVAL.
 */
int rtm_segment_close(struct rtm_segment *seg);

/* rtm_segment_heartbeat - record "now" as the last heartbeat (vDSO clock
 * read, no system call).  Open, create and close also do this. */
void rtm_segment_heartbeat(struct rtm_segment *seg);

/* rtm_segment_path - the segment file's path, valid until close. */
const char *rtm_segment_path(const struct rtm_segment *seg);

/*
 * rtm_{counter,updown,gauge,hist}_create - register one series.
 * Creating an identical series (same kind, name and attribute set) again
 * returns the existing one.  Any thread; cold path (takes the segment's
 * registration mutex, never shared with updates).
 * Returns 0; -EINVAL for an invalid definition; -EEXIST when the name and
 * attributes exist with another kind, unit or type; -ENOSPC when the
 * descriptor table, strings or shard space is full (the header's
 * dropped_metrics counts these).  On error *out is still a usable handle
 * whose updates are dropped.
 */
int rtm_counter_create(struct rtm_segment *seg, rtm_counter_t *out,
		       const struct rtm_metric_def *def);
int rtm_updown_create(struct rtm_segment *seg, rtm_updown_t *out,
		      const struct rtm_metric_def *def);
int rtm_gauge_create(struct rtm_segment *seg, rtm_gauge_t *out,
		     const struct rtm_metric_def *def);
int rtm_hist_create(struct rtm_segment *seg, rtm_hist_t *out,
		    const struct rtm_metric_def *def);

/*
 * rtm_exphist_create - register a base-2 exponential histogram (the
 * OpenTelemetry data model: no bounds to choose).  It starts at max_scale
 * (RTM_SHM_EXP_SCALE_MIN..RTM_SHM_EXP_SCALE_MAX, i.e. -10..8; 8 is finest,
 * a bucket 0.27 % wide) and halves its resolution whenever the values'
 * range needs more than max_size buckets per sign (4..1024).  0 for either
 * means the default: scale 8, 160 buckets.  def->bounds must be NULL.
 * rtm_hist_record() records into it; ±Inf and NaN are not recorded.
 * rtm_hist_create() makes one too, with the defaults, for a definition
 * without bounds when OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION
 * is base2_exponential_bucket_histogram.  Returns as rtm_hist_create(),
 * and -EINVAL for sizes or scales out of range.
 */
int rtm_exphist_create(struct rtm_segment *seg, rtm_hist_t *out,
		       const struct rtm_metric_def *def, uint32_t max_size, int max_scale);

/*
 * rtm_alloc_metrics_start - publish allocator and heap metrics
 * (runtime.native.mem.*) into seg: allocations, frees, bytes, live heap
 * bytes and objects, counted by interposing malloc and friends, and
 * glibc mallinfo2() figures sampled at start, at rtm_alloc_metrics_stop()
 * and every every_ms (0: 10000).  While the program has one thread its own
 * allocator calls take those samples (when the interval has passed, and
 * when its live heap has moved by a quarter), so it stays single-threaded
 * and keeps glibc malloc's single-thread fast path; its first
 * pthread_create or thrd_create starts a SCHED_IDLE sampler thread.  With
 * every_ms = RTM_ALLOC_SAMPLE_NO_THREAD the heap is sampled at start and
 * stop only.  Also lock contention (runtime.native.sync.*: contended pthread
 * mutex and rwlock acquisitions, their waits), counted by interposing the
 * lock calls.  Needs the interposers linked in: link with librtm-alloc
 * (-lrtm-alloc), or run under LD_PRELOAD=librtm-preload.so, which calls
 * this itself.  Call once.  Returns 0, -EINVAL, or -ENOSPC if the segment
 * lacks room.
 */
#define RTM_ALLOC_SAMPLE_NO_THREAD 0xffffffffu
int rtm_alloc_metrics_start(struct rtm_segment *seg, unsigned every_ms);
void rtm_alloc_metrics_stop(void);

/* ---- hot path internals (not API) ---- */

/* The first member of every struct rtm_segment: what inline code may see. */
struct rtm__seg_head {
	unsigned char *shard0; /* shared shard: gauges and overflow threads */
};

/* Each thread caches its private shard in up to RTM__WAYS segments at
 * once: a segment gets a way when it opens (in turn), and its handles carry
 * it, so a thread updating the metrics of several segments (an app and a
 * library, each with its own) stays on the fast path. */
#define RTM__WAYS 8u

struct rtm__tls_way {
	const struct rtm_segment *seg; /* segment whose shard is cached */
	unsigned char *shard;          /* this thread's private shard in it */
};

struct rtm__tls {
	struct rtm__tls_way way[RTM__WAYS];
	/* librtm-alloc's five words in this thread's shard, once found
	 * (rtm_alloc.h): the allocator hooks' one load.  Cleared with the
	 * ways when the thread gives its shards back. */
	uint64_t *alloc_words;
	/* Set while this thread runs rtm's own code in the allocator hooks:
	 * nothing it allocates counts.  Beside alloc_words, so the hooks
	 * find both through one thread-pointer offset. */
	int alloc_busy;
};
/* initial-exec: the hot path reads it with one %fs-relative load. */
extern __thread struct rtm__tls rtm__tls
	__attribute__((tls_model("initial-exec")));

/* This thread's cache entry for a handle's segment.  A way is the entry's
 * byte offset in the array, so finding it is one mask and one add (an
 * index cost a shift more on every update); the mask keeps a garbage
 * handle inside the array, on an entry's boundary. */
#define RTM__WAY_MASK ((RTM__WAYS - 1u) * (uint32_t)sizeof(struct rtm__tls_way))
static inline struct rtm__tls_way *rtm__way(uint32_t way)
{
	return (struct rtm__tls_way *)(void *)((char *)rtm__tls.way + (way & RTM__WAY_MASK));
}

void rtm__counter_add_slow(const rtm_counter_t *c, uint64_t n);
void rtm__counter_add_f64_slow(const rtm_counter_t *c, double v);
void rtm__hist_record_slow(const rtm_hist_t *h, double v);

static inline uint64_t *rtm__word(unsigned char *shard, uint32_t off)
{
	return (uint64_t *)(void *)(shard + off);
}

/* Thread sanitizer builds keep the C atomics below: it sees no asm. */
#if defined(__SANITIZE_THREAD__)
#define RTM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RTM__TSAN 1
#endif
#endif

/*
 * Adds n to a word of this thread's own shard (no other writer).  On
 * x86-64 one add to memory without a lock prefix, as the kernel's
 * this_cpu_add(): its store is one aligned 8-byte store, so a reader in
 * another process loads the old or the new value, never a mix; and no
 * compiler fuses a relaxed atomic load and store into that instruction
 * (measured: the counter's update in half the time of the pair).
 * Elsewhere, and under the thread sanitizer, the relaxed load and store.
 */
static inline void rtm__own_add(uint64_t *w, uint64_t n)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RTM__TSAN)
	/* Both assembler dialects: AT&T, and Intel for -masm=intel. */
	__asm__ __volatile__("add{q %1, %0| qword ptr %0, %1}" : "+m"(*w) : "er"(n));
#else
	__atomic_store_n(w, __atomic_load_n(w, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
#endif
}

/* ---- hot path ---- */

/*
 * rtm_counter_add - add n to a monotonic integer counter.
 * Any thread.  The add is an unlocked add on this thread's shard
 * (rtm__own_add): the shard has no other writer, and the reader's
 * concurrent relaxed load of the word sees it whole.
 */
static inline void rtm_counter_add(const rtm_counter_t *c, uint64_t n)
{
	const struct rtm__tls_way *t = rtm__way(c->way);

	if (RTM_LIKELY(t->seg == c->seg)) {
		rtm__own_add(rtm__word(t->shard, c->off), n);
		return;
	}
	rtm__counter_add_slow(c, n);
}

/* rtm_counter_add_f64 - add v (>= 0) to a binary64 counter.  Any thread. */
static inline void rtm_counter_add_f64(const rtm_counter_t *c, double v)
{
	const struct rtm__tls_way *t = rtm__way(c->way);

	if (RTM_LIKELY(t->seg == c->seg)) {
		uint64_t *w = rtm__word(t->shard, c->off);
		double d = rtm_shm_bits_f64(__atomic_load_n(w, __ATOMIC_RELAXED));
		__atomic_store_n(w, rtm_shm_f64_bits(d + v), __ATOMIC_RELAXED);
		return;
	}
	rtm__counter_add_f64_slow(c, v);
}

/* rtm_updown_add - add n (may be negative) to an up-down counter. */
static inline void rtm_updown_add(const rtm_updown_t *c, int64_t n)
{
	rtm_counter_add(c, (uint64_t)n); /* two's complement wraps correctly */
}

static inline void rtm_updown_add_f64(const rtm_updown_t *c, double v)
{
	rtm_counter_add_f64(c, v);
}

/*
 * rtm_gauge_set - set a gauge to v; the last store wins.  Any thread.
 * Gauges live in shard 0; a single aligned 8-byte store is atomic, and no
 * read-modify-write is needed, so this is one plain store.
 */
static inline void rtm__gauge_store(const rtm_gauge_t *g, uint64_t bits)
{
	const struct rtm__seg_head *h = (const struct rtm__seg_head *)g->seg;

	/* Relaxed: a gauge is one word with no ordering against anything; the
	 * reader's relaxed load of it sees either the old or the new value. */
	__atomic_store_n(rtm__word(h->shard0, g->off), bits, __ATOMIC_RELAXED);
}

static inline void rtm_gauge_set(const rtm_gauge_t *g, int64_t v)
{
	rtm__gauge_store(g, (uint64_t)v);
}

static inline void rtm_gauge_set_f64(const rtm_gauge_t *g, double v)
{
	rtm__gauge_store(g, rtm_shm_f64_bits(v));
}

/* Index of the bucket v falls in: the first bound >= v (OTel rule). */
static inline uint32_t rtm__hist_bucket(const rtm_hist_t *h, double v)
{
	uint32_t lo = 0, hi = h->n_bounds;

	if (hi <= 8) {
		while (lo < hi && v > h->bounds[lo])
			lo++;
		return lo;
	}
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (v > h->bounds[mid])
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline void rtm__store64(uint64_t *w, uint64_t v)
{
	/* Relaxed: the seqlock orders the slot's stores for the reader. */
	__atomic_store_n(w, v, __ATOMIC_RELAXED);
}

static inline uint64_t rtm__load64(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_RELAXED);
}

/* One value into an exponential slot whose writer this thread is (it
 * holds the slot's seqlock).  mag: v's bits without the sign, finite. */
static inline void rtm__exp_record_held(struct rtm_shm_exphist *s, uint32_t size, double v,
					uint64_t mag)
{
	double sum = rtm_shm_bits_f64(rtm__load64(&s->sum_bits));

	rtm__store64(&s->sum_bits, rtm_shm_f64_bits(sum + v));
	if (v < rtm_shm_bits_f64(rtm__load64(&s->min_bits)))
		rtm__store64(&s->min_bits, rtm_shm_f64_bits(v));
	if (v > rtm_shm_bits_f64(rtm__load64(&s->max_bits)))
		rtm__store64(&s->max_bits, rtm_shm_f64_bits(v));
	rtm__own_add(&s->count, 1);
	if (!mag) {
		rtm__own_add(&s->zero_count, 1);
	} else {
		int neg = v < 0;
		int32_t i8 = rtm_shm_exp_index8(mag);
		int32_t idx = rtm_shm_exp_rescale(i8, __atomic_load_n(&s->scale, __ATOMIC_RELAXED));
		int32_t *base = neg ? &s->neg_base : &s->pos_base;
		int32_t b = __atomic_load_n(base, __ATOMIC_RELAXED);
		int32_t top = __atomic_load_n(base + 1, __ATOMIC_RELAXED);
		uint32_t k = (uint32_t)idx - (uint32_t)b;

		if (RTM_LIKELY(top >= b && k < size)) {
			uint64_t *c = rtm_shm_exphist_counts(s, size, neg) + k;

			rtm__own_add(c, 1);
			if (idx > top)
				__atomic_store_n(base + 1, idx, __ATOMIC_RELAXED);
		} else {
			/* Outside the window: move it or coarsen the scale. */
			rtm_shm_exp_add(s, size, neg, i8, RTM_SHM_EXP_SCALE_MAX, 1);
		}
	}
}

/*
 * rtm_hist_record - record one value (NaN is ignored).  Any thread.
 * The slot's fields change together under the shard's seqlock so a reader
 * sees sum, min, max and buckets from the same set of records.  An
 * exponential histogram finds its bucket from the value's bits
 * (rtm_shm_exp.h) and, rarely, rescales in place (rtm_shm_exp_add).
 * Always inlined: compilers at -O2 otherwise keep one out-of-line copy for
 * a file's call sites, and the call cost a tenth to a half more
 * (rtm-bench: 0.64x an atomic add against 0.71-1.05x).
 */
static inline RTM__ALWAYS_INLINE void rtm_hist_record(const rtm_hist_t *h, double v)
{
	const struct rtm__tls_way *t = rtm__way(h->way);

	if (RTM_UNLIKELY(!h->bounds)) {
		uint64_t mag = rtm_shm_f64_bits(v) & ~(1ull << 63);

		/* An exponential handle's seg is odd: code built before them
		 * never matches it and takes the library's path. */
		if (RTM_LIKELY((uintptr_t)t->seg + 1 == (uintptr_t)h->seg &&
			       mag < 0x7ff0000000000000ull)) {
			struct rtm_shm_exphist *s =
				(struct rtm_shm_exphist *)(void *)(t->shard + h->off);

			rtm_shm_seq_write_begin(&s->seq);
			rtm__exp_record_held(s, h->n_bounds, v, mag);
			rtm_shm_seq_write_end(&s->seq);
			return;
		}
	} else if (RTM_LIKELY(t->seg == h->seg && v == v)) {
		struct rtm_shm_hist *s =
			(struct rtm_shm_hist *)(void *)(t->shard + h->off);
		uint64_t *b = &rtm_shm_hist_buckets(s)[rtm__hist_bucket(h, v)];
		double sum = rtm_shm_bits_f64(
			__atomic_load_n(&s->sum_bits, __ATOMIC_RELAXED));
		double mn = rtm_shm_bits_f64(
			__atomic_load_n(&s->min_bits, __ATOMIC_RELAXED));
		double mx = rtm_shm_bits_f64(
			__atomic_load_n(&s->max_bits, __ATOMIC_RELAXED));

		rtm_shm_seq_write_begin(&s->seq);
		__atomic_store_n(&s->sum_bits, rtm_shm_f64_bits(sum + v),
				 __ATOMIC_RELAXED);
		if (v < mn)
			__atomic_store_n(&s->min_bits, rtm_shm_f64_bits(v),
					 __ATOMIC_RELAXED);
		if (v > mx)
			__atomic_store_n(&s->max_bits, rtm_shm_f64_bits(v),
					 __ATOMIC_RELAXED);
		rtm__own_add(b, 1);
		rtm_shm_seq_write_end(&s->seq);
		return;
	}
	rtm__hist_record_slow(h, v);
}

#ifdef __cplusplus
}
#endif

#endif /* RTM_H */
