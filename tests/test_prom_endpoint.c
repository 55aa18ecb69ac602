/* SPDX-License-Identifier: MIT */
/*
 * rtm-reader's /metrics endpoint end to end: real producer processes, the
 * real daemon, and clients over loopback, well-behaved (libcurl) and not
 * (raw sockets that send garbage, stall or never finish a request).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static char url_of[256];

static const char *path_url(const struct tu_reader *r, const char *path)
{
	snprintf(url_of, sizeof url_of, "http://127.0.0.1:%d%s", r->port, path);
	return url_of;
}

/* Sends req on a new connection and reads until the server closes it (or
 * 30 s pass).  Returns the bytes received (malloc'd). */
static char *raw_n(int port, const char *req, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 30, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char *out = calloc(1, 1 << 20);
	size_t got = 0;
	ssize_t n;

	assert_true(fd >= 0 && out);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(write(fd, req, len), (ssize_t)len);
	while (got < (1 << 20) - 1 && (n = read(fd, out + got, (1 << 20) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	return out;
}

static char *raw(int port, const char *req)
{
	return raw_n(port, req, strlen(req));
}

static int connect_to(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* GETs url until its body contains (or, with absent, lacks) what; up to
 * 30 s.  Returns the last body (malloc'd). */
static char *await(const char *url, const char *what, bool absent)
{
	for (int i = 0; i < 300; i++) {
		struct tu_http h;

		tu_http_get(url, NULL, false, &h);
		if (h.status == 200 && (strstr(h.body, what) != NULL) != absent)
			return h.body;
		tu_http_free(&h);
		usleep(100000);
	}
	fail_msg("%s never %s '%s'", url, absent ? "lost" : "showed", what);
	return NULL;
}

static void serves_metrics_index_and_health(void **state)
{
	char *dir = tu_mkdir(), *body, *resp;
	struct tu_producer p;
	struct tu_reader r;
	struct tu_http h;

	(void)state;
	tu_spawn(&p, dir, "svc-one", tu_produce_known, 3, false);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	body = await(r.url, "app_requests_total{job=\"svc-one\"", false);
	assert_non_null(strstr(body, ",route=\"/a\"} 300\n"));
	assert_non_null(strstr(body, ",route=\"/b\"} 3\n"));
	assert_non_null(strstr(body, "# TYPE app_latency_seconds histogram\n"));
	assert_non_null(strstr(body, ",le=\"+Inf\"} 5\n"));
	free(body);

	tu_http_get(r.url, NULL, false, &h);
	assert_int_equal(h.status, 200);
	assert_non_null(strstr(h.headers, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	tu_http_free(&h);
	tu_http_get(path_url(&r, "/"), NULL, false, &h);
	assert_int_equal(h.status, 200);
	assert_non_null(strstr(h.headers, "Content-Type: text/html"));
	assert_non_null(strstr(h.body, "href=\"metrics\""));
	tu_http_free(&h);
	/* Healthy: a cycle completed lately (await: a slow sanitized run may
	 * be between cycles longer than the 2 intervals + 1 s allowed). */
	body = await(path_url(&r, "/healthz"), "ok: ", false);
	assert_true(!strncmp(body, "ok: ", 4));
	free(body);
	/* HEAD: the headers GET would send, no body. */
	resp = raw(r.port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
	assert_non_null(strstr(resp, "Content-Length: "));
	assert_true(strlen(strstr(resp, "\r\n\r\n")) == 4);
	free(resp);

	assert_int_equal(tu_reader_stop(&r), 0);
	tu_reap(&p);
	tu_rmdir(dir);
}

static void bad_requests_get_the_right_status(void **state)
{
	char *dir = tu_mkdir(), *resp, big[9000 + 64];
	struct tu_reader r;
	struct tu_http h;

	(void)state;
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	tu_http_get(path_url(&r, "/nope"), NULL, false, &h);
	assert_int_equal(h.status, 404);
	tu_http_free(&h);
	resp = raw(r.port, "POST /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
	assert_non_null(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
	free(resp);
	/* Malformed: answered 400, and the connection ends (read sees EOF). */
	resp = raw(r.port, "GET /metrics\r\n\r\n");
	assert_true(!strncmp(resp, "HTTP/1.1 400 Bad Request\r\n", 26));
	assert_non_null(strstr(resp, "Connection: close\r\n"));
	free(resp);
	resp = raw(r.port, "GET / HTTP/1.1\r\n\r\n"); /* HTTP/1.1 without Host */
	assert_true(!strncmp(resp, "HTTP/1.1 400 ", 13));
	free(resp);
	resp = raw_n(r.port, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15); /* TLS */
	assert_true(!strncmp(resp, "HTTP/1.1 400 ", 13));
	free(resp);
	/* A head larger than the 8 KiB bound. */
	snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: ");
	memset(big + strlen(big), 'a', 9000);
	big[9000 + 30] = '\0';
	resp = raw(r.port, big);
	assert_true(!strncmp(resp, "HTTP/1.1 400 ", 13));
	free(resp);
	/* The endpoint still serves, and turns healthy: nothing above waited
	 * for the first cycle, which a slow (sanitized) run may not have
	 * finished yet, when /healthz rightly says 503 "starting". */
	free(await(path_url(&r, "/healthz"), "ok: ", false));
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_rmdir(dir);
}

static void keep_alive_and_pipelined_requests(void **state)
{
	static const char two[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
				  "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	char *dir = tu_mkdir(), *resp, *second;
	struct tu_reader r;

	(void)state;
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	free(await(path_url(&r, "/metrics"), "target_info", false));
	resp = raw(r.port, two);
	assert_true(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
	second = strstr(resp + 1, "HTTP/1.1 ");
	assert_non_null(second);
	assert_true(!strncmp(second, "HTTP/1.1 404 Not Found\r\n", 24));
	free(resp);
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_rmdir(dir);
}

/* gzip: the same bytes, compressed; OpenMetrics from the cycle after a
 * scraper first asks for it. */
/* The first OpenMetrics page (gzip) that has svc-gz's series, into *om. */
static void await_openmetrics(const struct tu_reader *r, struct tu_http *om)
{
	for (int i = 0; i < 300; i++) {
		tu_http_get(r->url, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5", true, om);
		if (strstr(om->headers, "application/openmetrics-text; version=1.0.0") &&
		    strstr(om->body, "job=\"svc-gz\""))
			return;
		tu_http_free(om);
		usleep(100000);
	}
	fail_msg("no OpenMetrics page with svc-gz's series");
}

static void gzip_and_openmetrics_are_negotiated(void **state)
{
	char *dir = tu_mkdir();
	struct tu_producer p;
	struct tu_reader r;
	struct tu_http plain, gz, om;
	size_t len;

	(void)state;
	tu_spawn(&p, dir, "svc-gz", tu_produce_known, 2, false);
	/* One cycle a minute: the page stays the same during the test. */
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "60s", NULL });
	free(await(r.url, "job=\"svc-gz\"", false));
	tu_http_get(r.url, NULL, false, &plain);
	tu_http_get(r.url, NULL, true, &gz);
	assert_non_null(strstr(gz.headers, "Content-Encoding: gzip\r\n"));
	assert_null(strstr(plain.headers, "Content-Encoding"));
	assert_int_equal(gz.len, plain.len);
	assert_memory_equal(gz.body, plain.body, plain.len);
	tu_http_free(&gz);
	tu_http_free(&plain);
	assert_int_equal(tu_reader_stop(&r), 0);

	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	await_openmetrics(&r, &om);
	len = strlen(om.body);
	assert_true(len > 6 && !strcmp(om.body + len - 6, "# EOF\n"));
	assert_non_null(strstr(om.body, "# TYPE app_requests counter\n"));
	/* _created samples only on request (--prometheus-created). */
	assert_null(strstr(om.body, "_created{"));
	assert_non_null(strstr(om.body, "# UNIT app_latency_seconds seconds\n"));
	tu_http_free(&om);
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", "--prometheus-created", NULL });
	await_openmetrics(&r, &om);
	assert_non_null(strstr(om.body, "app_requests_created{job=\"svc-gz\""));
	tu_http_free(&om);
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_reap(&p);
	tu_rmdir(dir);
}

/* 80 connections that never finish a request (more than the server
 * keeps): a scraper still gets its page, and SIGTERM still ends the
 * reader cleanly. */
static void idle_and_stalled_clients_never_lock_out_a_scraper(void **state)
{
	char *dir = tu_mkdir();
	struct tu_reader r;
	struct tu_http h;
	int fds[80];

	(void)state;
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	free(await(r.url, "target_info", false));
	for (int i = 0; i < 80; i++) {
		fds[i] = connect_to(r.port);
		if (i % 2)
			assert_int_equal(write(fds[i], "GET /metr", 9), 9);
	}
	tu_http_get(r.url, NULL, false, &h);
	assert_int_equal(h.status, 200);
	assert_non_null(strstr(h.body, "target_info{"));
	tu_http_free(&h);
	assert_int_equal(tu_reader_stop(&r), 0);
	for (int i = 0; i < 80; i++)
		close(fds[i]);
	tu_rmdir(dir);
}

/* An exited producer's series leave /metrics once its final values went
 * out; a restarted one's start from its new values, under a new instance. */
static void exited_producers_leave_and_restarted_ones_start_fresh(void **state)
{
	char *dir = tu_mkdir(), *body, inst[128], *p;
	struct tu_producer a, b;
	struct tu_reader r;

	(void)state;
	tu_reader_start(&r, dir, (const char *[]){ "--exporter", "none", "--prometheus", "127.0.0.1:0",
						   "--interval", "1s", NULL });
	tu_spawn(&a, dir, "phoenix", tu_produce_known, 5, false);
	body = await(r.url, "app_requests_total{job=\"phoenix\"", false);
	p = strstr(body, "app_requests_total{job=\"phoenix\",instance=\"");
	assert_non_null(p);
	sscanf(p + 43, "%127[^\"]", inst);
	assert_non_null(strstr(body, ",route=\"/a\"} 500\n"));
	free(body);
	tu_reap(&a);
	free(await(r.url, "job=\"phoenix\"", true));

	tu_spawn(&b, dir, "phoenix", tu_produce_known, 2, false);
	body = await(r.url, "app_requests_total{job=\"phoenix\"", false);
	assert_non_null(strstr(body, ",route=\"/a\"} 200\n"));
	assert_null(strstr(body, ",route=\"/a\"} 500\n"));
	assert_null(strstr(body, inst));
	free(body);
	assert_int_equal(tu_reader_stop(&r), 0);
	tu_reap(&b);
	tu_rmdir(dir);
}

static void settings_come_from_flag_env_and_file(void **state)
{
	char *dir = tu_mkdir(), line[512], conf[300], env[400];
	int port = tu_free_port();
	struct tu_reader r;
	FILE *f;

	(void)state;
	/* Bad values: one line naming the input, exit 2. */
	assert_int_equal(tu_reader_fails("", "--prometheus 99999", line, sizeof line), 2);
	assert_non_null(strstr(line, "--prometheus: '99999'"));
	assert_int_equal(tu_reader_fails("", "--prometheus ::1:80", line, sizeof line), 2);
	assert_non_null(strstr(line, "--prometheus"));
	/* OTel variables: a warning and the default (--once: then nothing
	 * to collect here, 1). */
	assert_int_equal(tu_reader_fails("OTEL_EXPORTER_PROMETHEUS_PORT=http", "--once", line,
				     sizeof line), 1);
	assert_non_null(strstr(line, "OTEL_EXPORTER_PROMETHEUS_PORT: 'http' is not a port number; using 9464"));
	assert_int_equal(tu_reader_fails("OTEL_METRICS_EXPORTER=prometheus,zipkin", "--once", line,
				     sizeof line), 1);
	assert_non_null(strstr(line, "OTEL_METRICS_EXPORTER: 'zipkin' is not otlp, console, prometheus or none; ignored"));

	/* OTEL_METRICS_EXPORTER=prometheus with the OTel host and port. */
	snprintf(env, sizeof env, "%d", port);
	setenv("OTEL_METRICS_EXPORTER", "prometheus", 1);
	setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1", 1);
	setenv("OTEL_EXPORTER_PROMETHEUS_PORT", env, 1);
	tu_reader_start(&r, dir, (const char *[]){ "--interval", "1s", "--prometheus", env, NULL });
	assert_int_equal(r.port, port);
	assert_non_null(strstr(r.url, "http://127.0.0.1:"));
	free(await(r.url, "target_info", false));
	/* The port is taken now: a second reader says so and exits 2. */
	snprintf(conf, sizeof conf, "--prometheus 127.0.0.1:%d", port);
	assert_int_equal(tu_reader_fails("", conf, line, sizeof line), 2);
	assert_non_null(strstr(line, "prometheus 127.0.0.1:"));
	assert_non_null(strstr(line, "Address already in use"));
	assert_int_equal(tu_reader_stop(&r), 0);
	unsetenv("OTEL_METRICS_EXPORTER");
	unsetenv("OTEL_EXPORTER_PROMETHEUS_HOST");
	unsetenv("OTEL_EXPORTER_PROMETHEUS_PORT");

	/* The config file's key; --prometheus off outranks it. */
	snprintf(conf, sizeof conf, "%s/reader.conf", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "prometheus = 127.0.0.1:0\n");
	fclose(f);
	tu_reader_start(&r, dir, (const char *[]){ "--config", conf, "--exporter", "none",
						   "--prometheus", "127.0.0.1:0", NULL });
	assert_true(r.port > 0);
	assert_int_equal(tu_reader_stop(&r), 0);
	{
		char *log;

		tu_reader_start(&r, dir, (const char *[]){ "--config", conf, "--prometheus", "off",
							   "--exporter", "none", NULL });
		/* Until it has started (and handles SIGTERM): slow under a
		 * sanitizer on a busy machine. */
		for (int i = 0; i < 1000; i++) {
			log = tu_reader_log(&r);
			if (strstr(log, "started:"))
				break;
			free(log);
			log = NULL;
			usleep(10000);
		}
		assert_non_null(log);
		free(log);
		usleep(200000); /* "serving" would follow "started" at once */
		log = tu_reader_log(&r);
		assert_null(strstr(log, "prometheus: serving"));
		free(log);
		assert_int_equal(tu_reader_stop(&r), 0);
	}
	f = fopen(conf, "w");
	fprintf(f, "prometheus = [nope\n");
	fclose(f);
	snprintf(env, sizeof env, "--config %s", conf);
	assert_int_equal(tu_reader_fails("", env, line, sizeof line), 2);
	assert_non_null(strstr(line, "reader.conf:1: prometheus '[nope'"));
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(serves_metrics_index_and_health),
		cmocka_unit_test(bad_requests_get_the_right_status),
		cmocka_unit_test(keep_alive_and_pipelined_requests),
		cmocka_unit_test(gzip_and_openmetrics_are_negotiated),
		cmocka_unit_test(idle_and_stalled_clients_never_lock_out_a_scraper),
		cmocka_unit_test(exited_producers_leave_and_restarted_ones_start_fresh),
		cmocka_unit_test(settings_come_from_flag_env_and_file),
	};
	srandom((unsigned)getpid());
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
