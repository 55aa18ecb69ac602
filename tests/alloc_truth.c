/* SPDX-License-Identifier: MIT */
/*
 * An unmodified program (it knows nothing of rtm) for test_preload:
 *   alloc_truth N M K T   waits for a byte on stdin, allocates N blocks of
 *   M bytes, frees K of them, writes "1\n"; waits again, starts T sleeping
 *   threads, writes "2\n"; waits again and exits.
 *   alloc_truth stress    8 threads x 200000 malloc/free pairs of mixed sizes
 *   alloc_truth fork      forks; the child allocates and execs /bin/true
 * Only read(2)/write(2) for I/O: stdio would allocate behind our back.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *keep[64] = { 0 };

	for (int i = 0; i < 200000; i++) {
		unsigned k = (unsigned)rand_r(&seed) % 64;

		free(keep[k]);
		keep[k] = (i % 3) ? malloc(16 + (unsigned)rand_r(&seed) % 4000) :
			  calloc(1, 32 + (unsigned)rand_r(&seed) % 100);
		if (i % 7 == 0)
			keep[k] = realloc(keep[k], 5000);
	}
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	return NULL;
}

int main(int argc, char **argv)
{
	char c;

	if (argc == 2 && !strcmp(argv[1], "stress")) {
		pthread_t t[8];

		for (int i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "fork")) {
		int st;
		pid_t pid = fork();

		if (pid == 0) {
			free(malloc(100));
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		free(malloc(200));
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (argc != 5)
		return 2;
	{
		long n = atol(argv[1]), m = atol(argv[2]), k = atol(argv[3]), nt = atol(argv[4]);
		void **blocks;
		pthread_t t;

		blocks = malloc((size_t)n * sizeof *blocks); /* before "go": not in the delta */
		if (read(0, &c, 1) != 1)
			return 1;
		for (long i = 0; i < n; i++)
			blocks[i] = malloc((size_t)m);
		for (long i = 0; i < k; i++)
			free(blocks[i]);
		if (write(1, "1\n", 2) != 2 || read(0, &c, 1) != 1)
			return 1;
		/* Threads allocate bookkeeping: after the exact phase. */
		for (long i = 0; i < nt; i++)
			pthread_create(&t, NULL, sleeper, NULL);
		if (write(1, "2\n", 2) != 2 || read(0, &c, 1) != 1)
			return 1;
	}
	return 0;
}
