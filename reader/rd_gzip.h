/* SPDX-License-Identifier: MIT */
/*
 * rd_gzip.h - gzip for what leaves the reader: /metrics pages and OTLP
 * request bodies.  One gzip member (RFC 1952) per call, at the fastest
 * level of the library it was built with: ISA-L's igzip (level 1) when
 * found, libdeflate (level 1) otherwise.  On a 66 MB OpenMetrics page
 * igzip takes about a quarter of libdeflate's time for the same size
 * (docs/performance.md); libdeflate stays the portable fallback.
 */
#ifndef RD_GZIP_H
#define RD_GZIP_H

#include <stddef.h>
#include <sys/uio.h>

/* One compressor's state: use from one thread at a time. */
struct rd_gzip;

/* Which library compresses, for logs and benchmarks ("igzip (ISA-L) level
 * 1" or "libdeflate level 1"). */
extern const char rd_gzip_library[];

/* rd_gzip_new - a compressor in *out.  Returns 0 or -ENOMEM. */
int rd_gzip_new(struct rd_gzip **out);
void rd_gzip_free(struct rd_gzip *z);

/* rd_gzip_bound - room enough for the gzip of any n bytes. */
size_t rd_gzip_bound(size_t n);

/*
 * rd_gzip_compress - the gzip of the n bytes at in, written to out (cap
 * bytes of room; rd_gzip_bound(n) always suffices).  Returns its length,
 * or 0 when it did not fit or the library failed.
 */
size_t rd_gzip_compress(struct rd_gzip *z, const void *in, size_t n, void *out, size_t cap);

/*
 * rd_gzip_compressv - the same for the bytes of n pieces, in order, as one
 * member: a /metrics page is compressed where its pieces lie (igzip
 * streams them; libdeflate takes one buffer, so they are joined into one
 * the compressor keeps).
 */
size_t rd_gzip_compressv(struct rd_gzip *z, const struct iovec *iov, size_t n, void *out,
			 size_t cap);

#endif /* RD_GZIP_H */
