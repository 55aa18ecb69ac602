/* SPDX-License-Identifier: MIT */
/*
 * An unmodified program (it knows nothing of rtm) for test_preload:
 *   alloc_truth N M K T   waits for a byte on stdin, allocates N blocks of
 *   M bytes, frees K of them, writes "1\n"; waits again, starts T sleeping
 *   threads, writes "2\n"; waits again and exits.
 *   alloc_truth stress    8 threads x 200000 malloc/free pairs of mixed sizes
 *   alloc_truth fork      forks; the child allocates and execs /bin/true
 *   alloc_truth exec HOW  allocates, then execs /bin/true through exec HOW
 *                         (execl, execlp, execle, execv, execvp, execvpe,
 *                         execve, fexecve, execveat); exit 127 if it fails
 * Only read(2)/write(2) for I/O: stdio would allocate behind our back.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* An allocation the compiler cannot elide (it drops a malloc its free
 * follows at once). */
static void *volatile kept;

static void allocate(size_t n)
{
	kept = malloc(n);
	free(kept);
}

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
			allocate(100);
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		allocate(200);
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (argc == 3 && !strcmp(argv[1], "exec")) {
		char *const args[] = { "true", NULL };
		const char *how = argv[2];
		int fd = open("/bin/true", O_RDONLY | O_CLOEXEC);

		allocate(300);
		if (!strcmp(how, "execl"))
			execl("/bin/true", "true", (char *)NULL);
		else if (!strcmp(how, "execlp"))
			execlp("true", "true", (char *)NULL);
		else if (!strcmp(how, "execle"))
			execle("/bin/true", "true", (char *)NULL, environ);
		else if (!strcmp(how, "execv"))
			execv("/bin/true", args);
		else if (!strcmp(how, "execvp"))
			execvp("true", args);
		else if (!strcmp(how, "execvpe"))
			execvpe("true", args, environ);
		else if (!strcmp(how, "execve"))
			execve("/bin/true", args, environ);
		else if (!strcmp(how, "fexecve"))
			fexecve(fd, args, environ);
		else if (!strcmp(how, "execveat"))
			execveat(fd, "", args, environ, AT_EMPTY_PATH);
		return 127;
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
