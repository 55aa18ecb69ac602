/* SPDX-License-Identifier: MIT */
/* rd_arena.h - a bump allocator for one cycle's OTLP message tree: many
 * small objects, all freed together when the cycle's exports are done. */
#ifndef RD_ARENA_H
#define RD_ARENA_H

#include <stddef.h>

struct rd_arena_chunk;

struct rd_arena {
	struct rd_arena_chunk *head;  /* current chunk; older ones follow */
	struct rd_arena_chunk *spare; /* the last cycle's chunks, for reuse */
	unsigned char *base;          /* head's data */
	size_t used, cap;             /* bytes used in head, and its size */
	size_t bytes;                 /* total held, for the benchmark */
};

/* Takes a new chunk for size bytes; rd_arena_raw()'s slow path. */
void *rd_arena_refill(struct rd_arena *a, size_t size);

/* 16-byte aligned memory valid until rd_arena_reset(), not zeroed: for
 * objects the caller initialises whole (a protobuf-c __init, an array it
 * fills).  Inline because the cycle's model takes several per point.
 * Aborts on out-of-memory: the daemon cannot do anything useful without it. */
static inline void *rd_arena_raw(struct rd_arena *a, size_t size)
{
	void *p;

	size = (size + 15) & ~(size_t)15;
	if (__builtin_expect(!a->head || a->used + size > a->cap, 0))
		return rd_arena_refill(a, size);
	p = a->base + a->used;
	a->used += size;
	return p;
}

/* Zeroed rd_arena_raw(). */
void *rd_arena_alloc(struct rd_arena *a, size_t size);
char *rd_arena_strdup(struct rd_arena *a, const char *s);
/* Where the arena stands; rd_arena_rewind() frees what was allocated
 * since (its chunks are kept for reuse). */
struct rd_arena_mark {
	struct rd_arena_chunk *head;
	size_t used;
};

static inline struct rd_arena_mark rd_arena_mark(const struct rd_arena *a)
{
	return (struct rd_arena_mark){ a->head, a->used };
}

void rd_arena_rewind(struct rd_arena *a, struct rd_arena_mark m);

/* Frees everything allocated; keeps as many chunks as this cycle used for
 * the next one (steady cycles then touch no new page), and frees those the
 * cycle before kept but this one did not need. */
void rd_arena_reset(struct rd_arena *a);
void rd_arena_free(struct rd_arena *a);

#endif /* RD_ARENA_H */
