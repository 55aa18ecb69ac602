/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_prom_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rd_gzip.h"
#include "rd_http.h"

#define MAX_LISTEN 8
#define MAX_CONNS 64
#define HEAD_MAX 8192
#define READ_TIMEOUT_NS (10 * 1000000000ull)
#define IDLE_TIMEOUT_NS (60 * 1000000000ull)
#define WRITE_TIMEOUT_NS (30 * 1000000000ull)
#define SEND_PIECES 64 /* iovecs a sendmsg(): within any IOV_MAX (1024 on Linux) */

/* One cycle's rendering.  Immutable once published, except the gzip
 * copies, which only the server thread makes and reads. */
struct page {
	int refs; /* under s->mu */
	unsigned have; /* the formats rendered (1 << enum rd_prom_format) */
	struct rd_prom_page body[RD_PROM_FORMATS];
	void *gz[RD_PROM_FORMATS];
	size_t gz_len[RD_PROM_FORMATS];
};

struct conn {
	int fd;
	char in[HEAD_MAX];
	size_t in_len;
	bool writing, close_after;
	char head[512];
	size_t head_len, head_off;
	char small[128]; /* the body of short answers */
	struct page *page; /* a reference while its body is being sent */
	/* The body: pieces (a page's, as rendered: never joined) or one. */
	const struct iovec *body;
	size_t n_body, body_i, body_off; /* the next byte: body[body_i], body_off in */
	struct iovec one;
	uint64_t deadline, active;
};

struct rd_prom_server {
	pthread_t thread;
	int stop_fd; /* eventfd: written once by rd_prom_server_stop() */
	int lfd[MAX_LISTEN];
	int n_lfd;
	char urls[512];
	uint64_t interval_ns;
	struct rd_gzip *gz;
	struct conn *conns[MAX_CONNS];
	int n_conns;

	pthread_mutex_t mu; /* cur, refs, last_done, spare */
	struct page *cur;
	uint64_t last_done;
	struct rd_prom_page spare[RD_PROM_FORMATS]; /* bodies of retired pages, for reuse */
	uint64_t published;                   /* collector only: when cur was */
	/* Written by the server thread, read by the collector: hints for what
	 * to render, so relaxed on both sides. */
	atomic_uint_least64_t asked[RD_PROM_FORMATS]; /* CLOCK_MONOTONIC ns */
	atomic_bool served;                           /* cur went out at least once */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void page_put(struct rd_prom_server *s, struct page *p)
{
	struct rd_prom_page drop[RD_PROM_FORMATS] = { { 0 } };
	bool last;

	if (!p)
		return;
	pthread_mutex_lock(&s->mu);
	last = --p->refs == 0;
	/* The last reference hands the bodies back for the next rendering;
	 * a spare not taken since is dropped (freeing an empty one is a
	 * no-op). */
	for (int f = 0; last && f < RD_PROM_FORMATS; f++) {
		drop[f] = s->spare[f];
		s->spare[f] = p->body[f];
	}
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	for (int f = 0; f < RD_PROM_FORMATS; f++) {
		rd_prom_page_free(&drop[f]);
		free(p->gz[f]);
	}
	free(p);
}

static struct page *page_get(struct rd_prom_server *s, uint64_t *last_done)
{
	struct page *p;

	pthread_mutex_lock(&s->mu);
	p = s->cur;
	if (p)
		p->refs++;
	*last_done = s->last_done;
	pthread_mutex_unlock(&s->mu);
	return p;
}

/* ---- connections ---- */

static void conn_close(struct rd_prom_server *s, int i)
{
	struct conn *c = s->conns[i];

	close(c->fd);
	page_put(s, c->page);
	free(c);
	s->conns[i] = s->conns[--s->n_conns];
}

/* The answer's head, then its body in pieces (a page as rendered: never
 * joined); Content-Length is len, their sum. */
static void respond_pieces(struct conn *c, int status, const char *reason, const char *type,
			   const char *extra, const struct iovec *body, size_t pieces, size_t len,
			   bool head_only)
{
	int n = snprintf(c->head, sizeof c->head,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
			 status, reason, type, len, extra ? extra : "",
			 c->close_after ? "Connection: close\r\n" : "");

	c->head_len = n > 0 && (size_t)n < sizeof c->head ? (size_t)n : 0;
	c->head_off = 0;
	c->body = body;
	c->n_body = head_only ? 0 : pieces;
	c->body_i = c->body_off = 0;
	c->writing = true;
}

static void respond(struct conn *c, int status, const char *reason, const char *type,
		    const char *extra, const char *body, size_t len, bool head_only)
{
	c->one = (struct iovec){ (void *)(uintptr_t)body, len };
	respond_pieces(c, status, reason, type, extra, &c->one, 1, len, head_only);
}

/* A short plain-text answer, formatted into the connection. */
static void say(struct conn *c, int status, const char *reason, const char *extra,
		bool head_only, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void say(struct conn *c, int status, const char *reason, const char *extra,
		bool head_only, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->small, sizeof c->small, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof c->small)
		n = (int)strlen(c->small);
	respond(c, status, reason, "text/plain; charset=utf-8", extra, c->small, (size_t)n,
		head_only);
}

static void error_page(struct conn *c, int status, const char *reason, const char *extra,
		       bool head_only)
{
	say(c, status, reason, extra, head_only, "%d %s\n", status, reason);
}

static const char index_html[] =
	"<!DOCTYPE html>\n<html><head><title>rtm-reader</title></head><body>\n"
	"<h1>rtm-reader</h1>\n<p>Runtime metrics of the processes publishing rtm segments.</p>\n"
	"<ul><li><a href=\"metrics\">/metrics</a> (Prometheus text 0.0.4; OpenMetrics 1.0 or protobuf by Accept)</li>\n"
	"<li><a href=\"healthz\">/healthz</a></li></ul>\n</body></html>\n";

static void serve_metrics(struct rd_prom_server *s, struct conn *c, const struct rd_http_req *q,
			  bool head_only)
{
	static const char *const types[] = {
		"text/plain; version=0.0.4; charset=utf-8",
		"application/openmetrics-text; version=1.0.0; charset=utf-8",
		"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
	};
	unsigned named;
	enum rd_prom_format f = (enum rd_prom_format)rd_http_prom_format(q->accept, &named);
	uint64_t done;
	struct page *p = page_get(s, &done);
	const char *extra = "Vary: Accept, Accept-Encoding\r\n";

	atomic_store_explicit(&s->asked[f], mono_ns(), memory_order_relaxed);
	/* Not rendered (yet): another format the client named outright, text
	 * first.  A client that named none (curl's * / *) gets text, never a
	 * format it did not ask for: 503 until the next cycle renders it. */
	for (int g = 0; p && !(p->have & (1u << f)) && g < RD_PROM_FORMATS; g++)
		if ((named & (1u << g)) && (p->have & (1u << g)))
			f = (enum rd_prom_format)g;
	if (!p || !(p->have & (1u << f))) {
		/* Before the first cycle, or a format first asked for now:
		 * the next cycle renders it. */
		page_put(s, p);
		error_page(c, 503, "Service Unavailable", "Retry-After: 1\r\n", head_only);
		return;
	}
	atomic_store_explicit(&s->served, true, memory_order_relaxed);
	c->page = p;
	if (rd_http_allows_gzip(q->accept_encoding)) {
		if (!p->gz[f] && p->body[f].len) {
			size_t cap = rd_gzip_bound(p->body[f].len);

			p->gz[f] = malloc(cap);
			if (p->gz[f])
				p->gz_len[f] = rd_gzip_compressv(s->gz, p->body[f].iov, p->body[f].n_iov,
								 p->gz[f], cap);
			if (!p->gz_len[f]) {
				free(p->gz[f]);
				p->gz[f] = NULL;
			} else {
				/* The room was the page's size; the gzip is ~3 % of it. */
				void *fit = realloc(p->gz[f], p->gz_len[f]);

				if (fit)
					p->gz[f] = fit;
			}
		}
		if (p->gz[f]) {
			respond(c, 200, "OK", types[f],
				"Content-Encoding: gzip\r\nVary: Accept, Accept-Encoding\r\n",
				p->gz[f], p->gz_len[f], head_only);
			return;
		}
	}
	respond_pieces(c, 200, "OK", types[f], extra, p->body[f].iov, p->body[f].n_iov,
		       p->body[f].len, head_only);
}

static void serve_health(struct rd_prom_server *s, struct conn *c, bool head_only)
{
	uint64_t done, now = mono_ns();

	page_put(s, page_get(s, &done));
	if (!done)
		say(c, 503, "Service Unavailable", NULL, head_only,
		    "starting: no collection cycle has completed yet\n");
	else if (now - done > 2 * s->interval_ns + 1000000000ull)
		say(c, 503, "Service Unavailable", NULL, head_only,
		    "late: the last collection cycle completed %.1fs ago\n", (double)(now - done) / 1e9);
	else
		say(c, 200, "OK", NULL, head_only, "ok: the last collection cycle completed %.1fs ago\n",
		    (double)(now - done) / 1e9);
}

/* A complete request head is in c->in: answer it. */
static void handle(struct rd_prom_server *s, struct conn *c, long head_len)
{
	struct rd_http_req q;
	bool head_only;

	if (head_len < 0 || rd_http_parse(c->in, (size_t)head_len, &q) <= 0 ||
	    (q.http11 && !q.has_host) || q.has_body) {
		/* Bad requests, and bodies we would have to skip: answer and
		 * end the connection, whatever follows is not a request. */
		c->close_after = true;
		error_page(c, 400, "Bad Request", NULL, false);
		return;
	}
	c->close_after = !q.keep_alive;
	head_only = !strcmp(q.method, "HEAD");
	if (strcmp(q.method, "GET") && !head_only)
		error_page(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
	else if (!strcmp(q.path, "/metrics"))
		serve_metrics(s, c, &q, head_only);
	else if (!strcmp(q.path, "/healthz"))
		serve_health(s, c, head_only);
	else if (!strcmp(q.path, "/"))
		respond(c, 200, "OK", "text/html; charset=utf-8", NULL, index_html,
			sizeof index_html - 1, head_only);
	else
		error_page(c, 404, "Not Found", NULL, head_only);
}

/* Looks for a complete request in what has arrived. */
static void try_request(struct rd_prom_server *s, struct conn *c, uint64_t now)
{
	struct rd_http_req q;
	long n = rd_http_parse(c->in, c->in_len, &q);

	if (n == 0 && c->in_len < sizeof c->in)
		return; /* wait for the rest */
	handle(s, c, n == 0 ? -1 : n); /* full buffer, no end: too large */
	if (n > 0) {
		memmove(c->in, c->in + n, c->in_len - (size_t)n);
		c->in_len -= (size_t)n;
	} else {
		c->in_len = 0;
	}
	c->deadline = now + WRITE_TIMEOUT_NS;
}

/* Returns false when the connection is over. */
static bool on_readable(struct rd_prom_server *s, struct conn *c, uint64_t now)
{
	ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return false;
	if (n < 0)
		return true;
	if (!c->in_len)
		c->deadline = now + READ_TIMEOUT_NS; /* a request has begun */
	c->in_len += (size_t)n;
	c->active = now;
	try_request(s, c, now);
	return true;
}

static bool on_writable(struct rd_prom_server *s, struct conn *c, uint64_t now)
{
	/* What is left of the head, then of the body's pieces: as many as
	 * one sendmsg() takes here. */
	struct iovec iov[SEND_PIECES];
	size_t m = 0, k;
	ssize_t n;

	if (c->head_off < c->head_len)
		iov[m++] = (struct iovec){ c->head + c->head_off, c->head_len - c->head_off };
	for (size_t i = c->body_i; i < c->n_body && m < SEND_PIECES; i++) {
		size_t skip = i == c->body_i ? c->body_off : 0;

		if (c->body[i].iov_len > skip)
			iov[m++] = (struct iovec){ (char *)c->body[i].iov_base + skip,
						   c->body[i].iov_len - skip };
	}
	n = m ? sendmsg(c->fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = m },
			MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	k = (size_t)n;
	c->active = now;
	c->deadline = now + WRITE_TIMEOUT_NS;
	if (k <= c->head_len - c->head_off) {
		c->head_off += k;
		k = 0;
	} else {
		k -= c->head_len - c->head_off;
		c->head_off = c->head_len;
	}
	/* Past the pieces sent whole, into the one sent in part. */
	while (c->body_i < c->n_body && k + c->body_off >= c->body[c->body_i].iov_len) {
		k -= c->body[c->body_i].iov_len - c->body_off;
		c->body_off = 0;
		c->body_i++;
	}
	c->body_off += k;
	if (c->head_off < c->head_len || c->body_i < c->n_body)
		return true;
	/* Sent. */
	page_put(s, c->page);
	c->page = NULL;
	c->writing = false;
	if (c->close_after)
		return false;
	c->deadline = now + (c->in_len ? READ_TIMEOUT_NS : IDLE_TIMEOUT_NS);
	if (c->in_len) /* pipelined */
		try_request(s, c, now);
	return true;
}

static void on_accept(struct rd_prom_server *s, int lfd, uint64_t now)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return; /* EAGAIN, or out of fds: the kernel keeps them queued */
		if (s->n_conns == MAX_CONNS) {
			/* Full: make room by dropping the least recently active,
			 * so idle or stalled clients cannot lock scrapers out. */
			int old = 0;

			for (int i = 1; i < s->n_conns; i++)
				if (s->conns[i]->active < s->conns[old]->active)
					old = i;
			conn_close(s, old);
		}
		c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->active = now;
		c->deadline = now + IDLE_TIMEOUT_NS;
		s->conns[s->n_conns++] = c;
	}
}

static void *serve(void *arg)
{
	struct rd_prom_server *s = arg;
	struct pollfd pfd[1 + MAX_LISTEN + MAX_CONNS];

	for (;;) {
		uint64_t now = mono_ns(), next = now + 1000000000ull;
		int n = 0, rc, nc;

		pfd[n++] = (struct pollfd){ s->stop_fd, POLLIN, 0 };
		for (int i = 0; i < s->n_lfd; i++)
			pfd[n++] = (struct pollfd){ s->lfd[i], POLLIN, 0 };
		nc = s->n_conns;
		for (int i = 0; i < nc; i++) {
			struct conn *c = s->conns[i];

			pfd[n++] = (struct pollfd){ c->fd, c->writing ? POLLOUT : POLLIN, 0 };
			if (c->deadline < next)
				next = c->deadline;
		}
		rc = poll(pfd, (nfds_t)n, next > now ? (int)((next - now) / 1000000 + 1) : 0);
		if (rc < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		now = mono_ns();
		/* Connections first, from the end (closing one moves the last
		 * into its place), then new ones. */
		for (int i = nc - 1; i >= 0; i--) {
			struct conn *c = s->conns[i];
			short ev = pfd[1 + s->n_lfd + i].revents;
			bool ok = true;

			if (ev & (POLLERR | POLLNVAL))
				ok = false;
			else if (c->writing && (ev & (POLLOUT | POLLHUP)))
				ok = on_writable(s, c, now);
			else if (!c->writing && (ev & (POLLIN | POLLHUP)))
				ok = on_readable(s, c, now);
			if (ok && c->writing && !(ev & POLLOUT) && c->head_off == 0)
				ok = on_writable(s, c, now); /* answer at once if we can */
			if (!ok || now >= c->deadline)
				conn_close(s, i);
		}
		for (int i = 0; i < s->n_lfd; i++)
			if (pfd[1 + i].revents & POLLIN)
				on_accept(s, s->lfd[i], now);
	}
	while (s->n_conns)
		conn_close(s, s->n_conns - 1);
	return NULL;
}

/* ---- set-up ---- */

static void add_url(struct rd_prom_server *s, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN], url[128];
	size_t len = strlen(s->urls);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(url, sizeof url, "http://[%s]:%u/metrics", host, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(url, sizeof url, "http://%s:%u/metrics", host, ntohs(a->sin_port));
	}
	snprintf(s->urls + len, sizeof s->urls - len, "%s%s", len ? " " : "", url);
}

static int listen_all(struct rd_prom_server *s, const char *host, const char *port, char *err,
		      size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *res, *ai;
	int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res), last = 0;

	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -EINVAL;
	}
	for (ai = res; ai && s->n_lfd < MAX_LISTEN; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol), one = 1;

		if (fd < 0) {
			last = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
			last = errno;
			close(fd);
			continue;
		}
		s->lfd[s->n_lfd++] = fd;
		add_url(s, fd);
		if (!strcmp(port, "0"))
			break; /* a kernel-chosen port differs per address */
	}
	freeaddrinfo(res);
	if (!s->n_lfd) {
		snprintf(err, errlen, "cannot listen on %s port %s: %s", *host ? host : "*", port,
			 strerror(last ? last : EADDRNOTAVAIL));
		return -(last ? last : EADDRNOTAVAIL);
	}
	return 0;
}

int rd_prom_server_start(struct rd_prom_server **out, const char *host, const char *port,
			 uint64_t interval_ns, char *err, size_t errlen)
{
	struct rd_prom_server *s = calloc(1, sizeof *s);
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->interval_ns = interval_ns;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (int f = 0; f < RD_PROM_FORMATS; f++)
		atomic_init(&s->asked[f], 0);
	atomic_init(&s->served, false);
	pthread_mutex_init(&s->mu, NULL);
	if (s->stop_fd < 0 || rd_gzip_new(&s->gz)) {
		snprintf(err, errlen, "cannot set up the server: %s", strerror(errno ? errno : ENOMEM));
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = listen_all(s, host, port, err, errlen)))
		goto fail;
	if ((rc = -pthread_create(&s->thread, NULL, serve, s))) {
		snprintf(err, errlen, "cannot start the server thread: %s", strerror(-rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	for (int i = 0; i < s->n_lfd; i++)
		close(s->lfd[i]);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	rd_gzip_free(s->gz);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return rc;
}

const char *rd_prom_server_urls(const struct rd_prom_server *s)
{
	return s->urls;
}

unsigned rd_prom_server_wanted(struct rd_prom_server *s, uint64_t now, bool must_render)
{
	unsigned want = 0;

	/* s->cur is written by this thread only (publish): no lock to read it. */
	if (s->cur && !must_render && !atomic_load_explicit(&s->served, memory_order_relaxed) &&
	    now - s->published < 2 * s->interval_ns)
		return 0;
	for (int f = 0; f < RD_PROM_FORMATS; f++) {
		uint64_t t = atomic_load_explicit(&s->asked[f], memory_order_relaxed);

		if (t && now - t < 600 * 1000000000ull)
			want |= 1u << f;
	}
	return want ? want : 1u << RD_PROM_TEXT;
}

void rd_prom_server_spare(struct rd_prom_server *s, enum rd_prom_format f,
			  struct rd_prom_page *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->spare[f];
	s->spare[f] = (struct rd_prom_page){ 0 };
	pthread_mutex_unlock(&s->mu);
}

void rd_prom_server_publish(struct rd_prom_server *s, struct rd_prom_page body[RD_PROM_FORMATS],
			    unsigned rendered, uint64_t now)
{
	struct page *p = calloc(1, sizeof *p), *old;

	if (!p) {
		for (int f = 0; f < RD_PROM_FORMATS; f++)
			rd_prom_page_free(&body[f]);
		return;
	}
	p->have = rendered;
	for (int f = 0; f < RD_PROM_FORMATS; f++) {
		p->body[f] = body[f];
		body[f] = (struct rd_prom_page){ 0 };
	}
	p->refs = 1; /* the server's "current" reference */
	pthread_mutex_lock(&s->mu);
	old = s->cur;
	s->cur = p;
	pthread_mutex_unlock(&s->mu);
	s->published = now;
	/* A scrape that took the old page just before the swap may still set
	 * this: the cost is one rendering that could have been skipped. */
	atomic_store_explicit(&s->served, false, memory_order_relaxed);
	page_put(s, old);
}

void rd_prom_server_cycle_done(struct rd_prom_server *s, uint64_t mono_ns_done)
{
	pthread_mutex_lock(&s->mu);
	s->last_done = mono_ns_done;
	pthread_mutex_unlock(&s->mu);
}

void rd_prom_server_stop(struct rd_prom_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	if (write(s->stop_fd, &one, sizeof one) == (ssize_t)sizeof one)
		pthread_join(s->thread, NULL);
	else
		pthread_cancel(s->thread), pthread_join(s->thread, NULL);
	for (int i = 0; i < s->n_lfd; i++)
		close(s->lfd[i]);
	close(s->stop_fd);
	page_put(s, s->cur);
	for (int f = 0; f < RD_PROM_FORMATS; f++)
		rd_prom_page_free(&s->spare[f]);
	rd_gzip_free(s->gz);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
