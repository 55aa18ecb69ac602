/* SPDX-License-Identifier: MIT */
/*
 * lock_truth - contention with a known answer, for tests/test_preload.c:
 * N times, one thread holds a mutex (then a rwlock, for writing) for HOLD
 * ms while another blocks on it; the waiter times its own waits.  Before
 * and between, M uncontended lock/unlock pairs that must count nothing.
 * Prints "mutex <n> <wait_ns> rwlock <n> <wait_ns>", then holds its
 * segment until stdin closes.  The contended calls are made in
 * wait_for_mutex() and wait_for_rwlock(), the call sites that
 * rtm-shmdump --locks must name.
 * usage: lock_truth N HOLD_MS M
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_barrier_t go;
static int n, hold_ms;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The round (from 1) whose lock call the waiter, the main thread, is
 * about to make. */
static int turn;

/* Whether the waiter sleeps in round r's lock call: past its turn mark,
 * in a futex wait (/proc shows the system call a task sleeps in).  true
 * when /proc cannot tell. */
static bool waiter_blocked(int r)
{
	char path[64], buf[64];
	ssize_t len;
	int fd;

	/* Acquire: pairs with the waiter's release of its turn. */
	if (__atomic_load_n(&turn, __ATOMIC_ACQUIRE) != r)
		return false;
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		return true;
	buf[len] = '\0';
	return atoi(buf) == SYS_futex;
}

static void *holder(void *arg)
{
	struct timespec t = { hold_ms / 1000, (long)(hold_ms % 1000) * 1000000 };

	for (int i = 0; i < n; i++) {
		if (arg)
			pthread_rwlock_wrlock(&rw);
		else
			pthread_mutex_lock(&mu);
		pthread_barrier_wait(&go); /* the waiter starts waiting now */
		nanosleep(&t, NULL);
		/* Released only once the waiter sleeps on it (bounded): on a
		 * slow machine it must not come late and find the lock free,
		 * or the wait the tests count would not happen. */
		for (int k = 0; k < 10000 && !waiter_blocked(i + 1 + (arg ? n : 0)); k++)
			usleep(1000);
		if (arg)
			pthread_rwlock_unlock(&rw);
		else
			pthread_mutex_unlock(&mu);
		pthread_barrier_wait(&go); /* one round done */
	}
	return NULL;
}

/* The call sites under test: not inlined, so each is its own symbol. */
__attribute__((noinline)) static void wait_for_mutex(void)
{
	pthread_mutex_lock(&mu);
	__asm__ volatile("" ::: "memory"); /* no tail call: the site stays here */
}

__attribute__((noinline)) static void wait_for_rwlock(void)
{
	pthread_rwlock_rdlock(&rw);
	__asm__ volatile("" ::: "memory");
}

/* The waiter's side; the truth is its own clock around each call. */
static uint64_t contend(int rwlock)
{
	pthread_t t;
	uint64_t waited = 0;

	pthread_create(&t, NULL, holder, rwlock ? (void *)1 : NULL);
	for (int i = 0; i < n; i++) {
		uint64_t t0;

		pthread_barrier_wait(&go);
		usleep(1000); /* the holder surely holds it */
		/* Release: pairs with the holder's acquire in waiter_blocked(). */
		__atomic_store_n(&turn, i + 1 + (rwlock ? n : 0), __ATOMIC_RELEASE);
		t0 = now_ns();
		if (rwlock)
			wait_for_rwlock();
		else
			wait_for_mutex();
		waited += now_ns() - t0;
		if (rwlock)
			pthread_rwlock_unlock(&rw);
		else
			pthread_mutex_unlock(&mu);
		pthread_barrier_wait(&go);
	}
	pthread_join(t, NULL);
	return waited;
}

int main(int argc, char **argv)
{
	uint64_t m_ns, r_ns;
	int m;

	if (argc != 4)
		return 2;
	n = atoi(argv[1]);
	hold_ms = atoi(argv[2]);
	m = atoi(argv[3]);
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < m; i++) {
		pthread_mutex_lock(&mu);
		pthread_mutex_unlock(&mu);
		pthread_rwlock_rdlock(&rw);
		pthread_rwlock_unlock(&rw);
	}
	m_ns = contend(0);
	r_ns = contend(1);
	printf("mutex %d %llu rwlock %d %llu\n", n, (unsigned long long)m_ns, n,
	       (unsigned long long)r_ns);
	fflush(stdout);
	while (getchar() != EOF)
		;
	return 0;
}
