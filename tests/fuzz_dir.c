/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the directory scan and one collection cycle over a
 * file any local user could plant.  The input is a file name (up to the
 * first NUL byte; '/' becomes '_') and the file's contents; the reader
 * scans the directory, collects, sees the file vanish and scans again.
 * Nothing may crash, leak or leave a source behind.  The reader's log
 * goes to stderr (rate limited, as in production).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_collect.h"
#include "rd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rd_config cfg;
static struct rd_reader reader;
static int dirfd_ = -1;

static char dir[] = "/tmp/rtm-fuzz-dir.XXXXXX";

static void cleanup(void)
{
	char cmd[64];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {
		/* best effort */
	}
}

static void setup(void)
{
	char *argv[] = { "rtm-reader", "--dir", dir, "--exporter", "none", "--once", NULL };
	char err[256];

	if (!mkdtemp(dir) || rd_config_load(&cfg, 6, argv, err, sizeof err) ||
	    rd_reader_init(&reader, &cfg, err, sizeof err)) {
		fprintf(stderr, "fuzz_dir: setup: %s\n", err);
		abort();
	}
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size < 256 ? size : 256);
	size_t n = nul ? (size_t)(nul - data) : 0;
	char name[256];
	int fd;

	if (dirfd_ < 0)
		setup();
	if (!n || (n == 1 && data[0] == '.') || (n == 2 && !memcmp(data, "..", 2)))
		return 0;
	for (size_t i = 0; i < n; i++)
		name[i] = data[i] == '/' ? '_' : (char)data[i];
	name[n] = '\0';
	fd = openat(dirfd_, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (write(fd, nul + 1, size - n - 1) < 0) {
		/* a short image is as good an input as any */
	}
	close(fd);
	rd_reader_scan(&reader);
	rd_reader_cycle(&reader);
	unlinkat(dirfd_, name, 0);
	rd_reader_scan(&reader);
	rd_reader_cycle(&reader);
	if (reader.sources) {
		fprintf(stderr, "fuzz_dir: a source outlived its file\n");
		abort();
	}
	rd_reader_forget_rejected(&reader);
	return 0;
}
