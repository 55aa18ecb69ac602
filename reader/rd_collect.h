/* SPDX-License-Identifier: MIT */
/*
 * rd_collect.h - the collection cycle: discover segments, read /proc for
 * their processes in one batch, snapshot them, encode, export, and retire
 * the segments of producers that are gone.
 */
#ifndef RD_COLLECT_H
#define RD_COLLECT_H

#include <stdbool.h>
#include <stdint.h>

#include "rd_config.h"
#include "rd_encode.h"
#include "rd_export.h"
#include "rd_procio.h"
#include "rd_prom.h"
#include "rd_prom_server.h"
#include "rd_source.h"

struct rd_rejected; /* segments refused, remembered until they change */

struct rd_reader {
	const struct rd_config *cfg;
	const char *dir;
	int dirfd;
	struct rd_source *sources;
	struct rd_source **by_name; /* hash buckets over sources, by name */
	size_t n_buckets, n_sources;
	struct rd_rejected *rejected;
	struct rd_procio *procio;
	struct rd_exporter *exporter;
	uint64_t epoch;          /* cycles run: the exporter's outbox epochs */
	struct rd_encode_env env;
	struct rd_batch batch;
	struct rd_self_stats self;
	struct rd_procio_req *reqs;
	size_t reqs_cap;
	uint64_t group_last[RD_GROUP_N]; /* monotonic ns of each group's last export */
	/* /metrics: the server, and the renderer's scratch space. */
	struct rd_prom_server *prom;
	struct rd_prom_renderer *prom_r;
	struct rd_batch prom_batch; /* when some group is not due for OTLP */
	struct rd_prom_stats prom_stats;
	struct rd_leak_cfg leak; /* the settings', window at least 4 cycles */
	uint64_t last_sweep;     /* monotonic ns of the last temporaries sweep */
	int presence_fd;         /* RTM_SHM_READER_FILE, touched every cycle */
	int final_fd;            /* RTM_SHM_FINAL_SOCKET (rd_final.h), or -1 */
	int final_qlen;          /* its queue: rd_final_queue_len() */
	size_t final_sources;    /* from datagrams, not yet delivered */
	bool dir_watched;        /* inotify reports every change (rd_main.c) */
	uint64_t last_full_scan; /* monotonic ns */
	/* Rejections logged in the current minute, and those summarised. */
	uint64_t rej_window, rej_suppressed;
	unsigned rej_logged;
	char rej_example[400];
};

int rd_reader_init(struct rd_reader *r, const struct rd_config *cfg, char *err,
		   size_t errlen);
void rd_reader_fini(struct rd_reader *r);

/* 0 if the segment directory is open (or opens now), else -errno (the
 * reason is logged, once). */
int rd_reader_dir_error(struct rd_reader *r);

/* Looks at every file for new, changed and vanished segments: O(files).
 * The cycle calls it when the directory is not watched, and once a minute. */
void rd_reader_scan(struct rd_reader *r);

/* One directory event for name (created, deleted, renamed in or out): what
 * the directory holds under that name now decides.  O(1) files looked at,
 * whatever the directory holds. */
void rd_reader_dir_event(struct rd_reader *r, const char *name);

/* Takes the final-values datagrams waiting on the socket (rd_final.h) as
 * sources, up to a bound; the cycle exports them.  O(datagrams).  Returns
 * how many it took (refused ones count: they were waiting too). */
int rd_reader_final_drain(struct rd_reader *r);

/* Stops taking datagrams: the socket goes first (senders fall back to
 * files), then what is queued is drained, then it closes.  Before the
 * last cycle, so nothing sent is lost to a stop or a restart. */
void rd_reader_final_stop(struct rd_reader *r);

/* Logs how many rejections went unlogged, once a minute (or now). */
void rd_reader_log_rejections(struct rd_reader *r, uint64_t mono_ns, bool now);

/* Forgets refused segments so they are validated (and logged) afresh. */
void rd_reader_forget_rejected(struct rd_reader *r);

/* One collection cycle: the /metrics page is published as soon as the
 * cycle's values are collected, before the export.  Returns 0, or -EAGAIN
 * if some export failed. */
int rd_reader_cycle(struct rd_reader *r);

#endif /* RD_COLLECT_H */
