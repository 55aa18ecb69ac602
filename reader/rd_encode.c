/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_encode.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_config.h"
#include "rd_delta.h"
#include "rd_groups.h"
#include "rd_source.h"
#include "rtm.h"

#define SCOPE_NAME "rtm"

/* protobuf-c's __init functions copy a static initialiser out of line, a
 * call per object of the model; its INIT macros let the compiler store the
 * fields in place. */
#define OTLP_INIT(p, INIT) (*(p) = (__typeof__(*(p)))INIT)

/* Per-source data that only changes with the descriptor table: resource,
 * attribute sets and the grouping of series into metrics.  Its strings point
 * into the source's parsed segment, which lives as long as the cache. */
struct group {
	const struct rd_metric *first;
	uint32_t n;
	uint32_t *members; /* metric indices */
	bool allocator;    /* runtime.native.*: the allocator group */
	/* The group's encoded data (its Sum, Gauge or Histogram field),
	 * filled in place each cycle (fill_template); NULL until first
	 * needed.  One allocation: the offsets (3 or 7 per member, as
	 * rd_pb_metric_template() gives them), then tmpl_len bytes. */
	uint32_t *tmpl_off;
	uint8_t *tmpl;
	size_t tmpl_len;
	bool seen; /* encoded once: a template pays from the second time */
};

struct enc_cache {
	uint64_t generation; /* of the descriptor table it was built from */
	uint64_t sweep;      /* rd_encode_env_sweep() count when last used */
	otlp_resource resource;
	otlp_kv **res_kv;
	otlp_kv *res_kv_store;
	otlp_any *res_any_store;
	otlp_kv ***attrs;  /* [n_attrs] -> attribute pointer arrays */
	uint32_t n_attrs;  /* the metrics it was built for: a segment grows */
	otlp_kv *kv_store;
	otlp_any *any_store;
	struct group *groups;
	uint32_t n_groups;
	uint32_t *member_store;
};

/* The caches by source seq: open addressing, at most half full.  A seq is
 * never reused, so a freed source's entry can never be found by another;
 * the sweep removes it. */
struct rd_enc_caches {
	struct enc_slot {
		uint64_t seq; /* 0: empty */
		struct enc_cache *c;
	} *slot;
	size_t mask, n;
	uint64_t sweeps;
};

static otlp_scope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;

static void init_scope(void)
{
	scope.name = (char *)SCOPE_NAME;
	scope.version = (char *)RTM_VERSION;
}

void rd_encode_env_init(struct rd_encode_env *env, bool command_line)
{
	memset(env, 0, sizeof *env);
	if (gethostname(env->host_name, sizeof env->host_name - 1))
		strcpy(env->host_name, "unknown");
	env->command_line = command_line;
	init_scope();
}

void rd_kv_str(otlp_kv *kv, otlp_any *any, const char *k, const char *v)
{
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(any);
	kv->key = (char *)k;
	kv->value = any;
	any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	any->string_value = (char *)v;
}

void rd_kv_int(otlp_kv *kv, otlp_any *any, const char *k, int64_t v)
{
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(any);
	kv->key = (char *)k;
	kv->value = any;
	any->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	any->int_value = v;
}

static void cache_free(struct enc_cache *c)
{
	if (!c)
		return;
	free(c->res_kv);
	free(c->res_kv_store);
	free(c->res_any_store);
	if (c->attrs)
		for (uint32_t i = 0; i < c->n_attrs; i++)
			free(c->attrs[i]);
	free(c->attrs);
	free(c->kv_store);
	free(c->any_store);
	for (uint32_t g = 0; c->groups && g < c->n_groups; g++)
		free(c->groups[g].tmpl_off);
	free(c->groups);
	free(c->member_store);
	free(c);
}

static size_t seq_slot(const struct rd_enc_caches *t, uint64_t seq)
{
	return (size_t)((seq * 0x9e3779b97f4a7c15ull) >> 32) & t->mask;
}

/* Where seq's entry is, or the empty slot it would take. */
static struct enc_slot *slot_of(struct rd_enc_caches *t, uint64_t seq)
{
	size_t i = seq_slot(t, seq);

	while (t->slot[i].seq && t->slot[i].seq != seq)
		i = (i + 1) & t->mask;
	return &t->slot[i];
}

/* The table again in `slots` slots (a power of two); sweeping, without
 * the entries not used since the last sweep, freed.  Aborts without
 * memory, like the arena. */
static void rehash(struct rd_enc_caches *t, size_t slots, bool sweeping)
{
	struct enc_slot *old = t->slot;
	size_t n = old ? t->mask + 1 : 0;

	t->slot = calloc(slots, sizeof *t->slot);
	if (!t->slot)
		abort();
	t->mask = slots - 1;
	t->n = 0;
	for (size_t i = 0; i < n; i++) {
		if (!old[i].seq)
			continue;
		if (sweeping && old[i].c->sweep != t->sweeps) {
			cache_free(old[i].c);
			continue;
		}
		*slot_of(t, old[i].seq) = old[i];
		t->n++;
	}
	free(old);
}

void rd_encode_env_sweep(struct rd_encode_env *env)
{
	struct rd_enc_caches *t = env->caches;
	size_t slots = 64;

	if (!t)
		return;
	/* Sized from what it holds now: a table grown by a burst of
	 * producers shrinks over the next two sweeps. */
	while (slots < 4 * t->n)
		slots *= 2;
	rehash(t, slots, true);
	t->sweeps++;
}

size_t rd_encode_env_producers(const struct rd_encode_env *env)
{
	return env->caches ? env->caches->n : 0;
}

void rd_encode_env_free(struct rd_encode_env *env)
{
	struct rd_enc_caches *t = env->caches;

	if (!t)
		return;
	for (size_t i = 0; i <= t->mask; i++)
		if (t->slot[i].seq)
			cache_free(t->slot[i].c);
	free(t->slot);
	free(t);
	env->caches = NULL;
}

/* "rtm-c/0.1.0" -> "native"; "rtm-go/..." -> "go": the runtime the
 * producer library instruments. */
static const char *runtime_name(const char *producer)
{
	static __thread char buf[32];
	const char *slash;

	if (!strncmp(producer, "rtm-c/", 6) || !*producer)
		return "native";
	slash = strchr(producer, '/');
	snprintf(buf, sizeof buf, "%.*s", (int)(slash ? slash - producer : (long)strlen(producer)),
		 producer);
	return !strncmp(buf, "rtm-", 4) ? buf + 4 : buf;
}

static void build_resource(struct enc_cache *c, const struct rd_encode_env *env,
			   const struct rd_source *s)
{
	const struct rtm_shm_header *h = &s->seg.hdr;
	size_t cap = s->seg.n_resource + 12, n = 0;

	c->res_kv = calloc(cap, sizeof *c->res_kv);
	c->res_kv_store = calloc(cap, sizeof *c->res_kv_store);
	c->res_any_store = calloc(cap, sizeof *c->res_any_store);
	if (!c->res_kv || !c->res_kv_store || !c->res_any_store)
		abort();
#define ADD_STR(k, v) rd_kv_str(&c->res_kv_store[n], &c->res_any_store[n], k, v), n++
	ADD_STR("service.name", h->service_name);
	if (*h->service_version)
		ADD_STR("service.version", h->service_version);
	ADD_STR("service.instance.id", s->instance_id);
	rd_kv_int(&c->res_kv_store[n], &c->res_any_store[n], "process.pid", h->pid), n++;
	if (*s->creation_time) /* a final-values datagram has none */
		ADD_STR("process.creation.time", s->creation_time);
	if (*s->exe_name)
		ADD_STR("process.executable.name", s->exe_name);
	if (env->command_line && s->command_line)
		ADD_STR("process.command_line", s->command_line);
	ADD_STR("host.name", env->host_name);
	ADD_STR("process.runtime.name", runtime_name(h->producer));
	if (*s->container.id)
		ADD_STR("container.id", s->container.id);
	if (*s->container.pod_uid)
		ADD_STR("k8s.pod.uid", s->container.pod_uid);
#undef ADD_STR
	/* The producer's own attributes, unless they would override identity
	 * attributes the reader derived itself. */
	for (uint32_t i = 0; i < s->seg.n_resource; i++) {
		const struct rd_attr *a = &s->seg.resource[i];
		bool dup = false;

		for (size_t k = 0; k < n; k++)
			dup |= !strcmp(c->res_kv_store[k].key, a->key);
		if (!dup) {
			rd_kv_str(&c->res_kv_store[n], &c->res_any_store[n], a->key, a->value);
			n++;
		}
	}
	for (size_t k = 0; k < n; k++)
		c->res_kv[k] = &c->res_kv_store[k];
	opentelemetry__proto__resource__v1__resource__init(&c->resource);
	c->resource.n_attributes = n;
	c->resource.attributes = c->res_kv;
}

static uint64_t hash_metric(const struct rd_metric *m)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = m->name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h ^ m->kind;
}

static bool same_group(const struct rd_metric *a, const struct rd_metric *b)
{
	return a->kind == b->kind && a->value_type == b->value_type &&
	       !strcmp(a->name, b->name) && !strcmp(a->unit, b->unit);
}

/* Groups series by (name, kind, unit, type) with a hash table, so even a
 * hostile table of 65536 series groups in linear time. */
static void build_groups(struct enc_cache *c, const struct rd_source *s)
{
	uint32_t n = s->seg.n_metrics, mask = 1, *slot, *group_of, *count;

	while (mask < n * 2 + 1)
		mask <<= 1;
	slot = malloc(mask * sizeof *slot);
	group_of = malloc((n + 1) * sizeof *group_of);
	count = calloc(n + 1, sizeof *count);
	c->groups = calloc(n + 1, sizeof *c->groups);
	c->member_store = malloc((n + 1) * sizeof *c->member_store);
	if (!slot || !group_of || !count || !c->groups || !c->member_store)
		abort();
	memset(slot, 0xff, mask * sizeof *slot);
	mask--;
	for (uint32_t i = 0; i < n; i++) {
		const struct rd_metric *m = &s->seg.metrics[i];
		uint32_t h = (uint32_t)hash_metric(m) & mask;

		while (slot[h] != UINT32_MAX &&
		       !same_group(c->groups[slot[h]].first, m))
			h = (h + 1) & mask;
		if (slot[h] == UINT32_MAX) {
			slot[h] = c->n_groups;
			c->groups[c->n_groups].allocator = !strncmp(m->name, "runtime.native.", 15);
			c->groups[c->n_groups++].first = m;
		}
		group_of[i] = slot[h];
		count[slot[h]]++;
	}
	for (uint32_t g = 0, pos = 0; g < c->n_groups; g++) {
		c->groups[g].members = c->member_store + pos;
		pos += count[g];
	}
	for (uint32_t i = 0; i < n; i++) {
		struct group *g = &c->groups[group_of[i]];
		g->members[g->n++] = i;
	}
	free(slot);
	free(group_of);
	free(count);
}

static void build_attrs(struct enc_cache *c, const struct rd_source *s)
{
	size_t total = 0, pos = 0;

	for (uint32_t i = 0; i < s->seg.n_metrics; i++)
		total += s->seg.metrics[i].n_attrs;
	c->attrs = calloc(s->seg.n_metrics + 1, sizeof *c->attrs);
	c->n_attrs = s->seg.n_metrics;
	c->kv_store = calloc(total + 1, sizeof *c->kv_store);
	c->any_store = calloc(total + 1, sizeof *c->any_store);
	if (!c->attrs || !c->kv_store || !c->any_store)
		abort();
	for (uint32_t i = 0; i < s->seg.n_metrics; i++) {
		const struct rd_metric *m = &s->seg.metrics[i];

		c->attrs[i] = calloc(m->n_attrs + 1, sizeof **c->attrs);
		if (!c->attrs[i])
			abort();
		for (uint32_t a = 0; a < m->n_attrs; a++, pos++) {
			rd_kv_str(&c->kv_store[pos], &c->any_store[pos], m->attrs[a].key,
				m->attrs[a].value);
			c->attrs[i][a] = &c->kv_store[pos];
		}
	}
}

static struct enc_cache *cache_for(struct rd_source *s, struct rd_encode_env *env)
{
	struct rd_enc_caches *t = env->caches;
	struct enc_slot *e;
	struct enc_cache *c;

	if (!t) {
		t = env->caches = calloc(1, sizeof *t);
		if (!t)
			abort();
		rehash(t, 64, false);
	}
	e = slot_of(t, s->seq);
	c = e->c;
	if (c && c->generation == s->seg.generation) {
		c->sweep = t->sweeps;
		return c;
	}
	cache_free(c);
	c = calloc(1, sizeof *c);
	if (!c)
		abort();
	build_resource(c, env, s);
	build_attrs(c, s);
	build_groups(c, s);
	c->generation = s->seg.generation;
	c->sweep = t->sweeps;
	if (!e->seq) {
		e->seq = s->seq;
		t->n++;
	}
	e->c = c;
	if (2 * t->n > t->mask + 1)
		rehash(t, 2 * (t->mask + 1), false);
	return c;
}

/* Appends the ResourceMetrics just encoded in b->sizer to the wire: a
 * request message is nothing but its repeated field 1, so a request's
 * bytes are a run of its members' fields. */
static void append_wire(struct rd_batch *b)
{
	size_t n = rd_pb_len(&b->sizer);

	if (b->wire_len + n > b->wire_cap) {
		size_t cap = (b->wire_len + n) * 2;
		uint8_t *p = realloc(b->wire, cap);

		if (!p)
			abort();
		b->wire = p;
		b->wire_cap = cap;
	}
	memcpy(b->wire + b->wire_len, rd_pb_data(&b->sizer), n);
	b->wire_len += n;
}

/* Adds a finished ResourceMetrics just serialised into b->sizer. */
static void push_packed(struct rd_batch *b, otlp_rm *rm, const struct rd_rm_owner *owner,
			struct rd_arena_mark built_from)
{
	if (b->n_rms == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		otlp_rm **p = realloc(b->rms, cap * sizeof *p);
		size_t *o = p ? realloc(b->wire_off, (cap + 1) * sizeof *o) : NULL;
		struct rd_rm_owner *w = o ? realloc(b->owners, cap * sizeof *w) : NULL;

		if (!w)
			abort();
		b->rms = p;
		b->wire_off = o;
		b->owners = w;
		b->cap = cap;
	}
	b->owners[b->n_rms] = *owner;
	b->wire_off[b->n_rms] = b->wire_len;
	append_wire(b);
	if (b->wire_only && rd_pb_len(&b->sizer) <= b->max_bytes) {
		rd_arena_rewind(&b->arena, built_from);
		rm = NULL;
	}
	b->rms[b->n_rms++] = rm;
	b->wire_off[b->n_rms] = b->wire_len;
}

/* Adds a finished ResourceMetrics and serialises it at once, while its
 * tree is still in cache (a cycle's whole model is tens of megabytes at a
 * thousand producers; serialising it afterwards re-read it all). */
static void push_rm(struct rd_batch *b, otlp_rm *rm, const struct rd_rm_owner *owner,
		    struct rd_arena_mark built_from)
{
	if (rd_pb_rm_field_size(&b->sizer, rm) == SIZE_MAX)
		abort(); /* out of memory */
	push_packed(b, rm, owner, built_from);
}

static otlp_rm *new_rm(struct rd_batch *b, otlp_resource *res, size_t n_metrics)
{
	otlp_rm *rm = rd_arena_raw(&b->arena, sizeof *rm);
	otlp_sm *sm = rd_arena_raw(&b->arena, sizeof *sm);
	otlp_sm **sms = rd_arena_raw(&b->arena, sizeof *sms);

	OTLP_INIT(rm, OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT);
	OTLP_INIT(sm, OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT);
	rm->resource = res;
	rm->n_scope_metrics = 1;
	rm->scope_metrics = sms;
	sms[0] = sm;
	sm->scope = &scope;
	sm->metrics = rd_arena_raw(&b->arena, (n_metrics + 1) * sizeof *sm->metrics);
	return rm;
}

static void fill_ndp(otlp_ndp *p, const struct rd_metric *m, const struct rd_value *v,
		     bool no_value, uint64_t now)
{
	OTLP_INIT(p, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
	p->time_unix_nano = now;
	if (m->kind != RTM_SHM_KIND_GAUGE)
		/* A start after the point's time is invalid OTLP (a hostile or
		 * clock-confused producer): clamp it to the point's time. */
		p->start_time_unix_nano = m->start_unix_nano < now ? m->start_unix_nano : now;
	if (no_value) {
		p->flags = OTLP_NO_RECORDED_VALUE;
	} else if (m->value_type == RTM_SHM_VALUE_INT) {
		p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
		p->as_int = v->i;
	} else {
		p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
		p->as_double = v->d;
	}
}

static void fill_hdp(otlp_hdp *p, const struct rd_metric *m,
		     const struct rd_value *v, bool no_value, uint64_t now)
{
	OTLP_INIT(p, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT);
	p->time_unix_nano = now;
	p->start_time_unix_nano = m->start_unix_nano < now ? m->start_unix_nano : now;
	if (no_value) {
		p->flags = OTLP_NO_RECORDED_VALUE;
		return;
	}
	p->count = v->count;
	p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
	p->sum = v->sum;
	if (v->count) {
		p->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
		p->min = v->min;
		p->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
		p->max = v->max;
	}
	p->n_bucket_counts = m->n_bounds + 1;
	p->bucket_counts = v->buckets; /* lives in the snapshot until next cycle */
	p->n_explicit_bounds = m->n_bounds;
	p->explicit_bounds = m->bounds;
}

/* An exponential point: both sides point into the snapshot (valid until
 * the next cycle), trimmed to the buckets in use. */
static void fill_ehdp(struct rd_batch *b, otlp_ehdp *p, const struct rd_metric *m,
		      const struct rd_value *v, bool no_value, uint64_t now)
{
	OTLP_INIT(p, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT);
	p->time_unix_nano = now;
	p->start_time_unix_nano = m->start_unix_nano < now ? m->start_unix_nano : now;
	if (no_value) {
		p->flags = OTLP_NO_RECORDED_VALUE;
		return;
	}
	p->count = v->count;
	p->scale = v->exp->scale;
	p->zero_count = v->exp->zero_count;
	if (!m->no_sum) {
		p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
		p->sum = v->sum;
	}
	if (v->count && !m->no_sum) {
		p->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN;
		p->min = v->min;
		p->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX;
		p->max = v->max;
	}
	for (int neg = 0; neg < 2; neg++) {
		int32_t base = neg ? v->exp->neg_base : v->exp->pos_base;
		int32_t top = neg ? v->exp->neg_top : v->exp->pos_top;
		otlp_ebuckets *e;

		if (top < base)
			continue;
		e = rd_arena_raw(&b->arena, sizeof *e);
		OTLP_INIT(e, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT);
		e->offset = base;
		e->n_bucket_counts = (size_t)(top - base) + 1;
		e->bucket_counts = rtm_shm_exphist_counts(v->exp, m->exp_size, neg);
		if (neg)
			p->negative = e;
		else
			p->positive = e;
	}
}

/* Whether series idx holds a value OTLP must not carry (docs/reference/reader.md, "Hostile
 * values"): a monotonic sum below zero or not finite, a histogram whose sum
 * is not finite.  Such points are left out and counted. */
static bool invalid_value(const struct rd_metric *m, const struct rd_value *v)
{
	if (m->kind == RTM_SHM_KIND_HISTOGRAM || (m->kind == RD_KIND_EXPHIST && !m->no_sum))
		return !isfinite(v->sum);
	if (m->kind == RD_KIND_EXPHIST)
		return false;
	if (m->kind != RTM_SHM_KIND_COUNTER)
		return false;
	return m->value_type == RTM_SHM_VALUE_INT ? v->i < 0 : !(v->d >= 0) || isinf(v->d);
}

/* The members of g whose points OTLP may carry (all of them for
 * no_value), in the arena; the others are counted and left out. */
static uint32_t carried(struct rd_batch *b, const struct group *g, struct rd_source *s,
			bool no_value, const uint32_t **out)
{
	uint32_t *keep = rd_arena_raw(&b->arena, g->n * sizeof *keep), n = 0;

	for (uint32_t i = 0; i < g->n; i++) {
		uint32_t idx = g->members[i];

		if (!no_value && invalid_value(&s->seg.metrics[idx], &s->snap.values[idx]))
			s->invalid_points++;
		else
			keep[n++] = idx;
	}
	*out = keep;
	return n;
}

static otlp_metric *encode_group(struct rd_batch *b, const struct enc_cache *c,
				 const struct group *g, struct rd_source *s,
				 bool no_value, uint64_t now)
{
	const struct rd_metric *first = g->first;
	otlp_metric *m = rd_arena_raw(&b->arena, sizeof *m);
	const uint32_t *keep;
	uint32_t n = carried(b, g, s, no_value, &keep);

	OTLP_INIT(m, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
	m->name = first->name;
	m->description = first->description;
	m->unit = first->unit;
	if (first->kind == RTM_SHM_KIND_HISTOGRAM) {
		otlp_hist *h = rd_arena_raw(&b->arena, sizeof *h);
		otlp_hdp *pts = rd_arena_raw(&b->arena, g->n * sizeof *pts);

		OTLP_INIT(h, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT);
		h->aggregation_temporality = OTLP_CUMULATIVE;
		h->data_points = rd_arena_raw(&b->arena, g->n * sizeof *h->data_points);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx = keep[i];

			fill_hdp(&pts[i], &s->seg.metrics[idx], &s->snap.values[idx], no_value, now);
			pts[i].n_attributes = s->seg.metrics[idx].n_attrs;
			pts[i].attributes = c->attrs[idx];
			h->data_points[i] = &pts[i];
		}
		h->n_data_points = n;
		m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
		m->histogram = h;
	} else if (first->kind == RD_KIND_EXPHIST) {
		otlp_ehist *h = rd_arena_raw(&b->arena, sizeof *h);
		otlp_ehdp *pts = rd_arena_raw(&b->arena, g->n * sizeof *pts);

		OTLP_INIT(h, OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT);
		h->aggregation_temporality = OTLP_CUMULATIVE;
		h->data_points = rd_arena_raw(&b->arena, g->n * sizeof *h->data_points);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx = keep[i];

			fill_ehdp(b, &pts[i], &s->seg.metrics[idx], &s->snap.values[idx], no_value, now);
			pts[i].n_attributes = s->seg.metrics[idx].n_attrs;
			pts[i].attributes = c->attrs[idx];
			h->data_points[i] = &pts[i];
		}
		h->n_data_points = n;
		m->data_case = OTLP_DATA_EXPHIST;
		m->exponential_histogram = h;
	} else {
		otlp_ndp *pts = rd_arena_raw(&b->arena, g->n * sizeof *pts);
		otlp_ndp **pp = rd_arena_raw(&b->arena, g->n * sizeof *pp);

		for (uint32_t i = 0; i < n; i++) {
			uint32_t idx = keep[i];

			fill_ndp(&pts[i], &s->seg.metrics[idx], &s->snap.values[idx], no_value, now);
			pts[i].n_attributes = s->seg.metrics[idx].n_attrs;
			pts[i].attributes = c->attrs[idx];
			pp[i] = &pts[i];
		}
		if (first->kind == RTM_SHM_KIND_GAUGE) {
			otlp_gauge *gg = rd_arena_raw(&b->arena, sizeof *gg);

			OTLP_INIT(gg, OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT);
			gg->n_data_points = n;
			gg->data_points = pp;
			m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
			m->gauge = gg;
		} else {
			otlp_sum *sum = rd_arena_raw(&b->arena, sizeof *sum);

			OTLP_INIT(sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
			sum->aggregation_temporality = OTLP_CUMULATIVE;
			sum->is_monotonic = first->kind == RTM_SHM_KIND_COUNTER;
			sum->n_data_points = n;
			sum->data_points = pp;
			m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
			m->sum = sum;
		}
	}
	b->points += n;
	return n ? m : NULL;
}

/*
 * A group's Metric straight from its template: when only protobuf leaves,
 * cumulative, a group whose points all hold valid values (and, for a
 * histogram, at least one observation each, so that count, min and max
 * are present) has the same bytes every cycle but for its fixed-size
 * payloads: start time, time and value of a number point; start time,
 * time, count, sum, bucket counts, min and max of a histogram point.  So
 * the tree and its serialisation are built once and then filled in place
 * (tests check the bytes equal the tree's).  *out: the bytes.  false: take
 * the tree this cycle.
 */
static bool fill_template(struct rd_batch *b, const struct enc_cache *c, struct group *g,
			  struct rd_source *s, uint64_t now, struct rd_pb_raw_metric *out)
{
	bool hist = g->first->kind == RTM_SHM_KIND_HISTOGRAM;
	size_t per = hist ? 7 : 3;

	/* An exponential point's size follows its buckets: no fixed template. */
	if (!now || g->first->kind == RD_KIND_EXPHIST)
		return false;
	for (uint32_t i = 0; i < g->n; i++) {
		const struct rd_value *v = &s->snap.values[g->members[i]];

		if (invalid_value(&s->seg.metrics[g->members[i]], v) || (hist && !v->count))
			return false;
	}
	if (!g->tmpl && !g->seen) {
		/* A short-lived producer is exported once or twice (and a
		 * --once run once): the tree, without a template to build. */
		g->seen = true;
		return false;
	}
	if (!g->tmpl) {
		struct rd_arena_mark mark = rd_arena_mark(&b->arena);
		otlp_metric *m = encode_group(b, c, g, s, false, now);
		size_t offs = per * g->n * sizeof *g->tmpl_off, n;
		uint32_t *off = rd_arena_raw(&b->arena, offs);
		struct rd_pb pb = { 0 };

		b->points -= g->n; /* counted below, as every cycle */
		if (!m || (n = rd_pb_metric_template(&pb, m, off)) == SIZE_MAX ||
		    !(g->tmpl_off = malloc(offs + n)))
			abort(); /* out of memory */
		memcpy(g->tmpl_off, off, offs);
		g->tmpl = (uint8_t *)g->tmpl_off + offs;
		memcpy(g->tmpl, rd_pb_data(&pb), n);
		g->tmpl_len = n;
		rd_pb_free(&pb);
		rd_arena_rewind(&b->arena, mark);
	}
	for (uint32_t i = 0; i < g->n; i++) {
		const struct rd_metric *m = &s->seg.metrics[g->members[i]];
		const struct rd_value *v = &s->snap.values[g->members[i]];
		const uint32_t *off = &g->tmpl_off[per * i];
		/* As fill_ndp() and fill_hdp(): a start after the point's time
		 * is clamped to it. */
		uint64_t start = m->start_unix_nano < now ? m->start_unix_nano : now;
		uint8_t *t = g->tmpl;

		if (off[0] != UINT32_MAX)
			memcpy(t + off[0], &start, 8);
		memcpy(t + off[1], &now, 8);
		if (hist) {
			memcpy(t + off[2], &v->count, 8);
			memcpy(t + off[3], &v->sum, 8);
			memcpy(t + off[4], v->buckets, ((size_t)m->n_bounds + 1) * 8);
			memcpy(t + off[5], &v->min, 8);
			memcpy(t + off[6], &v->max, 8);
		} else if (m->value_type == RTM_SHM_VALUE_INT) {
			memcpy(t + off[2], &v->i, 8);
		} else {
			memcpy(t + off[2], &v->d, 8);
		}
	}
	b->points += g->n;
	*out = (struct rd_pb_raw_metric){ g->first->name, g->first->description, g->first->unit,
					  g->tmpl, g->tmpl_len };
	return true;
}

/* templates: fill_template() where it can. */
static void encode_source(struct rd_batch *b, struct rd_encode_env *env,
			  struct rd_source *s, bool no_value, uint64_t now, bool templates)
{
	struct rd_arena_mark mark = rd_arena_mark(&b->arena);
	struct enc_cache *c = cache_for(s, env);
	otlp_rm *rm = new_rm(b, &c->resource, c->n_groups);
	otlp_sm *sm = rm->scope_metrics[0];
	struct rd_pb_raw_metric *raw = NULL, filled;
	size_t points = b->points;
	uint64_t invalid = s->invalid_points;
	otlp_sm *proc;
	struct rd_rm_owner owner = { .uid = s->seg.st.st_uid, .seq = s->seq };
	bool seg_scope;

	templates = templates && b->wire_only && b->temporality == RD_TEMP_CUMULATIVE && !no_value;
	for (uint32_t g = 0; g < c->n_groups; g++) {
		otlp_metric *m;

		/* The allocator group's series come from the segment itself. */
		if (!no_value && !(env->groups_due & (1u << RD_GROUP_ALLOCATOR)) &&
		    c->groups[g].allocator)
			continue;
		if (templates && fill_template(b, c, &c->groups[g], s, now, &filled)) {
			if (!raw) /* raw[i] is read only where metrics[i] is NULL */
				raw = rd_arena_raw(&b->arena, (c->n_groups + 1) * sizeof *raw);
			raw[sm->n_metrics] = filled;
			sm->metrics[sm->n_metrics++] = NULL;
			continue;
		}
		m = encode_group(b, c, &c->groups[g], s, no_value, now);
		if (m) /* NULL: every point of it was left out */
			sm->metrics[sm->n_metrics++] = m;
	}
	/* What the reader measured of the process from outside, under its own
	 * scope in the same resource. */
	proc = rd_encode_process_scope(b, s, no_value ? ~0u : env->groups_due, no_value, now);
	if (proc && !sm->n_metrics) {
		rm->scope_metrics[0] = proc; /* a process without a segment */
	} else if (proc) {
		otlp_sm **two = rd_arena_raw(&b->arena, 2 * sizeof *two);

		two[0] = sm;
		two[1] = proc;
		rm->scope_metrics = two;
		rm->n_scope_metrics = 2;
	}
	/* The segment's scope is first when there is one; the delta may
	 * replace it with a copy. */
	seg_scope = rm->scope_metrics[0] == sm;
	rd_delta_apply(&s->delta, rm, &b->arena, b->temporality, b->epoch, b->since_ns);
	if (seg_scope)
		owner.own = rm->scope_metrics[0];
	if (!raw) {
		push_rm(b, rm, &owner, mark);
		return;
	}
	if (rd_pb_rm_field_size_raw(&b->sizer, rm, sm, raw) == SIZE_MAX)
		abort(); /* out of memory */
	if (rd_pb_len(&b->sizer) <= b->max_bytes) {
		push_packed(b, rm, &owner, mark); /* frees the tree: no one reads it */
		return;
	}
	/* Larger than a request: splitting it needs the whole tree. */
	rd_arena_rewind(&b->arena, mark);
	b->points = points;
	s->invalid_points = invalid;
	encode_source(b, env, s, no_value, now, false);
}

void rd_encode_source(struct rd_batch *b, struct rd_encode_env *env,
		      struct rd_source *s, bool no_value, uint64_t now)
{
	encode_source(b, env, s, no_value, now, true);
}

/* ---- the reader's own metrics ---- */

void rd_encode_numbers(struct rd_batch *b, otlp_sm *sm, const char *name,
		       const char *unit, const char *desc, int kind, uint64_t start,
		       uint64_t now, bool no_value, const struct rd_num_point *pts, size_t n)
{
	otlp_metric *m = rd_arena_alloc(&b->arena, sizeof *m);
	otlp_ndp **pp = rd_arena_alloc(&b->arena, n * sizeof *pp);

	for (size_t i = 0; i < n; i++) {
		otlp_ndp *p = rd_arena_alloc(&b->arena, sizeof *p);

		OTLP_INIT(p, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
		p->time_unix_nano = now;
		if (kind != RTM_SHM_KIND_GAUGE)
			p->start_time_unix_nano = start;
		if (no_value) {
			p->flags = OTLP_NO_RECORDED_VALUE;
		} else if (pts[i].dbl) {
			p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
			p->as_double = pts[i].d;
		} else {
			p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
			p->as_int = pts[i].i;
		}
		if (pts[i].key) {
			otlp_kv *kv = rd_arena_alloc(&b->arena, sizeof *kv);
			otlp_any *any = rd_arena_alloc(&b->arena, sizeof *any);

			rd_kv_str(kv, any, pts[i].key, pts[i].val);
			p->attributes = rd_arena_alloc(&b->arena, sizeof *p->attributes);
			p->attributes[0] = kv;
			p->n_attributes = 1;
		}
		pp[i] = p;
	}
	OTLP_INIT(m, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
	m->name = (char *)name;
	m->unit = (char *)unit;
	m->description = (char *)desc;
	if (kind == RTM_SHM_KIND_GAUGE) {
		otlp_gauge *g = rd_arena_alloc(&b->arena, sizeof *g);

		OTLP_INIT(g, OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT);
		g->data_points = pp;
		g->n_data_points = n;
		m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
		m->gauge = g;
	} else {
		otlp_sum *sum = rd_arena_alloc(&b->arena, sizeof *sum);

		OTLP_INIT(sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
		sum->aggregation_temporality = OTLP_CUMULATIVE;
		sum->is_monotonic = kind == RTM_SHM_KIND_COUNTER;
		sum->data_points = pp;
		sum->n_data_points = n;
		m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
		m->sum = sum;
	}
	sm->metrics[sm->n_metrics++] = m;
	b->points += n;
}

void rd_encode_self(struct rd_batch *b, const struct rd_encode_env *env,
		    const struct rd_config *cfg, const struct rd_self_stats *st,
		    uint64_t now)
{
	static char pid_instance[64];
	size_t n = cfg->n_resource + 4, k = 0;
	struct rd_arena_mark mark = rd_arena_mark(&b->arena);
	otlp_resource *res = rd_arena_alloc(&b->arena, sizeof *res);
	otlp_kv *kvs = rd_arena_alloc(&b->arena, n * sizeof *kvs);
	otlp_any *anys = rd_arena_alloc(&b->arena, n * sizeof *anys);
	otlp_rm *rm;
	otlp_sm *sm;
	uint64_t t0 = st->start_unix_nano;

	snprintf(pid_instance, sizeof pid_instance, "%d-%llu", (int)getpid(),
		 (unsigned long long)t0);
	opentelemetry__proto__resource__v1__resource__init(res);
	res->attributes = rd_arena_alloc(&b->arena, n * sizeof *res->attributes);
	/* service.name as rd_config resolved it (OTEL_SERVICE_NAME over the
	 * attribute); then OTEL_RESOURCE_ATTRIBUTES, every other key of it;
	 * then what the reader detects, where those did not say. */
	rd_kv_str(&kvs[k], &anys[k], "service.name", cfg->service_name), k++;
	for (size_t i = 0; i < cfg->n_resource; i++) {
		bool dup = false;

		for (size_t j = 0; j < k; j++)
			dup |= !strcmp(kvs[j].key, cfg->resource[i].name);
		if (!dup)
			rd_kv_str(&kvs[k], &anys[k], cfg->resource[i].name, cfg->resource[i].value), k++;
	}
	{
		bool have[3] = { false, false, false };
		static const char *const keys[3] = { "service.instance.id", "process.pid", "host.name" };

		for (size_t j = 0; j < k; j++)
			for (int d = 0; d < 3; d++)
				have[d] |= !strcmp(kvs[j].key, keys[d]);
		if (!have[0])
			rd_kv_str(&kvs[k], &anys[k], keys[0], pid_instance), k++;
		if (!have[1])
			rd_kv_int(&kvs[k], &anys[k], keys[1], getpid()), k++;
		if (!have[2])
			rd_kv_str(&kvs[k], &anys[k], keys[2], env->host_name), k++;
	}
	for (size_t i = 0; i < k; i++)
		res->attributes[i] = &kvs[i];
	res->n_attributes = k;

	rm = new_rm(b, res, 11);
	sm = rm->scope_metrics[0];
#define NUM(name, unit, desc, kind, ...)                                        \
	rd_encode_numbers(b, sm, name, unit, desc, kind, t0, now, false,            \
			  (struct rd_num_point[]){ __VA_ARGS__ },                   \
			  sizeof((struct rd_num_point[]){ __VA_ARGS__ }) / sizeof(struct rd_num_point))
	NUM("rtm.reader.segments", "{segment}", "Producer segments being exported",
	    RTM_SHM_KIND_UPDOWN, { .i = st->segments });
	NUM("rtm.reader.segments.rejected", "{segment}", "Segments refused as invalid",
	    RTM_SHM_KIND_COUNTER, { .i = (int64_t)st->segments_rejected });
	NUM("rtm.reader.segments.unresolved", "{segment}",
	    "Segments kept but not exported: their process cannot be found under the proc root",
	    RTM_SHM_KIND_UPDOWN, { .i = st->segments_unresolved });
	NUM("rtm.reader.slots.torn", "{slot}", "Histogram shard reads that never settled",
	    RTM_SHM_KIND_COUNTER, { .i = (int64_t)st->torn_slots });
	NUM("rtm.reader.exports", "{request}", "Export requests by outcome", RTM_SHM_KIND_COUNTER,
	    { .i = (int64_t)st->exports_ok, .key = "outcome", .val = "ok" },
	    { .i = (int64_t)st->exports_failed, .key = "outcome", .val = "failed" });
	NUM("rtm.reader.export.retries", "{retry}", "Export attempts retried",
	    RTM_SHM_KIND_COUNTER, { .i = (int64_t)st->retries });
	NUM("rtm.reader.export.sent", "By", "Request bytes sent, after compression",
	    RTM_SHM_KIND_COUNTER, { .i = (int64_t)st->bytes_sent });
	NUM("rtm.reader.points.rejected", "{point}", "Data points the collector rejected",
	    RTM_SHM_KIND_COUNTER, { .i = (int64_t)st->points_rejected });
	NUM("rtm.reader.points.invalid", "{point}",
	    "Points left out for values OTLP cannot carry (negative counters, non-finite sums)",
	    RTM_SHM_KIND_COUNTER, { .i = (int64_t)st->points_invalid });
	NUM("rtm.reader.prometheus.conflicts", "{metric}",
	    "Producers' metrics whose name another family has on the last /metrics page: "
	    "renamed name__uid<N>, or left out",
	    RTM_SHM_KIND_GAUGE, { .i = st->prom_renamed, .key = "outcome", .val = "renamed" },
	    { .i = st->prom_dropped, .key = "outcome", .val = "dropped" });
#undef NUM
	{
		/* Cycle duration: a histogram with the default seconds bounds. */
		struct rd_metric m = { .name = (char *)"rtm.reader.cycle.duration",
				       .unit = (char *)"s",
				       .description = (char *)"Collection cycle duration",
				       .kind = RTM_SHM_KIND_HISTOGRAM,
				       .value_type = RTM_SHM_VALUE_DOUBLE,
				       .n_bounds = RTM_DEFAULT_SECONDS_BOUNDS_N,
				       .bounds = (double *)rtm_default_seconds_bounds,
				       .start_unix_nano = t0 };
		uint64_t *buckets = rd_arena_alloc(&b->arena, sizeof st->cycle_buckets);
		struct rd_value v = { .count = st->cycles, .sum = st->cycle_sum,
				      .min = st->cycle_min, .max = st->cycle_max,
				      .buckets = buckets };
		otlp_metric *om = rd_arena_alloc(&b->arena, sizeof *om);
		otlp_hist *h = rd_arena_alloc(&b->arena, sizeof *h);
		otlp_hdp *p = rd_arena_alloc(&b->arena, sizeof *p);

		memcpy(buckets, st->cycle_buckets, sizeof st->cycle_buckets);
		fill_hdp(p, &m, &v, false, now);
		OTLP_INIT(h, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT);
		h->aggregation_temporality = OTLP_CUMULATIVE;
		h->n_data_points = 1;
		h->data_points = rd_arena_alloc(&b->arena, sizeof *h->data_points);
		h->data_points[0] = p;
		OTLP_INIT(om, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
		om->name = m.name;
		om->unit = m.unit;
		om->description = m.description;
		om->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
		om->histogram = h;
		sm->metrics[sm->n_metrics++] = om;
		b->points++;
	}
	rd_delta_apply(&b->self_delta, rm, &b->arena, b->temporality, b->epoch, b->since_ns);
	push_rm(b, rm, &(struct rd_rm_owner){ .uid = (uint32_t)geteuid(), .reader = true }, mark);
}

/* ---- requests ---- */

/* Bytes a message of n bytes takes as a length-delimited field: the tag,
 * the varint length and the message itself. */
static size_t framed(size_t n)
{
	size_t v = 1;

	for (size_t len = n; len >= 128; len >>= 7)
		v++;
	return 1 + v + n;
}

static int flush(const struct rd_batch *b, otlp_rm **rms, size_t n, const uint8_t *pb,
		 size_t len, int (*fn)(const struct rd_request *, void *), void *ctx)
{
	otlp_req req = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	struct rd_request r = { b->wire_only ? NULL : &req, pb, len };

	if (!n)
		return 0;
	req.n_resource_metrics = n;
	req.resource_metrics = rms;
	return fn(&r, ctx);
}

/* One producer larger than a request: its metrics in parts, each under a
 * copy of the same resource and of the scope they belong to. */
static int split_rm(struct rd_batch *b, otlp_rm *rm, size_t max,
		    int (*fn)(const struct rd_request *, void *), void *ctx)
{
	otlp_sm **sms = rm->scope_metrics;
	size_t n_sms = rm->n_scope_metrics, fixed;
	int rc = 0;

	/* What a part costs before its metrics: resource and framing. */
	rm->n_scope_metrics = 0;
	fixed = rd_pb_rm_field_size(&b->sizer, rm) + 64;
	rm->n_scope_metrics = n_sms;
	for (size_t k = 0; k < n_sms && !rc; k++) {
		otlp_metric **all = sms[k]->metrics;
		size_t n_all = sms[k]->n_metrics, start = 0;

		while (start < n_all && !rc) {
			size_t end = start, acc = fixed;
			otlp_rm *part;
			otlp_sm *psm;

			while (end < n_all) {
				size_t m = framed(opentelemetry__proto__metrics__v1__metric__get_packed_size(all[end]));

				if (end > start && acc + m > max)
					break;
				acc += m;
				end++;
			}
			part = new_rm(b, rm->resource, end - start);
			psm = part->scope_metrics[0];
			psm->scope = sms[k]->scope;
			memcpy(psm->metrics, all + start, (end - start) * sizeof *all);
			psm->n_metrics = end - start;
			if (rd_pb_rm_field_size(&b->sizer, part) == SIZE_MAX)
				abort(); /* out of memory */
			rc = flush(b, &part, 1, rd_pb_data(&b->sizer), rd_pb_len(&b->sizer), fn, ctx);
			start = end;
		}
	}
	return rc;
}

int rd_batch_requests(struct rd_batch *b, size_t max,
		      int (*fn)(const struct rd_request *, void *), void *ctx)
{
	size_t first = 0;
	int rc;

	/* Runs of consecutive members, each run's bytes contiguous in wire. */
	for (size_t i = 0; i < b->n_rms; i++) {
		size_t sz = b->wire_off[i + 1] - b->wire_off[i];

		if (b->wire_off[i + 1] - b->wire_off[first] > max && i > first) {
			rc = flush(b, b->rms + first, i - first, b->wire + b->wire_off[first],
				   b->wire_off[i] - b->wire_off[first], fn, ctx);
			if (rc)
				return rc;
			first = i;
		}
		if (sz > max) {
			if ((rc = split_rm(b, b->rms[i], max, fn, ctx)))
				return rc;
			first = i + 1;
		}
	}
	return flush(b, b->rms + first, b->n_rms - first, b->n_rms ? b->wire + b->wire_off[first] : NULL,
		     b->n_rms ? b->wire_len - b->wire_off[first] : 0, fn, ctx);
}

void rd_batch_reset(struct rd_batch *b)
{
	rd_arena_reset(&b->arena);
	b->n_rms = 0;
	b->wire_len = 0;
	b->points = 0;
}

void rd_batch_free(struct rd_batch *b)
{
	rd_arena_free(&b->arena);
	rd_pb_free(&b->sizer);
	free(b->wire);
	free(b->wire_off);
	free(b->rms);
	free(b->owners);
	rd_delta_free(b->self_delta);
	memset(b, 0, sizeof *b);
}
