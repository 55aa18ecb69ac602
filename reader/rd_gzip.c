/* SPDX-License-Identifier: MIT */
#include "rd_gzip.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if RD_HAVE_ISAL
#include <isa-l/igzip_lib.h>

const char rd_gzip_library[] = "igzip (ISA-L) level 1";

struct rd_gzip {
	struct isal_zstream s;
	/* Level 1's hash table and token buffer; the library's default size
	 * (276 KiB), which is what its own gzip tool uses. */
	uint8_t level_buf[ISAL_DEF_LVL1_DEFAULT];
};

int rd_gzip_new(struct rd_gzip **out)
{
	*out = malloc(sizeof **out);
	return *out ? 0 : -ENOMEM;
}

void rd_gzip_free(struct rd_gzip *z)
{
	free(z);
}

size_t rd_gzip_compressv(struct rd_gzip *z, const struct iovec *iov, size_t n, void *out,
			 size_t cap)
{
	struct isal_zstream *s = &z->s;
	size_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	/* The stream's counts are 32-bit: a larger input or room would wrap. */
	if (total > UINT32_MAX || cap > UINT32_MAX)
		return 0;
	isal_deflate_init(s);
	s->level = 1;
	s->level_buf = z->level_buf;
	s->level_buf_size = sizeof z->level_buf;
	s->gzip_flag = IGZIP_GZIP;
	s->flush = NO_FLUSH;
	s->next_out = out;
	s->avail_out = (uint32_t)cap;
	/* Each piece is taken whole (igzip keeps its window of the earlier
	 * ones itself) unless the room runs out, which is a failure here. */
	for (size_t i = 0; i < n; i++) {
		s->next_in = (uint8_t *)iov[i].iov_base;
		s->avail_in = (uint32_t)iov[i].iov_len;
		while (s->avail_in && s->avail_out) {
			uint32_t in = s->avail_in, room = s->avail_out;

			if (isal_deflate(s) != COMP_OK || (s->avail_in == in && s->avail_out == room))
				return 0; /* an error, or no progress (never expected) */
		}
		if (s->avail_in)
			return 0;
	}
	/* Then the end: the last block and the trailer, given the room. */
	s->end_of_stream = 1;
	while (s->internal_state.state != ZSTATE_END && s->avail_out) {
		uint32_t room = s->avail_out;

		if (isal_deflate(s) != COMP_OK ||
		    (s->internal_state.state != ZSTATE_END && s->avail_out == room))
			return 0;
	}
	return s->internal_state.state == ZSTATE_END ? s->total_out : 0;
}

#else
#include <libdeflate.h>

const char rd_gzip_library[] = "libdeflate level 1";

struct rd_gzip {
	struct libdeflate_compressor *c;
	/* libdeflate compresses one buffer: pieces are joined here first. */
	char *join;
	size_t join_cap;
};

int rd_gzip_new(struct rd_gzip **out)
{
	struct rd_gzip *z = calloc(1, sizeof *z);

	/* Level 1: twice as fast as the default on /metrics pages, for 1.5x
	 * the bytes (still ~30x smaller than the text). */
	if (z && !(z->c = libdeflate_alloc_compressor(1))) {
		free(z);
		z = NULL;
	}
	*out = z;
	return z ? 0 : -ENOMEM;
}

void rd_gzip_free(struct rd_gzip *z)
{
	if (!z)
		return;
	libdeflate_free_compressor(z->c);
	free(z->join);
	free(z);
}

size_t rd_gzip_compressv(struct rd_gzip *z, const struct iovec *iov, size_t n, void *out,
			 size_t cap)
{
	size_t total = 0;
	char *w;

	if (n == 1)
		return libdeflate_gzip_compress(z->c, iov[0].iov_base, iov[0].iov_len, out, cap);
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (total > z->join_cap) {
		free(z->join);
		z->join_cap = 0;
		if (!(z->join = malloc(total)))
			return 0;
		z->join_cap = total;
	}
	w = z->join;
	for (size_t i = 0; i < n; i++) {
		if (iov[i].iov_len)
			memcpy(w, iov[i].iov_base, iov[i].iov_len);
		w += iov[i].iov_len;
	}
	return libdeflate_gzip_compress(z->c, z->join, total, out, cap);
}
#endif

size_t rd_gzip_compress(struct rd_gzip *z, const void *in, size_t n, void *out, size_t cap)
{
	const struct iovec one = { (void *)(uintptr_t)in, n };

	return rd_gzip_compressv(z, &one, 1, out, cap);
}

size_t rd_gzip_bound(size_t n)
{
	/* Both libraries fall back to stored blocks for what does not
	 * compress (5 bytes of block header each) and add 18 bytes of gzip
	 * header and trailer.  igzip's stored blocks hold up to 64 KiB and
	 * libdeflate's own bound allows 5 bytes for every 5000 or more, so 5
	 * for every 4096 is above either's worst case (test_gzip checks this
	 * against libdeflate's bound and random input). */
	return n + (n / 4096 + 1) * 5 + 1024;
}
