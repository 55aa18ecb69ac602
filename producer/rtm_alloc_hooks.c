/* SPDX-License-Identifier: MIT */
/*
 * The malloc interposer behind librtm-preload.so and librtm-alloc.a.
 *
 * librtm-preload.so - allocator and heap metrics for an unmodified program:
 *
 *	LD_PRELOAD=librtm-preload.so ./any-program
 *
 * Opens a segment (service name from RTM_SERVICE_NAME, else
 * OTEL_SERVICE_NAME, else the executable's name) and publishes the native
 * counterparts of Go's allocation and heap metrics (docs/preload.md):
 *  - counted by interposing malloc, calloc, realloc, reallocarray, free,
 *    posix_memalign, aligned_alloc, memalign, valloc, pvalloc: allocations,
 *    frees, bytes requested, live heap bytes (malloc_usable_size) and live
 *    objects, each update a plain add on this thread's shard;
 *  - sampled from glibc's mallinfo2() (rtm_alloc.c) at start, at exit and
 *    every RTM_SAMPLE_INTERVAL_MS (default 10000): heap in use, free in
 *    arenas, releasable top pad, mmapped bytes, arena count.
 *
 * Safety: the real allocator is resolved with dlsym(RTLD_NEXT), whose own
 * allocations are served from a static bootstrap buffer; our own
 * allocations (segment open, the sampler) are never counted, via a
 * thread-local guard; allocations before the segment exists are kept in
 * process-wide atomics and folded in when it opens; after fork the child's
 * view of the segment is private (librtm's atfork), and after exec the new
 * image opens its own; _exit and abort leave a live segment whose process
 * is gone, which the reader exports and retires.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rtm.h"
#include "rtm_alloc.h"

/* ---- the real allocator ---- */

/* What malloc() and free() read on every call comes first: one cache
 * line (a busy neighbour on a shared core evicts fewer of ours). */
static _Alignas(64) struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	int header_sizes; /* 1: the glibc header formula is valid here */
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	size_t (*usable)(void *);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
} real;

/* dlsym() may allocate; while resolving, allocations come from here and
 * are never freed. */
static _Alignas(64) unsigned char boot[65536];
static size_t boot_used;
static int resolving;

/* One compare: below boot, the difference wraps past its size. */
static inline bool in_boot(const void *p)
{
	return (uintptr_t)p - (uintptr_t)boot < sizeof boot;
}

static void *boot_alloc(size_t n, size_t align)
{
	/* Relaxed: used only while resolve() runs, before the program has
	 * threads; atomic so that a misbehaving early thread cannot tear it. */
	size_t off = (__atomic_load_n(&boot_used, __ATOMIC_RELAXED) + align - 1) & ~(align - 1);

	if (off + n > sizeof boot)
		return NULL;
	__atomic_store_n(&boot_used, off + n, __ATOMIC_RELAXED);
	return boot + off;
}

/* dlsym() returns an object pointer; POSIX guarantees it converts to a
 * function pointer, which ISO C only allows through a copy. */
#define RESOLVE(fp, name)                                      \
	do {                                                   \
		void *sym_ = dlsym(RTLD_NEXT, name);           \
		memcpy(&(fp), &sym_, sizeof sym_);              \
	} while (0)

static void probe_header_sizes(void);

/* At the program's first allocator call (a program that never makes one,
 * /bin/true say, pays nothing), before any thread of its own: the next
 * allocator's functions, then its header layout. */
static void resolve(void)
{
	void *(*m)(size_t);

	/* Acquire: pairs with the release store below. */
	if (__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE) || resolving)
		return;
	resolving = 1;
	RESOLVE(real.calloc, "calloc");
	RESOLVE(real.realloc, "realloc");
	RESOLVE(real.free, "free");
	RESOLVE(real.usable, "malloc_usable_size");
	RESOLVE(m, "malloc");
	/* Release, published last: pairs with the acquire above, so a thread
	 * that sees real.malloc sees every other pointer too. */
	__atomic_store_n(&real.malloc, m, __ATOMIC_RELEASE);
	resolving = 0;
	if (m)
		probe_header_sizes();
}

/* The aligned family is rare: each is resolved at its first call, not at
 * start-up (a dlsym each, ~1 us).  Acquire/release: a thread that sees
 * the pointer sees what dlsym found; racing threads store the same. */
#define REAL_RARE(fp, name)                                            \
	__extension__({                                        \
		__typeof__(fp) f_ = __atomic_load_n(&(fp), __ATOMIC_ACQUIRE); \
		if (!f_) {                                             \
			RESOLVE(f_, name);                             \
			__atomic_store_n(&(fp), f_, __ATOMIC_RELEASE); \
		}                                                      \
		f_;                                                    \
	})

/* Acquire: pairs with the release store at the end of resolve(), so the
 * other real.* pointers are visible once this one is. */
static inline bool resolved(void)
{
	return __atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE) != NULL;
}

/* ---- usable sizes ---- */

/*
 * malloc_usable_size() checks the *next* chunk's header to be sure the
 * block is in use, a second cache miss on every free.  glibc's own layout
 * (size word just before the block; low 3 bits flags) gives the same
 * answer from the block's own header: size - 8 for a heap chunk.  It is
 * used only if it agrees with the real malloc_usable_size() on probe
 * allocations at start-up, so another allocator (jemalloc, tcmalloc) keeps
 * the real call.  A chunk of its own mapping (bit 1; 128 KiB and up, an
 * mmap each) takes the real call too: probing that case would cost a
 * start-up an mmap and a munmap, and such a block costs a system call
 * anyway.
 */

/* p's usable size from its chunk header into *n, where that is known: the
 * layout is glibc's (another allocator's block may begin its mapping: no
 * look before it otherwise) and p is a heap chunk.  false: ask the real
 * malloc_usable_size(). */
static inline bool header_usable(const void *p, size_t *n)
{
	size_t sz;

	if (__builtin_expect(!real.header_sizes, 0))
		return false;
	sz = ((const size_t *)p)[-1];
	if (__builtin_expect(sz & 2, 0))
		return false;
	*n = (sz & ~(size_t)7) - sizeof(size_t);
	return true;
}

static inline size_t usable(void *p)
{
	size_t n;

	return header_usable(p, &n) ? n : real.usable(p);
}

/* Its allocations go straight to the real allocator (real.*). */
static void probe_header_sizes(void)
{
	static const size_t sizes[] = { 1, 24, 100, 1000, 4000 };
	void *p[sizeof sizes / sizeof sizes[0]];
	int ok = 1;

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		p[i] = real.malloc(sizes[i]);
	real.header_sizes = 1;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		ok &= p[i] && usable(p[i]) == real.usable(p[i]);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		real.free(p[i]);
	real.header_sizes = ok;
}

/* ---- counting ---- */

/* A look at the heap, out of line: every RTM__ALLOC_LOOK_EVERY
 * allocations and frees of a thread. */
static __attribute__((noinline, cold)) void look(uint64_t *w)
{
	rtm__tls.alloc_busy = 1; /* mallinfo2 and malloc_info allocate */
	rtm__alloc_look(w);
	rtm__tls.alloc_busy = 0;
}

/* p came from the real allocator: callers return the bootstrap buffer's
 * blocks before they get here.  The general case; malloc() and free()
 * inline the common one. */
static void count_alloc(void *p, size_t requested)
{
	int64_t sz;
	uint64_t *w;

	if (!p || rtm__tls.alloc_busy)
		return;
	sz = (int64_t)usable(p);
	w = rtm__alloc_words();
	if (__builtin_expect(w != NULL, 1)) {
		if (__builtin_expect(rtm__alloc_words_alloc(w, requested, sz), 0))
			look(w);
		return;
	}
	rtm__tls.alloc_busy = 1; /* the slow path may allocate (a first use) */
	rtm_alloc_count(1, 0, requested, sz);
	rtm__tls.alloc_busy = 0;
}

static void count_free(void *p)
{
	int64_t sz;
	uint64_t *w;

	if (rtm__tls.alloc_busy)
		return;
	sz = (int64_t)usable(p);
	w = rtm__alloc_words();
	if (__builtin_expect(w != NULL, 1)) {
		if (__builtin_expect(rtm__alloc_words_free(w, sz), 0))
			look(w);
		return;
	}
	rtm__tls.alloc_busy = 1;
	rtm_alloc_count(0, 1, 0, -sz);
	rtm__tls.alloc_busy = 0;
}

/* ---- the interposed functions ---- */

/*
 * malloc() and free() are the calls a program makes most.  Their common
 * case — resolved, not rtm's own call, this thread's words found, a glibc
 * heap chunk — is written out below so that it calls nothing but the real
 * function (free() then needs no stack frame at all); anything else goes
 * to these out-of-line helpers, which take the general path.  Measured
 * against calling a general count_alloc/count_free: 1.30x -> 1.28x of
 * plain glibc, and with the real.* line 1.23x (rtm-bench-alloc's loop).
 */

static __attribute__((noinline)) void *malloc_first(size_t n)
{
	void *p;

	resolve();
	if (!resolved())
		return boot_alloc(n, 16);
	p = real.malloc(n);
	count_alloc(p, n);
	return p;
}

static __attribute__((noinline)) void *malloc_counted(void *p, size_t n)
{
	count_alloc(p, n);
	return p;
}

static __attribute__((noinline, cold)) void *malloc_look(void *p, uint64_t *w)
{
	look(w);
	return p;
}

void *malloc(size_t n)
{
	/* Acquire: as resolved(). */
	void *(*m)(size_t) = __atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE);
	uint64_t *w;
	size_t sz;
	void *p;

	if (__builtin_expect(!m, 0))
		return malloc_first(n);
	p = m(n);
	w = rtm__tls.alloc_words;
	if (__builtin_expect(!p || rtm__tls.alloc_busy || !w || !header_usable(p, &sz), 0))
		return malloc_counted(p, n);
	if (__builtin_expect(rtm__alloc_words_alloc(w, n, (int64_t)sz), 0))
		return malloc_look(p, w);
	return p;
}

static __attribute__((noinline)) void free_counted(void *p)
{
	if (__builtin_expect(!resolved(), 0))
		resolve();
	count_free(p);
	real.free(p);
}

static __attribute__((noinline, cold)) void free_look(void *p, uint64_t *w)
{
	look(w);
	real.free(p);
}

void free(void *p)
{
	uint64_t *w;
	size_t sz;

	if (!p || in_boot(p)) /* the bootstrap buffer's blocks are never freed */
		return;
	w = rtm__tls.alloc_words;
	if (__builtin_expect(!resolved() || rtm__tls.alloc_busy || !w || !header_usable(p, &sz), 0)) {
		free_counted(p);
		return;
	}
	if (__builtin_expect(rtm__alloc_words_free(w, (int64_t)sz), 0)) {
		free_look(p, w);
		return;
	}
	real.free(p);
}

void *calloc(size_t nmemb, size_t size)
{
	void *p;

	if (__builtin_expect(!resolved(), 0)) {
		size_t n;

		resolve();
		if (!resolved()) /* boot memory is static, hence zeroed */
			return __builtin_mul_overflow(nmemb, size, &n) ? NULL : boot_alloc(n, 16);
	}
	p = real.calloc(nmemb, size);
	count_alloc(p, nmemb * size);
	return p;
}

/* realloc counts as a free of the old block and an allocation of the new. */
void *realloc(void *p, size_t n)
{
	void *q;
	int64_t old;

	if (__builtin_expect(!resolved(), 0) || in_boot(p)) {
		resolve();
		if (in_boot(p) || !resolved()) {
			/* Move out of the bootstrap buffer (never freed). */
			q = malloc(n);
			if (q && p)
				memcpy(q, p, n < (size_t)(boot + sizeof boot - (unsigned char *)p) ?
					       n : (size_t)(boot + sizeof boot - (unsigned char *)p));
			return q;
		}
	}
	if (!p)
		return malloc(n);
	old = (int64_t)usable(p);
	q = real.realloc(p, n);
	if (rtm__tls.alloc_busy || (!q && n))
		return q;
	rtm__tls.alloc_busy = 1;
	if (q)
		rtm_alloc_count(1, 1, n, (int64_t)usable(q) - old);
	else /* realloc(p, 0) freed p */
		rtm_alloc_count(0, 1, 0, -old);
	rtm__tls.alloc_busy = 0;
	return q;
}

void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	int rc;

	resolve();
	if (!resolved()) {
		*out = boot_alloc(n, align < 16 ? 16 : align);
		return *out ? 0 : ENOMEM;
	}
	rc = REAL_RARE(real.posix_memalign, "posix_memalign")(out, align, n);
	if (!rc)
		count_alloc(*out, n);
	return rc;
}

void *aligned_alloc(size_t align, size_t n)
{
	void *p;

	resolve();
	if (!resolved())
		return boot_alloc(n, align < 16 ? 16 : align);
	p = REAL_RARE(real.aligned_alloc, "aligned_alloc")(align, n);
	count_alloc(p, n);
	return p;
}

void *memalign(size_t align, size_t n)
{
	void *p;

	resolve();
	if (!resolved())
		return boot_alloc(n, align < 16 ? 16 : align);
	p = REAL_RARE(real.memalign, "memalign")(align, n);
	count_alloc(p, n);
	return p;
}

void *valloc(size_t n)
{
	void *p;

	resolve();
	if (!resolved())
		return boot_alloc(n, 4096);
	p = REAL_RARE(real.valloc, "valloc")(n);
	count_alloc(p, n);
	return p;
}

void *pvalloc(size_t n)
{
	void *p;

	resolve();
	if (!resolved())
		return boot_alloc(n, 4096);
	p = REAL_RARE(real.pvalloc, "pvalloc")(n);
	count_alloc(p, n);
	return p;
}

size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (in_boot(p))
		return 0; /* unknown; callers only use it as a lower bound */
	resolve();
	return real.usable(p);
}

int rtm__alloc_guard(int on)
{
	int was = rtm__tls.alloc_busy;

	rtm__tls.alloc_busy = on;
	return was;
}
