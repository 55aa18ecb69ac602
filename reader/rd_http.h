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

/* Whether the Accept value prefers OpenMetrics text to the Prometheus
 * text format (an absent or empty Accept does not). */
bool rd_http_wants_openmetrics(const char *accept);

/* Whether the Accept value allows media ("text/plain"): named with q > 0,
 * or through a type or full wildcard range, or no Accept at all. */
bool rd_http_accepts(const char *accept, const char *media);

/* Whether the Accept-Encoding value allows gzip. */
bool rd_http_allows_gzip(const char *accept_encoding);

#endif /* RD_HTTP_H */
