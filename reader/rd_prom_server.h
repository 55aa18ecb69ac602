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

/* The formats scrapers have asked for (a bit per enum rd_prom_format);
 * text is always among them.  Any thread. */
unsigned rd_prom_server_wanted(struct rd_prom_server *s);

/* Publishes one cycle's pages, taking ownership of the malloc'd bodies
 * (NULL for a format not rendered).  From the collecting thread. */
void rd_prom_server_publish(struct rd_prom_server *s, char *body[RD_PROM_FORMATS],
			    const size_t len[RD_PROM_FORMATS]);

/* A collection cycle completed (CLOCK_MONOTONIC ns): /healthz answers 200
 * while the last one is no older than two intervals and a second. */
void rd_prom_server_cycle_done(struct rd_prom_server *s, uint64_t mono_ns);

/* Stops the thread, closes every socket and frees s. */
void rd_prom_server_stop(struct rd_prom_server *s);

#endif /* RD_PROM_SERVER_H */
