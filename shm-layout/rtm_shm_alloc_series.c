/* SPDX-License-Identifier: MIT */
/* The allocator series, one table for the producer that registers them and
 * the reader that exports a final-values datagram's (rtm_shm_final.h). */
#include "rtm_shm.h"
#include "rtm_shm_final.h"

const struct rtm_shm_series_def rtm_shm_alloc_series[RTM_SHM_ALLOC_N] = {
	[RTM_SHM_ALLOC_MALLOCS] = { "runtime.native.mem.alloc.mallocs", "{allocation}",
				    "Cumulative count of heap allocations", RTM_SHM_KIND_COUNTER },
	[RTM_SHM_ALLOC_FREES] = { "runtime.native.mem.alloc.frees", "{allocation}",
				  "Cumulative count of heap frees", RTM_SHM_KIND_COUNTER },
	[RTM_SHM_ALLOC_BYTES] = { "runtime.native.mem.alloc.total", "By",
				  "Cumulative bytes requested from the heap allocator",
				  RTM_SHM_KIND_COUNTER },
	[RTM_SHM_ALLOC_LIVE] = { "runtime.native.mem.heap.alloc", "By",
				 "Bytes of live heap objects (usable size)", RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_OBJECTS] = { "runtime.native.mem.heap.objects", "{object}",
				    "Live heap objects", RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_INUSE] = { "runtime.native.mem.heap.inuse", "By",
				  "Bytes in use in malloc arenas (mallinfo2 uordblks)",
				  RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_IDLE] = { "runtime.native.mem.heap.idle", "By",
				 "Free bytes held in malloc arenas (mallinfo2 fordblks)",
				 RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_RELEASABLE] = { "runtime.native.mem.heap.releasable", "By",
				       "Releasable free space at the top of the heap (mallinfo2 "
				       "keepcost)", RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_MMAPPED] = { "runtime.native.mem.heap.mmapped", "By",
				    "Bytes in chunks allocated with mmap (mallinfo2 hblkhd)",
				    RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_ARENAS] = { "runtime.native.mem.heap.arenas", "{arena}", "malloc arenas",
				   RTM_SHM_KIND_UPDOWN },
	[RTM_SHM_ALLOC_IDLE_RATIO] = { "runtime.native.mem.heap.idle_ratio", "1",
				       "Idle share of the heap: idle / (in use + idle); above 0.5 "
				       "with much idle, malloc_trim(0) could give memory back",
				       RTM_SHM_KIND_GAUGE },
	[RTM_SHM_ALLOC_TRIMS] = { "runtime.native.mem.heap.trims", "{trim}",
				  "malloc_trim(0) calls made because of RTM_TRIM_IDLE_RATIO",
				  RTM_SHM_KIND_COUNTER },
};
