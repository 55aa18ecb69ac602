/* SPDX-License-Identifier: MIT */
/*
 * The exec family, interposed in librtm-preload.so: an image that execs
 * before its deferred segment was published (rtm_preload.c) would take
 * what it counted with it, so it publishes first when a reader is attached
 * (rtm__alloc_before_exec).  glibc's execl, execv and execvp reach the
 * system call internally, not through these symbols, so each is
 * interposed; posix_spawn and system() exec in a new process, whose copy
 * of the segment is never published (its pid is not the header's).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "rtm_alloc.h"

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);

/* The next definition of name after ours, cached; NULL sets errno (the
 * call then fails as exec does, rather than running without the image
 * replaced).  Relaxed: every thread that races here stores the same
 * value. */
static void *next(void **cache, const char *name)
{
	void *sym = __atomic_load_n(cache, __ATOMIC_RELAXED);

	if (!sym) {
		sym = dlsym(RTLD_NEXT, name);
		__atomic_store_n(cache, sym, __ATOMIC_RELAXED);
	}
	if (!sym)
		errno = ENOSYS;
	return sym;
}

/* dlsym returns an object pointer; POSIX lets it become a function
 * pointer through a copy. */
#define REAL(type, name)                                  \
	static void *cache_;                              \
	void *sym_ = next(&cache_, name);                 \
	type real;                                        \
	if (!sym_)                                        \
		return -1;                                \
	memcpy(&real, &sym_, sizeof real)

int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve_fn, "execve");
	rtm__alloc_before_exec();
	return real(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
	REAL(execv_fn, "execv");
	rtm__alloc_before_exec();
	return real(path, argv);
}

int execvp(const char *file, char *const argv[])
{
	REAL(execv_fn, "execvp");
	rtm__alloc_before_exec();
	return real(file, argv);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execve_fn, "execvpe");
	rtm__alloc_before_exec();
	return real(file, argv, envp);
}

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	REAL(execveat_fn, "execveat");
	rtm__alloc_before_exec();
	return real(dirfd, path, argv, envp, flags);
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	REAL(fexecve_fn, "fexecve");
	rtm__alloc_before_exec();
	return real(fd, argv, envp);
}

/* The list forms, as glibc builds them: count the arguments, then an
 * array on the stack (the kernel bounds their number). */
#define ARGV_FROM_LIST(first, after, argv)                          \
	size_t n_ = 1;                                              \
	va_list ap_;                                                \
	va_start(ap_, after);                                       \
	while (va_arg(ap_, const char *))                           \
		n_++;                                               \
	va_end(ap_);                                                \
	const char *argv[n_ + 1];                                   \
	argv[0] = first;                                            \
	va_start(ap_, after);                                       \
	for (size_t i_ = 1; i_ <= n_; i_++)                         \
		argv[i_] = va_arg(ap_, const char *)

int execl(const char *path, const char *arg, ...)
{
	ARGV_FROM_LIST(arg, arg, argv);
	va_end(ap_);
	return execv(path, (char *const *)argv);
}

int execlp(const char *file, const char *arg, ...)
{
	ARGV_FROM_LIST(arg, arg, argv);
	va_end(ap_);
	return execvp(file, (char *const *)argv);
}

int execle(const char *path, const char *arg, ...)
{
	char *const *envp;

	ARGV_FROM_LIST(arg, arg, argv);
	envp = va_arg(ap_, char *const *); /* after the NULL */
	va_end(ap_);
	return execve(path, (char *const *)argv, envp);
}
