/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: any byte string, parsed and snapshotted as a segment.
 * Built with -Dfuzzer=true (clang); tools/run-tests runs it for a bounded
 * time, seeded with the golden fixtures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rd_segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A mapped segment is page-aligned; give the parser the same. */
	void *img = aligned_alloc(64, size ? (size + 63) & ~(size_t)63 : 64);
	struct rd_segment seg;

	if (!img)
		return 0;
	memcpy(img, data, size);
	if (rd_segment_parse_mem(&seg, img, size) == 0) {
		struct rd_snapshot snap = { 0 };

		rd_segment_snapshot(&seg, &snap);
		rd_snapshot_free(&snap);
		rd_segment_refresh(&seg);
		rd_segment_close(&seg);
	}
	free(img);
	return 0;
}
