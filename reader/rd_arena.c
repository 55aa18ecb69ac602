/* SPDX-License-Identifier: MIT */
#include "rd_arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20)

struct rd_arena_chunk {
	struct rd_arena_chunk *next;
	size_t size;
	_Alignas(16) unsigned char data[];
};

void *rd_arena_alloc(struct rd_arena *a, size_t size)
{
	void *p;

	size = (size + 15) & ~(size_t)15;
	if (!a->head || a->used + size > a->head->size) {
		size_t cap = size > CHUNK ? size : CHUNK;
		struct rd_arena_chunk *c = malloc(sizeof *c + cap);

		if (!c) {
			fprintf(stderr, "rtm-reader: out of memory\n");
			abort();
		}
		c->size = cap;
		c->next = a->head;
		a->head = c;
		a->used = 0;
		a->bytes += cap;
	}
	p = a->head->data + a->used;
	a->used += size;
	memset(p, 0, size);
	return p;
}

char *rd_arena_strdup(struct rd_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(rd_arena_alloc(a, n), s, n);
}

void rd_arena_reset(struct rd_arena *a)
{
	struct rd_arena_chunk *c;

	if (!a->head)
		return;
	/* Keep the oldest chunk (the first allocated) and drop the rest. */
	while (a->head->next) {
		c = a->head;
		a->head = c->next;
		a->bytes -= c->size;
		free(c);
	}
	a->used = 0;
}

void rd_arena_free(struct rd_arena *a)
{
	while (a->head) {
		struct rd_arena_chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
	a->used = 0;
	a->bytes = 0;
}
