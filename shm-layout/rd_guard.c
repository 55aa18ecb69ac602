/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_guard.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

static __thread sigjmp_buf *guard_jmp;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous;
static bool installed;

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

void rd_guard_install(void)
{
	/* SA_NODEFER: SIGBUS stays unblocked while the handler runs, so the
	 * siglongjmp out of it needs no saved mask, and rd_guard_run() costs
	 * no system call. */
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO | SA_NODEFER }, cur;

	pthread_mutex_lock(&install_lock);
	sigaction(SIGBUS, NULL, &cur);
	if (!((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &previous);
	}
	__atomic_store_n(&installed, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&install_lock);
}

int rd_guard_run(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf jb, *outer = guard_jmp;
	volatile int rc = -EFAULT;

	/* Acquire: pairs with the release in rd_guard_install(). */
	if (!__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		rd_guard_install();
	/* savemask=0: see SA_NODEFER in rd_guard_install(). */
	if (sigsetjmp(jb, 0) == 0) {
		guard_jmp = &jb;
		rc = fn(arg);
	}
	guard_jmp = outer;
	return rc;
}
