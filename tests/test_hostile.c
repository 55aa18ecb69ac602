/* SPDX-License-Identifier: MIT */
/* Hostile segments: every one gets a one-line error and nothing crashes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rd_guard.h"
#include "test_util.h"

struct fx {
	char *dir;
	unsigned char *img; /* a valid segment's bytes */
	size_t len;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct rtm_segment *seg;
	rtm_counter_t c;
	rtm_hist_t h;
	rtm_gauge_t g;

	f->dir = tu_mkdir();
	seg = tu_open(f->dir, "victim");
	rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "v.c",
		.attrs = (struct rtm_attr[]){ { "k", "v" } }, .n_attrs = 1 });
	rtm_hist_create(seg, &h, &(struct rtm_metric_def){ .name = "v.h", .unit = "s" });
	rtm_gauge_create(seg, &g, &(struct rtm_metric_def){ .name = "v.g" });
	rtm_counter_add(&c, 3);
	rtm_hist_record(&h, 0.01);
	f->img = tu_slurp(rtm_segment_path(seg), &f->len);
	rtm_segment_close(seg);
	unlink(rtm_segment_path(seg));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	tu_rmdir(f->dir);
	free(f->img);
	free(f);
	return 0;
}

static struct rtm_shm_header *H(void *img)
{
	return img;
}

static struct rtm_shm_desc *D(void *img, uint32_t i)
{
	struct rtm_shm_header *h = img;

	return (struct rtm_shm_desc *)(void *)((unsigned char *)img + h->desc_offset +
					       (size_t)i * h->desc_size);
}

static void write_file(struct fx *f, const char *name, const void *p, size_t n)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/%s", f->dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* Opens dir/name, expects failure, and checks the one-line reason. */
static void expect_refused(struct fx *f, const char *name, const char *needle)
{
	struct rd_segment rd;
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);
	int rc = rd_segment_open(&rd, dfd, name, 0);

	close(dfd);
	if (rc == 0) {
		rd_segment_close(&rd);
		fail_msg("%s was accepted; expected \"%s\"", name, needle);
	}
	assert_true(rc < 0);
	assert_true(rd.err[0] != '\0');
	assert_null(strchr(rd.err, '\n'));
	if (!strstr(rd.err, needle))
		fail_msg("%s: error \"%s\" does not mention \"%s\"", name, rd.err, needle);
}

/* Mutates a copy of the valid image and expects the parser to refuse it. */
static void expect_mutant_refused(struct fx *f, void (*mutate)(void *img),
				  const char *needle)
{
	unsigned char *img = malloc(f->len);
	struct rd_segment rd;

	memcpy(img, f->img, f->len);
	mutate(img);
	if (rd_segment_parse_mem(&rd, img, f->len) == 0) {
		rd_segment_close(&rd);
		fail_msg("mutant accepted; expected \"%s\"", needle);
	}
	if (!strstr(rd.err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", rd.err, needle);
	assert_null(strchr(rd.err, '\n'));
	free(img);
}

static void the_valid_image_parses(void **state)
{
	struct fx *f = *state;
	struct rd_segment rd;

	assert_int_equal(rd_segment_parse_mem(&rd, f->img, f->len), 0);
	assert_int_equal(rd.n_metrics, 3);
	rd_segment_close(&rd);
}

static void truncated_files_are_refused(void **state)
{
	struct fx *f = *state;

	write_file(f, "short.rtm", f->img, 100);
	expect_refused(f, "short.rtm", "truncated");
	write_file(f, "half.rtm", f->img, f->len / 2);
	expect_refused(f, "half.rtm", "truncated: header says");
	write_file(f, "empty.rtm", f->img, 0);
	expect_refused(f, "empty.rtm", "truncated");
}

/* One corruption of a valid image and the words its error must contain. */
struct mutant {
	void (*mutate)(void *img);
	const char *needle;
};

static void m_magic(void *p) { H(p)->magic = 0x7f454c46; }
static void m_swapped(void *p) { H(p)->magic = RTM_SHM_MAGIC_SWAPPED; }
static void m_major(void *p) { H(p)->major = 2; }
static void m_incompat(void *p) { H(p)->incompat_features = 0x10; }
static void m_count(void *p) { H(p)->desc_count = 0xffffffffu; }
static void m_capacity(void *p) { H(p)->desc_capacity = 0x7fffffffu; }
static void m_shards(void *p) { H(p)->shard_count = 0xffffu; }
static void m_shard_size(void *p) { H(p)->shard_size = 0x40000000u; }
static void m_overlap(void *p) { H(p)->strings_offset = H(p)->desc_offset; }
static void m_service(void *p) { memset(H(p)->service_name, 'x', RTM_SHM_SERVICE_LEN); }
static void m_state(void *p) { H(p)->state = 77; }
static void m_kind(void *p) { D(p, 0)->kind = 9; }
static void m_name_off(void *p) { D(p, 0)->name_off = 0xfffffff0u; }
static void m_name_len(void *p) { D(p, 0)->name_len = 0xffff; }
static void m_name_bytes(void *p) { ((char *)p)[D(p, 0)->name_off] = '\x01'; }
static void m_attr_count(void *p) { D(p, 0)->attr_count = 0xffff; }
static void m_attr_unterminated(void *p) { D(p, 0)->attrs_len -= 1; }
static void m_bounds(void *p) { D(p, 1)->bound_count = 0xffff; }
static void m_bounds_order(void *p)
{
	double *b = (double *)(void *)((char *)p + D(p, 1)->bounds_off);
	b[2] = b[1];
}
static void m_slot(void *p) { D(p, 1)->slot_offset = H(p)->shard_size - 64; }
static void m_slot_align(void *p) { D(p, 0)->slot_offset += 3; }
static void m_resource(void *p) { H(p)->resource_attr_count = 5; }
static void m_sites_cap(void *p) { H(p)->sites_capacity = 0x10000; }
static void m_sites_align(void *p) { H(p)->sites_offset += 8; }
static void m_sites_outside(void *p) { H(p)->sites_offset = (uint32_t)H(p)->segment_size - 64; }
static void m_sites_overlap(void *p) { H(p)->sites_offset = H(p)->data_offset; }

static void corrupt_headers_are_refused(void **state)
{
	static const struct mutant cases[] = {
		{ m_magic, "bad magic 0x7f454c46" },
		{ m_swapped, "byte-order mismatch" },
		{ m_major, "unsupported layout 2." },
		{ m_incompat, "incompatible features" },
		{ m_count, "exceeds capacity" },
		{ m_capacity, "desc_capacity" },
		{ m_shards, "shard_count" },
		{ m_shard_size, "exceed" },
		{ m_overlap, "overlap" },
		{ m_service, "service_name" },
		{ m_state, "unknown state" },
		{ m_resource, "resource" },
		{ m_sites_cap, "lock-site table" },
		{ m_sites_align, "lock-site table" },
		{ m_sites_outside, "lock-site table outside" },
		{ m_sites_overlap, "lock-site table overlaps" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_mutant_refused(*state, cases[i].mutate, cases[i].needle);
}

/* A lock-site table full of anyone's bytes: every entry with an address
 * is copied out, unknown kinds become 0, nothing is read past the table. */
static void hostile_lock_sites_are_read_safely(void **state)
{
	struct fx *f = *state;
	unsigned char *img = malloc(f->len);
	struct rtm_shm_lock_site *t;
	struct rd_segment rd;
	struct rd_lock_sites l;

	memcpy(img, f->img, f->len);
	assert_true(H(img)->compat_features & RTM_SHM_COMPAT_LOCK_SITES);
	t = (struct rtm_shm_lock_site *)(void *)(img + H(img)->sites_offset);
	memset(t, 0xff, (size_t)H(img)->sites_capacity * sizeof *t);
	H(img)->sites_sample = 0xffffffffu;
	assert_int_equal(rd_segment_parse_mem(&rd, img, f->len), 0);
	assert_int_equal(rd_segment_lock_sites(&rd, &l), 0);
	assert_int_equal(l.n, H(img)->sites_capacity);
	assert_int_equal(l.sites[0].kind, 0);
	rd_lock_sites_free(&l);
	/* Unused (sample 0): the table is not even looked at. */
	H(img)->sites_sample = 0;
	assert_int_equal(rd_segment_lock_sites(&rd, &l), 0);
	assert_int_equal(l.n, 0);
	rd_lock_sites_free(&l);
	rd_segment_close(&rd);
	free(img);
}

static void corrupt_descriptors_are_refused(void **state)
{
	static const struct mutant cases[] = {
		{ m_kind, "unknown kind 9" },
		{ m_name_off, "outside string region" },
		{ m_name_len, "name length" },
		{ m_name_bytes, "invalid instrument name" },
		{ m_attr_count, "attributes" },
		{ m_attr_unterminated, "runs past" },
		{ m_bounds, "bounds" },
		{ m_bounds_order, "strictly increasing" },
		{ m_slot, "slot" },
		{ m_slot_align, "slot" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_mutant_refused(*state, cases[i].mutate, cases[i].needle);
}

static void newer_minor_is_read(void **state)
{
	struct fx *f = *state;
	unsigned char *img = malloc(f->len);
	struct rd_segment rd;

	memcpy(img, f->img, f->len);
	H(img)->minor = 9;
	H(img)->compat_features = 0xff; /* unknown compat bits are ignored */
	assert_int_equal(rd_segment_parse_mem(&rd, img, f->len), 0);
	rd_segment_close(&rd);
	free(img);
}

/* Random bit flips anywhere in the metadata: parse, and if accepted,
 * snapshot.  Under ASan this proves every access stays in bounds. */
static void random_bit_flips_never_crash(void **state)
{
	struct fx *f = *state;
	unsigned char *img = malloc(f->len);
	size_t meta = H(f->img)->data_offset;
	unsigned seed = 12345;
	int accepted = 0;

	for (int iter = 0; iter < 20000; iter++) {
		struct rd_segment rd;

		memcpy(img, f->img, f->len);
		for (int k = 1 + rand_r(&seed) % 8; k > 0; k--) {
			size_t at = (size_t)rand_r(&seed) % meta;
			img[at] ^= (unsigned char)(1u << (rand_r(&seed) % 8));
		}
		if (rd_segment_parse_mem(&rd, img, f->len) == 0) {
			struct rd_snapshot s = { 0 };

			accepted++;
			assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
			rd_snapshot_free(&s);
			rd_segment_close(&rd);
		} else {
			assert_true(rd.err[0] && !strchr(rd.err, '\n'));
		}
	}
	/* Flips in unused bytes are harmless, so some must be accepted. */
	assert_true(accepted > 0);
	free(img);
}

static void symlinks_are_refused(void **state)
{
	struct fx *f = *state;
	char target[512], link[512];

	write_file(f, "real.dat", f->img, f->len);
	snprintf(target, sizeof target, "%s/real.dat", f->dir);
	snprintf(link, sizeof link, "%s/link.rtm", f->dir);
	assert_int_equal(symlink(target, link), 0);
	expect_refused(f, "link.rtm", "symbolic link");
}

static void hard_links_are_refused(void **state)
{
	struct fx *f = *state;
	char a[512], b[512];

	write_file(f, "one.rtm", f->img, f->len);
	snprintf(a, sizeof a, "%s/one.rtm", f->dir);
	snprintf(b, sizeof b, "%s/two.rtm", f->dir);
	assert_int_equal(link(a, b), 0);
	expect_refused(f, "two.rtm", "2 hard links");
}

static void foreign_owners_are_refused(void **state)
{
	struct fx *f = *state;
	char path[512];

	if (geteuid() != 0)
		skip();
	/* File owned by someone other than the uid the header claims. */
	write_file(f, "foreign.rtm", f->img, f->len);
	snprintf(path, sizeof path, "%s/foreign.rtm", f->dir);
	assert_int_equal(chown(path, 4242, 4242), 0);
	expect_refused(f, "foreign.rtm", "foreign owner: file uid 4242, header claims uid 0");
	/* Header agrees with the file, but the live pid it names is ours. */
	H(f->img)->uid = 4242;
	write_file(f, "foreign2.rtm", f->img, f->len);
	snprintf(path, sizeof path, "%s/foreign2.rtm", f->dir);
	assert_int_equal(chown(path, 4242, 4242), 0);
	expect_refused(f, "foreign2.rtm", "runs as uid 0");
}

static void fifos_and_directories_are_refused_without_hanging(void **state)
{
	struct fx *f = *state;
	char path[512];

	snprintf(path, sizeof path, "%s/fifo.rtm", f->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_refused(f, "fifo.rtm", "not a regular file");
	unlink(path);
	snprintf(path, sizeof path, "%s/dir.rtm", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	expect_refused(f, "dir.rtm", "not a regular file");
	rmdir(path);
}

static void a_segment_shrunk_under_the_reader_is_an_error(void **state)
{
	struct fx *f = *state;
	struct rd_segment rd;
	struct rd_snapshot s = { 0 };
	char path[512];
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY);

	rd_guard_install(); /* cmocka installs its own SIGBUS handler per test */
	write_file(f, "shrink.rtm", f->img, f->len);
	assert_int_equal(rd_segment_open(&rd, dfd, "shrink.rtm", 0), 0);
	snprintf(path, sizeof path, "%s/shrink.rtm", f->dir);
	assert_int_equal(truncate(path, 4096), 0); /* data region now gone */
	assert_int_equal(rd_segment_snapshot(&rd, &s), -EFAULT);
	assert_non_null(strstr(rd.err, "SIGBUS"));
	/* The reader is unharmed: the next segment reads normally. */
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	write_file(f, "fine.rtm", f->img, f->len);
	assert_int_equal(rd_segment_open(&rd, dfd, "fine.rtm", 0), 0);
	assert_int_equal(rd_segment_snapshot(&rd, &s), 0);
	assert_int_equal(s.values[0].i, 3);
	rd_snapshot_free(&s);
	rd_segment_close(&rd);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(the_valid_image_parses),
		T(truncated_files_are_refused),
		T(corrupt_headers_are_refused),
		T(corrupt_descriptors_are_refused),
		T(hostile_lock_sites_are_read_safely),
		T(newer_minor_is_read),
		T(random_bit_flips_never_crash),
		T(symlinks_are_refused),
		T(hard_links_are_refused),
		T(foreign_owners_are_refused),
		T(fifos_and_directories_are_refused_without_hanging),
		T(a_segment_shrunk_under_the_reader_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
