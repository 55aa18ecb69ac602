/* SPDX-License-Identifier: MIT */
/*
 * The calls a program waits in, interposed in librtm-preload.so: sleeps,
 * the poll, select and epoll families, accept, the wait family, pause and
 * the sigwait family.  A single-threaded program under the preload runs
 * rtm's code only in its allocator calls, so one that allocates, then
 * waits (a daemon in epoll_wait, a script in sleep) would never reach its
 * publish delay nor sample its heap again.  Before a wait that may outlast
 * either, rtm__alloc_may_idle() opens the segment or takes the sample, on
 * the program's own thread: no thread is started, no timeout shortened, no
 * signal sent, so no call returns early or with EINTR because of rtm.
 *
 * What each costs the program: one relaxed load and a branch while it has
 * one thread (with threads, the sampler thread does the work and the load
 * says so).  Reads of pipes, sockets and terminals are not interposed (a
 * read() hook would tax every read): a program that waits only in read()
 * is published at its next allocator call past the delay, or by its first
 * thread.  glibc's sleep() and usleep() reach nanosleep internally, so each
 * of them is interposed itself.  A call that returns at once (a zero
 * timeout, WNOHANG: what a signal handler reaps children with) does
 * nothing here; opening or sampling from a handler that interrupted malloc
 * would be as unsafe as malloc there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rtm_alloc.h"

#define FOREVER UINT64_MAX

/* The hooks' one test: whether a wait may need rtm. */
static inline int watching(void)
{
	/* Relaxed: a hint; rtm__alloc_may_idle() decides. */
	return __builtin_expect(__atomic_load_n(&rtm__alloc_idle_watch, __ATOMIC_RELAXED), 0);
}

static uint64_t ts_ns(const struct timespec *t)
{
	if (!t)
		return FOREVER;
	if (t->tv_sec < 0 || t->tv_nsec < 0)
		return 0;
	return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec;
}

static uint64_t ms_ns(int ms)
{
	return ms < 0 ? FOREVER : (uint64_t)ms * 1000000u;
}

/* A wait of the wait family blocks unless WNOHANG says not to. */
static uint64_t wait_ns(int options)
{
	return options & WNOHANG ? 0 : FOREVER;
}

/* A call that returns at once (a zero timeout, WNOHANG) is no wait. */
#define BEFORE_WAIT(timeout)                                    \
	do {                                                    \
		if (watching()) {                               \
			uint64_t t_ = (timeout);                \
			if (t_)                                 \
				rtm__alloc_may_idle(t_);        \
		}                                               \
	} while (0)

/* When there is no next definition: the call fails as a missing one would. */
#define NO_CALL (errno = ENOSYS, -1)

typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef unsigned (*sleep_fn)(unsigned);
typedef int (*usleep_fn)(useconds_t);
typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
typedef int (*select_fn)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
typedef int (*pselect_fn)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
			  const sigset_t *);
typedef int (*epoll_wait_fn)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
/* glibc declares them with its transparent union of address pointers. */
typedef int (*accept_fn)(int, __SOCKADDR_ARG, socklen_t *);
typedef int (*accept4_fn)(int, __SOCKADDR_ARG, socklen_t *, int);
typedef int (*pause_fn)(void);
typedef int (*sigsuspend_fn)(const sigset_t *);
typedef int (*sigwait_fn)(const sigset_t *, int *);
typedef int (*sigwaitinfo_fn)(const sigset_t *, siginfo_t *);
typedef int (*sigtimedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);
typedef pid_t (*wait_fn)(int *);
typedef pid_t (*waitpid_fn)(pid_t, int *, int);
typedef pid_t (*wait4_fn)(pid_t, int *, int, struct rusage *);
typedef int (*waitid_fn)(idtype_t, id_t, siginfo_t *, int);

int nanosleep(const struct timespec *req, struct timespec *rem)
{
	RTM__REAL(nanosleep_fn, "nanosleep", NO_CALL);
	BEFORE_WAIT(ts_ns(req));
	return real(req, rem);
}

int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem)
{
	RTM__REAL(clock_nanosleep_fn, "clock_nanosleep", ENOSYS);
	if (watching()) {
		uint64_t t = ts_ns(req);
		struct timespec now;

		/* An absolute time: how far ahead, on its own clock. */
		if ((flags & TIMER_ABSTIME) && t != FOREVER && !clock_gettime(clk, &now))
			t = t > ts_ns(&now) ? t - ts_ns(&now) : 0;
		BEFORE_WAIT(t);
	}
	return real(clk, flags, req, rem);
}

unsigned sleep(unsigned seconds)
{
	RTM__REAL(sleep_fn, "sleep", seconds);
	BEFORE_WAIT((uint64_t)seconds * 1000000000u);
	return real(seconds);
}

int usleep(useconds_t usec)
{
	RTM__REAL(usleep_fn, "usleep", NO_CALL);
	BEFORE_WAIT((uint64_t)usec * 1000u);
	return real(usec);
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	RTM__REAL(poll_fn, "poll", NO_CALL);
	BEFORE_WAIT(ms_ns(timeout));
	return real(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
	RTM__REAL(ppoll_fn, "ppoll", NO_CALL);
	BEFORE_WAIT(ts_ns(timeout));
	return real(fds, n, timeout, mask);
}

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout)
{
	RTM__REAL(select_fn, "select", NO_CALL);
	BEFORE_WAIT(!timeout ? FOREVER :
		    timeout->tv_sec < 0 || timeout->tv_usec < 0 ? 0 :
		    (uint64_t)timeout->tv_sec * 1000000000u + (uint64_t)timeout->tv_usec * 1000u);
	return real(n, r, w, e, timeout);
}

int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout,
	    const sigset_t *mask)
{
	RTM__REAL(pselect_fn, "pselect", NO_CALL);
	BEFORE_WAIT(ts_ns(timeout));
	return real(n, r, w, e, timeout, mask);
}

int epoll_wait(int fd, struct epoll_event *ev, int max, int timeout)
{
	RTM__REAL(epoll_wait_fn, "epoll_wait", NO_CALL);
	BEFORE_WAIT(ms_ns(timeout));
	return real(fd, ev, max, timeout);
}

int epoll_pwait(int fd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
	RTM__REAL(epoll_pwait_fn, "epoll_pwait", NO_CALL);
	BEFORE_WAIT(ms_ns(timeout));
	return real(fd, ev, max, timeout, mask);
}

/* A listening socket may be non-blocking: then the program polls it (and
 * is caught there); accept itself is taken to wait. */
int accept(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
	RTM__REAL(accept_fn, "accept", NO_CALL);
	BEFORE_WAIT(FOREVER);
	return real(fd, addr, len);
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len, int flags)
{
	RTM__REAL(accept4_fn, "accept4", NO_CALL);
	BEFORE_WAIT(FOREVER);
	return real(fd, addr, len, flags);
}

int pause(void)
{
	RTM__REAL(pause_fn, "pause", NO_CALL);
	BEFORE_WAIT(FOREVER);
	return real();
}

int sigsuspend(const sigset_t *mask)
{
	RTM__REAL(sigsuspend_fn, "sigsuspend", NO_CALL);
	BEFORE_WAIT(FOREVER);
	return real(mask);
}

int sigwait(const sigset_t *set, int *sig)
{
	RTM__REAL(sigwait_fn, "sigwait", ENOSYS);
	BEFORE_WAIT(FOREVER);
	return real(set, sig);
}

int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	RTM__REAL(sigwaitinfo_fn, "sigwaitinfo", NO_CALL);
	BEFORE_WAIT(FOREVER);
	return real(set, info);
}

int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	RTM__REAL(sigtimedwait_fn, "sigtimedwait", NO_CALL);
	BEFORE_WAIT(ts_ns(timeout));
	return real(set, info, timeout);
}

pid_t wait(int *status)
{
	RTM__REAL(wait_fn, "wait", NO_CALL);
	BEFORE_WAIT(FOREVER);
	return real(status);
}

pid_t waitpid(pid_t pid, int *status, int options)
{
	RTM__REAL(waitpid_fn, "waitpid", NO_CALL);
	BEFORE_WAIT(wait_ns(options));
	return real(pid, status, options);
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	RTM__REAL(wait4_fn, "wait4", NO_CALL);
	BEFORE_WAIT(wait_ns(options));
	return real(pid, status, options, ru);
}

int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
	RTM__REAL(waitid_fn, "waitid", NO_CALL);
	BEFORE_WAIT(wait_ns(options));
	return real(idtype, id, info, options);
}
