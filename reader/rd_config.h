/* SPDX-License-Identifier: MIT */
/*
 * rd_config.h - rtm-reader settings.  Precedence: command-line flag, then the
 * signal-specific OTel variable (OTEL_EXPORTER_OTLP_METRICS_*), then the
 * generic one (OTEL_EXPORTER_OTLP_*), then the default.  A malformed flag or
 * config-file value is a one-line error naming it; a malformed enum or number
 * in an OTEL_* variable is a one-line warning and the default, as the OTel
 * SDK configuration specification requires (and OTel enum values are
 * case-insensitive there).
 */
#ifndef RD_CONFIG_H
#define RD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <regex.h>
#include <stdint.h>
#include <sys/types.h>

#include "rd_groups.h"

enum rd_exporter_kind { RD_EXPORT_OTLP, RD_EXPORT_STDOUT, RD_EXPORT_NONE };
enum rd_protocol { RD_PROTO_PROTOBUF, RD_PROTO_JSON, RD_PROTO_GRPC };
enum rd_io_mode { RD_IO_AUTO, RD_IO_URING, RD_IO_SYNC };
/* OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE. */
enum rd_temporality { RD_TEMP_CUMULATIVE, RD_TEMP_DELTA, RD_TEMP_LOWMEMORY };

struct rd_header {
	char *name;
	char *value;
};

struct rd_config {
	const char *dir;
	/* Where the host's /proc and cgroup hierarchy are (a reader in a
	 * container sees them through bind mounts), and which flag or key
	 * said so (NULL: the default). */
	const char *proc_root, *proc_root_from;
	const char *cgroup_root, *cgroup_root_from;
	uint64_t interval_ns;
	enum rd_exporter_kind exporter;
	bool console_too;          /* OTLP, and the console exporter beside it */
	char *output;              /* the console exporter's file; NULL: stdout */
	bool sdk_disabled;         /* OTEL_SDK_DISABLED=true */
	enum rd_temporality temporality;
	char *endpoint;            /* full URL of the metrics endpoint; for gRPC the
				    * server's URL, to which the method path is added */
	enum rd_protocol protocol;
	bool gzip;
	uint64_t timeout_ns;       /* per request; 0: no limit */
	struct rd_header *headers;
	size_t n_headers;
	char *ca_file, *client_key, *client_cert;
	bool once;
	bool keep_dead;
	bool command_line;         /* opt-in: process.command_line */
	enum rd_io_mode io;
	size_t max_request_bytes;
	uint64_t retry_initial_ns;
	uint64_t retry_max_ns;     /* give up retrying one export after this
				    * (OTEL_METRIC_EXPORT_TIMEOUT; 0 there: no limit) */
	struct rd_settings settings; /* preset, metric groups */
	/* Processes without a segment to collect from /proc alone. */
	pid_t pids[64];
	size_t n_pids;
	bool has_match;
	regex_t match;               /* against the command line */
	/* The scrape endpoint (--prometheus, OTEL_METRICS_EXPORTER=prometheus,
	 * OTEL_EXPORTER_PROMETHEUS_{HOST,PORT}, "prometheus =" in the file). */
	bool prometheus;
	char prom_host[128];       /* "" : every address */
	char prom_port[8];
	bool prom_created;         /* OpenMetrics _created samples (--prometheus-created,
				    * "prometheus.created = on" in the file) */
	/* The reader's own resource. */
	char *service_name;
	struct rd_header *resource;
	size_t n_resource;
};

/*
 * rd_config_load - fill cfg from argv and the environment.  Returns 0, 1 when
 * the program should exit 0 (--help, --version), or -EINVAL after writing a
 * one-line error to err.
 */
int rd_config_load(struct rd_config *cfg, int argc, char **argv, char *err,
		   size_t errlen);
void rd_config_free(struct rd_config *cfg);

/* Writes a one-line error into err and returns -EINVAL. */
int rd_errorf(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses a plain decimal ("5000": digits only — no sign, blank, "0x" or
 * exponent) no larger than max.  Returns 0 or -EINVAL. */
int rd_parse_dec(const char *s, unsigned long long max, unsigned long long *out);

/* Parses "10s", "250ms", "1m", "1.5" (seconds) into ns: a decimal number
 * (digits and one '.'), then a unit.  Returns 0 or -EINVAL. */
int rd_parse_duration(const char *s, uint64_t *ns);

/* Parses a listen address "[HOST:]PORT" ("9464", ":9464", "127.0.0.1:9464",
 * "[::1]:9464", "localhost:0"): host is "" when not given.  Returns 0 or
 * -EINVAL. */
int rd_parse_listen(const char *s, char *host, size_t hcap, char *port, size_t pcap);

/* Parses "k=v,k2=v2" with percent-decoded values (W3C baggage-like, as the
 * OTel spec defines for *_HEADERS and OTEL_RESOURCE_ATTRIBUTES). */
int rd_parse_kv_list(const char *s, struct rd_header **out, size_t *n);
void rd_kv_list_free(struct rd_header *list, size_t n);

#endif /* RD_CONFIG_H */
