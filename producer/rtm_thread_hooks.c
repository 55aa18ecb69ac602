/* SPDX-License-Identifier: MIT */
/*
 * pthread_create and thrd_create, interposed: the program's first thread
 * starts the heap's sampler thread (rtm_alloc.c).  Until then a program
 * with one thread samples its heap on its own allocator calls, and stays
 * single-threaded, which keeps glibc malloc's single-thread fast path.
 * thrd_create calls glibc's pthread_create internally (not through the
 * symbol), so it is interposed too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <threads.h>

#include "rtm_alloc.h"

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
				 void *);
typedef int (*thrd_create_fn)(thrd_t *, thrd_start_t, void *);

/* Relaxed: every thread that races here stores the same value. */
void *rtm__next_symbol(void **cache, const char *name)
{
	void *sym = __atomic_load_n(cache, __ATOMIC_RELAXED);

	if (!sym) {
		int was = rtm__alloc_guard(1); /* what dlsym allocates is rtm's */

		sym = dlsym(RTLD_NEXT, name);
		rtm__alloc_guard(was);
		__atomic_store_n(cache, sym, __ATOMIC_RELAXED);
	}
	return sym;
}

int rtm__real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
			     void *arg)
{
	RTM__REAL(pthread_create_fn, "pthread_create", EAGAIN);
	return real(t, a, fn, arg);
}

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	rtm__alloc_threads_begin();
	return rtm__real_pthread_create(t, a, fn, arg);
}

int thrd_create(thrd_t *t, thrd_start_t fn, void *arg)
{
	RTM__REAL(thrd_create_fn, "thrd_create", thrd_error);
	rtm__alloc_threads_begin();
	return real(t, fn, arg);
}
