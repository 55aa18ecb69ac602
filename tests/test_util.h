/* SPDX-License-Identifier: MIT */
/* Helpers shared by the cmocka tests. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <cmocka.h>

#include "rd_segment.h"
#include "rtm.h"

/* A fresh private segment directory under /tmp, removed by tu_rmdir(). */
char *tu_mkdir(void);
void tu_rmdir(char *dir);

/* Opens a producer segment in dir with small, explicit sizes. */
struct rtm_segment *tu_open(const char *dir, const char *service);

/* Opens seg's file with the reader library, asserting success. */
void tu_read(const struct rtm_segment *seg, struct rd_segment *rd);

/* Index of the metric called name with attribute key=value (NULL: any). */
int tu_find(const struct rd_segment *rd, const char *name, const char *key,
	    const char *value);

/* Reads a whole file into a malloc'd buffer. */
void *tu_slurp(const char *path, size_t *len);

/* Skips the calling test in sanitizer builds, where the malloc interposer
 * cannot be preloaded (the sanitizer runtime owns malloc). */
#define TU_SKIP_IF_SANITIZED()                                              \
	do {                                                                \
		const char *san_ = getenv("RTM_SANITIZED");                 \
		if (san_ && san_[0] == '1')                                 \
			skip();                                             \
	} while (0)

/* The allocator series a ground-truth run checks, in the order of
 * tu_alloc_delta(): mallocs, frees, bytes, live bytes, live objects. */
extern const char *const tu_alloc_names[5];

/* What allocating n blocks of m bytes (m with malloc_usable_size(m) == m)
 * and freeing k of them must add to each of tu_alloc_names. */
void tu_alloc_delta(int64_t out[5], int n, int m, int k);

/* Starts tests/alloc_truth N M K T under librtm-preload.so, publishing into
 * dir (as service, or under its executable's name when NULL).  *to is its
 * stdin, *from its stdout: see alloc_truth.c for the protocol. */
pid_t tu_start_alloc_truth(const char *dir, const char *service, int n, int m, int k,
			   int t, int *to, int *from);

/* Path of a built program, from the environment meson's test() sets. */
const char *tu_prog(const char *env);

#endif /* TEST_UTIL_H */
