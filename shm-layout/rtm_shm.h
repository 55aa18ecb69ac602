/* SPDX-License-Identifier: MIT */
/*
 * rtm_shm.h - the rtm shared-memory segment format, layout 1.3.
 *
 * This header is the whole contract between a producer (which writes a
 * segment) and a reader (which maps it read-only).  FORMAT.md beside it
 * documents the same bytes for people writing a producer in another language.
 *
 * Rules (read these before touching anything below):
 *  1. All multi-byte fields are in the producer's native byte order.  The
 *     magic is chosen so that a reader of the other byte order sees
 *     RTM_SHM_MAGIC_SWAPPED and refuses the segment instead of misreading it.
 *  2. A segment is fully initialised under a hidden temporary name and only
 *     then renamed into place, so a reader never sees a half-built header.
 *  3. Every field says who writes it.  "P/once" fields are written once while
 *     the segment is private to the producer; "P/atomic" fields change while
 *     readers watch and must be accessed with atomic loads and stores.
 *  4. Nothing in a segment is a pointer.  Every location is a byte offset from
 *     the start of the segment, and a reader bounds-checks each one before use.
 *  5. A slot in a per-thread shard has exactly one writer at a time (the
 *     thread that owns the shard), so updates are plain load/add/store.  Shard
 *     0 is shared: it holds gauges and takes updates from threads that could
 *     not get a shard of their own; its writers use atomic read-modify-write.
 *
 * Seqlock protocol (histogram slots in shards 1..N; see rtm_shm_seq_*):
 *  writer: seq = seq+1 (odd, relaxed store); release fence; relaxed data
 *          stores; seq = seq+1 (even, release store).
 *  reader: s1 = acquire load of seq; if odd retry; relaxed data loads;
 *          acquire fence; s2 = relaxed load of seq; if s1 != s2 retry.
 *  A reader gives up after a bounded number of retries and reports the slot
 *  as torn, so a writer that died inside its critical section (seq left odd)
 *  never hangs a reader.
 */
#ifndef RTM_SHM_H
#define RTM_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#define RTM_SHM_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define RTM_SHM_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* Bytes 'R','T','M','S' read as a big-endian u32; stored native-endian. */
#define RTM_SHM_MAGIC         0x52544D53u
#define RTM_SHM_MAGIC_SWAPPED 0x534D5452u

/* Layout version.  A reader refuses an unknown major and reads a newer
 * minor: a minor may only add fields in reserved (zero) space and grow
 * header_size/desc_size, never move or reinterpret a 1.0 field. */
#define RTM_SHM_MAJOR 1
#define RTM_SHM_MINOR 3

/* incompat_features: a reader refuses a segment with a bit it does not
 * know.  compat_features: a reader ignores bits it does not know. */
#define RTM_SHM_INCOMPAT_KNOWN 0u
/* 1.1: sites_offset and sites_capacity describe a lock-site table. */
#define RTM_SHM_COMPAT_LOCK_SITES (1u << 0)
/* 1.1: shard 0 has pages only once the segment has a gauge or
 * shard_fallbacks > 0; readers read it for nothing else (FORMAT.md §7). */
#define RTM_SHM_COMPAT_LAZY_SHARD0 (1u << 1)
#define RTM_SHM_LOCK_SITES_MAX    4096u

/* 1.3, rtm_shm_desc.flags: the histogram is base-2 exponential (struct
 * rtm_shm_exphist) rather than explicit-bucket.  Its descriptor has kind
 * RTM_SHM_KIND_HISTOGRAM and no bounds, so a 1.2 reader takes its slot as
 * a histogram with one bucket (the count) and still reads count, sum, min
 * and max right: it leaves out the buckets, nothing else. */
#define RTM_SHM_DESC_EXPONENTIAL  (1u << 0)
/* 1.3, with RTM_SHM_DESC_EXPONENTIAL: the producer knows no sum, min or
 * max (a histogram it copies from a runtime that keeps none, as Go's
 * runtime/metrics): readers export none rather than the slot's zeros. */
#define RTM_SHM_DESC_NO_SUM       (1u << 1)
/* Exponential histograms: buckets per sign, and the scales. */
#define RTM_SHM_EXP_SIZE_MAX      1024u
#define RTM_SHM_EXP_SIZE_DEFAULT  160u /* OTel SDK MaxSize */
#define RTM_SHM_EXP_SCALE_MAX     8    /* finest: Prometheus native histograms' too */
#define RTM_SHM_EXP_SCALE_MIN     (-10) /* coarsest: every double in two buckets */

#define RTM_SHM_CACHELINE       64u
#define RTM_SHM_HEADER_SIZE     512u
#define RTM_SHM_DESC_SIZE       128u
#define RTM_SHM_SERVICE_LEN     64u  /* incl. the terminating NUL */
#define RTM_SHM_VERSION_LEN     32u
#define RTM_SHM_NAME_MAX        255u /* OTel instrument name limit */
#define RTM_SHM_UNIT_MAX        63u
#define RTM_SHM_DESCRIPTION_MAX 1023u
#define RTM_SHM_ATTRS_MAX       4096u /* bytes of one encoded attribute set */
#define RTM_SHM_ATTR_COUNT_MAX  64u
#define RTM_SHM_BOUNDS_MAX      254u /* explicit bounds of one histogram */
#define RTM_SHM_SHARDS_MAX      1024u
#define RTM_SHM_SEGMENT_MAX     (256u << 20) /* readers refuse larger files */

/* header.state (P/atomic).  INIT only exists while the segment still has
 * its temporary name; readers skip a segment in that state. */
enum rtm_shm_state {
	RTM_SHM_STATE_INIT = 0,
	RTM_SHM_STATE_LIVE = 1,
	RTM_SHM_STATE_CLOSED = 2,
};

enum rtm_shm_kind {
	RTM_SHM_KIND_COUNTER = 1,   /* monotonic sum, sharded */
	RTM_SHM_KIND_UPDOWN = 2,    /* non-monotonic sum, sharded */
	RTM_SHM_KIND_GAUGE = 3,     /* last value, shard 0 only */
	RTM_SHM_KIND_HISTOGRAM = 4, /* explicit-bucket histogram, sharded */
};

enum rtm_shm_value_type {
	RTM_SHM_VALUE_INT = 1,    /* two's complement 64-bit integer */
	RTM_SHM_VALUE_DOUBLE = 2, /* IEEE 754 binary64 */
};

/*
 * The header: bytes [0, header_size) of the segment.
 * off  size  field                 writer
 */
struct rtm_shm_header {
	uint32_t magic;               /*   0  4  P/once: RTM_SHM_MAGIC */
	uint16_t major;               /*   4  2  P/once */
	uint16_t minor;               /*   6  2  P/once */
	uint32_t header_size;         /*   8  4  P/once: >= 512 */
	uint32_t desc_size;           /*  12  4  P/once: >= 128 */
	uint32_t compat_features;     /*  16  4  P/once */
	uint32_t incompat_features;   /*  20  4  P/once */
	uint64_t segment_size;        /*  24  8  P/once: file size in bytes */
	uint32_t desc_offset;         /*  32  4  P/once: descriptor table */
	uint32_t desc_capacity;       /*  36  4  P/once: entries in the table */
	uint32_t strings_offset;      /*  40  4  P/once: string/blob region */
	uint32_t strings_size;        /*  44  4  P/once */
	uint32_t data_offset;         /*  48  4  P/once: shard 0; 64-aligned */
	uint32_t shard_count;         /*  52  4  P/once: incl. shared shard 0 */
	uint32_t shard_size;          /*  56  4  P/once: bytes; multiple of 64 */
	uint32_t reserved0;           /*  60  4  zero */
	uint32_t state;               /*  64  4  P/atomic: enum rtm_shm_state */
	uint32_t desc_count;          /*  68  4  P/atomic: published descriptors */
	uint32_t strings_used;        /*  72  4  P/atomic: informational */
	uint32_t shard_hwm;           /*  76  4  P/atomic: shards [0,hwm) used */
	uint64_t generation;          /*  80  8  P/atomic: bumped per table change */
	uint32_t dropped_metrics;     /*  88  4  P/atomic: registrations refused */
	uint32_t shard_fallbacks;     /*  92  4  P/atomic: threads sent to shard 0 */
	int32_t pid;                  /*  96  4  P/once: creator (tgid) */
	uint32_t uid;                 /* 100  4  P/once: creator's real uid */
	uint64_t pid_start_ticks;     /* 104  8  P/once: /proc/self/stat field 22 */
	uint64_t created_unix_nano;   /* 112  8  P/once: CLOCK_REALTIME */
	uint64_t created_boot_nano;   /* 120  8  P/once: CLOCK_BOOTTIME */
	uint64_t heartbeat_unix_nano; /* 128  8  P/atomic: last heartbeat */
	uint64_t closed_unix_nano;    /* 136  8  P/atomic: set by a clean close */
	uint32_t resource_attrs_off;  /* 144  4  P/once: abs. offset, strings */
	uint32_t resource_attrs_len;  /* 148  4  P/once: bytes */
	uint16_t resource_attr_count; /* 152  2  P/once */
	uint16_t reserved1;           /* 154  2  zero */
	uint32_t data_used;           /* 156  4  P/atomic: bytes used per shard */
	char service_name[RTM_SHM_SERVICE_LEN];    /* 160 64 P/once: UTF-8, NUL */
	char service_version[RTM_SHM_VERSION_LEN]; /* 224 32 P/once: UTF-8, NUL */
	char producer[RTM_SHM_VERSION_LEN];        /* 256 32 P/once: "rtm-c/x.y.z" */
	/* 1.1, valid when compat_features has RTM_SHM_COMPAT_LOCK_SITES: */
	uint32_t sites_offset;        /* 288  4  P/once: lock-site table, 64-aligned */
	uint32_t sites_capacity;      /* 292  4  P/once: entries (<= 4096) */
	uint32_t sites_sample;        /* 296  4  P/atomic: 0 unused, N: 1 in N waits */
	uint32_t reserved3;           /* 300  4  zero */
	uint64_t sites_dropped;       /* 304  8  P/atomic: sampled waits with no free entry */
	/* 1.2: who the producer is outside its namespaces (0: not recorded).
	 * pid, uid and pid_start_ticks are as the producer sees them; these
	 * let a reader in another pid or user namespace find and check it. */
	uint64_t pidns_ino;           /* 312  8  P/once: inode of /proc/self/ns/pid */
	uint64_t userns_ino;          /* 320  8  P/once: inode of /proc/self/ns/user */
	uint8_t reserved2[184];       /* 328 184 zero */
};

/*
 * A metric descriptor: entry i lives at desc_offset + i * desc_size.
 * All *_off fields are absolute offsets that must fall inside the string
 * region.  Written once before desc_count is raised past it.
 * off  size  field
 */
struct rtm_shm_desc {
	uint8_t kind;               /*   0  1  enum rtm_shm_kind */
	uint8_t value_type;         /*   1  1  enum rtm_shm_value_type */
	uint16_t bound_count;       /*   2  2  histograms: explicit bounds */
	uint32_t slot_offset;       /*   4  4  from the start of each shard */
	uint32_t slot_size;         /*   8  4  bytes */
	uint32_t flags;             /*  12  4  zero in 1.0 */
	uint32_t name_off;          /*  16  4 */
	uint16_t name_len;          /*  20  2  bytes, no NUL counted */
	uint16_t unit_len;          /*  22  2 */
	uint32_t unit_off;          /*  24  4 */
	uint32_t description_off;   /*  28  4 */
	uint32_t description_len;   /*  32  4 */
	uint32_t attrs_off;         /*  36  4  "key\0value\0" x attr_count */
	uint32_t attrs_len;         /*  40  4 */
	uint16_t attr_count;        /*  44  2 */
	uint16_t reserved0;         /*  46  2  zero */
	uint32_t bounds_off;        /*  48  4  8-aligned binary64[bound_count] */
	uint16_t exp_size;          /*  52  2  1.3 exponential: buckets per sign */
	int8_t exp_max_scale;       /*  54  1  1.3 exponential: the scale it starts at */
	uint8_t reserved1;          /*  55  1  zero */
	uint64_t start_unix_nano;   /*  56  8  creation time: OTLP start time */
	uint8_t reserved2[64];      /*  64 64  zero */
};

/*
 * A histogram slot at slot_offset in a shard, 64-byte aligned:
 *   0  8  seq    seqlock word (shards >= 1); always 0 in shard 0
 *   8  8  sum    binary64
 *  16  8  min    binary64, +inf while empty
 *  24  8  max    binary64, -inf while empty
 *  32  8*(bound_count+1)  bucket counts, u64
 * Bucket i counts values v with bounds[i-1] < v <= bounds[i] (the OTel
 * explicit-bucket rule).  There is no count field: count is the sum of the
 * buckets, so the two can never disagree.
 * Counter, up-down counter and gauge slots are one 8-byte word (int64 or
 * binary64 by value_type), 8-aligned; gauges 64-aligned and in shard 0 only.
 */
struct rtm_shm_hist {
	uint64_t seq;
	uint64_t sum_bits;
	uint64_t min_bits;
	uint64_t max_bits;
	/* uint64_t buckets[bound_count + 1] follow: rtm_shm_hist_buckets().
	 * (No flexible array member: the header must also be valid C++.) */
};

static inline uint64_t *rtm_shm_hist_buckets(struct rtm_shm_hist *h)
{
	return (uint64_t *)(void *)(h + 1);
}

#define RTM_SHM_HIST_FIXED 32u
#define RTM_SHM_HIST_SLOT_SIZE(nbounds)                                       \
	((RTM_SHM_HIST_FIXED + 8u * ((uint32_t)(nbounds) + 1u) +             \
	  RTM_SHM_CACHELINE - 1u) & ~(RTM_SHM_CACHELINE - 1u))

/*
 * 1.3: an exponential histogram slot (descriptor flag
 * RTM_SHM_DESC_EXPONENTIAL), 64-byte aligned, the OpenTelemetry base-2
 * exponential histogram: at scale s a value v > 0 falls in bucket index i
 * with 2^(i/2^s) < v <= 2^((i+1)/2^s); -v falls in the negative bucket of
 * the same index; 0 in the zero count.  Fields under the seqlock as in
 * struct rtm_shm_hist; the first five are where a 1.2 reader expects them.
 *   0  8  seq
 *   8  8  sum         binary64
 *  16  8  min         binary64, +inf while empty
 *  24  8  max         binary64, -inf while empty
 *  32  8  count       u64: every value recorded, the zero count included
 *  40  8  zero_count  u64
 *  48  4  scale       int32: only ever goes down (RTM_SHM_EXP_SCALE_MIN..MAX)
 *  52  4  reserved    zero
 *  56  4  pos_base    int32: bucket index of positive count 0
 *  60  4  pos_top     int32: highest index counted; < pos_base while none
 *  64  4  neg_base    int32: likewise for negative values (|v|)
 *  68  4  neg_top     int32
 *  72  8  reserved    zero
 *  80  8*exp_size     positive counts: [k] is bucket index pos_base + k
 *  ..  8*exp_size     negative counts: [k] is bucket index neg_base + k
 * A count outside [base, top] is 0.
 */
struct rtm_shm_exphist {
	uint64_t seq;
	uint64_t sum_bits;
	uint64_t min_bits;
	uint64_t max_bits;
	uint64_t count;
	uint64_t zero_count;
	int32_t scale;
	uint32_t reserved0;
	int32_t pos_base, pos_top;
	int32_t neg_base, neg_top;
	uint64_t reserved1;
	/* uint64_t pos[exp_size], neg[exp_size] follow. */
};

#define RTM_SHM_EXPHIST_FIXED 80u
#define RTM_SHM_EXPHIST_SLOT_SIZE(size)                                       \
	((RTM_SHM_EXPHIST_FIXED + 16u * (uint32_t)(size) + RTM_SHM_CACHELINE -  \
	  1u) & ~(RTM_SHM_CACHELINE - 1u))

static inline uint64_t *rtm_shm_exphist_counts(struct rtm_shm_exphist *h, uint32_t size, int neg)
{
	return (uint64_t *)(void *)(h + 1) + (neg ? size : 0);
}

/*
 * 1.1: one entry of the lock-site table, at sites_offset + i * 64: where a
 * process waited for locks (FORMAT.md §7, "Lock sites").  Any thread of the
 * producer may update any entry, so every field is atomic.
 * off  size  field
 */
struct rtm_shm_lock_site {
	uint64_t address;     /*  0  8  P/atomic: call site (a return address);
			       *        0 free, set once by compare-and-swap */
	uint64_t contentions; /*  8  8  P/atomic: waits, scaled by the sampling */
	uint64_t wait_ns;     /* 16  8  P/atomic: their total, scaled likewise */
	uint64_t max_wait_ns; /* 24  8  P/atomic: longest sampled wait */
	uint32_t kind;        /* 32  4  P/atomic: enum rtm_shm_lock_kind, 0 not yet */
	uint8_t reserved[28]; /* 36 28  zero */
};

enum rtm_shm_lock_kind {
	RTM_SHM_LOCK_MUTEX = 1,
	RTM_SHM_LOCK_RWLOCK = 2,
};

RTM_SHM_STATIC_ASSERT(sizeof(struct rtm_shm_lock_site) == RTM_SHM_CACHELINE,
		      "a lock site is one cache line");
RTM_SHM_STATIC_ASSERT(sizeof(struct rtm_shm_hist) == RTM_SHM_HIST_FIXED,
		      "histogram fixed part is 32 bytes");
RTM_SHM_STATIC_ASSERT(sizeof(struct rtm_shm_exphist) == RTM_SHM_EXPHIST_FIXED,
		      "exponential histogram fixed part is 80 bytes");
RTM_SHM_STATIC_ASSERT(offsetof(struct rtm_shm_exphist, count) == 32,
		      "a 1.2 reader's one bucket is the count");
RTM_SHM_STATIC_ASSERT(sizeof(struct rtm_shm_header) == RTM_SHM_HEADER_SIZE,
		      "header is 512 bytes");
RTM_SHM_STATIC_ASSERT(offsetof(struct rtm_shm_header, service_name) == 160,
		      "service_name at 160");
RTM_SHM_STATIC_ASSERT(offsetof(struct rtm_shm_header, heartbeat_unix_nano) ==
			      128, "heartbeat at 128");
RTM_SHM_STATIC_ASSERT(offsetof(struct rtm_shm_header, pidns_ino) == 312,
		      "pidns_ino at 312");
RTM_SHM_STATIC_ASSERT(sizeof(struct rtm_shm_desc) == RTM_SHM_DESC_SIZE,
		      "descriptor is 128 bytes");
RTM_SHM_STATIC_ASSERT(offsetof(struct rtm_shm_desc, start_unix_nano) == 56,
		      "start time at 56");

static inline uint64_t rtm_shm_f64_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

static inline double rtm_shm_bits_f64(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

/* Writer side of the seqlock; only the shard's owning thread calls it. */
static inline void rtm_shm_seq_write_begin(uint64_t *seq)
{
	uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);

	__atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
	/* Orders the odd store before the data stores that follow; pairs with
	 * the acquire fence in rtm_shm_seq_read_retry(). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void rtm_shm_seq_write_end(uint64_t *seq)
{
	uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);

	/* Publishes the data stores; pairs with the acquire load in
	 * rtm_shm_seq_read_begin(). */
	__atomic_store_n(seq, s + 1, __ATOMIC_RELEASE);
}

/* Reader side.  Returns the sequence to pass to rtm_shm_seq_read_retry();
 * an odd value means a write is in progress and the caller should retry. */
static inline uint64_t rtm_shm_seq_read_begin(const uint64_t *seq)
{
	/* Pairs with the release store in rtm_shm_seq_write_end(). */
	return __atomic_load_n(seq, __ATOMIC_ACQUIRE);
}

/* Nonzero when the data loaded since rtm_shm_seq_read_begin() may be torn. */
static inline int rtm_shm_seq_read_retry(const uint64_t *seq, uint64_t start)
{
	/* Orders the data loads before the re-check; pairs with the release
	 * fence in rtm_shm_seq_write_begin(). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return (start & 1u) || __atomic_load_n(seq, __ATOMIC_RELAXED) != start;
}

#endif /* RTM_SHM_H */
