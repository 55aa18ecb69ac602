/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_guard.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>

static __thread sigjmp_buf *guard_jmp;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
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

static void install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &previous);
}

int rd_guard_run(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf jb, *outer = guard_jmp;
	volatile int rc = -EFAULT;

	pthread_once(&install_once, install);
	/* savemask=1: SIGBUS is blocked inside the handler, and siglongjmp
	 * must restore the mask or the next fault would kill us. */
	if (sigsetjmp(jb, 1) == 0) {
		guard_jmp = &jb;
		rc = fn(arg);
	}
	guard_jmp = outer;
	return rc;
}
