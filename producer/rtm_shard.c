/* SPDX-License-Identifier: MIT */
/*
 * Per-thread shards: the slow path of every update.  A thread's first update
 * to a segment claims a free private shard (or, when none is free, uses the
 * shared shard 0 with atomic read-modify-writes) and caches it in rtm__tls,
 * so every later update takes the inline fast path.  At thread exit the
 * shard is released with its values intact; the next thread to claim it keeps
 * adding to them, so totals never go backwards.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>

#include "rtm_segment_priv.h"

#define MAX_CLAIMS 8 /* segments one thread can hold private shards in */

__thread struct rtm__tls rtm__tls __attribute__((tls_model("initial-exec")));

struct claim {
	struct rtm_segment *seg;
	uint32_t shard; /* 0: no private shard was free; use shard 0 */
};

/* initial-exec, as rtm__tls: rtm's thread-local data is static TLS
 * already, and this keeps __tls_get_addr (and a dependency on ld.so) out
 * of the preload. */
static __thread struct claim claims[MAX_CLAIMS] __attribute__((tls_model("initial-exec")));
static __thread unsigned n_claims __attribute__((tls_model("initial-exec")));
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
__thread bool rtm__holds_lock __attribute__((tls_model("initial-exec")));

void rtm__lock(struct rtm_segment *seg)
{
	pthread_mutex_lock(&seg->lock);
	rtm__holds_lock = true;
}

void rtm__unlock(struct rtm_segment *seg)
{
	rtm__holds_lock = false;
	pthread_mutex_unlock(&seg->lock);
}

static bool registered(const struct rtm_segment *seg)
{
	for (struct rtm_segment *s = rtm__registry; s; s = s->next)
		if (s == seg)
			return true;
	return false;
}

static void release_claims(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&rtm__registry_lock);
	for (unsigned i = 0; i < n_claims; i++) {
		struct claim *c = &claims[i];

		/* A closed segment's busy array still exists (segments are
		 * never freed), but there is nothing left to hand over. */
		if (c->shard && registered(c->seg))
			/* Release: this thread's last slot stores happen before
			 * the next owner's claim; pairs with the acquire CAS in
			 * claim_shard(). */
			__atomic_store_n(&c->seg->shard_busy[c->shard], 0,
					 __ATOMIC_RELEASE);
	}
	n_claims = 0;
	for (unsigned i = 0; i < RTM__WAYS; i++)
		rtm__tls.way[i].seg = NULL;
	rtm__tls.alloc_words = NULL;
	pthread_mutex_unlock(&rtm__registry_lock);
}

static void make_key(void)
{
	pthread_key_create(&exit_key, release_claims);
}

/* Readers learn that shard 0 holds sums (as well as gauges).  Only once
 * shard 0 has its pages: readers then read it. */
static void note_fallback(struct rtm_segment *seg)
{
	/* Release, before this thread's first shard-0 update: a reader that
	 * sees shard_fallbacks == 0 skips shard 0 for sums; pairs with the
	 * acquire load in the reader's snapshot. */
	__atomic_fetch_add(&seg->hdr->shard_fallbacks, 1, __ATOMIC_RELEASE);
}

/* The same, for a thread that uses shard 0 without taking a claim: once
 * is enough for readers, and the relaxed look first keeps this from
 * becoming a shared write on every update. */
static void note_fallback_once(struct rtm_segment *seg)
{
	if (!__atomic_load_n(&seg->hdr->shard_fallbacks, __ATOMIC_RELAXED))
		note_fallback(seg);
}

/* Shard 0 for a thread without a private shard, when it may be written:
 * reserved (now, if this thread may take the lock) and announced.  False
 * only when it has no pages and cannot get them now (a full tmpfs, or an
 * update nested in a registration on this thread): the update is dropped
 * rather than risk SIGBUS. */
static bool use_shard0(struct rtm_segment *seg, bool may_lock)
{
	if (!rtm__shard0_ready(seg)) {
		if (!may_lock)
			return false;
		rtm__lock(seg);
		if (!seg->closed)
			rtm__reserve_shard0(seg);
		rtm__unlock(seg);
		if (!rtm__shard0_ready(seg))
			return false;
	}
	note_fallback_once(seg);
	return true;
}

/* A free private shard for this thread, or 0 (use shard 0).  Caller holds
 * seg->lock, which orders this against registrations: a shard is either
 * below the high-water mark when a metric is created (and gets its pages
 * then) or is given the pages of every metric here. */
static uint32_t claim_shard(struct rtm_segment *seg)
{
	struct rtm_shm_header *h = seg->hdr;

	for (uint32_t i = 1; i < h->shard_count; i++) {
		uint8_t expect = 0;

		/* Acquire on success: pairs with the release in
		 * release_claims(), so this thread continues from the previous
		 * owner's final values. */
		if (__atomic_load_n(&seg->shard_busy[i], __ATOMIC_RELAXED) ||
		    !__atomic_compare_exchange_n(&seg->shard_busy[i], &expect, 1,
						 false, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		if (i >= h->shard_hwm) {
			/* Never used: give it pages (the tmpfs may be full:
			 * then shard 0 it is) and empty histogram slots. */
			if (rtm__reserve_shard(seg, i)) {
				__atomic_store_n(&seg->shard_busy[i], 0, __ATOMIC_RELAXED);
				break;
			}
			/* Release: the slots initialised above are visible to a
			 * reader whose acquire load sees the new mark.  Shards
			 * are claimed lowest first under the lock, so the mark
			 * only ever grows by one. */
			__atomic_store_n(&h->shard_hwm, i + 1, __ATOMIC_RELEASE);
		}
		return i;
	}
	/* No private shard: shard 0, given pages first.  If even that fails
	 * (a full tmpfs), this thread's updates are dropped (shard_for). */
	if (!rtm__reserve_shard0(seg))
		note_fallback(seg);
	return 0;
}

/* Forgets this thread's claims in closed segments (their shards need no
 * hand-over: nobody reads them any more). */
static void drop_closed_claims(void)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < n_claims; i++)
		if (!__atomic_load_n(&claims[i].seg->closed, __ATOMIC_RELAXED))
			claims[kept++] = claims[i];
	n_claims = kept;
}

/* This thread's private shard in seg; else NULL, with *shared telling
 * whether to use shared shard 0 (false: drop the update). */
static unsigned char *shard_for(struct rtm_segment *seg, bool *shared)
{
	struct claim *c = NULL;

	*shared = false;
	if (seg == &rtm__null_segment)
		return NULL;
	for (unsigned i = 0; i < n_claims; i++)
		if (claims[i].seg == seg) {
			c = &claims[i];
			break;
		}
	if (!c) {
		if (__atomic_load_n(&seg->closed, __ATOMIC_RELAXED))
			return NULL; /* writes go to its private zero pages */
		if (n_claims == MAX_CLAIMS)
			drop_closed_claims();
		if (n_claims == MAX_CLAIMS) {
			/* This thread holds shards in too many live segments:
			 * use shard 0, and make sure readers know it is in use. */
			*shared = use_shard0(seg, !rtm__holds_lock);
			return NULL;
		}
		/* This thread may hold the registration lock already (an
		 * update from a signal handler, or from an allocation, inside
		 * a create or close): then shard 0 serves this update and the
		 * claim is retried next time.  Otherwise wait: this is a
		 * thread's first update to the segment, a cold path, and the
		 * lock is only ever held for a registration. */
		if (rtm__holds_lock) {
			*shared = use_shard0(seg, false);
			return NULL;
		}
		rtm__lock(seg);
		pthread_once(&key_once, make_key);
		pthread_setspecific(exit_key, claims); /* arms release_claims */
		c = &claims[n_claims++];
		c->seg = seg;
		c->shard = seg->closed ? 0 : claim_shard(seg);
		rtm__unlock(seg);
	}
	if (!c->shard) {
		/* Acquire: see rtm__shard0_ready(). */
		*shared = rtm__shard0_ready(seg);
		return NULL;
	}
	/* Shard before segment: a signal handler's update between the two
	 * stores must never pair this segment with another one's shard. */
	rtm__way(seg->way)->seg = NULL;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rtm__way(seg->way)->shard = rtm__shard_base(seg, c->shard);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	rtm__way(seg->way)->seg = seg;
	return rtm__way(seg->way)->shard;
}

/* Called by rtm_segment_close() in the closing thread. */
void rtm__shard_forget(const struct rtm_segment *seg)
{
	if (rtm__way(seg->way)->seg == seg)
		rtm__way(seg->way)->seg = NULL;
}

static uint64_t *shared_word(const struct rtm_segment *seg, uint32_t off)
{
	return rtm__word(seg->head.shard0, off);
}

void rtm__counter_add_slow(const rtm_counter_t *c, uint64_t n)
{
	struct rtm_segment *seg = c->seg;
	bool shared;

	if (shard_for(seg, &shared)) {
		rtm_counter_add(c, n); /* now served by the fast path */
		return;
	}
	if (!shared)
		return;
	/* Shard 0 has many writers: atomic RMW, relaxed because the reader
	 * only needs the word itself to be atomic. */
	__atomic_fetch_add(shared_word(seg, c->off), n, __ATOMIC_RELAXED);
}

/* Shard 0's words are independent: relaxed CAS loops make each update
 * atomic, which is all a reader's relaxed load of the word needs. */
static void atomic_add_f64(uint64_t *w, double v)
{
	uint64_t old = __atomic_load_n(w, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(w, &old,
					    rtm_shm_f64_bits(rtm_shm_bits_f64(old) + v),
					    true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void rtm__counter_add_f64_slow(const rtm_counter_t *c, double v)
{
	struct rtm_segment *seg = c->seg;
	bool shared;

	if (shard_for(seg, &shared)) {
		rtm_counter_add_f64(c, v);
		return;
	}
	if (!shared)
		return;
	atomic_add_f64(shared_word(seg, c->off), v);
}

/* Stores v if it is below (want_min) or above the current word. */
static void atomic_extreme_f64(uint64_t *w, double v, bool want_min)
{
	uint64_t old = __atomic_load_n(w, __ATOMIC_RELAXED);

	for (;;) {
		double cur = rtm_shm_bits_f64(old);

		if (want_min ? !(v < cur) : !(v > cur))
			return;
		if (__atomic_compare_exchange_n(w, &old, rtm_shm_f64_bits(v), true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return;
	}
}

void rtm__hist_record_slow(const rtm_hist_t *h, double v)
{
	/* An exponential handle's seg is the segment's address + 1 (rtm.h). */
	bool x = !h->bounds && h->n_bounds;
	struct rtm_segment *seg = x ? (struct rtm_segment *)(void *)((char *)h->seg - 1) : h->seg;
	struct rtm_shm_hist *s;
	bool shared;

	/* What the inline path refuses, refused here too: never back to it. */
	if (v != v || (x && isinf(v)))
		return;
	if (shard_for(seg, &shared)) {
		rtm_hist_record(h, v);
		return;
	}
	if (!shared)
		return;
	if (x) {
		rtm__exp_record_shared((struct rtm_shm_exphist *)(void *)(seg->head.shard0 + h->off),
				       h->n_bounds, v);
		return;
	}
	/* Shard 0 takes no seqlock (it has many writers).  Each field is
	 * updated atomically; count is derived from the buckets, so a reader
	 * can see sum lag a bucket by one record, never a wrong count. */
	s = (struct rtm_shm_hist *)(void *)(seg->head.shard0 + h->off);
	__atomic_fetch_add(&rtm_shm_hist_buckets(s)[rtm__hist_bucket(h, v)], 1,
			   __ATOMIC_RELAXED);
	atomic_add_f64(&s->sum_bits, v);
	atomic_extreme_f64(&s->min_bits, v, true);
	atomic_extreme_f64(&s->max_bits, v, false);
}
