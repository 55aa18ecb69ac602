/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 256

struct entry {
	char key[128];
	time_t last;
	unsigned suppressed;
};

static struct entry table[SLOTS];

static void vline(const char *fmt, va_list ap, unsigned suppressed)
{
	char msg[1024];

	vsnprintf(msg, sizeof msg, fmt, ap);
	/* One line, whatever the message carries (it may quote hostile text). */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (suppressed)
		fprintf(stderr, "rtm-reader: %s (%u similar suppressed)\n", msg, suppressed);
	else
		fprintf(stderr, "rtm-reader: %s\n", msg);
}

void rd_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(fmt, ap, 0);
	va_end(ap);
}

static struct entry *find(const char *key, int create)
{
	struct entry *oldest = &table[0];

	for (int i = 0; i < SLOTS; i++) {
		if (!strncmp(table[i].key, key, sizeof table[i].key - 1))
			return &table[i];
		if (table[i].last < oldest->last)
			oldest = &table[i];
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof *oldest);
	snprintf(oldest->key, sizeof oldest->key, "%s", key);
	return oldest;
}

void rd_log_limited(const char *key, const char *fmt, ...)
{
	struct entry *e = find(key, 1);
	time_t now = time(NULL);
	va_list ap;

	if (e->last && now - e->last < RD_LOG_QUIET_S) {
		e->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vline(fmt, ap, e->suppressed);
	va_end(ap);
	e->last = now;
	e->suppressed = 0;
}

void rd_log_forget(const char *key)
{
	struct entry *e = find(key, 0);

	if (e)
		memset(e, 0, sizeof *e);
}
