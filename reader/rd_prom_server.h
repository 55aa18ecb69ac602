/* SPDX-License-Identifier: MIT */
/*
 * rd_prom_server.h - rtm-reader's scrape endpoint: GET /metrics, / and
 * /healthz over HTTP/1.1.
 *
 * The server runs on a thread of its own with its own poll() loop, and
 * serves the page the collection cycle last published: a scrape never waits
 * for a cycle (nor for an export stuck on a slow collector), and a scraper,
 * however slow or hostile, never delays one.  Bounds: 8 KiB of request
 * head, 64 connections (the least recently active is dropped for a new
 * one), 10 s to send a request once it starts, 60 s idle between requests
 * of a kept-alive connection, 30 s without write progress.
 */
#ifndef RD_PROM_SERVER_H
#define RD_PROM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_prom.h"

struct rd_prom_server;

/*
 * rd_prom_server_start - listens on every address host resolves to (port
 * "0": the first one, on a port the kernel picks) and starts the thread.
 * interval_ns is the collection interval, for /healthz.  Returns 0 or
 * -errno with a one-line reason in err.
 */
int rd_prom_server_start(struct rd_prom_server **out, const char *host, const char *port,
			 uint64_t interval_ns, char *err, size_t errlen);

/* "http://127.0.0.1:9464/metrics http://[::1]:9464/metrics": where it
 * listens, for the log. */
const char *rd_prom_server_urls(const struct rd_prom_server *s);

/*
 * rd_prom_server_wanted - which formats to render after this cycle (a bit
 * per enum rd_prom_format): those scrapers asked for in the last ten
 * minutes (text until any did).  Returns 0 when the page being served has
 * not been scraped yet and is younger than two intervals: rendering again
 * would be wasted, so a scrape interval longer than the collection interval
 * costs a rendering per scrape, not per cycle.  must_render (a producer's
 * final values are due) overrides that.  From the collecting thread.
 */
unsigned rd_prom_server_wanted(struct rd_prom_server *s, uint64_t mono_ns, bool must_render);

/* A page to render format f into: one a retired page gave back (so a
 * steady page costs no page faults), or an empty one. */
void rd_prom_server_spare(struct rd_prom_server *s, enum rd_prom_format f,
			  struct rd_prom_page *out);

/* Publishes one cycle's pages, taking them (rendered: a bit per format
 * rendered; the others are empty).  From the collecting thread. */
void rd_prom_server_publish(struct rd_prom_server *s, struct rd_prom_page body[RD_PROM_FORMATS],
			    unsigned rendered, uint64_t mono_ns);

/* A collection cycle completed (CLOCK_MONOTONIC ns): /healthz answers 200
 * while the last one is no older than two intervals and a second. */
void rd_prom_server_cycle_done(struct rd_prom_server *s, uint64_t mono_ns);

/* Stops the thread, closes every socket and frees s. */
void rd_prom_server_stop(struct rd_prom_server *s);

#endif /* RD_PROM_SERVER_H */
