/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Copies [s, s+n) into dst (cap bytes), cut to fit, without leading or
 * trailing blanks. */
static void copy_trimmed(char *dst, size_t cap, const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Whether the comma-separated list [v, v+n) holds token (any case). */
static bool has_token(const char *v, size_t n, const char *token)
{
	size_t k = strlen(token);

	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && v[j] != ',')
			j++;
		while (i < j && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (j - i >= k && !strncasecmp(v + i, token, k)) {
			size_t e = i + k;

			while (e < j && (v[e] == ' ' || v[e] == '\t' || v[e] == '\r'))
				e++;
			if (e == j)
				return true;
		}
		i = j + 1;
	}
	return false;
}

static int request_line(const char *s, size_t n, struct rd_http_req *req)
{
	const char *sp1 = memchr(s, ' ', n), *sp2, *q;
	size_t mlen, tlen;

	if (!sp1)
		return -1;
	mlen = (size_t)(sp1 - s);
	sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
	if (!sp2 || !mlen || mlen >= sizeof req->method)
		return -1;
	for (size_t i = 0; i < mlen; i++)
		if (!tchar(s[i]))
			return -1;
	memcpy(req->method, s, mlen);
	req->method[mlen] = '\0';
	tlen = (size_t)(sp2 - sp1 - 1);
	if (!tlen || sp1[1] != '/')
		return -1; /* only origin-form targets */
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= ' ' || sp1[1 + i] == 0x7f)
			return -1;
	q = memchr(sp1 + 1, '?', tlen);
	if (q)
		tlen = (size_t)(q - sp1 - 1);
	if (tlen >= sizeof req->path)
		tlen = sizeof req->path - 1; /* too long for any route: a 404 */
	memcpy(req->path, sp1 + 1, tlen);
	req->path[tlen] = '\0';
	n -= (size_t)(sp2 + 1 - s);
	if (n == 8 && !memcmp(sp2 + 1, "HTTP/1.1", 8))
		req->http11 = true;
	else if (!(n == 8 && !memcmp(sp2 + 1, "HTTP/1.0", 8)))
		return -1;
	req->keep_alive = req->http11;
	return 0;
}

static int header_line(const char *s, size_t n, struct rd_http_req *req)
{
	const char *colon = memchr(s, ':', n), *v;
	size_t klen, vlen;

	if (!colon || colon == s)
		return -1;
	klen = (size_t)(colon - s);
	for (size_t i = 0; i < klen; i++)
		if (!tchar(s[i]))
			return -1; /* also refuses obsolete line folding */
	v = colon + 1;
	vlen = n - klen - 1;
#define IS(name) (klen == sizeof name - 1 && !strncasecmp(s, name, klen))
	if (IS("Host")) {
		req->has_host = true;
	} else if (IS("Accept")) {
		copy_trimmed(req->accept, sizeof req->accept, v, vlen);
	} else if (IS("Accept-Encoding")) {
		copy_trimmed(req->accept_encoding, sizeof req->accept_encoding, v, vlen);
	} else if (IS("Connection")) {
		if (has_token(v, vlen, "close"))
			req->keep_alive = false;
		else if (has_token(v, vlen, "keep-alive"))
			req->keep_alive = true;
	} else if (IS("Transfer-Encoding")) {
		req->has_body = true;
	} else if (IS("Content-Length")) {
		char num[32];

		copy_trimmed(num, sizeof num, v, vlen);
		if (!*num || strspn(num, "0123456789") != strlen(num))
			return -1;
		req->has_body |= strspn(num, "0") != strlen(num);
	}
#undef IS
	return 0;
}

long rd_http_parse(const char *buf, size_t len, struct rd_http_req *req)
{
	size_t pos = 0;
	bool first = true;

	memset(req, 0, sizeof *req);
	if (memchr(buf, '\0', len))
		return -1;
	/* RFC 9112 §2.2: ignore blank lines before the request line. */
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n;

		if (!nl)
			return 0;
		n = (size_t)(nl - (buf + pos));
		if (n && buf[pos + n - 1] == '\r')
			n--;
		if (!n) {
			if (first)
				return -1;
			return (long)(nl - buf + 1);
		}
		if (first ? request_line(buf + pos, n, req) : header_line(buf + pos, n, req))
			return -1;
		first = false;
		pos = (size_t)(nl - buf + 1);
	}
	return 0;
}

/* The q value of one list member ("text/plain;q=0.5"): 1 when absent. */
static double qvalue(const char *member, size_t n)
{
	char tmp[128];

	copy_trimmed(tmp, sizeof tmp, member, n);
	for (char *p = strchr(tmp, ';'); p; p = strchr(p + 1, ';')) {
		char *s = p + 1;

		while (*s == ' ' || *s == '\t')
			s++;
		if ((*s == 'q' || *s == 'Q') && s[1] == '=')
			return strtod(s + 2, NULL);
	}
	return 1;
}

/* The q an Accept-like list gives name (exact, case-insensitive), else
 * wildcard's, else -1. */
static double q_of(const char *list, const char *name, const char *wildcard)
{
	double q = -1, wq = -1;
	size_t k = strlen(name), wk = wildcard ? strlen(wildcard) : 0;

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ","), m;

		while (n && (*p == ' ' || *p == '\t'))
			p++, n--;
		m = strcspn(p, ";,");
		while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
			m--;
		if (m == k && !strncasecmp(p, name, k)) {
			double v = qvalue(p, n);
			q = v > q ? v : q;
		} else if (wildcard && m == wk && !strncasecmp(p, wildcard, wk)) {
			double v = qvalue(p, n);
			wq = v > wq ? v : wq;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return q >= 0 ? q : wq;
}

/* The q of the protobuf exposition format in an Accept list: the media
 * type with both of its parameters, or -1. */
static double q_protobuf(const char *list)
{
	static const char name[] = "application/vnd.google.protobuf";
	double q = -1;

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ","), m;
		char member[256];

		while (n && (*p == ' ' || *p == '\t'))
			p++, n--;
		m = strcspn(p, ";,");
		while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
			m--;
		copy_trimmed(member, sizeof member, p, n);
		/* Parameters compared without their spaces. */
		for (char *r = member, *w = member;; r++)
			if (*r != ' ' && *r != '\t' && !(*w++ = *r))
				break;
		if (m == sizeof name - 1 && !strncasecmp(p, name, m) &&
		    strstr(member, ";proto=io.prometheus.client.MetricFamily") &&
		    strstr(member, ";encoding=delimited")) {
			double v = qvalue(p, n);

			q = v > q ? v : q;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return q;
}

int rd_http_prom_format(const char *accept, unsigned *named)
{
	double text, om, pb;

	*named = 0;
	if (!accept || !*accept)
		return 0;
	text = q_of(accept, "text/plain", "text/*");
	if (q_of(accept, "text/plain", NULL) > 0)
		*named |= 1u << 0;
	if (text < 0)
		text = q_of(accept, "*/*", NULL);
	om = q_of(accept, "application/openmetrics-text", NULL);
	pb = q_protobuf(accept);
	*named |= (om > 0 ? 1u << 1 : 0) | (pb > 0 ? 1u << 2 : 0);
	if (pb > 0 && pb >= om && pb >= text)
		return 2;
	if (om > 0 && om >= text)
		return 1;
	return 0;
}

bool rd_http_allows_gzip(const char *accept_encoding)
{
	return accept_encoding && q_of(accept_encoding, "gzip", "*") > 0;
}
