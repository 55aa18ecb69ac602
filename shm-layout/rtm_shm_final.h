/* SPDX-License-Identifier: MIT */
/*
 * rtm_shm_final.h - a short command's final values, as one datagram
 * (FORMAT.md §11).
 *
 * A preloaded process that ends before it opened its segment, with a
 * reader attached, hands the reader its counts in one sendto() on the
 * reader's socket instead of building, writing and naming a segment file:
 * a short command's exit then costs four system calls.  The kernel says
 * who sent it (SO_PASSCRED: pid and uid, in the reader's namespaces), so a
 * record speaks for its sender only.  Anything the socket cannot take (no
 * reader socket, one owned by another user, a full queue) falls back to
 * the file.
 *
 * Byte by byte, little-endian, 256 bytes:
 *
 *   off size field
 *     0   4  magic            RTM_SHM_FINAL_MAGIC ("RTMF")
 *     4   2  version          1
 *     6   2  size             256: a reader takes no other
 *     8   4  pid              the sender as it sees itself (its pid namespace)
 *    12   4  flags            bit 0: the heap figures (64..103) were sampled
 *    16   8  exit_unix_nano   CLOCK_REALTIME as the record was made
 *    24   8  mallocs          the runtime.native.mem.alloc.* counters: calls,
 *    32   8  frees
 *    40   8  bytes            bytes requested
 *    48   8  live_bytes       runtime.native.mem.heap.alloc (signed)
 *    56   8  live_objects     runtime.native.mem.heap.objects (signed)
 *    64   8  heap_inuse       mallinfo2: uordblks
 *    72   8  heap_idle        fordblks
 *    80   8  heap_releasable  keepcost
 *    88   8  heap_mmapped     hblkhd
 *    96   8  heap_arenas      1 (a process without threads has one)
 *   104  64  service_name     NUL-terminated UTF-8, non-empty
 *   168  64  executable       NUL-terminated: the program's short name
 *   232  24  reserved         0
 */
#ifndef RTM_SHM_FINAL_H
#define RTM_SHM_FINAL_H

#include <stdint.h>

#define RTM_SHM_FINAL_MAGIC 0x464d5452u /* "RTMF" */
#define RTM_SHM_FINAL_VERSION 1
/* The reader's socket in the segment directory (a leading dot, like the
 * presence file: no segment list shows it). */
#define RTM_SHM_FINAL_SOCKET ".rtm-reader.sock"
#define RTM_SHM_FINAL_HEAP 1u /* flags: the heap figures were sampled */

struct rtm_shm_final {
	uint32_t magic;
	uint16_t version;
	uint16_t size;
	int32_t pid;
	uint32_t flags;
	uint64_t exit_unix_nano;
	uint64_t mallocs, frees, bytes;
	int64_t live_bytes, live_objects;
	int64_t heap_inuse, heap_idle, heap_releasable, heap_mmapped, heap_arenas;
	char service_name[64];
	char executable[64];
	uint8_t reserved[24];
};

_Static_assert(sizeof(struct rtm_shm_final) == 256, "rtm_shm_final is 256 bytes");

/* The allocator series: what the producer registers (rtm_alloc.c) and what
 * the reader exports of a record (rd_final.c), so both say the same.  The
 * first five are the record's counts in order; the rest are its heap. */
enum rtm_shm_alloc_series {
	RTM_SHM_ALLOC_MALLOCS, RTM_SHM_ALLOC_FREES, RTM_SHM_ALLOC_BYTES, RTM_SHM_ALLOC_LIVE,
	RTM_SHM_ALLOC_OBJECTS, RTM_SHM_ALLOC_INUSE, RTM_SHM_ALLOC_IDLE,
	RTM_SHM_ALLOC_RELEASABLE, RTM_SHM_ALLOC_MMAPPED, RTM_SHM_ALLOC_ARENAS,
	RTM_SHM_ALLOC_IDLE_RATIO, RTM_SHM_ALLOC_TRIMS, RTM_SHM_ALLOC_N
};

struct rtm_shm_series_def {
	const char *name, *unit, *desc;
	uint8_t kind; /* enum rtm_shm_kind */
};

extern const struct rtm_shm_series_def rtm_shm_alloc_series[RTM_SHM_ALLOC_N];

#endif /* RTM_SHM_FINAL_H */
