/* SPDX-License-Identifier: MIT */
/*
 * Lock contention, in librtm-preload.so: the native counterpart of Go's
 * /sync/mutex/wait/total.  pthread_mutex_lock, pthread_mutex_timedlock and
 * pthread_rwlock_{rd,wr}lock are interposed; the uncontended path is one
 * look at the lock (a relaxed load of a plain mutex's word, else a trylock)
 * and nothing else.  Only when it is held is the wait timed (the
 * vDSO clock, no system call) and counted: contended acquisitions, total
 * wait (seconds) and a wait-time histogram, by lock.kind (mutex, rwlock),
 * and, 1 in RTM_LOCK_SAMPLE of them, under its call site in the segment's
 * lock-site table (rtm_lock_sites.c) for rtm-shmdump --locks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtm.h"
#include "rtm_segment_priv.h"
#include "rtm_sync.h"

/* glibc's own entry points: calling them never comes back here (and needs
 * no dlsym, which could lock).  They are exported only under their original
 * version, which a link into an executable (librtm-alloc) must name. */
#if defined(__x86_64__) && defined(__GLIBC__)
__asm__(".symver __pthread_mutex_lock, __pthread_mutex_lock@GLIBC_2.2.5");
__asm__(".symver __pthread_mutex_trylock, __pthread_mutex_trylock@GLIBC_2.2.5");
__asm__(".symver __pthread_rwlock_rdlock, __pthread_rwlock_rdlock@GLIBC_2.2.5");
__asm__(".symver __pthread_rwlock_wrlock, __pthread_rwlock_wrlock@GLIBC_2.2.5");
__asm__(".symver __pthread_rwlock_tryrdlock, __pthread_rwlock_tryrdlock@GLIBC_2.2.5");
__asm__(".symver __pthread_rwlock_trywrlock, __pthread_rwlock_trywrlock@GLIBC_2.2.5");
#endif
/* GCC's: call through the GOT, no PLT stub; clang has no such attribute. */
#if defined(__has_attribute)
#if __has_attribute(noplt)
#define NOPLT __attribute__((noplt))
#endif
#endif
#ifndef NOPLT
#define NOPLT
#endif
extern int __pthread_mutex_lock(pthread_mutex_t *m) NOPLT;
extern int __pthread_mutex_trylock(pthread_mutex_t *m) NOPLT;
extern int __pthread_rwlock_rdlock(pthread_rwlock_t *l) NOPLT;
extern int __pthread_rwlock_wrlock(pthread_rwlock_t *l);
extern int __pthread_rwlock_tryrdlock(pthread_rwlock_t *l) NOPLT;
extern int __pthread_rwlock_trywrlock(pthread_rwlock_t *l) NOPLT;

enum { MUTEX, RWLOCK, KINDS };

static rtm_counter_t contentions[KINDS], wait_total[KINDS];
static rtm_hist_t wait_hist[KINDS];
static int ready; /* atomic: the handles above are complete */
static struct rtm_segment *sites_seg; /* set before ready */
static uint32_t sample_every;         /* set before ready; 0: no profile */
static int (*real_timedlock)(pthread_mutex_t *, const struct timespec *);

/* This thread is recording: a lock taken inside (a shard's first claim)
 * is not recorded again. */
static __thread int busy __attribute__((tls_model("initial-exec")));
/* Contended waits of this thread until the next one sampled for the
 * lock-site table: per thread, so sampling shares nothing. */
static __thread uint32_t until_sample __attribute__((tls_model("initial-exec")));

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ra: the caller's return address, the call site that waited. */
static void record(int kind, uint64_t t0, void *ra)
{
	uint64_t ns = mono_ns() - t0;
	double s = (double)ns / 1e9;

	/* Acquire: pairs with the release in rtm__sync_metrics_start(). */
	if (busy || !__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
		return;
	busy = 1;
	{
		/* This thread may now hold librtm's own lock (a first update
		 * claiming its shard was the contended call): updates from
		 * here must neither claim a shard nor wait for that lock, so
		 * a thread without a shard yet counts into shard 0. */
		bool held = rtm__holds_lock;
		bool sampled = sample_every && ++until_sample >= sample_every;

		rtm__holds_lock = true;
		rtm_counter_add(&contentions[kind], 1);
		rtm_counter_add_f64(&wait_total[kind], s);
		rtm_hist_record(&wait_hist[kind], s);
		if (sampled) {
			until_sample = 0;
			rtm__lock_site_record(sites_seg, (uintptr_t)ra,
					      kind == MUTEX ? RTM_SHM_LOCK_MUTEX : RTM_SHM_LOCK_RWLOCK,
					      ns, sample_every);
		}
		rtm__holds_lock = held;
	}
	busy = 0;
}

/* Whether m is a plain (timed or adaptive, maybe process-shared) mutex,
 * whose owner field alone says whether it is held: glibc's trylock costs
 * twice its lock (16.6 against 8.9 ns a pair here), so for these — nearly
 * every mutex — the uncontended path is one relaxed load of __owner and
 * glibc's own lock.  (__owner, not the lock word __lock: a load of the very
 * word the lock's atomic exchange then writes cost 4-5 ns a pair here,
 * measured with forwarding preloads; glibc sets __owner right after taking
 * the lock word and clears it right before releasing it.)  Recursive,
 * error-checking, robust and priority mutexes, which the caller itself
 * may hold, take the trylock path. */
static inline bool plain(const pthread_mutex_t *m)
{
	int kind = m->__data.__kind & ~128; /* PTHREAD_MUTEX_PSHARED_BIT */

	return kind == PTHREAD_MUTEX_TIMED_NP || kind == PTHREAD_MUTEX_ADAPTIVE_NP;
}

/* The wait for a held mutex, out of line so that the uncontended path
 * needs no stack frame: it is a load, a compare and a jump into glibc. */
static __attribute__((noinline, cold)) int mutex_wait(pthread_mutex_t *m, void *ra)
{
	uint64_t t0 = mono_ns();
	int rc = __pthread_mutex_lock(m);

	record(MUTEX, t0, ra);
	return rc;
}

/* Everything but a plain mutex found free: a recursive, error-checking,
 * robust or priority mutex is tried first (its word is also set when the
 * caller itself holds it); a held one is waited for, timed. */
static __attribute__((noinline, cold)) int mutex_slow(pthread_mutex_t *m, void *ra)
{
	if (!plain(m)) {
		int rc = __pthread_mutex_trylock(m);

		if (rc != EBUSY)
			return rc;
	}
	return mutex_wait(m, ra);
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
	/* Relaxed: a hint, ordered by nothing; glibc's lock does the
	 * acquiring.  A lock taken between this load and glibc's CAS, or
	 * taken but not yet given its owner, makes an uncounted wait: counts
	 * are a lower bound.  Both calls are tail calls, so this path needs
	 * no stack frame. */
	if (__builtin_expect(plain(m) && !__atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED), 1))
		return __pthread_mutex_lock(m);
	return mutex_slow(m, __builtin_return_address(0));
}

int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *abstime)
{
	uint64_t t0;
	int rc = __pthread_mutex_trylock(m);

	if (__builtin_expect(rc != EBUSY, 1))
		return rc;
	t0 = mono_ns();
	/* Relaxed: a plain pointer set once at start; clocklock (not
	 * interposed) is the same call before then. */
	if (__atomic_load_n(&real_timedlock, __ATOMIC_RELAXED))
		rc = real_timedlock(m, abstime);
	else
		rc = pthread_mutex_clocklock(m, CLOCK_REALTIME, abstime);
	record(MUTEX, t0, __builtin_return_address(0));
	return rc;
}

/* The wait for a busy rwlock, out of line (see mutex_wait). */
static __attribute__((noinline, cold)) int rwlock_wait(pthread_rwlock_t *l,
						       int (*wait)(pthread_rwlock_t *), void *ra)
{
	uint64_t t0 = mono_ns();
	int rc = wait(l);

	record(RWLOCK, t0, ra);
	return rc;
}

/* An rwlock: a try first; only a busy lock is waited for, timed.  ra: the
 * call site, the return address of the interposed function. */
static inline int rwlock(pthread_rwlock_t *l, int (*try)(pthread_rwlock_t *),
			 int (*wait)(pthread_rwlock_t *), void *ra)
{
	int rc = try(l);

	if (__builtin_expect(rc != EBUSY, 1))
		return rc;
	return rwlock_wait(l, wait, ra);
}

static __attribute__((noinline, cold)) int rdlock_slow(pthread_rwlock_t *l, void *ra)
{
	return rwlock(l, __pthread_rwlock_tryrdlock, __pthread_rwlock_rdlock, ra);
}

/* A reader waits for a writer: while none holds the lock (__cur_writer,
 * which glibc sets once a writer has it and clears before it lets go) the
 * read lock is glibc's own, with no try first — a try costs as much as
 * the lock.  A reader held back by a writer that is only waiting (writer
 * preference) is not counted: counts are a lower bound, as for mutexes. */
int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
	/* Relaxed: a hint (see pthread_mutex_lock). */
	if (__builtin_expect(!__atomic_load_n(&l->__data.__cur_writer, __ATOMIC_RELAXED), 1))
		return __pthread_rwlock_rdlock(l);
	return rdlock_slow(l, __builtin_return_address(0));
}

int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
	return rwlock(l, __pthread_rwlock_trywrlock, __pthread_rwlock_wrlock,
		      __builtin_return_address(0));
}

/* RTM_LOCK_SAMPLE: 1 in N contended waits goes into the lock-site table
 * (1, the default: every one; 0: none).  Like Go's mutex profile fraction,
 * the counts there are scaled back up by N. */
static uint32_t lock_sample(void)
{
	unsigned long n = 1;

	rtm__env_number("RTM_LOCK_SAMPLE", 0, 1000000, "1 (every contended wait)", &n);
	return (uint32_t)n;
}

int rtm__sync_metrics_start(struct rtm_segment *seg)
{
	static const char *const kinds[KINDS] = { "mutex", "rwlock" };
	/* 1 us .. 1 s by decades, and 10 s. */
	static const double bounds[] = { 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10 };
	int rc = 0;

	{
		void *sym = dlsym(RTLD_NEXT, "pthread_mutex_timedlock");
		int (*fn)(pthread_mutex_t *, const struct timespec *);

		memcpy(&fn, &sym, sizeof fn); /* ISO C: no object-to-function cast */
		/* Relaxed: see pthread_mutex_timedlock(). */
		__atomic_store_n(&real_timedlock, fn, __ATOMIC_RELAXED);
	}
	for (int k = 0; k < KINDS; k++) {
		struct rtm_attr a = { "lock.kind", kinds[k] };

		rc |= rtm_counter_create(seg, &contentions[k], &(struct rtm_metric_def){
			.name = "runtime.native.sync.contentions", .unit = "{acquisition}",
			.description = "Lock acquisitions that had to wait (the lock was held)",
			.attrs = &a, .n_attrs = 1 });
		rc |= rtm_counter_create(seg, &wait_total[k], &(struct rtm_metric_def){
			.name = "runtime.native.sync.wait.time", .unit = "s", .is_double = 1,
			.description = "Time spent waiting for contended locks (Go: /sync/mutex/wait/total)",
			.attrs = &a, .n_attrs = 1 });
		struct rtm_metric_def wd = {
			.name = "runtime.native.sync.wait.duration", .unit = "s",
			.description = "Wait of each contended lock acquisition",
			.attrs = &a, .n_attrs = 1, .bounds = bounds,
			.n_bounds = sizeof bounds / sizeof bounds[0] };

		/* rtm's bounds, not the user's: the OTel variable decides. */
		if (rtm__default_exponential()) {
			wd.bounds = NULL;
			wd.n_bounds = 0;
			rc |= rtm_exphist_create(seg, &wait_hist[k], &wd, 0, 0);
		} else {
			rc |= rtm_hist_create(seg, &wait_hist[k], &wd);
		}
	}
	if (rc)
		return -ENOSPC;
	sites_seg = seg;
	sample_every = lock_sample();
	/* The table's page now, not at the first wait: that wait may have
	 * been for librtm's own lock, which this thread then holds. */
	if (sample_every && rtm__lock_sites_start(seg, sample_every))
		sample_every = 0; /* a full tmpfs: the metrics without the profile */
	/* Release: publishes the above; pairs with the acquire in record(). */
	__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	return 0;
}
