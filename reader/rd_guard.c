/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_guard.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>

static __thread sigjmp_buf *guard_jmp;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = guard_jmp;

	if (jb) {
		guard_jmp = NULL;
		siglongjmp(*jb, 1);
	}
	/* Not ours: behave as if we had never been installed. */
	if (previous.sa_flags & SA_SIGINFO && previous.sa_sigaction) {
		previous.sa_sigaction(sig, si, uc);
		return;
	}
	if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
	    previous.sa_handler) {
		previous.sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

/* (Re)installs the handler when something else (a test harness, another
 * library) has replaced it since; one sigaction() call when nothing did. */
static void install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO }, cur;

	sigaction(SIGBUS, NULL, &cur);
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)
		return;
	sigemptyset(&sa.sa_mask);
	pthread_mutex_lock(&install_lock);
	sigaction(SIGBUS, &sa, &previous);
	pthread_mutex_unlock(&install_lock);
}

int rd_guard_run(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf jb, *outer = guard_jmp;
	volatile int rc = -EFAULT;

	install();
	/* savemask=1: SIGBUS is blocked inside the handler, and siglongjmp
	 * must restore the mask or the next fault would kill us. */
	if (sigsetjmp(jb, 1) == 0) {
		guard_jmp = &jb;
		rc = fn(arg);
	}
	guard_jmp = outer;
	return rc;
}
