/* SPDX-License-Identifier: MIT */
/*
 * leaker MODE ARG... - a process whose resources grow (or do not) in a
 * known way, for the leak detector's ground-truth tests.  Prints "ready"
 * once started, then runs until killed.
 *   heap RATE             malloc and touch RATE bytes/s in 1000-byte blocks, never free
 *   heap-mmap RATE        the same with 64 KiB anonymous mappings (RSS grows
 *                         exactly, under any sanitizer)
 *   threads RATE          start RATE threads/s that never end
 *   fds RATE              open RATE file descriptors/s, never close them
 *   steady BYTES          allocate and touch BYTES at start, then hold them
 *   sawtooth BYTES MS     allocate BYTES over MS/2 ms, free them all, wait MS/2 ms, again
 *   sawtooth-mmap BYTES MS  the same with anonymous mappings, unmapped (under a
 *                         sanitizer, whose quarantine keeps freed memory, RSS
 *                         only falls this way)
 *   once BYTES MS         after MS ms, allocate and touch BYTES once, then hold them
 *   freemost BYTES        allocate and touch BYTES, keep one block above them (so
 *                         glibc cannot give the space back by itself), free the
 *                         rest, print "freed", then hold
 * Rates are spread over ten ticks a second.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 1000

static void sleep_until(struct timespec *t, long add_ns)
{
	t->tv_nsec += add_ns;
	while (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL);
}

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Every grab ever made, so the compiler cannot drop the allocations. */
static char **volatile last_grab;

/* Allocates and touches bytes in BLOCK pieces; the pieces, for freeing. */
static char **grab(long bytes, long *n)
{
	char **p;

	*n = bytes / BLOCK;
	p = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *p);
	for (long i = 0; p && i < *n; i++) {
		p[i] = malloc(BLOCK);
		if (p[i])
			memset(p[i], 0x5a, BLOCK);
	}
	last_grab = p;
	return p;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long a = argc > 2 ? atol(argv[2]) : 0, b = argc > 3 ? atol(argv[3]) : 0, n;
	struct timespec t;

	if (a <= 0 || ((!strncmp(mode, "sawtooth", 8) || !strcmp(mode, "once")) && b <= 0)) {
		fprintf(stderr, "usage: leaker heap|heap-mmap|threads|fds|steady RATE|BYTES, "
				"or sawtooth|once BYTES MS\n");
		return 2;
	}
	if (!strcmp(mode, "steady") || !strcmp(mode, "freemost"))
		last_grab = grab(a, &n);
	printf("ready\n");
	fflush(stdout);
	if (!strcmp(mode, "freemost")) {
		char **all = last_grab, *pin = malloc(BLOCK);

		memset(pin, 1, BLOCK);
		for (long i = 0; i < n; i++)
			free(all[i]);
		free(all);
		last_grab = &pin;
		printf("freed\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (!strcmp(mode, "once")) {
		sleep_until(&t, b * 1000000L);
		grab(a, &n);
	}
	for (long tick = 0;; tick++) {
		if (!strcmp(mode, "heap")) {
			grab(a / 10, &n);
		} else if (!strcmp(mode, "heap-mmap")) {
			static long mapped;

			/* whole mappings, on schedule on average */
			for (; mapped + 65536 <= (tick + 1) * a / 10; mapped += 65536) {
				char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
					       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

				if (p != MAP_FAILED) {
					memset(p, 0x5a, 65536);
					last_grab = (char **)p;
				}
			}
		} else if (!strcmp(mode, "threads")) {
			/* a per tick, in tenths: RATE threads a second */
			for (long k = (tick + 1) * a / 10 - tick * a / 10; k > 0; k--) {
				pthread_t th;
				pthread_attr_t at;

				pthread_attr_init(&at);
				pthread_attr_setstacksize(&at, 65536);
				pthread_create(&th, &at, idle, NULL);
				pthread_attr_destroy(&at);
			}
		} else if (!strcmp(mode, "fds")) {
			for (long k = (tick + 1) * a / 10 - tick * a / 10; k > 0; k--)
				if (open("/dev/null", O_RDONLY) < 0)
					break;
		} else if (!strcmp(mode, "sawtooth-mmap")) {
			void *m[5];

			for (int k = 0; k < 5; k++) {
				m[k] = mmap(NULL, (size_t)(a / 5), PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (m[k] != MAP_FAILED)
					memset(m[k], 0x5a, (size_t)(a / 5));
				sleep_until(&t, b * 1000000L / 10);
			}
			for (int k = 0; k < 5; k++)
				if (m[k] != MAP_FAILED)
					munmap(m[k], (size_t)(a / 5));
			sleep_until(&t, b * 1000000L / 2);
			continue;
		} else if (!strcmp(mode, "sawtooth")) {
			/* Up over half the period, in five steps, then all freed. */
			char **all[5];
			long cnt[5];

			for (int s = 0; s < 5; s++) {
				all[s] = grab(a / 5, &cnt[s]);
				sleep_until(&t, b * 1000000L / 10);
			}
			for (int s = 0; s < 5; s++) {
				for (long i = 0; all[s] && i < cnt[s]; i++)
					free(all[s][i]);
				free(all[s]);
			}
			malloc_trim(0); /* so RSS falls too, not only the live heap */
			sleep_until(&t, b * 1000000L / 2);
			continue;
		}
		sleep_until(&t, 100000000L);
	}
}
