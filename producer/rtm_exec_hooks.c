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
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "rtm_alloc.h"

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[], int);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);

/* No next exec: fail as exec does (errno set, -1), rather than run on
 * without the image replaced. */
#define NO_EXEC (errno = ENOSYS, -1)

int execve(const char *path, char *const argv[], char *const envp[])
{
	RTM__REAL(execve_fn, "execve", NO_EXEC);
	rtm__alloc_before_exec();
	return real(path, argv, envp);
}

int execv(const char *path, char *const argv[])
{
	RTM__REAL(execv_fn, "execv", NO_EXEC);
	rtm__alloc_before_exec();
	return real(path, argv);
}

int execvp(const char *file, char *const argv[])
{
	RTM__REAL(execv_fn, "execvp", NO_EXEC);
	rtm__alloc_before_exec();
	return real(file, argv);
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	RTM__REAL(execve_fn, "execvpe", NO_EXEC);
	rtm__alloc_before_exec();
	return real(file, argv, envp);
}

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	RTM__REAL(execveat_fn, "execveat", NO_EXEC);
	rtm__alloc_before_exec();
	return real(dirfd, path, argv, envp, flags);
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	RTM__REAL(fexecve_fn, "fexecve", NO_EXEC);
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
