/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rd_log.h"
#include "rtm.h"
#include "rtm_shm_text.h"

#define DEFAULT_ENDPOINT "http://localhost:4318/v1/metrics"
#define DEFAULT_GRPC_ENDPOINT "http://localhost:4317"

int rd_errorf(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int rd_parse_dec(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (unsigned)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	*out = v;
	return 0;
}

int rd_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v, mult = 1e9;
	size_t num;

	if (!s || !*s)
		return -EINVAL;
	/* strtod alone would take " 5", "+5", "0x10", "1e3" and "inf". */
	num = strspn(s, "0123456789.");
	if (!num || memchr(s, '.', num) != memrchr(s, '.', num) || !strspn(s, "0123456789"))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if ((size_t)(end - s) != num)
		return -EINVAL;
	if (errno || end == s || !isfinite(v) || v < 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		mult = 1e6;
	else if (!strcmp(end, "us"))
		mult = 1e3;
	else if (!strcmp(end, "m"))
		mult = 60e9;
	else if (!strcmp(end, "h"))
		mult = 3600e9;
	else if (*end && strcmp(end, "s"))
		return -EINVAL;
	if (v * mult > 1e18)
		return -EINVAL;
	*ns = (uint64_t)(v * mult);
	return 0;
}


void rd_kv_list_free(struct rd_header *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++) {
		free(l[i].name);
		free(l[i].value);
	}
	free(l);
}

int rd_parse_kv_list(const char *s, struct rd_header **out, size_t *n)
{
	struct rd_header *l = NULL;
	size_t count = 0;

	*out = NULL;
	*n = 0;
	while (s && *s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		struct rd_header *nl;

		if (!eq)
			goto fail;
		nl = realloc(l, (count + 1) * sizeof *l);
		if (!nl)
			goto fail;
		l = nl;
		l[count].name = rtm_shm_percent_decode(s, (size_t)(eq - s));
		l[count].value = rtm_shm_percent_decode(eq + 1, len - (size_t)(eq - s) - 1);
		count++;
		if (!l[count - 1].name || !l[count - 1].value || !*l[count - 1].name)
			goto fail;
		s = comma ? comma + 1 : s + len;
	}
	*out = l;
	*n = count;
	return 0;
fail:
	rd_kv_list_free(l, count);
	return -EINVAL;
}

/* The OTel variable for this setting: metrics-specific first. */
static const char *otel_env(const char *suffix, const char **which)
{
	static char name[128];
	const char *v;

	snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_METRICS_%s", suffix);
	v = getenv(name);
	if (v && *v) {
		*which = name;
		return v;
	}
	snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s", suffix);
	v = getenv(name);
	*which = name;
	return v && *v ? v : NULL;
}

/* An OTel variable's value we cannot use: said once, then the default (the
 * specification's "log a warning and ignore the setting"). */
static void env_warn(const char *var, const char *v, const char *expect, const char *dflt)
{
	rd_log("%s: '%.100s' is not %s; using %s", var, v, expect, dflt);
}

static bool from_env(const char *which)
{
	return !strncmp(which, "OTEL_", 5);
}

/* An http or https URL (scheme in any case) with a host — a name, an
 * IPv4 address or a bracketed IPv6 literal — and an optional port in
 * 1..65535; no credentials. */
static int check_url(const char *url)
{
	const char *p, *host, *end;
	size_t len;

	if (!strncasecmp(url, "http://", 7))
		p = url + 7;
	else if (!strncasecmp(url, "https://", 8))
		p = url + 8;
	else
		return 0;
	len = strcspn(p, "/?#");
	if (memchr(p, '@', len) || memchr(p, ' ', len))
		return 0;
	host = p;
	if (*p == '[') {
		end = memchr(p, ']', len);
		if (!end || end == p + 1 || strspn(p + 1, "0123456789abcdefABCDEF:.%") < (size_t)(end - p - 1))
			return 0;
		p = end + 1;
	} else {
		end = p + strcspn(p, ":/?#");
		if (end == p)
			return 0;
		for (const char *q = host; q < end; q++)
			if (!isalnum((unsigned char)*q) && !strchr(".-_", *q))
				return 0;
		p = end;
	}
	if (*p == ':') {
		char port[8];
		size_t pl = strcspn(p + 1, "/?#");
		unsigned long long v;

		if (!pl || pl >= sizeof port)
			return 0;
		memcpy(port, p + 1, pl);
		port[pl] = '\0';
		if (rd_parse_dec(port, 65535, &v) || !v)
			return 0;
		p += 1 + pl;
	}
	return !*p || strchr("/?#", *p);
}

static bool valid_port(const char *p)
{
	size_t n = strlen(p);

	return n && n <= 5 && strspn(p, "0123456789") == n && atol(p) <= 65535;
}

int rd_parse_listen(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon, *p;
	size_t hlen = 0;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - s - 1);
		if (!hlen || memchr(s + 1, ':', hlen) == NULL)
			return -EINVAL; /* brackets are for IPv6 literals */
		p = close + 2;
		s++;
	} else if ((colon = strrchr(s, ':'))) {
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return -EINVAL; /* an IPv6 literal needs brackets */
		p = colon + 1;
	} else {
		p = s;
	}
	if (!valid_port(p) || hlen >= hcap || strlen(p) >= pcap)
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-:%_", s[i]))
			return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	snprintf(port, pcap, "%s", p);
	return 0;
}

static void usage(void)
{
	printf("usage: rtm-reader [options]\n"
	       "Reads every rtm segment in the segment directory each interval and\n"
	       "exports it as OpenTelemetry metrics.\n\n"
	       "  --dir DIR              segment directory ($RTM_DIR, default /dev/shm/rtm)\n"
	       "  --interval DURATION    collection interval (default 10s;\n"
	       "                         OTEL_METRIC_EXPORT_INTERVAL in ms)\n"
	       "  --exporter KIND[,KIND] otlp, console (or stdout), prometheus or none\n"
	       "                         (OTEL_METRICS_EXPORTER; default otlp when an\n"
	       "                         endpoint is set, else console)\n"
	       "  --output FILE          where the console exporter writes (default stdout)\n"
	       "  --prometheus [HOST:]PORT  serve GET /metrics for scraping (also\n"
	       "                         OTEL_EXPORTER_PROMETHEUS_{HOST,PORT}; default\n"
	       "                         localhost:9464; 'off' to turn it off)\n"
	       "  --prometheus-created   OpenMetrics pages carry _created samples (start\n"
	       "                         times; Prometheus stores each as a series)\n"
	       "  --endpoint URL         OTLP/HTTP metrics URL, used as is; for grpc the\n"
	       "                         server (default http://localhost:4317)\n"
	       "  --protocol P           http/protobuf (default), http/json or grpc\n"
	       "  --compression C        gzip or none\n"
	       "  --timeout DURATION     per request, 0 for no limit (default 10s;\n"
	       "                         OTEL_..._TIMEOUT in ms, 0 for no limit too)\n"
	       "  --headers K=V,...      extra request headers\n"
	       "  --certificate FILE     CA bundle for https\n"
	       "  --client-key FILE      client key for mTLS\n"
	       "  --client-certificate FILE  client certificate for mTLS\n"
	       "  --max-request-bytes N  split exports larger than N (default 4194304)\n"
	       "  --retry-initial DURATION   first retry delay (default 1s)\n"
	       "  --retry-max DURATION   stop retrying one export after (default 30s;\n"
	       "                         OTEL_METRIC_EXPORT_TIMEOUT in ms, 0 for no limit)\n"
	       "  --io MODE              /proc I/O: auto, uring or sync (default auto)\n"
	       "  --command-line         add process.command_line to resources\n"
	       "  --keep-dead            do not remove segments of exited producers\n"
	       "  --once                 run one collection cycle and exit\n"
	       "  --pid PID              also collect this process from /proc (repeatable)\n"
	       "  --match REGEX          also collect processes whose command line matches\n"
	       "  --proc-root DIR        where the host's /proc is mounted (default /proc;\n"
	       "                         a reader in a container: /host/proc)\n"
	       "  --cgroup-root DIR      where the host's cgroup hierarchy is mounted\n"
	       "                         (default /sys/fs/cgroup)\n"
	       "  --config FILE          settings file ($RTM_CONFIG; default " RTM_DEFAULT_CONFIG "\n"
	       "                         when present; see docs/tuning.md)\n"
	       "  --preset P             default or production ($RTM_PRESET)\n"
	       "  --group G=on|off|DUR   memory, process, threads, scheduler, allocator\n"
	       "                         ($RTM_GROUP_<G>); repeatable\n"
	       "  --leak on|off|KEY=VALUE  leak detector: window=DUR, heap=BYTES/s,\n"
	       "                         threads=N/s, fds=N/s ($RTM_LEAK[_<KEY>]); repeatable\n"
	       "  --limit KEY=N          what segments may cost: series=N and strings=BYTES\n"
	       "                         per segment (20000, 8MiB), user-series=N per owner\n"
	       "                         (200000); $RTM_LIMIT_{SERIES,STRINGS,USER_SERIES}\n"
	       "  --version, --help\n"
	       "OTEL_EXPORTER_OTLP_[METRICS_]{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION,PROTOCOL,\n"
	       "CERTIFICATE,CLIENT_KEY,CLIENT_CERTIFICATE}, OTEL_EXPORTER_OTLP_METRICS_\n"
	       "TEMPORALITY_PREFERENCE (cumulative, delta, lowmemory), OTEL_SDK_DISABLED,\n"
	       "OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are honoured; flags override\n"
	       "them; a bad OTEL_* enum or number is a warning and the default.\n");
}

enum {
	O_DIR = 256, O_INTERVAL, O_EXPORTER, O_ENDPOINT, O_PROTOCOL, O_COMPRESSION,
	O_TIMEOUT, O_HEADERS, O_CERT, O_KEY, O_CCERT, O_MAXREQ, O_RETRY_INITIAL,
	O_RETRY_MAX, O_IO, O_CMDLINE, O_KEEP_DEAD, O_ONCE, O_CONFIG, O_PRESET, O_GROUP,
	O_PID, O_MATCH, O_PROMETHEUS, O_PROM_CREATED, O_LEAK, O_LIMIT, O_OUTPUT, O_PROC_ROOT, O_CGROUP_ROOT,
	O_VERSION, O_HELP,
};

struct flags {
	const char *v[O_HELP + 1];
};

/* Flags are exact; OTel variables case-insensitive. */
static bool same(const char *which, const char *v, const char *word)
{
	return from_env(which) ? !strcasecmp(v, word) : !strcmp(v, word);
}

static int apply_protocol(struct rd_config *c, const char *v, const char *what,
			  char *err, size_t n)
{
	if (same(what, v, "http/protobuf"))
		c->protocol = RD_PROTO_PROTOBUF;
	else if (same(what, v, "http/json"))
		c->protocol = RD_PROTO_JSON;
	else if (same(what, v, "grpc"))
		c->protocol = RD_PROTO_GRPC;
	else if (from_env(what))
		env_warn(what, v, "grpc, http/protobuf or http/json", "http/protobuf");
	else
		return rd_errorf(err, n, "%s: '%s' is not grpc, http/protobuf or http/json", what, v);
	return 0;
}

static int apply_file(char **dst, const char *v, const char *what, char *err,
		      size_t n)
{
	if (access(v, R_OK))
		return rd_errorf(err, n, "%s: cannot read '%s': %s", what, v, strerror(errno));
	*dst = strdup(v);
	return 0;
}

/* A gRPC endpoint given as host:port, without a scheme (as the OTel
 * specification allows for gRPC): OTEL_EXPORTER_OTLP_[METRICS_]INSECURE
 * picks the scheme, true for http://, else (its default, false) https://.
 * Any other endpoint: as given.  Returns v, or a URL in buf, or NULL with
 * err set. */
static const char *grpc_scheme(const struct rd_config *c, const char *v, char *buf, size_t cap,
			       char *err, size_t n)
{
	const char *ins, *which;

	if (c->protocol != RD_PROTO_GRPC || strstr(v, "://"))
		return v;
	ins = otel_env("INSECURE", &which);
	if (ins && strcasecmp(ins, "true") && strcasecmp(ins, "false")) {
		rd_errorf(err, n, "%s: '%s' is not true or false", which, ins);
		return NULL;
	}
	snprintf(buf, cap, "%s://%s", ins && !strcasecmp(ins, "true") ? "http" : "https", v);
	return buf;
}

/* OTel SDK variables that do not apply to a reader: set, each is said
 * once at start, with why, rather than ignored without a word. */
static void warn_unapplied(void)
{
	static const struct { const char *var, *why; } v[] = {
		{ "OTEL_METRICS_EXEMPLAR_FILTER", "segments carry no exemplars" },
		{ "OTEL_CONFIG_FILE", "rtm-reader reads its own --config file (rtm-reader(8))" },
		{ "OTEL_EXPERIMENTAL_CONFIG_FILE", "rtm-reader reads its own --config file (rtm-reader(8))" },
		{ "OTEL_ATTRIBUTE_COUNT_LIMIT", "the segment format bounds attributes (--limit, rtm-segment(5))" },
		{ "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "the segment format bounds attributes (--limit, rtm-segment(5))" },
	};

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		const char *x = getenv(v[i].var);

		if (x && *x)
			rd_log("%s is set, but does not apply to rtm-reader: %s", v[i].var, v[i].why);
	}
}

/* Exporter settings: flag, else OTEL_EXPORTER_OTLP_METRICS_*, else generic. */
static int load_otlp(struct rd_config *c, const struct flags *f, char *err,
		     size_t n)
{
	const char *v, *which;
	char url[1200];
	uint64_t ns;
	int rc;

	/* The protocol first: it decides what an endpoint means. */
	if ((v = f->v[O_PROTOCOL]))
		which = "--protocol";
	else
		v = otel_env("PROTOCOL", &which);
	if (v && (rc = apply_protocol(c, v, which, err, n)))
		return rc;

	if (f->v[O_ENDPOINT]) {
		if (!check_url(f->v[O_ENDPOINT]))
			return rd_errorf(err, n, "--endpoint: '%s' is not an http:// or https:// URL "
				   "with a host and a port in 1..65535", f->v[O_ENDPOINT]);
		c->endpoint = strdup(f->v[O_ENDPOINT]);
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")) && *v) {
		if (!(v = grpc_scheme(c, v, url, sizeof url, err, n)))
			return -EINVAL;
		if (!check_url(v))
			return rd_errorf(err, n,
				   "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: '%s' is not an http:// or https:// URL",
				   v);
		c->endpoint = strdup(v); /* signal-specific: used as is */
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
		size_t len;

		if (!(v = grpc_scheme(c, v, url, sizeof url, err, n)))
			return -EINVAL;
		len = strlen(v);
		if (!check_url(v))
			return rd_errorf(err, n, "OTEL_EXPORTER_OTLP_ENDPOINT: '%s' is not an http:// or https:// URL",
				   v);
		/* Generic base URL: over HTTP the signal path is appended; a
		 * gRPC endpoint names the server, used as is. */
		if (c->protocol == RD_PROTO_GRPC)
			c->endpoint = strdup(v);
		else if (asprintf(&c->endpoint, "%s%sv1/metrics", v,
				  len && v[len - 1] == '/' ? "" : "/") < 0)
			return -ENOMEM;
	} else {
		c->endpoint = strdup(c->protocol == RD_PROTO_GRPC ? DEFAULT_GRPC_ENDPOINT :
				     DEFAULT_ENDPOINT);
	}

	if ((v = f->v[O_COMPRESSION]))
		which = "--compression";
	else
		v = otel_env("COMPRESSION", &which);
	if (v) {
		if (same(which, v, "gzip"))
			c->gzip = true;
		else if (from_env(which) && strcasecmp(v, "none"))
			env_warn(which, v, "gzip or none", "none");
		else if (!from_env(which) && strcmp(v, "none"))
			return rd_errorf(err, n, "%s: '%s' is not gzip or none", which, v);
	}

	if ((v = f->v[O_TIMEOUT])) {
		/* 0: no limit, as the variables have it.  Between 0 and 1 ms
		 * libcurl would round it to 0 too: refused, not taken for that. */
		if (rd_parse_duration(v, &ns) || (ns && ns < 1000000))
			return rd_errorf(err, n, "--timeout: '%s' is not 0 (no limit) or a duration of "
					 "at least 1ms", v);
		c->timeout_ns = ns;
	} else if ((v = otel_env("TIMEOUT", &which))) {
		unsigned long long ms;

		/* 0: no limit, as the specification has it. */
		if (rd_parse_dec(v, 3600000, &ms))
			env_warn(which, v, "a timeout in milliseconds (0..3600000)", "10000");
		else
			c->timeout_ns = ms * 1000000ull;
	}

	if ((v = f->v[O_HEADERS]))
		which = "--headers";
	else
		v = otel_env("HEADERS", &which);
	if (v && rd_parse_kv_list(v, &c->headers, &c->n_headers))
		return rd_errorf(err, n, "%s: '%s' is not a list of key=value pairs", which, v);
	for (size_t i = 0; i < c->n_headers; i++)
		/* Decoded CR or LF would let the value start a header of its own. */
		if (strpbrk(c->headers[i].name, "\r\n") || strpbrk(c->headers[i].value, "\r\n"))
			return rd_errorf(err, n, "%s: header '%s' would hold a CR or LF once decoded", which,
					 c->headers[i].name);

	if ((v = f->v[O_CERT]))
		which = "--certificate";
	else
		v = otel_env("CERTIFICATE", &which);
	if (v && (rc = apply_file(&c->ca_file, v, which, err, n)))
		return rc;
	if ((v = f->v[O_KEY]))
		which = "--client-key";
	else
		v = otel_env("CLIENT_KEY", &which);
	if (v && (rc = apply_file(&c->client_key, v, which, err, n)))
		return rc;
	if ((v = f->v[O_CCERT]))
		which = "--client-certificate";
	else
		v = otel_env("CLIENT_CERTIFICATE", &which);
	if (v && (rc = apply_file(&c->client_cert, v, which, err, n)))
		return rc;
	return 0;
}

/* --exporter or OTEL_METRICS_EXPORTER: a comma-separated list of otlp,
 * console (or stdout), prometheus (pull) and none.  otlp and console
 * together export to both. */
static int load_exporter(struct rd_config *c, const struct flags *f, char *err,
			 size_t n)
{
	const char *v = f->v[O_EXPORTER], *which = "--exporter";
	bool otlp = false, console = false, none = false, named = false;

	if (!v && (v = getenv("OTEL_METRICS_EXPORTER")) && *v)
		which = "OTEL_METRICS_EXPORTER";
	else if (!f->v[O_EXPORTER])
		v = NULL;
	for (const char *p = v; p && *p;) {
		size_t len = strcspn(p, ",");
		char tok[32];

		snprintf(tok, sizeof tok, "%.*s", (int)(len < sizeof tok ? len : sizeof tok - 1), p);
		if (same(which, tok, "prometheus")) {
			c->prometheus = true;
			named = true;
		} else if (same(which, tok, "otlp")) {
			otlp = named = true;
		} else if (same(which, tok, "console") || same(which, tok, "stdout")) {
			console = named = true;
		} else if (same(which, tok, "none")) {
			none = named = true;
		} else if (from_env(which)) {
			rd_log("%s: '%.32s' is not otlp, console, prometheus or none; ignored", which, tok);
		} else {
			return rd_errorf(err, n, "%s: '%s' is not otlp, console (stdout), prometheus or none",
					 which, tok);
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (none && (otlp || console || c->prometheus))
		return rd_errorf(err, n, "%s: '%s' names none with other exporters", which, v);
	if (!named) {
		/* Nothing named: OTLP if a collector is configured, else the
		 * console so the reader shows something on its own. */
		otlp = f->v[O_ENDPOINT] ||
			(getenv("OTEL_EXPORTER_OTLP_ENDPOINT") && *getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) ||
			(getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") &&
			 *getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"));
		console = !otlp;
	}
	c->exporter = otlp ? RD_EXPORT_OTLP : console ? RD_EXPORT_STDOUT : RD_EXPORT_NONE;
	c->console_too = otlp && console;
	return 0;
}

/* Where /metrics listens: the flag, else the OTel variables, else the
 * file's "prometheus =", else localhost:9464. */
static int load_prometheus(struct rd_config *c, const struct flags *f, char *err, size_t n)
{
	const char *file = c->settings.prometheus, *v;
	char host[128] = "", port[8] = "";

	/* The flag turns them on; without it, the file says. */
	c->prom_created |= c->settings.prometheus_created;
	if (*file && strcmp(file, "off")) {
		c->prometheus = true;
		rd_parse_listen(file, host, sizeof host, port, sizeof port); /* checked on load */
	}
	snprintf(c->prom_host, sizeof c->prom_host, "%s", *host ? host : "localhost");
	snprintf(c->prom_port, sizeof c->prom_port, "%s", *port ? port : "9464");
	if ((v = getenv("OTEL_EXPORTER_PROMETHEUS_HOST")) && *v) {
		if (strlen(v) >= sizeof c->prom_host || strpbrk(v, " /[]"))
			return rd_errorf(err, n, "OTEL_EXPORTER_PROMETHEUS_HOST: '%s' is not a host name or address", v);
		snprintf(c->prom_host, sizeof c->prom_host, "%s", v);
	}
	if ((v = getenv("OTEL_EXPORTER_PROMETHEUS_PORT")) && *v) {
		if (!valid_port(v))
			env_warn("OTEL_EXPORTER_PROMETHEUS_PORT", v, "a port number", c->prom_port);
		else
			snprintf(c->prom_port, sizeof c->prom_port, "%s", v);
	}
	if ((v = f->v[O_PROMETHEUS])) {
		if (!strcmp(v, "off")) {
			c->prometheus = false;
			return 0;
		}
		if (rd_parse_listen(v, host, sizeof host, port, sizeof port))
			return rd_errorf(err, n, "--prometheus: '%s' is not [HOST:]PORT (HOST in [] for IPv6, PORT 0..65535)",
					 v);
		c->prometheus = true;
		if (*host)
			snprintf(c->prom_host, sizeof c->prom_host, "%s", host);
		snprintf(c->prom_port, sizeof c->prom_port, "%s", port);
	}
	return 0;
}

/* A copy of s as valid UTF-8 (malloc'd). */
static char *utf8_copy(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1);

	if (out)
		rtm_shm_utf8_repair(s, n, out, n * 3 + 1);
	return out;
}

static int load_misc(struct rd_config *c, const struct flags *f, char *err,
		     size_t n)
{
	const char *v;
	uint64_t ns;

	if ((v = f->v[O_INTERVAL])) {
		if (rd_parse_duration(v, &ns) || ns < 1000000)
			return rd_errorf(err, n, "--interval: '%s' is not a duration of at least 1ms", v);
		c->interval_ns = ns;
	} else if ((v = getenv("OTEL_METRIC_EXPORT_INTERVAL")) && *v) {
		unsigned long long ms;

		if (rd_parse_dec(v, 86400000ull * 365, &ms) || !ms)
			env_warn("OTEL_METRIC_EXPORT_INTERVAL", v, "a positive number of milliseconds",
				 "10000");
		else
			c->interval_ns = ms * 1000000ull;
	}
	if ((v = f->v[O_MAXREQ])) {
		unsigned long long b;

		if (rd_parse_dec(v, 1ull << 30, &b) || b < 1024)
			return rd_errorf(err, n, "--max-request-bytes: '%s' is not in 1024..1073741824", v);
		c->max_request_bytes = b;
	}
	if ((v = f->v[O_RETRY_INITIAL]) && (rd_parse_duration(v, &c->retry_initial_ns) ||
					    c->retry_initial_ns < 1000000))
		return rd_errorf(err, n, "--retry-initial: '%s' is not a duration of at least 1ms", v);
	if ((v = f->v[O_RETRY_MAX])) {
		if (rd_parse_duration(v, &c->retry_max_ns))
			return rd_errorf(err, n, "--retry-max: '%s' is not a duration", v);
	} else if ((v = getenv("OTEL_METRIC_EXPORT_TIMEOUT")) && *v) {
		unsigned long long ms;

		/* The whole export, retries included; 0: no limit. */
		if (rd_parse_dec(v, 86400000ull * 365, &ms))
			env_warn("OTEL_METRIC_EXPORT_TIMEOUT", v, "a number of milliseconds", "30000");
		else
			c->retry_max_ns = ms ? ms * 1000000ull : UINT64_MAX / 4;
	}
	if ((v = getenv("OTEL_SDK_DISABLED")) && *v) {
		if (!strcasecmp(v, "true"))
			c->sdk_disabled = true;
		else if (strcasecmp(v, "false"))
			env_warn("OTEL_SDK_DISABLED", v, "true or false", "false");
	}
	if ((v = getenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")) && *v) {
		if (!strcasecmp(v, "cumulative"))
			c->temporality = RD_TEMP_CUMULATIVE;
		else if (!strcasecmp(v, "delta"))
			c->temporality = RD_TEMP_DELTA;
		else if (!strcasecmp(v, "lowmemory"))
			c->temporality = RD_TEMP_LOWMEMORY;
		else
			env_warn("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", v,
				 "cumulative, delta or lowmemory", "cumulative");
	}
	if ((v = f->v[O_OUTPUT]))
		c->output = strdup(v);
	if ((v = f->v[O_IO])) {
		if (!strcmp(v, "auto"))
			c->io = RD_IO_AUTO;
		else if (!strcmp(v, "uring"))
			c->io = RD_IO_URING;
		else if (!strcmp(v, "sync"))
			c->io = RD_IO_SYNC;
		else
			return rd_errorf(err, n, "--io: '%s' is not auto, uring or sync", v);
	}
	v = getenv("OTEL_RESOURCE_ATTRIBUTES");
	if (v && *v && rd_parse_kv_list(v, &c->resource, &c->n_resource)) {
		env_warn("OTEL_RESOURCE_ATTRIBUTES", v, "a list of key=value pairs", "none of them");
		rd_kv_list_free(c->resource, c->n_resource);
		c->resource = NULL;
		c->n_resource = 0;
	}
	/* service.name: OTEL_SERVICE_NAME, else the attribute, else ours. */
	v = getenv("OTEL_SERVICE_NAME");
	for (size_t i = 0; (!v || !*v) && i < c->n_resource; i++)
		if (!strcmp(c->resource[i].name, "service.name"))
			v = c->resource[i].value;
	c->service_name = utf8_copy(v && *v ? v : "rtm-reader");
	/* Exported as OTLP strings, which must be UTF-8 (percent-decoding
	 * makes any byte): invalid sequences become U+FFFD. */
	for (size_t i = 0; i < c->n_resource; i++) {
		char *k = utf8_copy(c->resource[i].name), *val = utf8_copy(c->resource[i].value);

		free(c->resource[i].name);
		free(c->resource[i].value);
		c->resource[i].name = k;
		c->resource[i].value = val;
	}
	return 0;
}

int rd_config_load(struct rd_config *c, int argc, char **argv, char *err,
		   size_t n)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, O_DIR },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "exporter", required_argument, NULL, O_EXPORTER },
		{ "endpoint", required_argument, NULL, O_ENDPOINT },
		{ "protocol", required_argument, NULL, O_PROTOCOL },
		{ "compression", required_argument, NULL, O_COMPRESSION },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "headers", required_argument, NULL, O_HEADERS },
		{ "certificate", required_argument, NULL, O_CERT },
		{ "client-key", required_argument, NULL, O_KEY },
		{ "client-certificate", required_argument, NULL, O_CCERT },
		{ "max-request-bytes", required_argument, NULL, O_MAXREQ },
		{ "retry-initial", required_argument, NULL, O_RETRY_INITIAL },
		{ "retry-max", required_argument, NULL, O_RETRY_MAX },
		{ "io", required_argument, NULL, O_IO },
		{ "command-line", no_argument, NULL, O_CMDLINE },
		{ "keep-dead", no_argument, NULL, O_KEEP_DEAD },
		{ "once", no_argument, NULL, O_ONCE },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "preset", required_argument, NULL, O_PRESET },
		{ "group", required_argument, NULL, O_GROUP },
		{ "pid", required_argument, NULL, O_PID },
		{ "match", required_argument, NULL, O_MATCH },
		{ "prometheus", required_argument, NULL, O_PROMETHEUS },
		{ "prometheus-created", no_argument, NULL, O_PROM_CREATED },
		{ "leak", required_argument, NULL, O_LEAK },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "output", required_argument, NULL, O_OUTPUT },
		{ "proc-root", required_argument, NULL, O_PROC_ROOT },
		{ "cgroup-root", required_argument, NULL, O_CGROUP_ROOT },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	struct flags f = { { 0 } };
	char *groups[32], *leaks[32], *limits[32];
	size_t n_groups = 0, n_leaks = 0, n_limits = 0;
	int opt, rc;

	memset(c, 0, sizeof *c);
	c->interval_ns = 10000000000ull;
	c->timeout_ns = 10000000000ull;
	c->max_request_bytes = 4u << 20;
	c->retry_initial_ns = 1000000000ull;
	c->retry_max_ns = 30000000000ull;
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case O_CMDLINE: c->command_line = true; break;
		case O_PROM_CREATED: c->prom_created = true; break;
		case O_KEEP_DEAD: c->keep_dead = true; break;
		case O_ONCE: c->once = true; break;
		case O_GROUP:
			if (n_groups == sizeof groups / sizeof groups[0])
				return rd_errorf(err, n, "--group: given more than %zu times", n_groups);
			groups[n_groups++] = optarg;
			break;
		case O_LEAK:
			if (n_leaks == sizeof leaks / sizeof leaks[0])
				return rd_errorf(err, n, "--leak: given more than %zu times", n_leaks);
			leaks[n_leaks++] = optarg;
			break;
		case O_LIMIT:
			if (n_limits == sizeof limits / sizeof limits[0])
				return rd_errorf(err, n, "--limit: given more than %zu times", n_limits);
			limits[n_limits++] = optarg;
			break;
		case O_PID: {
			unsigned long long pid;

			if (rd_parse_dec(optarg, 4194304, &pid) || !pid)
				return rd_errorf(err, n, "--pid: '%s' is not a process id", optarg);
			if (c->n_pids == sizeof c->pids / sizeof c->pids[0])
				return rd_errorf(err, n, "--pid: given more than %zu times", c->n_pids);
			c->pids[c->n_pids++] = (pid_t)pid;
			break;
		}
		case O_MATCH: {
			int rc2;

			if (c->has_match)
				return rd_errorf(err, n, "--match: given twice (combine with |)");
			rc2 = regcomp(&c->match, optarg, REG_EXTENDED | REG_NOSUB);
			if (rc2) {
				char why[128];

				regerror(rc2, &c->match, why, sizeof why);
				return rd_errorf(err, n, "--match: '%s' is not a regular expression: %s",
						 optarg, why);
			}
			c->has_match = true;
			break;
		}
		case O_VERSION: printf("rtm-reader %s\n", RTM_VERSION); return 1;
		case O_HELP: usage(); return 1;
		case '?':
			if (optopt >= O_DIR)
				return rd_errorf(err, n, "%s: missing value", argv[optind - 1]);
			/* A short option ("-xy"): name the letter, not whatever
			 * argv[optind - 1] happens to be. */
			if (optopt)
				return rd_errorf(err, n, "unknown option '-%c' (see --help)", optopt);
			return rd_errorf(err, n, "unknown option '%s' (see --help)", argv[optind - 1]);
		default: f.v[opt] = optarg; break;
		}
	}
	if (optind < argc)
		return rd_errorf(err, n, "unexpected argument '%s' (see --help)", argv[optind]);
	c->dir = f.v[O_DIR];
	rc = rd_settings_load(&c->settings, f.v[O_CONFIG], f.v[O_PRESET], groups, n_groups, leaks,
			      n_leaks, err, n);
	if (!rc)
		rc = rd_settings_limits(&c->settings, limits, n_limits, err, n);
	if (rc)
		return rc;
	/* --interval and OTEL_METRIC_EXPORT_INTERVAL (load_misc) outrank it. */
	c->interval_ns = c->settings.interval_ns;
	/* The flags outrank the file's keys; rd_reader_init() checks them. */
	c->proc_root = f.v[O_PROC_ROOT] ? f.v[O_PROC_ROOT] :
		*c->settings.proc_root ? c->settings.proc_root : "/proc";
	c->proc_root_from = f.v[O_PROC_ROOT] ? "--proc-root" :
		*c->settings.proc_root ? "proc-root (config)" : NULL;
	c->cgroup_root = f.v[O_CGROUP_ROOT] ? f.v[O_CGROUP_ROOT] :
		*c->settings.cgroup_root ? c->settings.cgroup_root : "/sys/fs/cgroup";
	c->cgroup_root_from = f.v[O_CGROUP_ROOT] ? "--cgroup-root" :
		*c->settings.cgroup_root ? "cgroup-root (config)" : NULL;
	if ((rc = load_misc(c, &f, err, n)) || (rc = load_exporter(c, &f, err, n)) ||
	    (rc = load_prometheus(c, &f, err, n)) || (rc = load_otlp(c, &f, err, n)))
		return rc;
	warn_unapplied();
	return 0;
}

void rd_config_free(struct rd_config *c)
{
	if (c->has_match)
		regfree(&c->match);
	free(c->endpoint);
	free(c->output);
	rd_kv_list_free(c->headers, c->n_headers);
	rd_kv_list_free(c->resource, c->n_resource);
	free(c->ca_file);
	free(c->client_key);
	free(c->client_cert);
	free(c->service_name);
	memset(c, 0, sizeof *c);
}
