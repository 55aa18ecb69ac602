/* SPDX-License-Identifier: MIT */
/* Segment lifecycle: create, publish, fork, close. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rtm_segment_priv.h"
#include "rtm_shm_presence.h"
#include "rtm_shm_text.h"

#define DEFAULT_METRICS 256u
#define DEFAULT_THREADS 256u
#define DEFAULT_SHARD   8192u
#define DEFAULT_STRINGS 32768u
#define PAGE            4096u

pthread_mutex_t rtm__registry_lock = PTHREAD_MUTEX_INITIALIZER;
struct rtm_segment *rtm__registry;
/* Closed segments: kept (never freed) so that no stale handle or cached
 * shard can ever alias a later segment's memory. */
static struct rtm_segment *retired;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int stale_checked;
static unsigned open_seq;

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

uint64_t rtm__now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

pid_t rtm__pid_now(void)
{
#if defined(__x86_64__) && defined(__linux__)
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getpid) : "rcx", "r11", "memory");
	return (pid_t)r;
#else
	return getpid();
#endif
}

char *rtm__put_decimal(char *p, uint64_t v)
{
	char d[20];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*p++ = d[--n];
	return p;
}

/* The names below are written without stdio, as rtm__put_decimal(). */
static char *put_text(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

void rtm__segment_name(char *buf, size_t cap, uint64_t start_ticks, unsigned n)
{
	char t[4 + 20 + 1 + 20 + 1 + 20 + 4 + 1], *p = put_text(t, "rtm.");
	size_t len;

	if (!cap)
		return;
	p = rtm__put_decimal(p, (uint64_t)rtm__pid_now());
	*p++ = '.';
	p = rtm__put_decimal(p, start_ticks);
	*p++ = '.';
	p = put_text(rtm__put_decimal(p, n), ".rtm");
	len = (size_t)(p - t) < cap ? (size_t)(p - t) : cap - 1;
	memcpy(buf, t, len);
	buf[len] = '\0';
}

/*
 * After fork the child shares the parent's MAP_SHARED mapping, and its
 * threads' cached shards are the parent threads' shards: writing them would
 * race with the parent.  Re-map every open segment private copy-on-write at
 * the same address, so handles stay valid and the child's writes stay its own.
 */
static void atfork_child(void)
{
	/* A deferred segment is private anonymous memory: the child's copy
	 * is its own already (and never published: its pid is not the
	 * header's). */
	for (struct rtm_segment *s = rtm__registry; s; s = s->next)
		if (s->fd >= 0)
			mmap(s->base, s->size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_FIXED, s->fd, 0);
	/* Taken by atfork_prepare() in the forking thread, which is the one
	 * thread the child has. */
	pthread_mutex_unlock(&rtm__registry_lock);
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&rtm__registry_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&rtm__registry_lock);
}

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int check_text(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	return n <= max && rtm_shm_utf8_valid(s, n) ? 0 : -EINVAL;
}

/* The segment directory (FORMAT.md §1, "the directory"): created shared
 * and sticky like /tmp if missing; refused when it is a symbolic link
 * (-ELOOP) or writable by others without the sticky bit (-EPERM: any user
 * could remove or replace this process's segment). */
static int open_dir(const char *dir)
{
	struct stat st;
	int fd;

	/* O_NOFOLLOW refuses a symbolic link (ELOOP, or ENOTDIR where the
	 * link leads to a file); it exists in all but the first process. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* Only root creates a missing directory: whoever owns the shared
	 * directory can remove or rename every segment in it, so it must be
	 * root's (FORMAT.md §1).  Anyone else waits for rtm-reader or
	 * systemd-tmpfiles to create it. */
	if (fd < 0 && errno == ENOENT && geteuid() == 0) {
		if (mkdir(dir, 0777) == 0)
			chmod(dir, 01777); /* shared like /tmp: sticky, any user */
		else if (errno != EEXIST)
			return -errno;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return errno == ENOTDIR && !lstat(dir, &st) && S_ISLNK(st.st_mode) ? -ELOOP : -errno;
	if (fstat(fd, &st) || ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

struct layout {
	uint32_t desc_off, strings_off, strings_size, data_off;
	uint32_t shards, shard_size;
	uint32_t sites_off;
	uint64_t size;
};

static int plan_layout(const struct rtm_segment_opts *o, uint32_t *cap,
		       struct layout *l)
{
	uint64_t metrics = o->max_metrics ? o->max_metrics : DEFAULT_METRICS;
	uint64_t threads = o->max_threads ? o->max_threads : DEFAULT_THREADS;
	uint64_t shard = o->shard_bytes ? o->shard_bytes : DEFAULT_SHARD;
	uint64_t strings = o->string_bytes ? o->string_bytes : DEFAULT_STRINGS;
	uint64_t off;

	if (metrics > 65536 || threads >= RTM_SHM_SHARDS_MAX ||
	    shard > (1u << 20) || strings > (16u << 20))
		return -EINVAL;
	*cap = (uint32_t)metrics;
	l->desc_off = RTM_SHM_HEADER_SIZE;
	off = align_up(l->desc_off + metrics * RTM_SHM_DESC_SIZE,
		       RTM_SHM_CACHELINE);
	l->strings_off = (uint32_t)off;
	l->strings_size = (uint32_t)align_up(strings, 8);
	off = align_up(off + l->strings_size, PAGE);
	l->data_off = (uint32_t)off;
	l->shards = (uint32_t)threads + 1;
	l->shard_size = (uint32_t)align_up(shard, RTM_SHM_CACHELINE);
	/* The lock-site table: one page after the shards, which costs nothing
	 * (sparse) unless lock contention is recorded (rtm_lock_sites.c). */
	off = align_up(off + (uint64_t)l->shards * l->shard_size, PAGE);
	if (off > UINT32_MAX)
		return -EINVAL;
	l->sites_off = (uint32_t)off;
	l->size = off + (uint64_t)RTM__LOCK_SITES * sizeof(struct rtm_shm_lock_site);
	return l->size <= RTM_SHM_SEGMENT_MAX ? 0 : -EINVAL;
}

/* Appends "key\0value\0" pairs; shared with rtm_metric.c via the caller. */
static int put_resource(struct rtm_segment *seg,
			const struct rtm_segment_opts *o)
{
	struct rtm_shm_header *h = seg->hdr;
	uint32_t start = seg->strings_used;
	uint32_t end = h->strings_offset + h->strings_size;
	int rc;

	if (o->n_resource_attrs > RTM_SHM_ATTR_COUNT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < o->n_resource_attrs; i++) {
		const struct rtm_attr *a = &o->resource_attrs[i];
		size_t kl, vl;

		if (!a->key || !a->value || !*a->key ||
		    check_text(a->key, 255) || check_text(a->value, 1023))
			return -EINVAL;
		kl = strlen(a->key) + 1;
		vl = strlen(a->value) + 1;
		if (seg->strings_used + kl + vl > end ||
		    seg->strings_used + kl + vl - start > RTM_SHM_ATTRS_MAX)
			return -ENOSPC;
		rc = rtm__reserve(seg, &seg->res_strings, (uint64_t)seg->strings_used + kl + vl);
		if (rc)
			return rc;
		memcpy(seg->base + seg->strings_used, a->key, kl);
		memcpy(seg->base + seg->strings_used + kl, a->value, vl);
		seg->strings_used += (uint32_t)(kl + vl);
	}
	h->resource_attrs_off = start;
	h->resource_attrs_len = seg->strings_used - start;
	h->resource_attr_count = (uint16_t)o->n_resource_attrs;
	return 0;
}

static void fill_header(struct rtm_segment *seg, const struct layout *l,
			uint32_t cap, const struct rtm_segment_opts *o)
{
	struct rtm_shm_header *h = seg->hdr;
	uint64_t now = rtm__now_ns(CLOCK_REALTIME);

	h->magic = RTM_SHM_MAGIC;
	h->major = RTM_SHM_MAJOR;
	h->minor = RTM_SHM_MINOR;
	h->header_size = RTM_SHM_HEADER_SIZE;
	h->desc_size = RTM_SHM_DESC_SIZE;
	h->segment_size = l->size;
	h->desc_offset = l->desc_off;
	h->desc_capacity = cap;
	h->strings_offset = l->strings_off;
	h->strings_size = l->strings_size;
	h->data_offset = l->data_off;
	h->shard_count = l->shards;
	h->shard_size = l->shard_size;
	h->shard_hwm = 1;
	h->compat_features = RTM_SHM_COMPAT_LOCK_SITES | RTM_SHM_COMPAT_LAZY_SHARD0;
	h->sites_offset = l->sites_off;
	h->sites_capacity = RTM__LOCK_SITES;
	h->pid = (int32_t)rtm__pid_now();
	h->uid = (uint32_t)getuid();
	/* A deferred segment reads it when its file is written: the first
	 * /proc access of a process costs ~15-30 us, which a short command
	 * then pays only for a reader. */
	h->pid_start_ticks = seg->deferred ? 0 : rtm__start_ticks(0);
	if (!seg->deferred)
		rtm__own_namespaces(h);
	h->created_unix_nano = now;
	h->created_boot_nano = rtm__now_ns(CLOCK_BOOTTIME);
	h->heartbeat_unix_nano = now;
	strncpy(h->service_name, o->service_name, RTM_SHM_SERVICE_LEN - 1);
	if (o->service_version)
		strncpy(h->service_version, o->service_version,
			RTM_SHM_VERSION_LEN - 1);
	/* A constant: no stdio on a start-up path (a process's first
	 * snprintf costs ~10 us). */
	_Static_assert(sizeof "rtm-c/" RTM_VERSION <= sizeof h->producer, "producer fits");
	memcpy(h->producer, "rtm-c/" RTM_VERSION, sizeof "rtm-c/" RTM_VERSION);
}

/* The file a segment is built in, before it has its published name: an
 * unnamed O_TMPFILE where the filesystem has them (nothing another user
 * could take first, nothing left behind by a kill), else a name no one
 * can guess (tmp gets it; *tmp = '\0' for the unnamed kind). */
static int create_temp(int dfd, mode_t mode, char *tmp, size_t len)
{
	int fd = openat(dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);

	*tmp = '\0';
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd < 0 ? -errno : fd;
	for (int tries = 0; tries < 100; tries++) {
		uint64_t r[2];

		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
			return -EIO;
		snprintf(tmp, len, ".rtm.%d.%016llx%016llx.tmp", (int)getpid(),
			 (unsigned long long)r[0], (unsigned long long)r[1]);
		fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* Gives the finished file its published name, which must not exist yet. */
static int publish(int dfd, int fd, const char *tmp, const char *name)
{
	char self[64];

	if (*tmp)
		return renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) ? -errno : 0;
	/* linkat never replaces.  The file itself, where the kernel lets its
	 * opener link it (Linux 6.10, or CAP_DAC_READ_SEARCH): no /proc path
	 * to resolve; else /proc names the unnamed file. */
	if (!linkat(fd, "", dfd, name, AT_EMPTY_PATH))
		return 0;
	if (errno != ENOENT && errno != EPERM && errno != EINVAL)
		return -errno;
	*rtm__put_decimal(put_text(self, "/proc/self/fd/"), (uint64_t)fd) = '\0';
	return linkat(AT_FDCWD, self, dfd, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

/* create_temp() at its full size, sparse, readable by its owner whatever
 * the umask: the fd, or -errno with nothing left behind. */
static int create_sized(int dfd, mode_t mode, uint64_t size, char *tmp, size_t len)
{
	int fd = create_temp(dfd, mode, tmp, len), rc;

	if (fd < 0)
		return fd;
	fchmod(fd, mode); /* umask must not make it unreadable to the owner */
	if (!ftruncate(fd, (off_t)size))
		return fd;
	rc = -errno;
	close(fd);
	if (*tmp)
		unlinkat(dfd, tmp, 0);
	return rc;
}

static int create_file(struct rtm_segment *seg, int dfd, const struct layout *l, char *tmp,
		       size_t tmplen)
{
	int fd = create_sized(dfd, seg->mode, l->size, tmp, tmplen), rc;

	if (fd < 0)
		return fd;
	/* Pages are reserved as they come into use (rtm_reserve.c), starting
	 * with the header's, so a full tmpfs fails here or at a later cold
	 * call, never with SIGBUS. */
	seg->fd = fd;
	rc = rtm__reserve(seg, &seg->res_meta, l->desc_off);
	if (!rc) {
		seg->base = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (seg->base == MAP_FAILED)
			rc = -errno;
	}
	if (rc) {
		close(fd);
		if (*tmp)
			unlinkat(dfd, tmp, 0);
		return rc;
	}
	seg->size = l->size;
	return 0;
}

/* seg->path, which holds the directory, becomes the path of its file
 * name (open_segment() checked that both fit). */
static void path_to_file(struct rtm_segment *seg, const char *name)
{
	size_t dl = strlen(seg->path);

	seg->path[dl] = '/';
	memcpy(seg->path + dl + 1, name, strlen(name) + 1);
}

static int open_segment(struct rtm_segment **out, const struct rtm_segment_opts *o,
			bool deferred);

static int open_with_env(struct rtm_segment **out, const struct rtm_segment_opts *o,
			 bool deferred)
{
	int rc;
	struct rtm__env_resource env;
	struct rtm_segment_opts eff;
	struct rtm_attr merged[RTM_SHM_ATTR_COUNT_MAX];

	if (!out || !o || (o->n_resource_attrs && !o->resource_attrs) ||
	    o->n_resource_attrs > RTM_SHM_ATTR_COUNT_MAX)
		return -EINVAL;
	/* The OTel variables under what the caller says: service.name from
	 * the option, else OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES'
	 * service.name, else the program's name; service.version likewise;
	 * every other attribute of the variable unless the caller set it. */
	rtm__env_resource(&env);
	eff = *o;
	eff.resource_attrs = merged;
	eff.n_resource_attrs = 0;
	for (size_t i = 0; i < o->n_resource_attrs; i++)
		merged[eff.n_resource_attrs++] = o->resource_attrs[i];
	for (size_t i = 0; i < env.n; i++) {
		const char *k = env.attrs[i].key;
		bool mine = false;

		if (!strcmp(k, "service.name")) {
			if (!env.service_name)
				eff.service_name = eff.service_name && *eff.service_name ?
					eff.service_name : env.attrs[i].value;
			continue;
		}
		if (!strcmp(k, "service.version")) {
			if (!eff.service_version)
				eff.service_version = env.attrs[i].value;
			continue;
		}
		for (size_t j = 0; j < o->n_resource_attrs && !mine; j++)
			mine = o->resource_attrs[j].key && !strcmp(o->resource_attrs[j].key, k);
		if (!mine && eff.n_resource_attrs < RTM_SHM_ATTR_COUNT_MAX)
			merged[eff.n_resource_attrs++] = env.attrs[i];
	}
	if (!o->service_name || !*o->service_name)
		eff.service_name = env.service_name ? env.service_name :
			eff.service_name && *eff.service_name ? eff.service_name :
			program_invocation_short_name;
	rc = open_segment(out, &eff, deferred);
	rtm__env_resource_free(&env);
	return rc;
}

int rtm_segment_open(struct rtm_segment **out, const struct rtm_segment_opts *o)
{
	return open_with_env(out, o, false);
}

int rtm__segment_open_deferred(struct rtm_segment **out, const struct rtm_segment_opts *o)
{
	return open_with_env(out, o, true);
}

/* A deferred segment's memory: private, so a forked child's copy is its
 * own, and all of it addressable at once; a page costs only when written. */
static int map_anonymous(struct rtm_segment *seg, const struct layout *l)
{
	seg->base = mmap(NULL, l->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (seg->base == MAP_FAILED)
		return -errno;
	seg->fd = -1;
	seg->size = l->size;
	/* The header's pages, as create_file() reserves them: the final
	 * image writes what is reserved, so a segment closed before its
	 * first metric is still a valid one (no file space: fd < 0). */
	return rtm__reserve(seg, &seg->res_meta, l->desc_off);
}

/* The final name, the first free n from seg->seq (see open_segment). */
static int name_file(struct rtm_segment *seg, int dfd, int fd, const char *tmp,
		     char *name, size_t cap)
{
	for (unsigned k = 0;; k++) {
		int rc;

		rtm__segment_name(name, cap, seg->hdr->pid_start_ticks, seg->seq + k);
		rc = publish(dfd, fd, tmp, name);
		if (rc != -EEXIST || k == 1000)
			return rc;
	}
}

/* Once per image: only an exec leaves stale segments behind, and without
 * a reader nobody else removes those of processes gone. */
static void clean_up_once(struct rtm_segment *seg, int dfd)
{
	if (!__atomic_exchange_n(&stale_checked, 1, __ATOMIC_RELAXED)) {
		rtm__close_stale(dfd, seg->hdr->pid_start_ticks);
		rtm__reap_gone(dfd);
	}
}

static int open_segment(struct rtm_segment **out, const struct rtm_segment_opts *o,
			bool deferred)
{
	const char *dir;
	char tmp[96], name[96];
	struct rtm_segment *seg;
	struct layout l;
	uint32_t cap;
	unsigned n;
	int dfd, rc;

	if (!o->service_name || !*o->service_name ||
	    strlen(o->service_name) >= RTM_SHM_SERVICE_LEN ||
	    check_text(o->service_name, RTM_SHM_SERVICE_LEN - 1) ||
	    check_text(o->service_version, RTM_SHM_VERSION_LEN - 1))
		return -EINVAL;
	rc = plan_layout(o, &cap, &l);
	if (rc)
		return rc;
	dir = o->dir ? o->dir : rtm__env_get("RTM_DIR");
	if (!dir)
		dir = RTM__DEFAULT_DIR;
	if (!*dir || strlen(dir) + sizeof name + 2 > PATH_MAX)
		return -EINVAL;
	seg = calloc(1, sizeof *seg);
	if (!seg)
		return -ENOMEM;
	seg->shard_busy = calloc(l.shards, 1);
	if (!seg->shard_busy) {
		free(seg);
		return -ENOMEM;
	}
	seg->deferred = deferred;
	seg->mode = o->mode ? o->mode : 0600;
	*tmp = '\0';
	dfd = deferred ? -1 : open_dir(dir);
	if (dfd < 0 && !deferred) {
		rc = dfd;
		goto fail_free;
	}
	n = __atomic_fetch_add(&open_seq, 1, __ATOMIC_RELAXED); /* name, cache way */
	seg->way = n % RTM__WAYS * (uint32_t)sizeof(struct rtm__tls_way);
	seg->seq = n;
	rc = deferred ? map_anonymous(seg, &l) : create_file(seg, dfd, &l, tmp, sizeof tmp);
	if (rc)
		goto fail_dir;
	seg->hdr = (struct rtm_shm_header *)(void *)seg->base;
	seg->head.shard0 = seg->base + l.data_off;
	seg->strings_used = l.strings_off;
	seg->res_strings = l.strings_off;
	seg->res_sites = l.sites_off;
	fill_header(seg, &l, cap, o);
	rc = put_resource(seg, o);
	if (rc)
		goto fail_map;
	seg->hdr->strings_used = seg->strings_used - l.strings_off;
	seg->hdr->state = RTM_SHM_STATE_LIVE;
	memcpy(seg->path, dir, strlen(dir) + 1); /* fits: checked above */
	if (!deferred) {
		clean_up_once(seg, dfd);
		/* Publishing gives a complete header its name: readers never
		 * see INIT.  A taken name — another copy of librtm in this
		 * process (a preload library and the app's own) counts from 0
		 * too, or a file another user planted — moves on to the next
		 * number. */
		rc = name_file(seg, dfd, seg->fd, tmp, name, sizeof name);
		if (rc)
			goto fail_map;
		path_to_file(seg, name);
		close(dfd);
	}
	pthread_mutex_init(&seg->lock, NULL);
	/* A deferred segment needs no remapping after fork: its memory is
	 * private. */
	if (!deferred)
		pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&rtm__registry_lock);
	seg->next = rtm__registry;
	rtm__registry = seg;
	pthread_mutex_unlock(&rtm__registry_lock);
	*out = seg;
	return 0;

fail_map:
	munmap(seg->base, seg->size);
	if (seg->fd >= 0)
		close(seg->fd);
	if (*tmp)
		unlinkat(dfd, tmp, 0);
fail_dir:
	if (dfd >= 0)
		close(dfd);
fail_free:
	free(seg->shard_busy);
	free(seg);
	return rc;
}

static bool page_is_zero(const unsigned char *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (unsigned i = 0; i < PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* The pages of [start, end) of seg that hold anything but zeros, into fd
 * at the same offsets (the others read as zeros: holes). */
static int write_range(const struct rtm_segment *seg, int fd, uint64_t start, uint64_t end)
{
	start &= ~(uint64_t)(PAGE - 1);
	end = align_up(end, PAGE);
	if (end > seg->size)
		end = seg->size;
	while (start < end) {
		uint64_t stop;

		if (page_is_zero(seg->base + start)) {
			start += PAGE;
			continue;
		}
		for (stop = start + PAGE; stop < end && !page_is_zero(seg->base + stop);)
			stop += PAGE;
		while (start < stop) {
			ssize_t w = pwrite(fd, seg->base + start, stop - start, (off_t)start);

			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			start += (uint64_t)w;
		}
	}
	return 0;
}

/* The pages a deferred segment has reserved (rtm_reserve.c's marks, the
 * ranges a file-backed one would have fallocated), written into its file:
 * everything a reader may read.  Nothing writes after, so pages of zeros
 * stay holes. */
static int write_image(const struct rtm_segment *seg, int fd)
{
	const struct rtm_shm_header *h = seg->hdr;
	uint32_t hwm = h->shard_hwm < h->shard_count ? h->shard_hwm : h->shard_count;
	int rc = write_range(seg, fd, 0, seg->res_meta);

	if (!rc)
		rc = write_range(seg, fd, h->strings_offset, seg->res_strings);
	if (!rc)
		rc = write_range(seg, fd, h->sites_offset, seg->res_sites);
	for (uint32_t i = seg->shard0_ready ? 0 : 1; !rc && i < hwm; i++) {
		uint64_t base = (uint64_t)(rtm__shard_base(seg, i) - seg->base);

		rc = write_range(seg, fd, base, base + seg->res_data);
	}
	return rc;
}

/* A deferred segment's file, at close (caller holds seg->lock; seg is
 * CLOSED): the finished image, written and named, never mapped — and only
 * when a reader is attached to take it (-ENOTCONN otherwise: the next
 * producer would just remove it).  -ESRCH in a forked child: the copy is
 * the parent's. */
static int write_final(struct rtm_segment *seg)
{
	char tmp[96], name[96];
	int dfd, fd, rc;

	if (seg->hdr->pid != (int32_t)rtm__pid_now())
		return -ESRCH;
	/* No reader: one system call, at the path (a short command's exit);
	 * open_dir() checks the directory before anything is written. */
	if (!rtm_shm_presence_attached(AT_FDCWD, seg->path))
		return -ENOTCONN;
	dfd = open_dir(seg->path);
	if (dfd < 0)
		return dfd;
	seg->hdr->pid_start_ticks = rtm__start_ticks(0);
	rtm__own_namespaces(seg->hdr);
	fd = create_sized(dfd, seg->mode, seg->size, tmp, sizeof tmp);
	if (fd < 0) {
		close(dfd);
		return fd;
	}
	rc = write_image(seg, fd);
	if (!rc)
		rc = name_file(seg, dfd, fd, tmp, name, sizeof name);
	if (rc && *tmp)
		unlinkat(dfd, tmp, 0);
	close(dfd);
	close(fd);
	if (!rc)
		path_to_file(seg, name);
	return rc;
}

void rtm_segment_heartbeat(struct rtm_segment *seg)
{
	if (!seg || seg == &rtm__null_segment)
		return;
	/* Relaxed: a lone timestamp, ordered against nothing. */
	__atomic_store_n(&seg->hdr->heartbeat_unix_nano,
			 rtm__now_ns(CLOCK_REALTIME), __ATOMIC_RELAXED);
}

const char *rtm_segment_path(const struct rtm_segment *seg)
{
	return seg ? seg->path : NULL;
}

int rtm_segment_close(struct rtm_segment *seg)
{
	struct rtm_segment **pp;
	bool was_deferred;

	if (!seg || seg == &rtm__null_segment)
		return -EINVAL;
	rtm__lock(seg);
	if (seg->closed) {
		rtm__unlock(seg);
		return -EINVAL;
	}
	rtm_segment_heartbeat(seg);
	/* Relaxed: published by the release store of state just below. */
	__atomic_store_n(&seg->hdr->closed_unix_nano,
			 rtm__now_ns(CLOCK_REALTIME), __ATOMIC_RELAXED);
	/* Release: every update this process made before close is visible to
	 * a reader that sees CLOSED with its acquire load of state. */
	__atomic_store_n(&seg->hdr->state, RTM_SHM_STATE_CLOSED,
			 __ATOMIC_RELEASE);
	/* A deferred segment's final values go out only to a reader: without
	 * one, its file would just be removed by the next producer.  Its
	 * memory stays private either way. */
	was_deferred = seg->deferred;
	if (was_deferred)
		write_final(seg);
	seg->deferred = false;
	pthread_mutex_lock(&rtm__registry_lock);
	for (pp = &rtm__registry; *pp; pp = &(*pp)->next)
		if (*pp == seg) {
			*pp = seg->next;
			break;
		}
	seg->next = retired;
	retired = seg;
	pthread_mutex_unlock(&rtm__registry_lock);
	/* Late updates through live handles, or through other threads' cached
	 * shards, land in private zero pages instead of the closed segment.
	 * The struct and this address range are never reused, so no handle
	 * can ever alias a later segment. */
	if (!was_deferred)
		mmap(seg->base, seg->size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (seg->fd >= 0)
		close(seg->fd);
	seg->fd = -1;
	/* Relaxed: only a hint for other threads' slow paths; the mapping
	 * swap above already makes their late writes harmless. */
	__atomic_store_n(&seg->closed, true, __ATOMIC_RELAXED);
	rtm__shard_forget(seg);
	rtm__unlock(seg);
	return 0;
}
