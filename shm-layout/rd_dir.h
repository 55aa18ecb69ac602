/* SPDX-License-Identifier: MIT */
/* rd_dir.h - where segments live and which names in it are segments. */
#ifndef RD_DIR_H
#define RD_DIR_H

#include <stdbool.h>
#include <stdint.h>

#define RD_DEFAULT_DIR "/dev/shm/rtm"

/* The segment directory: dir if given, else $RTM_DIR, else the default. */
const char *rd_dir_path(const char *dir);

/* A published segment name: "*.rtm", not hidden (temporaries are). */
bool rd_dir_is_segment_name(const char *name);

/* Lists segment names in the open directory dirfd, sorted.  *names is a
 * NULL-terminated array to free with rd_dir_names_free().  Returns the count
 * or -errno. */
int rd_dir_list(int dirfd, char ***names);
void rd_dir_names_free(char **names);

/* Announces this reader in dirfd (RTM_SHM_READER_FILE, see
 * rtm_shm_presence.h): creates the file on the first call (replacing any
 * other, which only root or its owner could have made) and touches it on
 * later ones.  *fd caches the file (-1 at first).  Returns 0 or -errno. */
int rd_dir_presence_touch(int dirfd, int *fd, uint64_t interval_ns);

#endif /* RD_DIR_H */
