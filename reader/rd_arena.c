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

static struct rd_arena_chunk *new_chunk(struct rd_arena *a, size_t size)
{
	size_t cap = size > CHUNK ? size : CHUNK;
	struct rd_arena_chunk *c;

	/* A kept chunk is CHUNK bytes or more: take one that fits. */
	for (struct rd_arena_chunk **pp = &a->spare; *pp; pp = &(*pp)->next)
		if ((*pp)->size >= size) {
			c = *pp;
			*pp = c->next;
			return c;
		}
	c = malloc(sizeof *c + cap);
	if (!c) {
		fprintf(stderr, "rtm-reader: out of memory\n");
		abort();
	}
	c->size = cap;
	a->bytes += cap;
	return c;
}

void *rd_arena_refill(struct rd_arena *a, size_t size)
{
	struct rd_arena_chunk *c = new_chunk(a, size);

	c->next = a->head;
	a->head = c;
	a->base = c->data;
	a->cap = c->size;
	a->used = size;
	return c->data;
}

void *rd_arena_alloc(struct rd_arena *a, size_t size)
{
	return memset(rd_arena_raw(a, size), 0, size);
}

char *rd_arena_strdup(struct rd_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(rd_arena_alloc(a, n), s, n);
}

static void free_list(struct rd_arena *a, struct rd_arena_chunk *c)
{
	while (c) {
		struct rd_arena_chunk *next = c->next;

		a->bytes -= c->size;
		free(c);
		c = next;
	}
}

void rd_arena_rewind(struct rd_arena *a, struct rd_arena_mark m)
{
	while (a->head != m.head) {
		struct rd_arena_chunk *c = a->head;

		a->head = c->next;
		c->next = a->spare;
		a->spare = c;
	}
	a->base = a->head ? a->head->data : NULL;
	a->cap = a->head ? a->head->size : 0;
	a->used = m.used;
}

void rd_arena_reset(struct rd_arena *a)
{
	free_list(a, a->spare);
	a->spare = a->head;
	a->head = NULL;
	a->base = NULL;
	a->used = a->cap = 0;
}

void rd_arena_free(struct rd_arena *a)
{
	free_list(a, a->spare);
	free_list(a, a->head);
	a->spare = a->head = NULL;
	a->base = NULL;
	a->used = a->cap = 0;
	a->bytes = 0;
}
