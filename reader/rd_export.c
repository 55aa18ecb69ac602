/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_export.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <libdeflate.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rd_grpc.h"
#include "rd_gzip.h"
#include "rd_json.h"
#include "rd_log.h"
#include "rd_otlp_json.h"
#include "rtm.h"

#define MAX_BACKOFF_NS 32000000000ull
#define RESP_MAX       (64u << 10)

/* One cycle's export: its requests, serialised (they must not point into
 * the collector's model, which the next cycle rewrites). */
struct rd_body {
	uint8_t *p;
	size_t len;
};
struct rd_outbox {
	uint64_t epoch;
	struct rd_body *b;
	size_t n, cap;
};

struct rd_exporter {
	const struct rd_config *cfg;
	CURL *curl;
	struct curl_slist *headers;
	struct rd_gzip *gz;
	struct rd_json json;

	uint8_t *zbuf; /* compressed body */
	size_t zbuf_cap;
	bool grpc;
	char *url;     /* what libcurl posts to */
	struct rd_grpc_reply g;
	char resp[RESP_MAX];
	size_t resp_len;
	bool resp_json;
	bool has_retry_after;
	uint64_t retry_after_ns;
	bool down;
	uint64_t down_since, down_failures;
	bool (*should_abort)(void); /* atomic: set by the main thread */
	uint64_t deadline; /* atomic; CLOCK_MONOTONIC ns after which to give up; 0: none */
	struct rd_export_stats st; /* the sending thread's */

	/* OTLP exports run on their own thread, beside collection. */
	struct rd_outbox building;  /* the collector's, until committed */
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* with mu: work posted, or work done */
	struct rd_outbox *pending;  /* mu: committed, not yet taken */
	bool busy, quit;            /* mu */
	uint64_t delivered;         /* mu: newest epoch delivered in full */
	int last_rc;                /* mu: of the newest finished outbox */
	uint64_t replaced;          /* mu: outboxes a newer one replaced */
	struct rd_export_stats shared; /* mu: st, as of the last outbox */
	char errbuf[CURL_ERROR_SIZE];
	unsigned seed;
	FILE *out;                  /* --output, for the console exporter */
};

static void *sender(void *arg);
static void outbox_clear(struct rd_outbox *ob);

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct rd_exporter *e = ctx;
	size_t len = size * n, room = sizeof e->resp - 1 - e->resp_len;

	/* Keep the first 64 KiB: enough for any partial-success message. */
	memcpy(e->resp + e->resp_len, p, len < room ? len : room);
	e->resp_len += len < room ? len : room;
	return len;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static void parse_retry_after(struct rd_exporter *e, const char *v)
{
	while (*v == ' ')
		v++;
	if (isdigit((unsigned char)*v)) {
		char *end;
		unsigned long long s = strtoull(v, &end, 10);

		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		if (*end)
			return;
		e->retry_after_ns = s > 86400 ? 86400e9 : s * 1000000000ull;
		e->has_retry_after = true;
	} else {
		char date[128];
		time_t when;

		snprintf(date, sizeof date, "%.*s", (int)sizeof date - 1, v);
		date[strcspn(date, "\r\n")] = '\0';
		when = curl_getdate(date, NULL);
		if (when < 0)
			return;
		time_t now = time(NULL);
		e->retry_after_ns = when > now ? (uint64_t)(when - now) * 1000000000ull : 0;
		e->has_retry_after = true;
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct rd_exporter *e = ctx;
	size_t len = size * n;
	char line[512];

	/* gRPC's status comes in the trailers, which libcurl passes here too
	 * (or in the headers of a trailers-only answer). */
	if (e->grpc && rd_grpc_header(&e->g, p, len))
		return len;
	snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
	if (!strncasecmp(line, "retry-after:", 12))
		parse_retry_after(e, line + 12);
	else if (!strncasecmp(line, "content-type:", 13))
		e->resp_json = strcasestr(line + 13, "json") != NULL;
	return len;
}

/* Whether to stop now: a terminating signal waits, or the deadline passed. */
static bool stopping(struct rd_exporter *e)
{
	/* Relaxed: plain values, set once by the main thread; no other
	 * memory is published with them. */
	bool (*abort_fn)(void) = __atomic_load_n(&e->should_abort, __ATOMIC_RELAXED);
	uint64_t deadline = __atomic_load_n(&e->deadline, __ATOMIC_RELAXED);

	return (abort_fn && abort_fn()) || (deadline && now_ns(CLOCK_MONOTONIC) >= deadline);
}

/* libcurl calls this during a transfer (at least once a second, more often
 * while bytes move): a request stuck on a collector that never answers ends
 * as soon as the reader must stop, not when its timeout runs out. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return stopping(ctx);
}

int rd_exporter_open(struct rd_exporter **out, const struct rd_config *cfg,
		     char *err, size_t errlen)
{
	struct rd_exporter *e = calloc(1, sizeof *e);
	char ua[64];

	if (!e)
		return -ENOMEM;
	e->cfg = cfg;
	e->seed = (unsigned)now_ns(CLOCK_MONOTONIC);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	*out = e;
	if (cfg->output && (cfg->exporter == RD_EXPORT_STDOUT || cfg->console_too) &&
	    !(e->out = fopen(cfg->output, "ae"))) {
		snprintf(err, errlen, "--output: cannot open '%s': %s", cfg->output, strerror(errno));
		return -errno;
	}
	if (cfg->exporter != RD_EXPORT_OTLP)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) || !(e->curl = curl_easy_init())) {
		snprintf(err, errlen, "libcurl initialisation failed");
		return -EIO;
	}
	if (cfg->gzip && rd_gzip_new(&e->gz)) {
		snprintf(err, errlen, "cannot set up gzip (%s): out of memory", rd_gzip_library);
		return -ENOMEM;
	}
	e->grpc = cfg->protocol == RD_PROTO_GRPC;
	if (e->grpc) {
		size_t len = strlen(cfg->endpoint);
		char h[64];

		/* The endpoint names the server; the method is its path. */
		if (asprintf(&e->url, "%.*s%s", (int)(len && cfg->endpoint[len - 1] == '/' ? len - 1 : len),
			     cfg->endpoint, RD_GRPC_PATH) < 0)
			return -ENOMEM;
		e->headers = curl_slist_append(e->headers, "Content-Type: application/grpc");
		e->headers = curl_slist_append(e->headers, "TE: trailers");
		/* Responses are small: ask for them uncompressed. */
		e->headers = curl_slist_append(e->headers, "grpc-accept-encoding: identity");
		if (cfg->gzip)
			e->headers = curl_slist_append(e->headers, "grpc-encoding: gzip");
		if (cfg->timeout_ns) {
			/* At most 8 digits (PROTOCOL-HTTP2.md): milliseconds reach
			 * 27 hours, beyond any timeout rtm accepts. */
			snprintf(h, sizeof h, "grpc-timeout: %llum",
				 (unsigned long long)(cfg->timeout_ns / 1000000u));
			e->headers = curl_slist_append(e->headers, h);
		}
	} else {
		if (!(e->url = strdup(cfg->endpoint)))
			return -ENOMEM;
		e->headers = curl_slist_append(e->headers, cfg->protocol == RD_PROTO_JSON ?
					       "Content-Type: application/json" :
					       "Content-Type: application/x-protobuf");
		if (cfg->gzip)
			e->headers = curl_slist_append(e->headers, "Content-Encoding: gzip");
	}
	e->headers = curl_slist_append(e->headers, "Expect:"); /* no 100-continue round trip */
	for (size_t i = 0; i < cfg->n_headers; i++) {
		char *h;

		if (asprintf(&h, "%s: %s", cfg->headers[i].name, cfg->headers[i].value) < 0)
			return -ENOMEM;
		e->headers = curl_slist_append(e->headers, h);
		free(h);
	}
	snprintf(ua, sizeof ua, "rtm-reader/%s", RTM_VERSION);
	curl_easy_setopt(e->curl, CURLOPT_URL, e->url);
	if (e->grpc) {
		/* gRPC is HTTP/2 only: cleartext with prior knowledge, or TLS
		 * with h2 chosen by ALPN. */
		curl_easy_setopt(e->curl, CURLOPT_HTTP_VERSION,
				 strncmp(cfg->endpoint, "https:", 6) ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE :
				 (long)CURL_HTTP_VERSION_2TLS);
		/* libcurl before 8.0 fails every request after the first on a
		 * reused cleartext prior-knowledge HTTP/2 connection ("Error
		 * in the HTTP2 framing layer", curl/curl#10634, fixed in 8.0;
		 * Debian 12 has 7.88): there, a connection per request.  Over
		 * TLS the connection is reused. */
		if (strncmp(cfg->endpoint, "https:", 6) &&
		    curl_version_info(CURLVERSION_NOW)->version_num < 0x080000)
			curl_easy_setopt(e->curl, CURLOPT_FORBID_REUSE, 1L);
	}
	curl_easy_setopt(e->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(e->curl, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)(cfg->timeout_ns / 1000000));
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, e);
	curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->errbuf);
	curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, e);
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cfg->ca_file)
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->client_cert)
		curl_easy_setopt(e->curl, CURLOPT_SSLCERT, cfg->client_cert);
	if (cfg->client_key)
		curl_easy_setopt(e->curl, CURLOPT_SSLKEY, cfg->client_key);
	{
		/* Signals stay with the main thread's signalfd. */
		sigset_t all, old;
		int rc;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(&e->thread, NULL, sender, e);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc) {
			snprintf(err, errlen, "cannot start the export thread: %s", strerror(rc));
			return -rc;
		}
		e->threaded = true;
	}
	return 0;
}

void rd_exporter_close(struct rd_exporter *e)
{
	if (!e)
		return;
	if (e->threaded) {
		/* What is committed is still sent, within the deadline the
		 * caller set (the final flush's). */
		pthread_mutex_lock(&e->mu);
		e->quit = true;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
	}
	outbox_clear(&e->building);
	free(e->building.b);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	if (e->curl) {
		curl_easy_cleanup(e->curl);

		curl_global_cleanup();
	}
	curl_slist_free_all(e->headers);
	free(e->url);
	rd_gzip_free(e->gz);
	rd_json_free(&e->json);
	free(e->zbuf);
	if (e->out)
		fclose(e->out);
	free(e);
}

void rd_exporter_set_abort(struct rd_exporter *e, bool (*fn)(void))
{
	__atomic_store_n(&e->should_abort, fn, __ATOMIC_RELAXED); /* see stopping() */
}

void rd_exporter_set_deadline(struct rd_exporter *e, uint64_t mono_ns)
{
	__atomic_store_n(&e->deadline, mono_ns, __ATOMIC_RELAXED); /* see stopping() */
}


void rd_exporter_stats(struct rd_exporter *e, struct rd_export_stats *out)
{
	pthread_mutex_lock(&e->mu);
	*out = e->threaded ? e->shared : e->st;
	out->replaced = e->replaced;
	pthread_mutex_unlock(&e->mu);
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	uint8_t *n = realloc(*p, need);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = need;
	return 0;
}

/* Serialises req into the body buffer; returns its pointer and length. */
static int body(struct rd_exporter *e, const uint8_t *raw, size_t n,
		const uint8_t **out, size_t *len)
{
	/* gRPC: one length-prefixed message, itself compressed with gzip. */
	size_t pre = e->grpc ? 5 : 0;

	if (e->gz) {
		size_t bound = rd_gzip_bound(n);

		if (grow(&e->zbuf, &e->zbuf_cap, pre + bound))
			return -ENOMEM;
		n = rd_gzip_compress(e->gz, raw, n, e->zbuf + pre, bound);
		if (!n)
			return -EIO;
	} else if (e->grpc) {
		if (grow(&e->zbuf, &e->zbuf_cap, pre + n))
			return -ENOMEM;
		memcpy(e->zbuf + pre, raw, n);
	} else {
		*out = raw;
		*len = n;
		return 0;
	}
	if (e->grpc) {
		if (n > UINT32_MAX)
			return -E2BIG;
		rd_grpc_prefix(e->zbuf, e->gz != NULL, (uint32_t)n);
	}
	*out = e->zbuf;
	*len = pre + n;
	return 0;
}

static void partial_success(struct rd_exporter *e)
{
	long long rejected = 0;
	char msg[256] = "";
	const uint8_t *pb = (const uint8_t *)e->resp;
	size_t pb_len = e->resp_len;
	uint8_t *plain = NULL;

	if (e->grpc) {
		bool z = false;
		int rc = rd_grpc_unframe((const uint8_t *)e->resp, e->resp_len, &pb, &pb_len, &z);

		if (rc == -ENODATA)
			return;
		if (!rc && z) {
			/* We asked for identity; a server may compress anyway. */
			struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
			size_t got = 0;

			plain = malloc(RESP_MAX);
			if (!d || !plain || libdeflate_gzip_decompress(d, pb, pb_len, plain, RESP_MAX, &got))
				rc = -EINVAL;
			if (d)
				libdeflate_free_decompressor(d);
			pb = plain;
			pb_len = got;
		}
		if (rc) {
			rd_log_limited("export-response", "export: undecodable %zu-byte gRPC response ignored",
				       e->resp_len);
			free(plain);
			return;
		}
	}
	if (!e->resp_len)
		return;
	if (e->resp_json) {
		json_object *root, *ps, *v;

		e->resp[e->resp_len] = '\0';
		root = json_tokener_parse(e->resp);
		if (root && json_object_object_get_ex(root, "partialSuccess", &ps)) {
			if (json_object_object_get_ex(ps, "rejectedDataPoints", &v))
				rejected = json_object_get_int64(v);
			if (json_object_object_get_ex(ps, "errorMessage", &v))
				snprintf(msg, sizeof msg, "%s", json_object_get_string(v));
		}
		json_object_put(root);
	} else {
		otlp_resp *r = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
			NULL, pb_len, pb);

		free(plain);
		if (!r) {
			rd_log_limited("export-response", "export: undecodable %zu-byte response body ignored",
				       e->resp_len);
			return;
		}
		if (r->partial_success) {
			rejected = r->partial_success->rejected_data_points;
			snprintf(msg, sizeof msg, "%s",
				 r->partial_success->error_message ? r->partial_success->error_message : "");
		}
		opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(r, NULL);
	}
	if (rejected > 0) {
		e->st.points_rejected += (uint64_t)rejected;
		rd_log_limited("export-partial", "export: collector rejected %lld data points: %s",
			       rejected, *msg ? msg : "(no message)");
	} else if (*msg) {
		rd_log_limited("export-partial", "export: collector warning: %s", msg);
	}
}

/* Sleeps up to ns, in slices, unless told to abort.  False if aborted. */
static bool nap(struct rd_exporter *e, uint64_t ns)
{
	while (ns) {
		uint64_t slice = ns < 100000000u ? ns : 100000000u;
		struct timespec ts = { 0, (long)slice };

		if (stopping(e))
			return false;
		nanosleep(&ts, NULL);
		ns -= slice;
	}
	return !stopping(e);
}

/* since: when the export's first failed attempt began, so the outage the
 * recovery line reports includes the retries before giving up. */
static void went_down(struct rd_exporter *e, const char *why, uint64_t since)
{
	e->down_failures++;
	if (e->down)
		return;
	e->down = true;
	e->down_since = since;
	rd_log("export to %s failing: %s; totals are cumulative, so nothing is lost: "
	       "retrying every cycle (logged again when it recovers)",
	       e->cfg->endpoint, why);
}

static void came_up(struct rd_exporter *e)
{
	if (!e->down)
		return;
	rd_log("export to %s recovered after %llu failed exports over %.1fs", e->cfg->endpoint,
	       (unsigned long long)e->down_failures,
	       (double)(now_ns(CLOCK_MONOTONIC) - e->down_since) / 1e9);
	e->down = false;
	e->down_failures = 0;
}

static int send_http(struct rd_exporter *e, const uint8_t *raw, size_t raw_len)
{
	const uint8_t *data;
	size_t len;
	uint64_t delay = e->cfg->retry_initial_ns;
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + e->cfg->retry_max_ns;
	char why[256];
	uint64_t first_failure = 0;
	int rc = body(e, raw, raw_len, &data, &len);

	if (rc) {
		rd_log_limited("export-encode", "export: cannot encode request: %s", strerror(-rc));
		return rc;
	}
	/* POSTFIELDS: curl can rewind it and resend on a reused connection. */
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	for (;;) {
		long status = 0;
		CURLcode cc;
		uint64_t wait, began = now_ns(CLOCK_MONOTONIC);

		e->resp_len = 0;
		e->has_retry_after = false;
		e->resp_json = false;
		e->errbuf[0] = '\0';
		rd_grpc_reply_reset(&e->g);
		cc = curl_easy_perform(e->curl);
		if (cc == CURLE_OK) {
			curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
			e->st.bytes_sent += len;
		}
		if (e->grpc && cc == CURLE_OK && status == 200) {
			char name[32];

			rd_grpc_reply_finish(&e->g);
			if (e->g.status == RD_GRPC_OK) {
				partial_success(e);
				e->st.ok++;
				came_up(e);
				return 0;
			}
			if (e->g.status >= 0 && !rd_grpc_retryable(e->g.status, e->g.has_retry_info)) {
				rd_log_limited("export-refused", "export to %s refused: gRPC %s: %.200s",
					       e->cfg->endpoint, rd_grpc_code_name(e->g.status, name, sizeof name),
					       e->g.message);
				e->st.failed++;
				return -EINVAL;
			}
			if (e->g.status < 0)
				snprintf(why, sizeof why, "the answer ended without a gRPC status");
			else
				snprintf(why, sizeof why, "gRPC %s: %.200s",
					 rd_grpc_code_name(e->g.status, name, sizeof name), e->g.message);
			if (e->g.has_retry_info) {
				e->has_retry_after = true;
				e->retry_after_ns = e->g.retry_delay_ns;
			}
		} else if (cc == CURLE_OK && status >= 200 && status < 300 && !e->grpc) {
			partial_success(e);
			e->st.ok++;
			came_up(e);
			return 0;
		} else if (cc == CURLE_OK && status != 429 && status != 502 && status != 503 &&
			   status != 504) {
			/* Not retryable: the request itself is wrong (for gRPC, an
			 * HTTP status other than 200 maps to a status that is not
			 * retried, as PROTOCOL-HTTP2.md's table has it). */
			e->resp[e->resp_len] = '\0';
			for (char *p = e->resp; *p; p++)
				if (!isprint((unsigned char)*p))
					*p = ' ';
			rd_log_limited("export-refused", "export to %s refused with HTTP %ld: %.200s",
				       e->cfg->endpoint, status, e->resp);
			e->st.failed++;
			return -EINVAL;
		} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
			/* The reader's own stop, not the collector: no outage to
			 * report (nor a recovery after the last collection's
			 * flush), only what happened. */
			rd_log("export to %s interrupted: the reader is stopping", e->cfg->endpoint);
			e->st.failed++;
			return -EAGAIN;
		} else if (cc == CURLE_OPERATION_TIMEDOUT) {
			snprintf(why, sizeof why, "no answer within %.3gs (timeout)",
				 (double)e->cfg->timeout_ns / 1e9);
		} else if (cc != CURLE_OK) {
			snprintf(why, sizeof why, "%s", *e->errbuf ? e->errbuf : curl_easy_strerror(cc));
		} else {
			snprintf(why, sizeof why, "HTTP %ld", status);
		}
		if (!first_failure)
			first_failure = began;
		/* Exponential backoff with +-20% jitter, unless the server said
		 * when to come back. */
		wait = e->has_retry_after ? e->retry_after_ns :
			delay - delay / 5 + (uint64_t)((double)rand_r(&e->seed) / RAND_MAX * (double)(delay * 2 / 5));
		if (now_ns(CLOCK_MONOTONIC) + wait > deadline || !nap(e, wait)) {
			e->st.failed++;
			went_down(e, why, first_failure);
			return -EAGAIN;
		}
		e->st.retries++;
		delay = delay * 2 < MAX_BACKOFF_NS ? delay * 2 : MAX_BACKOFF_NS;
	}
}

static void outbox_clear(struct rd_outbox *ob)
{
	for (size_t i = 0; i < ob->n; i++)
		free(ob->b[i].p);
	ob->n = 0;
}

static void outbox_free(struct rd_outbox *ob)
{
	if (!ob)
		return;
	outbox_clear(ob);
	free(ob->b);
	free(ob);
}

/* Serialises req (protobuf, or OTLP/JSON) into the outbox being built. */
static int queue(struct rd_exporter *e, const struct rd_request *req)
{
	const uint8_t *raw = req->pb;
	size_t n = req->pb_len;
	struct rd_body *b;

	if (e->cfg->protocol == RD_PROTO_JSON) {
		rd_json_reset(&e->json);
		rd_otlp_json(&e->json, req->req);
		if (e->json.oom)
			return -ENOMEM;
		raw = (const uint8_t *)e->json.buf;
		n = e->json.len;
	}
	if (e->building.n == e->building.cap) {
		size_t cap = e->building.cap ? 2 * e->building.cap : 8;
		struct rd_body *nb = realloc(e->building.b, cap * sizeof *nb);

		if (!nb)
			return -ENOMEM;
		e->building.b = nb;
		e->building.cap = cap;
	}
	b = &e->building.b[e->building.n];
	b->p = malloc(n ? n : 1);
	if (!b->p)
		return -ENOMEM;
	memcpy(b->p, raw, n);
	b->len = n;
	e->building.n++;
	return 0;
}

/* The sending thread: one outbox at a time, its requests in order; a
 * request the collector refuses for good (4xx) is skipped, any other
 * failure ends the outbox (the next cycle's carries the same totals). */
static void *sender(void *arg)
{
	struct rd_exporter *e = arg;

	pthread_mutex_lock(&e->mu);
	for (;;) {
		struct rd_outbox *ob;
		int rc = 0;

		while (!e->pending && !e->quit)
			pthread_cond_wait(&e->cv, &e->mu);
		if (!e->pending)
			break;
		ob = e->pending;
		e->pending = NULL;
		e->busy = true;
		pthread_mutex_unlock(&e->mu);
		for (size_t i = 0; i < ob->n; i++) {
			int r = send_http(e, ob->b[i].p, ob->b[i].len);

			if (r && r != -EINVAL) {
				rc = r;
				break;
			}
		}
		pthread_mutex_lock(&e->mu);
		e->busy = false;
		e->last_rc = rc;
		if (!rc)
			e->delivered = ob->epoch;
		e->shared = e->st;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		outbox_free(ob);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int rd_exporter_commit(struct rd_exporter *e, uint64_t epoch)
{
	struct rd_outbox *ob, *old = NULL;

	if (!e->threaded || !e->building.n) {
		pthread_mutex_lock(&e->mu);
		if (!e->threaded || (!e->pending && !e->busy)) {
			/* Nothing to send: delivered as soon as what is
			 * queued before it is. */
			e->delivered = epoch;
			e->last_rc = 0;
		}
		pthread_mutex_unlock(&e->mu);
		return 0;
	}
	ob = calloc(1, sizeof *ob);
	if (!ob) {
		outbox_clear(&e->building);
		return -ENOMEM;
	}
	*ob = e->building;
	ob->epoch = epoch;
	memset(&e->building, 0, sizeof e->building);
	pthread_mutex_lock(&e->mu);
	if (e->pending) {
		/* Not taken yet: this one carries newer cumulative totals
		 * of the same streams, so the older one is dropped. */
		old = e->pending;
		e->replaced++;
	}
	e->pending = ob;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	outbox_free(old);
	return 0;
}

uint64_t rd_exporter_delivered(struct rd_exporter *e, int *last_rc)
{
	uint64_t d;

	pthread_mutex_lock(&e->mu);
	d = e->delivered;
	if (last_rc)
		*last_rc = e->last_rc;
	pthread_mutex_unlock(&e->mu);
	return d;
}

void rd_exporter_wait(struct rd_exporter *e)
{
	pthread_mutex_lock(&e->mu);
	while (e->threaded && (e->pending || e->busy))
		pthread_cond_wait(&e->cv, &e->mu);
	pthread_mutex_unlock(&e->mu);
}

/* The console exporter: one OTLP/JSON request per line, on stdout or the
 * --output file. */
static void console(struct rd_exporter *e, const struct rd_request *req)
{
	FILE *f = e->out ? e->out : stdout;

	rd_json_reset(&e->json);
	rd_otlp_json(&e->json, req->req);
	fwrite(e->json.buf, 1, e->json.len, f);
	fputc('\n', f);
	if (fflush(f))
		rd_log_limited("console", "console exporter: cannot write %s: %s",
			       e->cfg->output ? e->cfg->output : "stdout", strerror(errno));
}

int rd_exporter_send(struct rd_exporter *e, const struct rd_request *req)
{
	switch (e->cfg->exporter) {
	case RD_EXPORT_NONE:
		e->st.ok++;
		return 0;
	case RD_EXPORT_STDOUT:
		console(e, req);
		e->st.ok++;
		e->st.bytes_sent += e->json.len + 1;
		return 0;
	case RD_EXPORT_OTLP:
		break;
	}
	if (e->cfg->console_too)
		console(e, req);
	return queue(e, req);
}
