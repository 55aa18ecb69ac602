/* SPDX-License-Identifier: MIT */
/*
 * rtm-reader - export every rtm segment as OpenTelemetry metrics.
 *
 * The event loop waits on three things: the next collection deadline, the
 * segment directory's inotify fd and a signalfd.  With io_uring it keeps a
 * read armed on each fd and a timeout on the ring and sleeps in one
 * io_uring_wait_cqe(); without it (ENOSYS, EPERM under seccomp,
 * io_uring_disabled) the same loop runs on poll().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "rd_collect.h"
#include "rd_gzip.h"
#include "rd_log.h"
#include "rtm.h"

enum { EV_SIGNAL = 1, EV_INOTIFY, EV_TIMER, EV_FINAL, EV_FINAL_WAIT };

/* Final-values datagrams (rd_final.h) are taken between cycles.  An idle
 * reader waits on the socket; the first datagram of a burst wakes it, and
 * while more keep coming it takes them on a timer without waiting on the
 * socket, so a sender never pays for waking it: a short command's exit
 * cost 1.15x of the floor with every other datagram waking the reader,
 * ~1.08-1.13x with the timer (rtm-bench-exec).  The pause follows the
 * rate, aiming at 40 % of the socket's queue a take (qlen: 4 of the
 * default 10) — a full queue makes a sender write a file, nothing is
 * lost — and waits at most 2 ms per datagram the queue holds, up to
 * 250 ms: a host with a longer queue (sysctl net.unix.max_dgram_qlen) is
 * woken less often. */
#define FINAL_PAUSE_NS 5000000ull
#define FINAL_PAUSE_MIN_NS 1000000ull

static uint64_t final_next_pause(uint64_t pause, int taken, int qlen)
{
	int aim = qlen * 4 / 10 > 3 ? qlen * 4 / 10 : 3;
	uint64_t most = (uint64_t)qlen * 2000000ull;

	if (most > 250000000ull)
		most = 250000000ull;
	if (taken > aim + 1)
		return pause / 2 > FINAL_PAUSE_MIN_NS ? pause / 2 : FINAL_PAUSE_MIN_NS;
	if (taken < aim - 1)
		return pause * 3 / 2 < most ? pause * 3 / 2 : most;
	return pause;
}

/* The last collection and flush on SIGTERM/SIGINT gets this long. */
#define FINAL_FLUSH_NS (2 * 1000000000ull)

struct loop {
	struct rd_reader *r;
	const struct rd_config *cfg;
	int sigfd, inofd, wd;
	bool uring;
	bool final_armed; /* a poll on the final-values socket, or its pause, is queued */
	uint64_t final_after; /* loop_poll(): the pause's end, monotonic ns; 0 = waiting on it */
	uint64_t final_pause_ns; /* final_next_pause() */
	struct __kernel_timespec final_pause;
	struct io_uring ring;
	struct signalfd_siginfo si;
	char ino_buf[4096] __attribute__((aligned(8)));
	struct __kernel_timespec ts;
	uint64_t next_cycle;
	bool stop;
	int failures;
};

static sigset_t handled;

/* Five descriptors per producer and two per thread of each (kept open
 * across cycles): a service's default soft limit of 1024 would cap a
 * reader at ~150 producers.  The hard limit is the administrator's. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Retries stop early when a terminating signal is waiting. */
static bool term_pending(void)
{
	sigset_t pending;

	sigpending(&pending);
	return sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT);
}

/* Watching starts before the cycle's full scan, so nothing created in
 * between is missed; until it works, every cycle scans in full. */
static void watch_dir(struct loop *l)
{
	if (l->wd >= 0 || l->inofd < 0)
		return;
	l->wd = inotify_add_watch(l->inofd, l->r->dir,
				  IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
				  IN_ONLYDIR | IN_DONT_FOLLOW);
	if (l->wd >= 0)
		l->r->last_full_scan = 0; /* a full scan in the next cycle */
	l->r->dir_watched = l->wd >= 0;
}

static void run_cycle(struct loop *l)
{
	watch_dir(l);
	if (rd_reader_cycle(l->r))
		l->failures++;
	l->next_cycle += l->cfg->interval_ns;
	if (l->next_cycle < mono_ns()) /* we fell behind: don't burst */
		l->next_cycle = mono_ns() + l->cfg->interval_ns;
}

static void on_signal(struct loop *l, int sig)
{
	if (sig == SIGHUP) {
		rd_log("SIGHUP: re-validating every segment");
		rd_reader_forget_rejected(l->r);
		rd_reader_scan(l->r);
	} else {
		l->stop = true;
	}
}

/* Directory events, each handled for its own name: a new producer is
 * validated (and a bad one reported) at once, a removed one retired, and a
 * storm of junk files costs one look per file, not a rescan per event.  Lost
 * events (the queue overflowed) or a watch that ended fall back to full
 * scans. */
static void on_inotify(struct loop *l, ssize_t n)
{
	for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
		const struct inotify_event *ev = (const struct inotify_event *)(const void *)
			(l->ino_buf + off);

		off += (ssize_t)(sizeof *ev + ev->len);
		if (off > n)
			break;
		if (ev->mask & IN_Q_OVERFLOW) {
			rd_reader_scan(l->r);
		} else if (ev->mask & IN_IGNORED) {
			l->wd = -1; /* the directory went away: re-watch, scan */
			l->r->dir_watched = false;
		} else if (ev->len && ev->wd == l->wd) {
			rd_reader_dir_event(l->r, ev->name);
		}
	}
	watch_dir(l);
}

static void arm_read(struct loop *l, int fd, void *buf, unsigned len, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	io_uring_prep_read(sqe, fd, buf, len, 0);
	io_uring_sqe_set_data64(sqe, tag);
}

static void arm_timer(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
	uint64_t now = mono_ns(), wait = l->next_cycle > now ? l->next_cycle - now : 0;

	l->ts.tv_sec = (long long)(wait / 1000000000u);
	l->ts.tv_nsec = (long long)(wait % 1000000000u);
	io_uring_prep_timeout(sqe, &l->ts, 0, 0);
	io_uring_sqe_set_data64(sqe, EV_TIMER);
}

/* The signalfd is polled, not read, by the ring: a read would take the
 * signal off the pending set the moment it arrives, and an export stuck in
 * the cycle would never learn it must stop (term_pending()). */
static void arm_signal(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	io_uring_prep_poll_add(sqe, l->sigfd, POLLIN);
	io_uring_sqe_set_data64(sqe, EV_SIGNAL);
}

/* Waiting on the final-values socket: idle, between bursts. */
static void arm_final(struct loop *l)
{
	struct io_uring_sqe *sqe;

	if (l->final_armed || l->r->final_fd < 0)
		return;
	sqe = io_uring_get_sqe(&l->ring);
	io_uring_prep_poll_add(sqe, l->r->final_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, EV_FINAL);
	l->final_armed = true;
}

/* Taking final values on the timer, while a burst lasts. */
static void pause_final(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	l->final_pause = (struct __kernel_timespec){ .tv_sec = (long long)(l->final_pause_ns / 1000000000ull),
						     .tv_nsec = (long long)(l->final_pause_ns % 1000000000ull) };
	io_uring_prep_timeout(sqe, &l->final_pause, 0, 0);
	io_uring_sqe_set_data64(sqe, EV_FINAL_WAIT);
}

static int loop_uring(struct loop *l)
{
	arm_signal(l);
	if (l->inofd >= 0)
		arm_read(l, l->inofd, l->ino_buf, sizeof l->ino_buf, EV_INOTIFY);
	arm_timer(l);
	while (!l->stop) {
		struct io_uring_cqe *cqe;
		int rc;

		arm_final(l);
		rc = io_uring_submit_and_wait(&l->ring, 1);

		if (rc < 0 && rc != -EINTR)
			return rc;
		while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
			uint64_t tag = io_uring_cqe_get_data64(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&l->ring, cqe);
			if (tag == EV_SIGNAL) {
				if (res > 0 && read(l->sigfd, &l->si, sizeof l->si) == (ssize_t)sizeof l->si)
					on_signal(l, (int)l->si.ssi_signo);
				arm_signal(l);
			} else if (tag == EV_INOTIFY) {
				if (res > 0)
					on_inotify(l, res);
				arm_read(l, l->inofd, l->ino_buf, sizeof l->ino_buf, EV_INOTIFY);
			} else if (tag == EV_FINAL) {
				rd_reader_final_drain(l->r);
				pause_final(l);
			} else if (tag == EV_FINAL_WAIT) {
				int taken = rd_reader_final_drain(l->r);

				/* None came in a whole pause: the burst is over. */
				if (taken > 0) {
					l->final_pause_ns = final_next_pause(l->final_pause_ns, taken, l->r->final_qlen);
					pause_final(l);
				} else {
					l->final_armed = false;
				}
			} else if (tag == EV_TIMER) {
				if (!l->stop)
					run_cycle(l);
				arm_timer(l);
			}
		}
	}
	return 0;
}

static int loop_poll(struct loop *l)
{
	while (!l->stop) {
		uint64_t now = mono_ns();
		bool pausing = l->final_after != 0;
		/* A negative fd is skipped by poll(): the socket, while pausing. */
		struct pollfd pfd[3] = { { l->sigfd, POLLIN, 0 }, { l->inofd, POLLIN, 0 },
					 { pausing ? -1 : l->r->final_fd, POLLIN, 0 } };
		uint64_t until = pausing && l->final_after < l->next_cycle ? l->final_after :
									     l->next_cycle;
		int ms = until > now ? (int)((until - now + 999999) / 1000000) : 0;
		int rc = poll(pfd, 3, ms);

		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc > 0 && (pfd[0].revents & POLLIN) &&
		    read(l->sigfd, &l->si, sizeof l->si) == (ssize_t)sizeof l->si)
			on_signal(l, (int)l->si.ssi_signo);
		if (rc > 0 && l->inofd >= 0 && (pfd[1].revents & POLLIN)) {
			ssize_t n = read(l->inofd, l->ino_buf, sizeof l->ino_buf);
			if (n > 0)
				on_inotify(l, n);
		}
		if (rc > 0 && (pfd[2].revents & POLLIN)) {
			rd_reader_final_drain(l->r);
			l->final_after = mono_ns() + l->final_pause_ns;
		} else if (pausing && mono_ns() >= l->final_after) {
			int taken = rd_reader_final_drain(l->r);

			l->final_pause_ns = final_next_pause(l->final_pause_ns, taken, l->r->final_qlen);
			l->final_after = taken > 0 ? mono_ns() + l->final_pause_ns : 0;
		}
		if (!l->stop && mono_ns() >= l->next_cycle)
			run_cycle(l);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct rd_config cfg;
	struct rd_reader r;
	struct loop l = { .sigfd = -1, .inofd = -1, .wd = -1, .final_pause_ns = FINAL_PAUSE_NS };
	char err[512];
	int rc;

	rc = rd_config_load(&cfg, argc, argv, err, sizeof err);
	if (rc == 1)
		return 0;
	if (rc) {
		fprintf(stderr, "rtm-reader: %s\n", err);
		rd_config_free(&cfg);
		return 2;
	}
	sigemptyset(&handled);
	sigaddset(&handled, SIGINT);
	sigaddset(&handled, SIGTERM);
	sigaddset(&handled, SIGHUP);
	sigprocmask(SIG_BLOCK, &handled, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (cfg.sdk_disabled) {
		/* The OTel switch for "no telemetry": say so once, then idle
		 * (a service manager must not see a crash loop) until told to
		 * stop; --once has nothing to do and succeeds. */
		int sig = 0;

		rd_log("OTEL_SDK_DISABLED=true: not collecting or exporting metrics%s",
		       cfg.once ? "" : "; idle until stopped");
		while (!cfg.once && sigwait(&handled, &sig) == 0 && sig == SIGHUP)
			;
		rd_config_free(&cfg);
		return 0;
	}
	if (rd_reader_init(&r, &cfg, err, sizeof err)) {
		fprintf(stderr, "rtm-reader: %s\n", err);
		rd_reader_fini(&r);
		rd_config_free(&cfg);
		return 2;
	}
	rd_exporter_set_abort(r.exporter, term_pending);
	if (cfg.once) {
		/* Exit status tells scripts whether everything was delivered:
		 * 2 when there is no directory to read, 1 when there was nothing
		 * to collect or an export failed. */
		if (rd_reader_dir_error(&r)) { /* logged: one line */
			rd_reader_fini(&r);
			rd_config_free(&cfg);
			return 2;
		}
		struct rd_export_stats st;

		rc = rd_reader_cycle(&r);
		rd_exporter_stats(r.exporter, &st);
		rc = rc || st.failed;
		if (!r.self.segments) {
			fprintf(stderr, "rtm-reader: --once: nothing to collect in %s\n", r.dir);
			rc = 1;
		}
		rd_reader_log_rejections(&r, 0, true);
		rd_reader_fini(&r);
		rd_config_free(&cfg);
		return rc ? 1 : 0;
	}
	raise_fd_limit();
	l.r = &r;
	l.cfg = &cfg;
	l.sigfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
	l.inofd = inotify_init1(IN_CLOEXEC);
	watch_dir(&l);
	l.uring = io_uring_queue_init(8, &l.ring, 0) == 0;
	rd_log("started: %s every %.3gs, exporter %s%s%s%s%s, /proc I/O %s (%s), event loop %s", r.dir,
	       (double)cfg.interval_ns / 1e9,
	       cfg.exporter == RD_EXPORT_OTLP ? (cfg.protocol == RD_PROTO_GRPC ? "otlp/grpc " :
						cfg.protocol == RD_PROTO_JSON ? "otlp/http-json " : "otlp ") :
	       cfg.exporter == RD_EXPORT_STDOUT ? "console" : "none",
	       cfg.exporter == RD_EXPORT_OTLP ? cfg.endpoint : "",
	       cfg.exporter == RD_EXPORT_OTLP && cfg.gzip ? " (gzip)" : "",
	       cfg.console_too ? " and console" : "",
	       cfg.temporality == RD_TEMP_CUMULATIVE ? "" :
	       cfg.temporality == RD_TEMP_DELTA ? ", delta temporality" : ", lowmemory temporality",
	       rd_procio_mode(r.procio), rd_procio_why(r.procio), l.uring ? "io_uring" : "poll");
	if (r.prom)
		rd_log("prometheus: serving %s (gzip by %s)", rd_prom_server_urls(r.prom), rd_gzip_library);
	l.next_cycle = mono_ns(); /* first cycle right away */
	rc = l.uring ? loop_uring(&l) : loop_poll(&l);
	if (rc)
		rd_log("event loop failed: %s", strerror(-rc));
	/* Last collection and flush, so a restart loses nothing. */
	{
		sigset_t none;
		sigemptyset(&none);
		/* Consume the signal we are handling so retries are not cut
		 * short by it; a second one aborts them. */
		struct timespec zero = { 0, 0 };
		sigtimedwait(&handled, NULL, &zero);
		(void)none;
	}
	/* Bounded: a collector that never answers must not hold shutdown. */
	rd_exporter_set_deadline(r.exporter, mono_ns() + FINAL_FLUSH_NS);
	/* No final values may wait in a socket nobody will read again. */
	rd_reader_final_stop(&r);
	if (rd_reader_cycle(&r))
		l.failures++;
	rd_reader_log_rejections(&r, mono_ns(), true);
	if (l.uring)
		io_uring_queue_exit(&l.ring);
	if (l.inofd >= 0)
		close(l.inofd);
	if (l.sigfd >= 0)
		close(l.sigfd);
	/* The export thread's last lines (an export the stop interrupted)
	 * come out of rd_reader_fini(): "stopped" is said after them. */
	rd_reader_fini(&r);
	rd_log("stopped");
	rd_config_free(&cfg);
	return rc ? 1 : 0;
}
