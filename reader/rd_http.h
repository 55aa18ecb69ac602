/* SPDX-License-Identifier: MIT */
/*
 * rd_http.h - the little of HTTP/1.1 (RFC 9112) the scrape endpoint needs:
 * a request head parser that refuses what it does not understand, and
 * content negotiation for Accept and Accept-Encoding (RFC 9110 §12.5).
 */
#ifndef RD_HTTP_H
#define RD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct rd_http_req {
	char method[16];
	char path[256];       /* the target up to '?' */
	bool http11;          /* HTTP/1.1, else 1.0 */
	bool keep_alive;      /* what the client asked for, with the version's default */
	bool has_host;
	bool has_body;        /* Content-Length > 0 or Transfer-Encoding */
	char accept[512];     /* "" when absent; cut at 511 bytes */
	char accept_encoding[128];
};

/*
 * rd_http_parse - parses the request head at the start of buf.  Returns the
 * head's length (through the blank line) when complete, 0 when more bytes
 * are needed, -1 when it is malformed (a bad request line, a header line
 * without a colon, folded lines, an unknown HTTP version, a NUL).
 */
long rd_http_parse(const char *buf, size_t len, struct rd_http_req *req);

/*
 * rd_http_prom_format - which of Prometheus's exposition formats an Accept
 * header asks for (enum rd_prom_format: 0 text 0.0.4, 1 OpenMetrics 1.0,
 * 2 protobuf): the highest q among those it names — OpenMetrics only
 * under its own name, protobuf only as
 * application/vnd.google.protobuf with proto=io.prometheus.client.MetricFamily
 * and encoding=delimited, and text for text/plain, any text/ type, any
 * type at all or no
 * header.  On a tie the richer format wins (protobuf, then OpenMetrics).
 * *named gets a bit per format the header names outright (not by a
 * wildcard): what may be served instead when the chosen one is not ready.
 */
int rd_http_prom_format(const char *accept, unsigned *named);

/* Whether the Accept-Encoding value allows gzip. */
bool rd_http_allows_gzip(const char *accept_encoding);

#endif /* RD_HTTP_H */
