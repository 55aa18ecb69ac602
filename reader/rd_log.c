/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_log.h"
#include "rtm_shm_text.h"

#include <pthread.h>
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
/* The collection and export threads both log through the table. */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

static void vline(const char *fmt, va_list ap, unsigned suppressed)
{
	char raw[1024], msg[4096];

	vsnprintf(raw, sizeof raw, fmt, ap);
	/* One line with no control characters, whatever the message quotes
	 * (file names and strings from segments are anyone's). */
	rtm_shm_text_visible(raw, msg, sizeof msg);
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
	struct entry *e;
	time_t now = time(NULL);
	unsigned suppressed;
	va_list ap;

	pthread_mutex_lock(&table_mu);
	e = find(key, 1);
	if (e->last && now - e->last < RD_LOG_QUIET_S) {
		e->suppressed++;
		pthread_mutex_unlock(&table_mu);
		return;
	}
	suppressed = e->suppressed;
	e->last = now;
	e->suppressed = 0;
	pthread_mutex_unlock(&table_mu);
	va_start(ap, fmt);
	vline(fmt, ap, suppressed);
	va_end(ap);
}

void rd_log_forget(const char *key)
{
	struct entry *e;

	pthread_mutex_lock(&table_mu);
	e = find(key, 0);
	if (e)
		memset(e, 0, sizeof *e);
	pthread_mutex_unlock(&table_mu);
}
