/* SPDX-License-Identifier: MIT */
/*
 * The OTel resource variables in a producer's environment, read once per
 * rtm_segment_open(): OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
 * ("key=value,key2=value2", values percent-decoded, as the OTel
 * specification defines it).  A value that does not decode is discarded
 * whole, as the specification says.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtm_segment_priv.h"
#include "rtm_shm_text.h"

void rtm__env_resource_free(struct rtm__env_resource *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free((char *)r->attrs[i].key);
		free((char *)r->attrs[i].value);
	}
	free(r->attrs);
	free(r->service_name);
	memset(r, 0, sizeof *r);
}

int rtm__env_resource(struct rtm__env_resource *r)
{
	const char *s = rtm__env_get("OTEL_RESOURCE_ATTRIBUTES"), *name = rtm__env_get("OTEL_SERVICE_NAME");

	memset(r, 0, sizeof *r);
	while (s && *s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		struct rtm_attr *na;
		char *k, *v;

		if (len && !eq)
			goto bad;
		if (len) {
			k = rtm_shm_percent_decode(s, (size_t)(eq - s));
			v = rtm_shm_percent_decode(eq + 1, len - (size_t)(eq - s) - 1);
			na = k && v && *k && r->n < RTM_SHM_ATTR_COUNT_MAX ?
				realloc(r->attrs, (r->n + 1) * sizeof *na) : NULL;
			if (!na) {
				free(k);
				free(v);
				goto bad;
			}
			r->attrs = na;
			/* A later duplicate of a key replaces the earlier. */
			for (size_t i = 0; i < r->n; i++)
				if (!strcmp(r->attrs[i].key, k)) {
					free((char *)r->attrs[i].key);
					free((char *)r->attrs[i].value);
					r->attrs[i] = r->attrs[--r->n];
					break;
				}
			r->attrs[r->n++] = (struct rtm_attr){ k, v };
		}
		s = comma ? comma + 1 : s + len;
	}
	if (name && *name && !(r->service_name = strdup(name)))
		goto bad;
	return 0;
bad:
	rtm__env_resource_free(r);
	if (name && *name)
		r->service_name = strdup(name);
	return -EINVAL;
}

const char *rtm__env_get(const char *name)
{
	for (char **e = environ; e && *e; e++) {
		const char *n = name, *v = *e;

		while (*n && *n == *v) {
			n++;
			v++;
		}
		if (!*n && *v == '=')
			return v + 1;
	}
	return NULL;
}

bool rtm__env_number(const char *name, unsigned long min, unsigned long max,
		     const char *fallback, unsigned long *out)
{
	const char *v = rtm__env_get(name);
	unsigned long n;
	char *end;

	if (!v || !*v)
		return false;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || *v == '-' || n < min || n > max) {
		fprintf(stderr, "librtm-preload: %s=%.32s is not a number from %lu to %lu; using %s\n",
			name, v, min, max, fallback);
		return false;
	}
	*out = n;
	return true;
}
