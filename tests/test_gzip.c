/* SPDX-License-Identifier: MIT */
/*
 * test_gzip - rd_gzip, built with each library it can use (meson builds
 * this file twice: with ISA-L when found, and with libdeflate).  What it
 * writes is read back by zlib, a third implementation: one gzip member,
 * the same bytes, whatever the input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <zlib.h>

#include <cmocka.h>

#include "rd_gzip.h"

#if !RD_HAVE_ISAL
#include <libdeflate.h>
#endif

/* zlib's inflate of one gzip member; the whole input must be that
 * member.  Returns the plain length, or -1. */
static long gunzip(const void *in, size_t n, void *out, size_t cap)
{
	z_stream zs = { 0 };
	long got = -1;

	assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK);
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.avail_in == 0)
		got = (long)zs.total_out;
	inflateEnd(&zs);
	return got;
}

/* Lines like a /metrics page's: mostly repeated labels, changing values. */
static char *page_like(size_t *len)
{
	size_t cap = 4u << 20, n = 0;
	char *p = malloc(cap);

	for (unsigned i = 0; n + 256 < cap; i++)
		n += (size_t)snprintf(p + n, cap - n,
				      "rtm_demo_requests_total{job=\"demo\",instance=\"%u\","
				      "otel_scope_name=\"rtm\",le=\"%u\"} %u\n",
				      i / 16, i % 16, i * 7919u);
	*len = n;
	return p;
}

static char *random_bytes(size_t n)
{
	char *p = malloc(n ? n : 1);
	uint64_t x = 0x9e3779b97f4a7c15u;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (char)x;
	}
	return p;
}

/* Compresses in, checks the member and what zlib reads back; returns its
 * length. */
static size_t round_trip(struct rd_gzip *z, const char *in, size_t n)
{
	size_t cap = rd_gzip_bound(n);
	unsigned char *out = malloc(cap);
	char *back = malloc(n + 1);
	size_t len = rd_gzip_compress(z, in, n, out, cap);

	assert_true(len >= 18);
	assert_true(len <= cap);
	/* RFC 1952: ID1 ID2, CM 8 (deflate). */
	assert_int_equal(out[0], 0x1f);
	assert_int_equal(out[1], 0x8b);
	assert_int_equal(out[2], 8);
	assert_int_equal(gunzip(out, len, back, n + 1), (long)n);
	assert_memory_equal(back, in, n);
	free(out);
	free(back);
	return len;
}

static void names_its_library(void **state)
{
	(void)state;
#if RD_HAVE_ISAL
	assert_non_null(strstr(rd_gzip_library, "ISA-L"));
#else
	assert_non_null(strstr(rd_gzip_library, "libdeflate"));
#endif
}

static void any_input_reads_back(void **state)
{
	struct rd_gzip *z;
	size_t page_len;
	char *page = page_like(&page_len);

	(void)state;
	assert_int_equal(rd_gzip_new(&z), 0);
	/* Empty, one byte, a page, and what cannot be compressed at all
	 * (stored blocks, the bound's worst case), the same compressor reused. */
	round_trip(z, "", 0);
	round_trip(z, "x", 1);
	assert_true(round_trip(z, page, page_len) < page_len / 10);
	for (size_t n = 1; n <= (8u << 20); n = n * 5 + 3) {
		char *r = random_bytes(n);

		round_trip(z, r, n);
		free(r);
	}
	/* Reuse writes the same member again. */
	size_t cap = rd_gzip_bound(page_len);
	unsigned char *a = malloc(cap), *b = malloc(cap);
	size_t la = rd_gzip_compress(z, page, page_len, a, cap);

	assert_int_equal(rd_gzip_compress(z, page, page_len, b, cap), la);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	rd_gzip_free(z);
	free(page);
}

/* Short of room it fails cleanly: 0, and nothing written past the room
 * (the buffer is exactly that size, for the sanitizer to see). */
static void short_room_is_zero(void **state)
{
	struct rd_gzip *z;
	size_t page_len, full;
	char *page = page_like(&page_len);
	unsigned char *out = malloc(rd_gzip_bound(page_len));

	(void)state;
	assert_int_equal(rd_gzip_new(&z), 0);
	full = rd_gzip_compress(z, page, page_len, out, rd_gzip_bound(page_len));
	assert_true(full > 0);
	for (size_t room = full - 1; room > 0; room /= 3) {
		unsigned char *tight = malloc(room);

		assert_int_equal(rd_gzip_compress(z, page, page_len, tight, room), 0);
		free(tight);
	}
	/* And it still works after a failure. */
	assert_int_equal(rd_gzip_compress(z, page, page_len, out, rd_gzip_bound(page_len)), full);
	rd_gzip_free(z);
	free(out);
	free(page);
}

/* A page in pieces, as /metrics hands it over: many, some empty, some of
 * a byte, some large; one member of the pieces' bytes in order. */
static void pieces_read_back_as_one(void **state)
{
	struct rd_gzip *z;
	size_t page_len, cap;
	char *page = page_like(&page_len), *back = malloc(page_len + 1);
	struct iovec iov[512];
	unsigned char *out, *whole;
	uint64_t x = 88172645463325252u;

	(void)state;
	assert_int_equal(rd_gzip_new(&z), 0);
	cap = rd_gzip_bound(page_len);
	out = malloc(cap);
	whole = malloc(cap);
	for (int round = 0; round < 6; round++) {
		size_t n = 0, off = 0, len;

		while (off < page_len && n < 511) {
			size_t k;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Empty, a byte, up to 64 KiB, up to 1 MiB. */
			k = x % 4 == 0 ? 0 : x % 4 == 1 ? 1 : x % 4 == 2 ? (x >> 8) % 65536 : (x >> 8) % (1u << 20);
			if (round == 5)
				k = 0; /* every piece empty, then the rest at once */
			if (k > page_len - off)
				k = page_len - off;
			iov[n++] = (struct iovec){ page + off, k };
			off += k;
		}
		iov[n++] = (struct iovec){ page + off, page_len - off };
		len = rd_gzip_compressv(z, iov, n, out, cap);
		assert_true(len > 0);
		assert_int_equal(gunzip(out, len, back, page_len + 1), (long)page_len);
		assert_memory_equal(back, page, page_len);
	}
	/* No pieces at all: the empty member. */
	assert_int_equal(gunzip(out, rd_gzip_compressv(z, iov, 0, out, cap), back, 1), 0);
	/* The pieces of one buffer compress to what the buffer does with
	 * libdeflate (it joins them); igzip may cut its blocks elsewhere. */
	iov[0] = (struct iovec){ page, page_len / 2 };
	iov[1] = (struct iovec){ page + page_len / 2, page_len - page_len / 2 };
	size_t lv = rd_gzip_compressv(z, iov, 2, out, cap);
	size_t lw = rd_gzip_compress(z, page, page_len, whole, cap);
#if !RD_HAVE_ISAL
	assert_int_equal(lv, lw);
	assert_memory_equal(out, whole, lw);
#else
	assert_true(lv > 0 && lw > 0);
#endif
	/* Short of room, pieces fail as a buffer does. */
	assert_int_equal(rd_gzip_compressv(z, iov, 2, out, lv / 2), 0);
	rd_gzip_free(z);
	free(out);
	free(whole);
	free(back);
	free(page);
}

static void bound_covers_the_library(void **state)
{
	(void)state;
#if !RD_HAVE_ISAL
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);

	for (size_t n = 0; n < (1u << 30); n = n * 3 + 1)
		assert_true(rd_gzip_bound(n) >= libdeflate_gzip_compress_bound(c, n));
	libdeflate_free_compressor(c);
#endif
	/* Stored blocks hold at most 64 KiB, 5 bytes of header each. */
	for (size_t n = 0; n < (1u << 30); n = n * 3 + 1)
		assert_true(rd_gzip_bound(n) >= n + (n / 65535 + 1) * 5 + 18);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_its_library),
		cmocka_unit_test(any_input_reads_back),
		cmocka_unit_test(short_room_is_zero),
		cmocka_unit_test(pieces_read_back_as_one),
		cmocka_unit_test(bound_covers_the_library),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
