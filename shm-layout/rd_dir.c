/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rtm_shm_presence.h"

const char *rd_dir_path(const char *dir)
{
	const char *env;

	if (dir)
		return dir;
	env = getenv("RTM_DIR");
	return env && *env ? env : RD_DEFAULT_DIR;
}

bool rd_dir_is_segment_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 4 && !strcmp(name + n - 4, ".rtm");
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rd_dir_list(int dirfd, char ***out)
{
	size_t n = 0, cap = 16;
	char **names = malloc(cap * sizeof *names);
	struct dirent *de;
	DIR *d;
	int fd = dup(dirfd);

	if (!names || fd < 0) {
		free(names);
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		free(names);
		return rc;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (!rd_dir_is_segment_name(de->d_name))
			continue;
		if (n + 1 >= cap) {
			char **p = realloc(names, (cap *= 2) * sizeof *names);
			if (!p)
				break;
			names = p;
		}
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	names[n] = NULL;
	qsort(names, n, sizeof *names, cmp);
	*out = names;
	return (int)n;
}

void rd_dir_names_free(char **names)
{
	for (char **p = names; p && *p; p++)
		free(*p);
	free(names);
}

int rd_dir_presence_touch(int dirfd, int *fd, uint64_t interval_ns)
{
	struct stat st;

	/* Still the file in the directory: touching it is the heartbeat. */
	if (*fd >= 0 && !fstat(*fd, &st) && st.st_nlink > 0)
		return futimens(*fd, NULL) ? -errno : 0;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	for (int tries = 0; tries < 2; tries++) {
		int f = openat(dirfd, RTM_SHM_READER_FILE,
			       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

		if (f >= 0) {
			int err;

			fchmod(f, 0644); /* whatever the umask: producers read it */
			errno = 0;
			if (dprintf(f, "rtm-reader %d %llu\n", (int)getpid(),
				    (unsigned long long)interval_ns) >= 0) {
				*fd = f;
				return 0;
			}
			/* A full tmpfs says ENOSPC: say that, and leave no
			 * empty announcement behind. */
			err = errno ? errno : EIO;
			close(f);
			unlinkat(dirfd, RTM_SHM_READER_FILE, 0);
			return -err;
		}
		/* An earlier reader's file, or one someone planted: replace
		 * it (in a sticky directory only its owner or root can). */
		if (errno != EEXIST || unlinkat(dirfd, RTM_SHM_READER_FILE, 0))
			return -errno;
	}
	return -EEXIST;
}
