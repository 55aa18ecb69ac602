/* SPDX-License-Identifier: MIT */
/* Opening and validating a segment: everything that decides whether a file
 * is a segment we can trust the shape of. */
#define _GNU_SOURCE
#include "rd_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rd_guard.h"
#include "rd_pidns.h"
#include "rd_proc.h"
#include "rtm_shm_text.h"

static int fail(struct rd_segment *s, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct rd_segment *s, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return rc;
}

const char *rd_kind_name(uint8_t kind)
{
	switch (kind) {
	case RTM_SHM_KIND_COUNTER: return "counter";
	case RTM_SHM_KIND_UPDOWN: return "updowncounter";
	case RTM_SHM_KIND_GAUGE: return "gauge";
	case RTM_SHM_KIND_HISTOGRAM: return "histogram";
	case RD_KIND_EXPHIST: return "exponential_histogram";
	}
	return "unknown";
}

/* [off, off+len) lies inside [lo, hi)?  64-bit math: no wraparound. */
static bool inside(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off <= hi && len <= hi - off;
}

static void free_attrs(struct rd_attr *a, uint32_t n)
{
	for (uint32_t i = 0; a && i < n; i++) {
		free(a[i].key);
		free(a[i].value);
	}
	free(a);
}

static void free_metrics(struct rd_segment *s)
{
	for (uint32_t i = 0; s->metrics && i < s->n_metrics; i++) {
		struct rd_metric *m = &s->metrics[i];

		free(m->name);
		free(m->unit);
		free(m->description);
		free_attrs(m->attrs, m->n_attrs);
		free(m->bounds);
	}
	free(s->metrics);
	s->metrics = NULL;
	s->n_metrics = 0;
}

/* Copies a checked string of the string region (len <= 1023) into a new
 * NUL-terminated buffer.  The shared bytes are read before the allocation,
 * so a SIGBUS cannot leak it. */
static char *copy_str(const struct rd_segment *s, uint32_t off, uint32_t len)
{
	char tmp[RTM_SHM_DESCRIPTION_MAX + 1], *p;

	memcpy(tmp, s->base + off, len);
	p = malloc((size_t)len + 1);
	if (p) {
		memcpy(p, tmp, len); /* may hold a NUL: the validators refuse it */
		p[len] = '\0';
	}
	return p;
}

/*
 * Decodes count "key\0value\0" pairs from [off, off+len) of the string
 * region.  The bytes are copied out first so that the producer cannot change
 * them between the check and the use.
 */
static int parse_attrs(struct rd_segment *s, const char *what, uint32_t off,
		       uint32_t len, uint32_t count, struct rd_attr **out)
{
	const struct rtm_shm_header *h = &s->hdr;
	char buf[RTM_SHM_ATTRS_MAX];
	struct rd_attr *a;
	uint32_t pos = 0;

	*out = NULL;
	if (count > RTM_SHM_ATTR_COUNT_MAX || len > RTM_SHM_ATTRS_MAX)
		return fail(s, -EBADMSG, "%s: %u attributes in %u bytes exceed limits",
			    what, count, len);
	if (!inside(off, len, h->strings_offset,
		    (uint64_t)h->strings_offset + h->strings_size))
		return fail(s, -EBADMSG, "%s: attributes at %u+%u outside string region",
			    what, off, len);
	if (!count && len)
		return fail(s, -EBADMSG, "%s: attribute bytes without attributes", what);
	memcpy(buf, s->base + off, len);
	a = calloc(count ? count : 1, sizeof *a);
	if (!a)
		return fail(s, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < count; i++) {
		for (int part = 0; part < 2; part++) {
			char *nul = memchr(buf + pos, '\0', len - pos);
			size_t n;

			if (!nul) {
				free_attrs(a, count);
				return fail(s, -EBADMSG, "%s: attribute %u runs past its %u bytes",
					    what, i, len);
			}
			n = (size_t)(nul - (buf + pos));
			if ((part == 0 && n == 0) || !rtm_shm_utf8_valid(buf + pos, n)) {
				free_attrs(a, count);
				return fail(s, -EBADMSG, "%s: attribute %u has an empty key or invalid UTF-8",
					    what, i);
			}
			if (part == 0)
				a[i].key = strdup(buf + pos);
			else
				a[i].value = strdup(buf + pos);
			pos += (uint32_t)n + 1;
		}
		if (!a[i].key || !a[i].value) {
			free_attrs(a, count);
			return fail(s, -ENOMEM, "out of memory");
		}
	}
	if (pos != len) {
		free_attrs(a, count);
		return fail(s, -EBADMSG, "%s: %u stray bytes after the attributes",
			    what, len - pos);
	}
	*out = a;
	return 0;
}

static uint32_t limit_series = RD_LIMIT_SERIES_DEFAULT;
static uint64_t limit_strings = RD_LIMIT_STRINGS_DEFAULT;

void rd_segment_set_limits(uint32_t series, uint64_t string_bytes)
{
	limit_series = series ? series : RD_LIMIT_SERIES_DEFAULT;
	limit_strings = string_bytes ? string_bytes : RD_LIMIT_STRINGS_DEFAULT;
}

static int check_str(struct rd_segment *s, uint32_t i, const char *what,
		     uint32_t off, uint32_t len, uint32_t max)
{
	const struct rtm_shm_header *h = &s->hdr;

	if (len > max)
		return fail(s, -EBADMSG, "metric %u: %s length %u exceeds %u", i,
			    what, len, max);
	if (!inside(off, len, h->strings_offset,
		    (uint64_t)h->strings_offset + h->strings_size))
		return fail(s, -EBADMSG, "metric %u: %s at %u+%u outside string region",
			    i, what, off, len);
	return 0;
}

static int parse_desc(struct rd_segment *s, uint32_t i, struct rd_metric *m)
{
	const struct rtm_shm_header *h = &s->hdr;
	struct rtm_shm_desc d;
	uint32_t need, align;
	char what[32];
	int rc;

	/* One copy: every check below and every use after it sees these bytes,
	 * whatever the producer writes meanwhile. */
	memcpy(&d, s->base + h->desc_offset + (size_t)i * h->desc_size, sizeof d);
	if (d.kind < RTM_SHM_KIND_COUNTER || d.kind > RTM_SHM_KIND_HISTOGRAM)
		return fail(s, -EBADMSG, "metric %u: unknown kind %u", i, d.kind);
	if (d.value_type != RTM_SHM_VALUE_INT && d.value_type != RTM_SHM_VALUE_DOUBLE)
		return fail(s, -EBADMSG, "metric %u: unknown value type %u", i,
			    d.value_type);
	if (d.kind == RTM_SHM_KIND_HISTOGRAM && (d.flags & RTM_SHM_DESC_EXPONENTIAL)) {
		if (d.value_type != RTM_SHM_VALUE_DOUBLE || d.bound_count ||
		    d.exp_size < 4 || d.exp_size > RTM_SHM_EXP_SIZE_MAX ||
		    d.exp_max_scale < RTM_SHM_EXP_SCALE_MIN || d.exp_max_scale > RTM_SHM_EXP_SCALE_MAX)
			return fail(s, -EBADMSG, "metric %u: exponential histogram with value type %u, "
				    "%u bounds, %u buckets a sign and scale %d", i, d.value_type,
				    d.bound_count, d.exp_size, d.exp_max_scale);
		need = RTM_SHM_EXPHIST_SLOT_SIZE(d.exp_size);
		align = RTM_SHM_CACHELINE;
	} else if (d.kind == RTM_SHM_KIND_HISTOGRAM) {
		if (d.value_type != RTM_SHM_VALUE_DOUBLE || d.bound_count > RTM_SHM_BOUNDS_MAX)
			return fail(s, -EBADMSG, "metric %u: histogram with value type %u and %u bounds",
				    i, d.value_type, d.bound_count);
		need = RTM_SHM_HIST_SLOT_SIZE(d.bound_count);
		align = RTM_SHM_CACHELINE;
	} else {
		if (d.bound_count)
			return fail(s, -EBADMSG, "metric %u: %u bounds on a %s", i,
				    d.bound_count, rd_kind_name(d.kind));
		need = 8;
		align = 8;
	}
	if (d.slot_size < need || d.slot_offset % align ||
	    !inside(d.slot_offset, d.slot_size, 0, h->shard_size))
		return fail(s, -EBADMSG, "metric %u: slot %u+%u invalid for shard size %u",
			    i, d.slot_offset, d.slot_size, h->shard_size);
	if ((rc = check_str(s, i, "name", d.name_off, d.name_len, RTM_SHM_NAME_MAX)) ||
	    (rc = check_str(s, i, "unit", d.unit_off, d.unit_len, RTM_SHM_UNIT_MAX)) ||
	    (rc = check_str(s, i, "description", d.description_off, d.description_len,
			    RTM_SHM_DESCRIPTION_MAX)))
		return rc;
	{
		/* Before anything is copied: past the limit, this and every
		 * later series are left out (1 tells parse_table). */
		uint64_t cost = (uint64_t)d.name_len + d.unit_len + d.description_len +
				(d.attrs_len <= RTM_SHM_ATTRS_MAX ? d.attrs_len : 0) +
				(uint64_t)d.bound_count * 8;

		if (s->string_bytes + cost > limit_strings)
			return 1;
		s->string_bytes += cost;
	}
	m->kind = d.kind == RTM_SHM_KIND_HISTOGRAM && (d.flags & RTM_SHM_DESC_EXPONENTIAL) ?
		RD_KIND_EXPHIST : d.kind;
	m->exp_size = m->kind == RD_KIND_EXPHIST ? d.exp_size : 0;
	m->exp_scale = m->kind == RD_KIND_EXPHIST ? d.exp_max_scale : 0;
	m->no_sum = m->kind == RD_KIND_EXPHIST && (d.flags & RTM_SHM_DESC_NO_SUM);
	m->value_type = d.value_type;
	m->slot_offset = d.slot_offset;
	m->start_unix_nano = d.start_unix_nano;
	m->name = copy_str(s, d.name_off, d.name_len);
	m->unit = copy_str(s, d.unit_off, d.unit_len);
	m->description = copy_str(s, d.description_off, d.description_len);
	if (!m->name || !m->unit || !m->description)
		return fail(s, -ENOMEM, "out of memory");
	/* Validate the copies, not the shared bytes. */
	if (!rtm_shm_name_valid(m->name, d.name_len))
		return fail(s, -EBADMSG, "metric %u: invalid instrument name", i);
	if (!rtm_shm_unit_valid(m->unit, d.unit_len))
		return fail(s, -EBADMSG, "metric %u (%s): invalid unit", i, m->name);
	if (!rtm_shm_utf8_valid(m->description, d.description_len))
		return fail(s, -EBADMSG, "metric %u (%s): description is not UTF-8", i,
			    m->name);
	snprintf(what, sizeof what, "metric %u", i);
	rc = parse_attrs(s, what, d.attrs_off, d.attrs_len, d.attr_count, &m->attrs);
	if (rc)
		return rc;
	m->n_attrs = d.attr_count;
	if (d.bound_count) {
		if (d.bounds_off % 8 ||
		    !inside(d.bounds_off, (uint64_t)d.bound_count * 8, h->strings_offset,
			    (uint64_t)h->strings_offset + h->strings_size))
			return fail(s, -EBADMSG, "metric %u (%s): bounds at %u outside string region",
				    i, m->name, d.bounds_off);
		m->bounds = malloc((size_t)d.bound_count * sizeof(double));
		if (!m->bounds)
			return fail(s, -ENOMEM, "out of memory");
		memcpy(m->bounds, s->base + d.bounds_off, (size_t)d.bound_count * 8);
		m->n_bounds = d.bound_count;
		for (uint32_t b = 0; b < m->n_bounds; b++)
			if (!isfinite(m->bounds[b]) || (b && !(m->bounds[b] > m->bounds[b - 1])))
				return fail(s, -EBADMSG,
					    "metric %u (%s): bounds not finite and strictly increasing",
					    i, m->name);
	}
	return 0;
}

static int parse_table(void *arg)
{
	struct rd_segment *s = arg;
	const struct rtm_shm_header *sh = (const struct rtm_shm_header *)(const void *)s->base;
	uint64_t gen;
	uint32_t count;
	int rc;

	/* Acquire, paired with the producer's release increments: the entries
	 * counted by the desc_count we load next are complete. */
	gen = __atomic_load_n(&sh->generation, __ATOMIC_ACQUIRE);
	count = __atomic_load_n(&sh->desc_count, __ATOMIC_ACQUIRE);
	if (count > s->hdr.desc_capacity)
		return fail(s, -EBADMSG, "desc_count %u exceeds capacity %u", count,
			    s->hdr.desc_capacity);
	free_metrics(s);
	s->n_left_out = count > limit_series ? count - limit_series : 0;
	count -= s->n_left_out;
	s->string_bytes = 0;
	s->metrics = calloc(count ? count : 1, sizeof *s->metrics);
	if (!s->metrics)
		return fail(s, -ENOMEM, "out of memory");
	s->n_metrics = count;
	for (uint32_t i = 0; i < count; i++) {
		rc = parse_desc(s, i, &s->metrics[i]);
		if (rc == 1) {
			/* Nothing of metric i was copied yet. */
			s->n_left_out += count - i;
			s->n_metrics = i;
			break;
		}
		if (rc)
			return rc;
	}
	s->generation = gen;
	return 0;
}

/* 1.1's lock-site table, when the header announces one: a region of its
 * own like the others. */
static int check_sites(struct rd_segment *s, uint64_t desc_end, uint64_t str_end,
		       uint64_t data_end)
{
	const struct rtm_shm_header *h = &s->hdr;
	uint64_t end = (uint64_t)h->sites_offset +
		       (uint64_t)h->sites_capacity * sizeof(struct rtm_shm_lock_site);

	if (!(h->compat_features & RTM_SHM_COMPAT_LOCK_SITES))
		return 0;
	if (!h->sites_capacity || h->sites_capacity > RTM_SHM_LOCK_SITES_MAX ||
	    h->sites_offset % RTM_SHM_CACHELINE)
		return fail(s, -EBADMSG, "lock-site table: %u entries at %u invalid",
			    h->sites_capacity, h->sites_offset);
	if (h->sites_offset < h->header_size || end > h->segment_size)
		return fail(s, -EBADMSG, "lock-site table outside the segment");
	if (!(end <= h->desc_offset || desc_end <= h->sites_offset) ||
	    !(end <= h->strings_offset || str_end <= h->sites_offset) ||
	    !(end <= h->data_offset || data_end <= h->sites_offset))
		return fail(s, -EBADMSG, "lock-site table overlaps another region");
	return 0;
}

static int check_regions(struct rd_segment *s)
{
	const struct rtm_shm_header *h = &s->hdr;
	uint64_t size = h->segment_size;
	uint64_t desc_end = (uint64_t)h->desc_offset + (uint64_t)h->desc_capacity * h->desc_size;
	uint64_t str_end = (uint64_t)h->strings_offset + h->strings_size;
	uint64_t data_end = (uint64_t)h->data_offset + (uint64_t)h->shard_count * h->shard_size;

	if (h->header_size < RTM_SHM_HEADER_SIZE || h->header_size % 8 ||
	    h->header_size > size)
		return fail(s, -EBADMSG, "header_size %u invalid", h->header_size);
	if (h->desc_size < RTM_SHM_DESC_SIZE || h->desc_size % 8 || h->desc_size > 4096)
		return fail(s, -EBADMSG, "desc_size %u invalid", h->desc_size);
	if (h->desc_capacity > 1u << 20)
		return fail(s, -EBADMSG, "desc_capacity %u too large", h->desc_capacity);
	if (h->shard_count < 1 || h->shard_count > RTM_SHM_SHARDS_MAX)
		return fail(s, -EBADMSG, "shard_count %u outside 1..%u", h->shard_count,
			    RTM_SHM_SHARDS_MAX);
	if (!h->shard_size || h->shard_size % RTM_SHM_CACHELINE ||
	    h->data_offset % RTM_SHM_CACHELINE)
		return fail(s, -EBADMSG, "data region not 64-byte aligned");
	if (desc_end > size || str_end > size || data_end > size ||
	    h->desc_offset < h->header_size || h->strings_offset < h->header_size ||
	    h->data_offset < h->header_size)
		return fail(s, -EBADMSG, "regions exceed the %llu-byte segment",
			    (unsigned long long)size);
	/* No two regions may overlap: a producer writing one must never be
	 * read as another. */
	if (!(desc_end <= h->strings_offset || str_end <= h->desc_offset) ||
	    !(desc_end <= h->data_offset || data_end <= h->desc_offset) ||
	    !(str_end <= h->data_offset || data_end <= h->strings_offset))
		return fail(s, -EBADMSG, "regions overlap");
	return check_sites(s, desc_end, str_end, data_end);
}

static int check_header(struct rd_segment *s)
{
	struct rtm_shm_header *h = &s->hdr;
	size_t sn;
	int rc;

	if (s->size < sizeof *h)
		return fail(s, -EBADMSG, "truncated: %zu bytes, a header needs %zu",
			    s->size, sizeof *h);
	memcpy(h, s->base, sizeof *h);
	if (h->magic == RTM_SHM_MAGIC_SWAPPED)
		return fail(s, -EBADMSG,
			    "byte-order mismatch: segment written on a host of the other endianness");
	if (h->magic != RTM_SHM_MAGIC)
		return fail(s, -EBADMSG, "bad magic 0x%08x: not an rtm segment", h->magic);
	if (h->major != RTM_SHM_MAJOR)
		return fail(s, -EPROTONOSUPPORT,
			    "unsupported layout %u.%u (this reader reads %u.x)", h->major,
			    h->minor, RTM_SHM_MAJOR);
	if (h->incompat_features & ~RTM_SHM_INCOMPAT_KNOWN)
		return fail(s, -EPROTONOSUPPORT, "unknown incompatible features 0x%x",
			    h->incompat_features);
	if (h->segment_size > s->size)
		return fail(s, -EBADMSG, "truncated: header says %llu bytes, file has %zu",
			    (unsigned long long)h->segment_size, s->size);
	rc = check_regions(s);
	if (rc)
		return rc;
	if (h->state == RTM_SHM_STATE_INIT)
		return fail(s, -EAGAIN, "segment is still initialising");
	if (h->state > RTM_SHM_STATE_CLOSED)
		return fail(s, -EBADMSG, "unknown state %u", h->state);
	sn = strnlen(h->service_name, sizeof h->service_name);
	if (sn == 0 || sn == sizeof h->service_name ||
	    !rtm_shm_utf8_valid(h->service_name, sn))
		return fail(s, -EBADMSG, "service_name missing, unterminated or not UTF-8");
	sn = strnlen(h->service_version, sizeof h->service_version);
	if (sn == sizeof h->service_version || !rtm_shm_utf8_valid(h->service_version, sn))
		return fail(s, -EBADMSG, "service_version unterminated or not UTF-8");
	sn = strnlen(h->producer, sizeof h->producer);
	if (sn == sizeof h->producer || !rtm_shm_utf8_valid(h->producer, sn))
		return fail(s, -EBADMSG, "producer unterminated or not UTF-8");
	if (h->pid <= 0)
		return fail(s, -EBADMSG, "invalid pid %d", h->pid);
	rc = parse_attrs(s, "resource", h->resource_attrs_off, h->resource_attrs_len,
			 h->resource_attr_count, &s->resource);
	if (rc)
		return rc;
	s->n_resource = h->resource_attr_count;
	return 0;
}

static int parse_all(void *arg)
{
	struct rd_segment *s = arg;
	int rc = check_header(s);

	return rc ? rc : parse_table(s);
}

static int guarded(struct rd_segment *s, int (*fn)(void *))
{
	int rc = rd_guard_run(fn, s);

	if (rc == -EFAULT)
		return fail(s, rc, "segment shrank while being read (SIGBUS)");
	return rc;
}

/* A failed open: release what it took, but keep its error for the caller. */
static void close_keeping_error(struct rd_segment *s)
{
	char err[sizeof s->err];

	memcpy(err, s->err, sizeof err);
	rd_segment_close(s);
	memcpy(s->err, err, sizeof err);
}

int rd_segment_parse_mem(struct rd_segment *s, const void *buf, size_t len)
{
	int rc;

	memset(s, 0, sizeof *s);
	s->fd = -1;
	s->liveness = RD_UNKNOWN;
	s->base = buf;
	s->size = len;
	s->path = "(memory)";
	rc = guarded(s, parse_all);
	if (rc)
		close_keeping_error(s);
	return rc;
}

/* uid (in pid's user namespace) as the reader's user namespace sees it,
 * through <root>/<pid>/uid_map; -1 when it maps to nothing here, -2 when
 * the map cannot be read (the process is exiting). */
static long long map_uid(pid_t pid, uint32_t uid)
{
	char buf[4096], *save = NULL;
	ssize_t n = rd_proc_read(pid, "uid_map", buf, sizeof buf);

	if (n <= 0)
		return -2;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long in, out, count;

		if (sscanf(line, "%llu %llu %llu", &in, &out, &count) == 3 && uid >= in &&
		    uid - in < count)
			return (long long)(out + (uid - in));
	}
	return -1;
}

/* Who may publish for whom.  The file's owner is what the kernel attests;
 * the header's uid must name the same user (in the producer's own user
 * namespace, mapped out through the process's uid_map when that is not
 * ours).  While a process with the identity the header claims runs, every
 * uid it holds (real, effective, saved) must be the file's owner, and it
 * must live in the pid and user namespaces the header names: no user, in a
 * container or not, can plant metrics in the name of another user's
 * process.  A pid now held by a process started at another time is a stale
 * segment of an earlier process only when the same user owns both, else
 * anyone could pass off a file as a dead predecessor of any live pid. */
static int check_owner(struct rd_segment *s)
{
	const struct rtm_shm_header *h = &s->hdr;
	bool own_userns = !h->userns_ino || h->userns_ino == rd_userns_self();
	uid_t real, eff, saved;
	char buf[4096];
	ssize_t n;
	enum rd_liveness l;

	if (own_userns && s->st.st_uid != h->uid)
		return fail(s, -EPERM, "foreign owner: file uid %u, header claims uid %u",
			    (unsigned)s->st.st_uid, h->uid);
	l = rd_segment_liveness(s);
	if (l != RD_ALIVE && l != RD_PID_REUSED)
		return 0;
	n = rd_proc_read(s->proc_pid, "status", buf, sizeof buf);
	if (n < 0 || rd_proc_parse_uids(buf, (size_t)n, &real, &eff, &saved))
		return 0; /* it exited meanwhile */
	if (real != s->st.st_uid || eff != s->st.st_uid || saved != s->st.st_uid)
		return fail(s, -EPERM, l == RD_ALIVE ?
			    "foreign owner: file uid %u, pid %d runs as uid %u (effective %u, saved %u)" :
			    "foreign owner: file uid %u names pid %d, now a process of uid %u "
			    "(effective %u, saved %u) started at another time",
			    (unsigned)s->st.st_uid, h->pid, (unsigned)real, (unsigned)eff,
			    (unsigned)saved);
	/* A process that is exiting has no namespaces left to show (its
	 * links vanish before it does): then it is an ended producer's file,
	 * like one whose status could not be read above. */
	if (l == RD_ALIVE && h->userns_ino) {
		uint64_t there = rd_ns_inode(s->proc_pid, "user");

		if (there && there != h->userns_ino)
			return fail(s, -EPERM, "claims user namespace %llu, pid %d is in %llu",
				    (unsigned long long)h->userns_ino, h->pid,
				    (unsigned long long)there);
	}
	if (l == RD_ALIVE && !own_userns) {
		long long mapped = map_uid(s->proc_pid, h->uid);

		if (mapped != -2 && mapped != (long long)s->st.st_uid)
			return fail(s, -EPERM, "foreign owner: header uid %u is uid %lld outside its "
				    "user namespace, file uid %u", h->uid, mapped,
				    (unsigned)s->st.st_uid);
	}
	return 0;
}

int rd_segment_open(struct rd_segment *s, int dirfd, const char *name,
		    unsigned flags)
{
	void *map;
	int rc;

	memset(s, 0, sizeof *s);
	s->fd = -1;
	s->liveness = RD_UNKNOWN;
	s->path = name;
	/* O_NONBLOCK: a FIFO planted under a segment name must not hang us. */
	s->fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
		       O_NOCTTY);
	if (s->fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			return fail(s, rc, "is a symbolic link");
		return fail(s, rc, "open: %s", strerror(-rc));
	}
	if (fstat(s->fd, &s->st)) {
		rc = fail(s, -errno, "fstat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(s->st.st_mode)) {
		rc = fail(s, -EINVAL, "not a regular file");
		goto out;
	}
	if (s->st.st_nlink != 1) {
		rc = fail(s, -EPERM, "has %lu hard links (must be 1)",
			  (unsigned long)s->st.st_nlink);
		goto out;
	}
	if (s->st.st_size < (off_t)RTM_SHM_HEADER_SIZE) {
		rc = fail(s, -EBADMSG, "truncated: %lld bytes, a header needs %u",
			  (long long)s->st.st_size, RTM_SHM_HEADER_SIZE);
		goto out;
	}
	if (s->st.st_size > (off_t)RTM_SHM_SEGMENT_MAX) {
		rc = fail(s, -EFBIG, "%lld bytes exceeds the %u-byte limit",
			  (long long)s->st.st_size, RTM_SHM_SEGMENT_MAX);
		goto out;
	}
	map = mmap(NULL, (size_t)s->st.st_size, PROT_READ, MAP_SHARED, s->fd, 0);
	if (map == MAP_FAILED) {
		rc = fail(s, -errno, "mmap: %s", strerror(errno));
		goto out;
	}
	s->base = map;
	s->size = (size_t)s->st.st_size;
	s->mapped = true;
	rc = guarded(s, parse_all);
	if (!rc && !(flags & RD_FLAG_NO_OWNER_CHECK))
		rc = check_owner(s);
out:
	if (rc)
		close_keeping_error(s);
	return rc;
}

static int peek_generation(void *arg)
{
	struct rd_segment *s = arg;
	const struct rtm_shm_header *sh = (const struct rtm_shm_header *)(const void *)s->base;

	/* Acquire: pairs with the producer's release increment (as in
	 * parse_table()). */
	return __atomic_load_n(&sh->generation, __ATOMIC_ACQUIRE) != s->generation;
}

int rd_segment_refresh(struct rd_segment *s)
{
	int rc = guarded(s, peek_generation);

	if (rc <= 0)
		return rc;
	rc = guarded(s, parse_table);
	return rc ? rc : 1;
}

enum rd_liveness rd_segment_liveness(struct rd_segment *s)
{
	pid_t pid;
	enum rd_liveness l = rd_pidns_find(s->hdr.pidns_ino, s->hdr.pid, s->hdr.pid_start_ticks,
					   &pid);

	if ((l == RD_HIDDEN || l == RD_UNKNOWN) && s->hdr.state == RTM_SHM_STATE_CLOSED)
		l = RD_EXITED;
	s->proc_pid = pid;
	s->liveness = (int)l;
	return l;
}

const char *rd_liveness_name(enum rd_liveness l)
{
	switch (l) {
	case RD_ALIVE: return "alive";
	case RD_EXITED: return "exited";
	case RD_PID_REUSED: return "pid-reused";
	case RD_HIDDEN: return "not-visible";
	case RD_UNKNOWN: break;
	}
	return "unknown";
}

void rd_segment_close(struct rd_segment *s)
{
	free_metrics(s);
	free_attrs(s->resource, s->n_resource);
	s->resource = NULL;
	s->n_resource = 0;
	if (s->mapped)
		munmap((void *)(uintptr_t)s->base, s->size);
	s->mapped = false;
	s->base = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}
