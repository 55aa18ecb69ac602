/* SPDX-License-Identifier: MIT */
/*
 * Containers, for real: producers and readers in their own pid, mount and
 * user namespaces (unshare(2) and unshare(1), as every container runtime
 * does), a container's cgroup with a memory limit, and the parsing of each
 * runtime's cgroup paths.  The namespace tests need root; they skip (77)
 * only where the kernel refuses a namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rd_container.h"
#include "rd_dir.h"
#include "rd_limits.h"
#include "rd_pidns.h"
#include "rd_proc.h"
#include "rtm_shm_presence.h"
#include "test_util.h"

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define POD "8b6e2c3a-1f0d-4c1e-9a7b-2d5e6f708192"
#define POD_ "8b6e2c3a_1f0d_4c1e_9a7b_2d5e6f708192"
/* Where a user namespace's uid 0 is on the host (as container runtimes
 * map a rootless or userns-remapped container). */
#define USERNS_BASE 100000

/* This program, which is also the producer the namespace tests run
 * (--produce SERVICE): the C producer in every build, sanitizers included. */
static char self_exe[PATH_MAX];
static volatile sig_atomic_t stop_producing;

static void on_term(int sig)
{
	(void)sig;
	stop_producing = 1;
}

/* A producer: one counter, counting until SIGTERM, then a clean close. */
static int produce(const char *service)
{
	struct rtm_segment *seg;
	rtm_counter_t c;
	int rc;

	signal(SIGTERM, on_term);
	rc = rtm_segment_open(&seg, &(struct rtm_segment_opts){ .service_name = service });
	if (rc) {
		fprintf(stderr, "test_containers --produce: %s\n", strerror(-rc));
		return 1;
	}
	rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = "ns.requests" });
	while (!stop_producing) {
		rtm_counter_add(&c, 1);
		usleep(10000);
	}
	rtm_segment_close(seg);
	return 0;
}

/* --- cgroup paths ------------------------------------------------------ */

static void expect(const char *cgroup, const char *id, const char *pod)
{
	struct rd_container c;
	int found = rd_container_parse(cgroup, &c);

	if (strcmp(c.id, id) || strcmp(c.pod_uid, pod))
		fail_msg("%s: id '%s' pod '%s', expected '%s' '%s'", cgroup, c.id, c.pod_uid, id, pod);
	assert_int_equal(found, *id || *pod);
}

static void each_runtimes_cgroup_path_names_its_container(void **state)
{
	(void)state;
	/* Docker: cgroupfs driver (v1 and v2), systemd driver. */
	expect("12:memory:/docker/" ID64 "\n11:cpu,cpuacct:/docker/" ID64 "\n0::/\n", ID64, "");
	expect("0::/docker/" ID64 "\n", ID64, "");
	expect("0::/system.slice/docker-" ID64 ".scope\n", ID64, "");
	/* containerd under Kubernetes (CRI): cgroupfs, systemd, each QoS. */
	expect("11:cpu,cpuacct:/kubepods/burstable/pod" POD "/" ID64 "\n", ID64, POD);
	expect("0::/kubepods/besteffort/pod" POD "/" ID64 "\n", ID64, POD);
	expect("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" POD_
	       ".slice/cri-containerd-" ID64 ".scope\n", ID64, POD);
	expect("0::/kubepods.slice/kubepods-pod" POD_ ".slice/cri-containerd-" ID64 ".scope\n", ID64,
	       POD);
	/* CRI-O; its conmon monitor is in the pod but not the container. */
	expect("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_
	       ".slice/crio-" ID64 ".scope\n", ID64, POD);
	expect("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" POD_
	       ".slice/crio-conmon-" ID64 ".scope\n", "", POD);
	/* Podman: rootful (systemd, with its inner "container" cgroup),
	 * rootless, cgroupfs; conmon again not the container. */
	expect("0::/machine.slice/libpod-" ID64 ".scope/container\n", ID64, "");
	expect("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID64
	       ".scope\n", ID64, "");
	expect("0::/libpod_parent/libpod-" ID64 "\n", ID64, "");
	expect("0::/machine.slice/libpod-conmon-" ID64 ".scope\n", "", "");
	/* Seen from inside a cgroup namespace: the tail still names it. */
	expect("0::/../../kubepods-besteffort-pod" POD_ ".slice/cri-containerd-" ID64 ".scope\n",
	       ID64, POD);
	/* Not containers: a login session, a service, the docker daemon,
	 * almost-ids. */
	expect("0::/user.slice/user-1000.slice/session-2.scope\n", "", "");
	expect("0::/system.slice/docker.service\n", "", "");
	expect("0::/init.scope\n", "", "");
	expect("0::/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n", "",
	       "");
	expect("0::/docker/" ID64 "0\n", "", "");
	expect("0::/kubepods/pod1234\n", "", "");
	expect("", "", "");
}

static void proc_field_parsers_take_what_the_kernel_writes(void **state)
{
	const char status[] = "Name:\tx\nUid:\t1000\t0\t1000\t0\nNSpid:\t7219\t12\t1\n"
			      "Cpus_allowed_list:\t0-3,8,10-11\n";
	uid_t r, e, s;
	pid_t p;

	(void)state;
	int levels;

	assert_int_equal(rd_proc_parse_nspid(status, sizeof status - 1, &p, &levels), 0);
	assert_int_equal(p, 1);
	assert_int_equal(levels, 3);
	assert_int_equal(rd_proc_parse_uids(status, sizeof status - 1, &r, &e, &s), 0);
	assert_int_equal(r, 1000);
	assert_int_equal(e, 0);
	assert_int_equal(s, 1000);
	assert_int_equal(rd_proc_parse_nspid("\nNSpid:\t0\n", 10, &p, NULL), -EINVAL);
	assert_int_equal(rd_limits_parse_cpu_list("0-3,8,10-11\n"), 7);
	assert_int_equal(rd_limits_parse_cpu_list("5"), 1);
	assert_int_equal(rd_limits_parse_cpu_list("3-1"), -1);
	assert_int_equal(rd_limits_parse_cpu_list(""), -1);
}

/* A proc root that is not procfs, a cgroup root that is not a directory, a
 * relative path in the settings file: one line naming the input, exit 2;
 * rtm-shmdump alike. */
static void bad_roots_are_one_line_errors(void **state)
{
	char line[512], conf[] = "/tmp/rtm-roots.XXXXXX", cmd[600];
	int fd = mkstemp(conf);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "proc-root = relative\n", 21), 21);
	close(fd);
	assert_int_equal(tu_reader_fails("", "--once --proc-root /tmp", line, sizeof line), 2);
	assert_string_equal(line, "rtm-reader: --proc-root /tmp: not a procfs mount\n");
	assert_int_equal(tu_reader_fails("", "--once --cgroup-root /etc/passwd", line, sizeof line), 2);
	assert_string_equal(line, "rtm-reader: --cgroup-root /etc/passwd: Not a directory\n");
	snprintf(cmd, sizeof cmd, "--once --config %s", conf);
	assert_int_equal(tu_reader_fails("", cmd, line, sizeof line), 2);
	assert_non_null(strstr(line, ":1: proc-root 'relative' is not an absolute path"));
	snprintf(cmd, sizeof cmd, "%s --proc-root /tmp 2>&1", tu_prog("RTM_SHMDUMP"));
	tu_run_says(cmd, 2, "rtm-shmdump: --proc-root: /tmp: not a procfs mount");
	unlink(conf);
}

/* A reader on a full tmpfs (a real one, in a mount namespace of its own)
 * says ENOSPC when it cannot announce itself, not EIO, and leaves no empty
 * announcement behind for producers to misread. */
static void a_full_tmpfs_is_reported_as_such(void **state)
{
	char dir[] = "/tmp/rtm-full.XXXXXX";
	pid_t pid;
	int st;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char fill[64], ann[64];
		static char block[4096];
		int fd, pfd = -1, rc;

		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("tmpfs", dir, "tmpfs", 0, "size=16k,mode=1777"))
			_exit(77);
		snprintf(fill, sizeof fill, "%s/fill", dir);
		fd = open(fill, O_WRONLY | O_CREAT, 0600);
		while (fd >= 0 && write(fd, block, sizeof block) > 0)
			;
		fd = open(dir, O_RDONLY | O_DIRECTORY);
		rc = rd_dir_presence_touch(fd, &pfd, 10000000000ull);
		snprintf(ann, sizeof ann, "%s/%s", dir, RTM_SHM_READER_FILE);
		_exit(rc == -ENOSPC && access(ann, F_OK) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	rmdir(dir);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		skip(); /* no mount namespace or tmpfs here */
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* --- real namespaces ----------------------------------------------------- */

/* Skips unless root (the namespace tests make cgroups and user maps). */
#define NEED_ROOT()                                                          \
	do {                                                                 \
		if (geteuid() != 0)                                          \
			skip();                                              \
	} while (0)

struct ns_proc {
	pid_t keeper;   /* our child, in our namespaces: reaps the program */
	pid_t host_pid; /* the program, as our /proc shows it */
};

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/*
 * Runs argv in new namespaces (CLONE_NEWPID, and CLONE_NEWUSER mapping
 * 0..65535 to USERNS_BASE.., and CLONE_NEWNS with a fresh /proc, the
 * old one bind-mounted at host_proc first when given), publishing into
 * dir, stdout and stderr to out.  The program is pid 1 in its namespace.
 */
static void ns_spawn_in(struct ns_proc *p, int flags, const char *dir, const char *host_proc,
			const char *out, const char *cgroup, char *const argv[])
{
	int up[2], go[2];
	char c;

	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	p->keeper = fork();
	assert_true(p->keeper >= 0);
	if (p->keeper == 0) {
		pid_t child;
		int st;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("RTM_DIR", dir, 1);
		if (cgroup) { /* before the program starts: it inherits it */
			int fd = open(cgroup, O_WRONLY | O_CLOEXEC);

			if (fd < 0 || write(fd, "0\n", 2) != 2)
				_exit(1);
			close(fd);
		}
		if (unshare(flags)) {
			c = 'x';
			write(up[1], &c, 1);
			_exit(77);
		}
		write(up[1], "u", 1);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		if ((flags & CLONE_NEWUSER) && (setresgid(0, 0, 0) || setresuid(0, 0, 0)))
			_exit(1);
		child = fork();
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (flags & CLONE_NEWNS) {
				if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
				    (host_proc && mount("/proc", host_proc, NULL, MS_BIND | MS_REC, NULL)) ||
				    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
					_exit(77);
			}
			if (out) {
				int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
					      0644);

				if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
					_exit(1);
			}
			execv(argv[0], argv);
			_exit(127);
		}
		write(up[1], &child, sizeof child);
		waitpid(child, &st, 0);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	assert_int_equal(read(up[0], &c, 1), 1);
	if (c == 'x') {
		waitpid(p->keeper, NULL, 0);
		skip(); /* the kernel refuses these namespaces here */
	}
	if (flags & CLONE_NEWUSER) {
		char path[64], map[64];

		snprintf(map, sizeof map, "0 %d 65536\n", USERNS_BASE);
		snprintf(path, sizeof path, "/proc/%d/uid_map", (int)p->keeper);
		write_text(path, map);
		snprintf(path, sizeof path, "/proc/%d/gid_map", (int)p->keeper);
		write_text(path, map);
	}
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(read(up[0], &p->host_pid, sizeof p->host_pid), (ssize_t)sizeof p->host_pid);
	close(up[0]);
	close(up[1]);
	close(go[0]);
	close(go[1]);
}

static void ns_spawn(struct ns_proc *p, int flags, const char *dir, const char *host_proc,
		     const char *out, char *const argv[])
{
	ns_spawn_in(p, flags, dir, host_proc, out, NULL, argv);
}

/* Runs argv in our own namespaces, publishing into dir: its pid. */
static pid_t start_host_producer(const char *dir, char *const argv[])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("RTM_DIR", dir, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Ends the program (signal sig, SIGKILL if it will not) and its keeper. */
static void ns_stop(struct ns_proc *p, int sig)
{
	kill(p->host_pid, sig);
	for (int i = 0; i < 500 && waitpid(p->keeper, NULL, WNOHANG) == 0; i++)
		usleep(10000);
	kill(p->host_pid, SIGKILL);
	kill(p->keeper, SIGKILL);
	waitpid(p->keeper, NULL, 0);
}

/* The segment names in dir (rd_dir_list on a path). */
static int rd_dir_list_path(const char *dir, char ***names)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	if (fd < 0)
		return -errno;
	n = rd_dir_list(fd, names);
	close(fd);
	return n;
}

/* The one segment in dir (its name, malloc'd) once there is one. */
static char *await_segment(const char *dir)
{
	for (int i = 0; i < 3000; i++) {
		char **names;
		int n = rd_dir_list_path(dir, &names);

		if (n > 0) {
			char *name = strdup(names[0]);

			rd_dir_names_free(names);
			return name;
		}
		if (n >= 0)
			rd_dir_names_free(names);
		usleep(10000);
	}
	fail_msg("no segment appeared in %s", dir);
	return NULL;
}

/* The file's text, NULL while it does not exist yet. */
/* The whole lines of a file a reader is still writing (NULL: none yet).
 * A line being written is left out: its half could show a metric's name
 * that no parsed cycle has yet. */
static char *slurp_maybe(const char *path)
{
	size_t len;
	char *text = access(path, F_OK) ? NULL : tu_slurp(path, &len), *end;

	if (!text || !(end = strrchr(text, '\n'))) {
		free(text);
		return NULL;
	}
	end[1] = '\0';
	return text;
}

/* rd_segment_open(), again while it answers that it has not looked for
 * the process yet (it looks at /proc at most once a second). */
static int open_resolved(struct rd_segment *rd, const char *path)
{
	int rc = rd_segment_open(rd, AT_FDCWD, path, 0);

	for (int i = 0; i < 50 && rc == 0 && rd->liveness == RD_UNKNOWN; i++) {
		rd_segment_close(rd);
		usleep(100000);
		rc = rd_segment_open(rd, AT_FDCWD, path, 0);
	}
	return rc;
}

static bool exists_in(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* The reader's resource for service, in the newest export that has it
 * (NULL when none): a new reference the caller puts. */
static json_object *resource_of(const char *out, const char *service)
{
	json_object *found = NULL;
	const char *line = out;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		char *text = strndup(line, nl ? (size_t)(nl - line) : strlen(line));
		json_object *o = json_tokener_parse(text);
		json_object *rms = tu_json_get(o, "resourceMetrics");

		for (size_t i = 0; rms && i < json_object_array_length(rms); i++) {
			json_object *rm = json_object_array_get_idx(rms, i);
			const char *sn = tu_otlp_attr(tu_json_get(tu_json_get(rm, "resource"), "attributes"),
						      "service.name");

			if (sn && !strcmp(sn, service)) {
				json_object_put(found);
				found = json_object_get(rm);
			}
		}
		json_object_put(o);
		free(text);
		line = nl ? nl + 1 : NULL;
	}
	return found;
}

static const char *res_attr(json_object *rm, const char *key)
{
	return tu_otlp_attr(tu_json_get(tu_json_get(rm, "resource"), "attributes"), key);
}

static bool has_metric(json_object *rm, const char *name)
{
	json_object *sms = tu_json_get(rm, "scopeMetrics");

	for (size_t i = 0; sms && i < json_object_array_length(sms); i++) {
		json_object *ms = tu_json_get(json_object_array_get_idx(sms, i), "metrics");

		for (size_t k = 0; ms && k < json_object_array_length(ms); k++)
			if (!strcmp(json_object_get_string(tu_json_get(json_object_array_get_idx(ms, k),
								       "name")), name))
				return true;
	}
	return false;
}

/* The first point's integer value of metric name in rm (-1: none). */
static int64_t metric_int(json_object *rm, const char *name)
{
	json_object *sms = tu_json_get(rm, "scopeMetrics");

	for (size_t i = 0; sms && i < json_object_array_length(sms); i++) {
		json_object *ms = tu_json_get(json_object_array_get_idx(sms, i), "metrics");

		for (size_t k = 0; ms && k < json_object_array_length(ms); k++) {
			json_object *m = json_object_array_get_idx(ms, k), *d;

			if (strcmp(json_object_get_string(tu_json_get(m, "name")), name))
				continue;
			d = tu_json_get(tu_json_get(m, "sum"), "dataPoints");
			if (!d)
				d = tu_json_get(tu_json_get(m, "gauge"), "dataPoints");
			d = d ? tu_json_get(json_object_array_get_idx(d, 0), "asInt") : NULL;
			return d ? strtoll(json_object_get_string(d), NULL, 10) : -1;
		}
	}
	return -1;
}

/* The reader's stdout once its export for service has metric (30 s at
 * most): the resource, a new reference. */
static json_object *await_resource(struct tu_reader *r, const char *service, const char *metric)
{
	for (int i = 0; i < 3000; i++) {
		char *out = tu_reader_stdout(r);
		json_object *rm = resource_of(out, service);

		free(out);
		if (rm && has_metric(rm, metric))
			return rm;
		json_object_put(rm);
		usleep(10000);
	}
	fail_msg("no export of %s with %s", service, metric);
	return NULL;
}

/* Whether the reader ended service's streams (a point flagged
 * NO_RECORDED_VALUE, after its final values). */
static bool streams_ended(struct tu_reader *r, const char *service)
{
	char *out = tu_reader_stdout(r), needle[160];
	bool ended;

	snprintf(needle, sizeof needle, "\"stringValue\":\"%s\"", service);
	ended = strstr(out, needle) && strstr(out, "\"flags\":1");
	free(out);
	return ended;
}

/* An ended producer's last act, as the reader does it: its final values
 * and the ends of its streams exported, then its segment removed (30 s at
 * most); the reader then stops cleanly. */
static void await_final_export(struct tu_reader *r, const char *dir, const char *seg,
			       const char *service)
{
	for (int i = 0; i < 3000 && exists_in(dir, seg); i++)
		usleep(10000);
	assert_false(exists_in(dir, seg));
	assert_true(streams_ended(r, service));
	assert_int_equal(tu_reader_stop(r), 0);
}

static int64_t int_attr(json_object *rm, const char *key)
{
	const char *v = res_attr(rm, key);

	return v ? strtoll(v, NULL, 10) : -1;
}

/* The repro, as a user runs it: a producer in its own pid
 * namespace (unshare --pid --fork --mount-proc) beside a reader on the
 * host.  Its segment stays while it runs, it is exported with the process
 * metrics of the right host process and its own pid, and when it is
 * killed its final values go out and then the segment. */
static void a_producer_in_a_pid_namespace_is_exported_as_a_host_one(void **state)
{
	char *dir = tu_mkdir(), *seg, cmd[8192];
	const char *args[] = { "--interval", "200ms", "--exporter", "console", NULL };
	struct tu_reader r;
	json_object *rm;
	pid_t unshare_pid, host_pid = 0;
	int64_t pid_attr;

	(void)state;
	NEED_ROOT();
	snprintf(cmd, sizeof cmd, "unshare --pid --fork --mount-proc true 2>/dev/null");
	if (system(cmd))
		skip(); /* the kernel or unshare(1) refuses pid namespaces here */
	tu_reader_start(&r, dir, args);
	unshare_pid = fork();
	assert_true(unshare_pid >= 0);
	if (unshare_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("RTM_DIR", dir, 1);
		execlp("unshare", "unshare", "--pid", "--fork", "--mount-proc", self_exe,
		       "--produce", "ns-demo", (char *)NULL);
		_exit(127);
	}
	seg = await_segment(dir);
	rm = await_resource(&r, "ns-demo", "process.cpu.time");
	/* process.pid is the pid it has in its namespace: unshare --fork
	 * makes it 1 there; the host knows it by another. */
	pid_attr = int_attr(rm, "process.pid");
	assert_int_equal(pid_attr, 1);
	assert_true(has_metric(rm, "process.memory.usage"));
	assert_true(has_metric(rm, "ns.requests"));
	json_object_put(rm);
	/* Its host pid: unshare's one child. */
	{
		char file[64], buf[64];
		ssize_t n;

		snprintf(file, sizeof file, "task/%d/children", (int)unshare_pid);
		n = rd_proc_read(unshare_pid, file, buf, sizeof buf);
		assert_true(n > 0);
		host_pid = (pid_t)atoi(buf);
		assert_true(host_pid > 1 && host_pid != unshare_pid);
	}
	/* Several cycles later it is still there and still exported. */
	usleep(1200000);
	assert_true(exists_in(dir, seg));
	assert_true(kill(host_pid, 0) == 0);
	/* SIGKILL: no clean close; the reader sees the process go. */
	kill(host_pid, SIGKILL);
	waitpid(unshare_pid, NULL, 0);
	await_final_export(&r, dir, seg, "ns-demo");
	free(seg);
	tu_rmdir(dir);
}

/* A producer in a user namespace as well (uid 0 there, USERNS_BASE on the
 * host): its file belongs to the host uid, its header names uid 0 of its
 * own user namespace, and the reader maps one to the other through the
 * process's uid_map. */
static void a_producer_in_a_user_namespace_is_mapped_to_its_host_uid(void **state)
{
	char *dir = tu_mkdir(), *seg, path[4096];
	char *argv[] = { self_exe, "--produce", "userns-demo", NULL };
	const char *args[] = { "--interval", "200ms", "--exporter", "console", NULL };
	struct tu_reader r;
	struct ns_proc p;
	struct stat st;
	struct rd_segment rd;
	json_object *rm;

	(void)state;
	NEED_ROOT();
	chmod(dir, 01777); /* shared, as /dev/shm/rtm is: the container's uid writes here */
	tu_reader_start(&r, dir, args);
	ns_spawn(&p, CLONE_NEWUSER | CLONE_NEWPID, dir, NULL, NULL, argv);
	seg = await_segment(dir);
	snprintf(path, sizeof path, "%s/%s", dir, seg);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, USERNS_BASE);
	assert_int_equal(open_resolved(&rd, path), 0);
	assert_int_equal(rd.hdr.uid, 0);
	assert_int_equal(rd.hdr.pid, 1);
	assert_int_equal(rd.liveness, RD_ALIVE);
	assert_int_equal(rd.proc_pid, p.host_pid);
	assert_true(rd.hdr.userns_ino != 0 && rd.hdr.userns_ino != rd_userns_self());
	rd_segment_close(&rd);
	rm = await_resource(&r, "userns-demo", "process.cpu.time");
	assert_int_equal(int_attr(rm, "process.pid"), 1);
	json_object_put(rm);
	ns_stop(&p, SIGTERM);
	await_final_export(&r, dir, seg, "userns-demo");
	free(seg);
	tu_rmdir(dir);
}

/* Runs argv (with LD_PRELOAD=preload when given) as pid 1 of a pid namespace
 * of its own, publishing into a fresh directory, and checks every segment
 * it publishes: the header names the namespace /proc shows for the
 * process, and the reading library finds it there. */
static void publishes_from_a_pid_namespace(char *const argv[], const char *preload)
{
	char *dir = tu_mkdir(), **names = NULL;
	struct ns_proc p;
	int n = 0;

	if (preload)
		setenv("LD_PRELOAD", preload, 1);
	ns_spawn(&p, CLONE_NEWPID, dir, NULL, NULL, argv);
	unsetenv("LD_PRELOAD");
	for (int i = 0; i < 3000 && n <= 0; i++) {
		n = rd_dir_list_path(dir, &names);
		if (n <= 0) {
			if (n == 0)
				rd_dir_names_free(names);
			usleep(10000);
		}
	}
	if (n <= 0)
		fail_msg("%s published nothing from its pid namespace", argv[0]);
	for (int i = 0; i < n; i++) {
		char path[4200];
		struct rd_segment rd;

		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		assert_int_equal(open_resolved(&rd, path), 0);
		if (rd.hdr.pid != 1 || rd.hdr.pidns_ino != rd_ns_inode(p.host_pid, "pid") ||
		    rd.hdr.userns_ino != rd_ns_inode(p.host_pid, "user") || rd.liveness != RD_ALIVE ||
		    rd.proc_pid != p.host_pid)
			fail_msg("%s (%s): pid %d, pid namespace %llu, found %s at %d (host pid %d)", argv[0],
				 rd.hdr.producer, rd.hdr.pid, (unsigned long long)rd.hdr.pidns_ino,
				 rd_liveness_name((enum rd_liveness)rd.liveness), (int)rd.proc_pid,
				 (int)p.host_pid);
		rd_segment_close(&rd);
	}
	rd_dir_names_free(names);
	ns_stop(&p, SIGTERM);
	tu_rmdir(dir);
}

/* The C producer, the preload (which publishes once its process outlives
 * RTM_PUBLISH_DELAY_MS: a program that keeps allocating) and the Go
 * producer all record their namespaces. */
static void every_producer_records_its_namespaces(void **state)
{
	char *c[] = { self_exe, "--produce", "c", NULL };
	char *preloaded[] = { (char *)tu_prog("RTM_LEAKER"), "heap", "1000000", NULL };
	const char *go = getenv("RTM_GO_DEMO"), *san = getenv("RTM_SANITIZED");

	(void)state;
	NEED_ROOT();
	publishes_from_a_pid_namespace(c, NULL);
	/* A sanitizer's runtime owns malloc: the preload cannot go in. */
	if (!san || strcmp(san, "1"))
		publishes_from_a_pid_namespace(preloaded, tu_prog("RTM_PRELOAD"));
	else
		printf("sanitized build: the preload's namespaces not checked\n");
	if (go && *go) {
		char *g[] = { (char *)go, "--service", "go", "--interval", "200ms", NULL };

		publishes_from_a_pid_namespace(g, NULL);
	} else {
		printf("no Go toolchain: the Go producer's namespaces not checked\n");
	}
}

/* A reader in its own pid namespace, as in a DaemonSet's pod: with its own
 * /proc it cannot see the host's producer, which it keeps (never removes)
 * and reports; given the host's /proc (--proc-root) it exports it, and a
 * producer in a third namespace, with their process metrics. */
static void a_reader_in_a_container_reads_the_host_proc_through_proc_root(void **state)
{
	char *dir = tu_mkdir(), *seg, hostproc[4096], out[4096], cfg[4096];
	char *demo[] = { self_exe, "--produce", "host-demo", NULL };
	char *nsdemo[] = { self_exe, "--produce", "third-ns", NULL };
	struct ns_proc rd_ns, third;
	char *text;
	pid_t host;

	(void)state;
	NEED_ROOT();
	snprintf(hostproc, sizeof hostproc, "%s.hostproc", dir);
	assert_int_equal(mkdir(hostproc, 0755), 0);
	host = start_host_producer(dir, demo);
	seg = await_segment(dir);

	/* Without the host's /proc: kept, counted, said once, not exported. */
	snprintf(out, sizeof out, "%s.out1", dir);
	{
		char *argv[] = { (char *)tu_prog("RTM_READER"), "--dir", dir, "--interval", "200ms",
				 "--exporter", "console", NULL };

		ns_spawn(&rd_ns, CLONE_NEWPID | CLONE_NEWNS, dir, NULL, out, argv);
	}
	for (int i = 0; i < 3000; i++) {
		text = slurp_maybe(out);
		if (text && strstr(text, "not visible under /proc") &&
		    strstr(text, "\"rtm.reader.segments.unresolved\""))
			break;
		free(text);
		text = NULL;
		usleep(10000);
	}
	assert_non_null(text);
	assert_null(strstr(text, "\"stringValue\":\"host-demo\""));
	{
		json_object *self = resource_of(text, "rtm-reader");

		assert_int_equal(metric_int(self, "rtm.reader.segments.unresolved"), 1);
		assert_int_equal(metric_int(self, "rtm.reader.segments"), 0);
		json_object_put(self);
	}
	free(text);
	usleep(600000);
	assert_true(exists_in(dir, seg)); /* its process may be alive: kept */
	ns_stop(&rd_ns, SIGTERM);

	/* With it, through a config file's proc-root key. */
	snprintf(out, sizeof out, "%s.out2", dir);
	snprintf(cfg, sizeof cfg, "%s.conf", dir);
	{
		char line[4200];

		snprintf(line, sizeof line, "proc-root = %s\n", hostproc);
		assert_true(tu_write_file(cfg, line));
	}
	ns_spawn(&third, CLONE_NEWPID, dir, NULL, NULL, nsdemo);
	{
		char *argv[] = { (char *)tu_prog("RTM_READER"), "--dir", dir, "--interval", "200ms",
				 "--exporter", "console", "--config", cfg, NULL };

		ns_spawn(&rd_ns, CLONE_NEWPID | CLONE_NEWNS, dir, hostproc, out, argv);
	}
	for (int i = 0; i < 3000; i++) {
		text = slurp_maybe(out);
		if (text) {
			json_object *a = resource_of(text, "host-demo"), *b = resource_of(text, "third-ns");
			bool done = a && b && has_metric(a, "process.cpu.time") &&
				    has_metric(b, "process.cpu.time");

			if (done) {
				assert_int_equal(int_attr(a, "process.pid"), host);
				assert_int_equal(int_attr(b, "process.pid"), 1);
			}
			json_object_put(a);
			json_object_put(b);
			if (done)
				break;
		}
		free(text);
		text = NULL;
		usleep(10000);
	}
	if (!text)
		fail_msg("the reader never exported both producers: %s", (text = slurp_maybe(out)));
	free(text);
	ns_stop(&rd_ns, SIGTERM);
	ns_stop(&third, SIGTERM);
	kill(host, SIGTERM);
	waitpid(host, NULL, 0);
	unlink(out);
	snprintf(out, sizeof out, "%s.out1", dir);
	unlink(out);
	unlink(cfg);
	rmdir(hostproc);
	free(seg);
	tu_rmdir(dir);
}

/* Writes a copy of the segment at src as dst, its header's identity
 * replaced, owned by uid. */
static void forge(const char *src, const char *dst, uid_t uid, int32_t pid, uint64_t pidns,
		  uint64_t userns, uint32_t hdr_uid, uint64_t start)
{
	size_t len;
	unsigned char *img = tu_slurp(src, &len);
	struct rtm_shm_header *h = (void *)img;
	int fd;

	assert_non_null(img);
	h->pid = pid;
	h->pidns_ino = pidns;
	h->userns_ino = userns;
	h->uid = hdr_uid;
	h->pid_start_ticks = start;
	snprintf(h->service_name, sizeof h->service_name, "forged");
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, len), (ssize_t)len);
	assert_int_equal(fchown(fd, uid, uid), 0);
	close(fd);
	free(img);
}

/* rd_segment_open's answer for a forged file: refused, with a reason. */
static void assert_refused(const char *path, const char *why)
{
	struct rd_segment rd;
	int rc = open_resolved(&rd, path);

	if (rc != -EPERM || !strstr(rd.err, why))
		fail_msg("%s: rc %d (%s), expected -EPERM with '%s'", path, rc, rd.err, why);
	rd_segment_close(&rd);
}

/* A process in one namespace cannot speak for a process in another, nor
 * for another user's: the namespace it claims is checked against the one
 * /proc shows for the pid it resolves to, the file's owner against every
 * uid of that process, and a header uid in another user namespace against
 * that process's uid_map. */
static void forged_namespace_identities_are_refused(void **state)
{
	char *dir = tu_mkdir(), *seg, src[4096], dst[4096];
	char *root_demo[] = { self_exe, "--produce", "victim", NULL };
	struct ns_proc victim, userns;
	struct rd_segment rd;
	uint64_t victim_ns, victim_start;

	(void)state;
	NEED_ROOT();
	chmod(dir, 01777);
	ns_spawn(&victim, CLONE_NEWPID, dir, NULL, NULL, root_demo);
	seg = await_segment(dir);
	snprintf(src, sizeof src, "%s/%s", dir, seg);
	victim_ns = rd_ns_inode(victim.host_pid, "pid");
	victim_start = tu_proc_stat(victim.host_pid).start_ticks;
	assert_true(victim_ns != 0 && victim_ns != rd_pidns_root());

	/* The genuine one is accepted and found. */
	assert_int_equal(open_resolved(&rd, src), 0);
	assert_int_equal(rd.liveness, RD_ALIVE);
	assert_int_equal(rd.proc_pid, victim.host_pid);
	rd_segment_close(&rd);

	/* Another user (uid 4242) claims the root container's process by its
	 * exact identity: pid 1 of that namespace, its start. */
	snprintf(dst, sizeof dst, "%s/rtm.1.%llu.7.rtm", dir, (unsigned long long)victim_start);
	forge(src, dst, 4242, 1, victim_ns, 0, 4242, victim_start);
	assert_refused(dst, "foreign owner: file uid 4242, pid 1 runs as uid 0");
	unlink(dst);

	/* From a container, claiming a host process: the victim's host pid
	 * in the host's namespace is a process of another namespace. */
	snprintf(dst, sizeof dst, "%s/rtm.%d.%llu.8.rtm", dir, (int)victim.host_pid,
		 (unsigned long long)victim_start);
	forge(src, dst, 4242, victim.host_pid, rd_pidns_root(), 0, 4242, victim_start);
	assert_int_equal(open_resolved(&rd, dst), -EPERM);
	assert_non_null(strstr(rd.err, "started at another time"));
	rd_segment_close(&rd);
	unlink(dst);

	/* A process of uid 4242 itself, in a user namespace mapping its 0 to
	 * USERNS_BASE: files of USERNS_BASE may speak for it, but only in the
	 * user namespace it is in and only under the uid its map gives. */
	{
		char *argv[] = { self_exe, "--produce", "userns-victim", NULL };
		char *useg = NULL, usrc[4096];
		uint64_t uns, pns, ustart;

		ns_spawn(&userns, CLONE_NEWUSER | CLONE_NEWPID, dir, NULL, NULL, argv);
		for (int i = 0; i < 3000 && !useg; i++) {
			char **names;
			int n = rd_dir_list_path(dir, &names);

			for (int k = 0; k < n && !useg; k++)
				if (strcmp(names[k], seg))
					useg = strdup(names[k]);
			if (n >= 0)
				rd_dir_names_free(names);
			if (!useg)
				usleep(10000);
		}
		assert_non_null(useg);
		snprintf(usrc, sizeof usrc, "%s/%s", dir, useg);
		uns = rd_ns_inode(userns.host_pid, "user");
		pns = rd_ns_inode(userns.host_pid, "pid");
		ustart = tu_proc_stat(userns.host_pid).start_ticks;
		/* Header uid 5 of that namespace is host uid USERNS_BASE + 5. */
		snprintf(dst, sizeof dst, "%s/rtm.1.%llu.9.rtm", dir, (unsigned long long)ustart);
		forge(usrc, dst, USERNS_BASE, 1, pns, uns, 5, ustart);
		assert_refused(dst, "header uid 5 is uid 100005 outside its user namespace");
		unlink(dst);
		/* Another user namespace than the process's. */
		forge(usrc, dst, USERNS_BASE, 1, pns, uns + 1000, 0, ustart);
		assert_refused(dst, "claims user namespace");
		unlink(dst);
		/* The host's user namespace, uid USERNS_BASE: the uid matches,
		 * the namespace does not (pid 1 of pns is in uns). */
		forge(usrc, dst, USERNS_BASE, 1, pns, rd_userns_self(), USERNS_BASE, ustart);
		assert_refused(dst, "claims user namespace");
		unlink(dst);
		ns_stop(&userns, SIGTERM);
		free(useg);
	}
	ns_stop(&victim, SIGTERM);
	free(seg);
	tu_rmdir(dir);
}

/* A producer in a container's cgroup (named as Docker's cgroupfs driver
 * names one) gets container.id, and the container's memory limit. */
static void a_containers_cgroup_gives_its_id_and_limits(void **state)
{
	char *dir = tu_mkdir(), cg[512], path[600], *seg;
	char *argv[] = { self_exe, "--produce", "in-cgroup", NULL };
	const char *args[] = { "--interval", "200ms", "--exporter", "console", NULL };
	const char *hier = NULL;
	struct tu_reader r;
	struct ns_proc p;
	json_object *rm;
	bool v2;

	(void)state;
	NEED_ROOT();
	/* A memory hierarchy we may make cgroups in: v1's, else v2's. */
	v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
	hier = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
	snprintf(cg, sizeof cg, "%s/docker", hier);
	mkdir(cg, 0755);
	snprintf(cg, sizeof cg, "%s/docker/" ID64, hier);
	if (mkdir(cg, 0755) && errno != EEXIST)
		skip(); /* no writable cgroup hierarchy here */
	snprintf(path, sizeof path, "%s/%s", cg, v2 ? "memory.max" : "memory.limit_in_bytes");
	if (access(path, F_OK)) {
		rmdir(cg);
		skip(); /* the memory controller is not enabled there */
	}
	write_text(path, "268435456\n");
	tu_reader_start(&r, dir, args);
	snprintf(path, sizeof path, "%s/cgroup.procs", cg);
	ns_spawn_in(&p, CLONE_NEWPID, dir, NULL, NULL, path, argv);
	seg = await_segment(dir);
	rm = await_resource(&r, "in-cgroup", "rtm.process.memory.limit");
	assert_string_equal(res_attr(rm, "container.id"), ID64);
	assert_null(res_attr(rm, "k8s.pod.uid"));
	json_object_put(rm);
	{
		char *out = tu_reader_stdout(&r);

		assert_non_null(strstr(out, "\"name\":\"rtm.process.memory.limit\""));
		assert_non_null(strstr(out, "\"asInt\":\"268435456\""));
		free(out);
	}
	ns_stop(&p, SIGTERM);
	assert_int_equal(tu_reader_stop(&r), 0);
	for (int i = 0; i < 100 && rmdir(cg) && errno == EBUSY; i++)
		usleep(20000);
	snprintf(cg, sizeof cg, "%s/docker", hier);
	rmdir(cg);
	free(seg);
	tu_rmdir(dir);
}

/* Replaces every mount path of the manifest in text by where the test has
 * it (pairs of from, to; NULL-terminated). */
static char *remap(const char *text, const char *const *map)
{
	char *out = strdup(text);

	for (const char *const *m = map; *m; m += 2) {
		size_t from = strlen(m[0]), to = strlen(m[1]), pos = 0;
		char *at;

		/* Past each replacement: the new text may hold the old path. */
		while ((at = strstr(out + pos, m[0]))) {
			char *next;

			pos = (size_t)(at - out) + to;
			if (asprintf(&next, "%.*s%s%s", (int)(at - out), out, m[1], at + from) < 0)
				fail();
			free(out);
			out = next;
		}
	}
	return out;
}

/* The DaemonSet of deploy/kubernetes/ as a pod runs it: its exact
 * arguments and environment (kubelet's $(NODE_NAME) given), its ConfigMap as
 * the settings file, in pid and mount namespaces of its own with the host's
 * /proc bind-mounted where the manifest mounts it (under a test root: the
 * machine has no /host), one cycle to the console.  A host producer is
 * exported with its process metrics and the reader says which node it is.
 * The examples share the directory the way the guide says. */
static void the_daemonset_runs_as_its_manifest_says(void **state)
{
	char *dir = tu_mkdir(), cmd[8192], root[] = "/tmp/rtm-k8s.XXXXXX", path[4200], out[4200];
	char *demo[] = { self_exe, "--produce", "on-the-node", NULL };
	char *json, *argv[32], *conf, *text, proc_to[4200];
	const char *map[12];
	json_object *m, *v;
	struct ns_proc reader;
	size_t n = 0;
	int st;
	pid_t host;

	(void)state;
	NEED_ROOT();
	if (access("/usr/bin/python3", X_OK))
		skip(); /* tools/run-tests installs python3-yaml */
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/k8s_manifests.py %s/deploy/kubernetes",
		 tu_prog("RTM_SOURCE_ROOT"), tu_prog("RTM_SOURCE_ROOT"));
	json = tu_run(cmd, &st, NULL);
	if (st)
		fail_msg("%s: exit %d: %s", cmd, st, json);
	m = json_tokener_parse(json);
	assert_non_null(m);
	assert_true(json_object_get_boolean(tu_json_get(m, "host_network")));
	assert_true(json_object_get_boolean(tu_json_get(m, "workload_shares_the_node_dir")));
	assert_true(json_object_get_boolean(tu_json_get(m, "sidecar_shares_a_memory_dir")));
	assert_string_equal(json_object_get_string(tu_json_get(m, "service_scrape")), "true");

	/* Where each mount is here. */
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof path, "%s/host", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/host/proc", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(proc_to, sizeof proc_to, "%s/host/proc", root);
	{
		static char etc_to[4200];
		size_t k = 0;

		snprintf(etc_to, sizeof etc_to, "%s/etc/rtm", root);
		v = tu_json_get(m, "mounts");
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *mt = json_object_array_get_idx(v, i);
			const char *at = json_object_get_string(tu_json_get(mt, "path"));
			const char *host_path = json_object_get_string(tu_json_get(mt, "host"));

			map[k++] = at;
			if (tu_json_get(mt, "configmap") && json_object_get_string(tu_json_get(mt, "configmap")))
				map[k++] = etc_to;
			else if (!strcmp(host_path, "/proc"))
				map[k++] = proc_to;
			else if (!strcmp(host_path, "/dev/shm/rtm"))
				map[k++] = dir;
			else
				map[k++] = host_path; /* read-only views of the host's own */
			assert_true(k < 10);
		}
		map[k] = NULL;
	}
	snprintf(path, sizeof path, "%s/etc", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/etc/rtm", root);
	assert_int_equal(mkdir(path, 0755), 0);
	conf = remap(json_object_get_string(tu_json_get(m, "reader_conf")), map);
	snprintf(path, sizeof path, "%s/etc/rtm/reader.conf", root);
	assert_true(tu_write_file(path, conf));

	argv[n++] = (char *)tu_prog("RTM_READER");
	v = tu_json_get(m, "args");
	for (size_t i = 0; i < json_object_array_length(v); i++)
		argv[n++] = remap(json_object_get_string(json_object_array_get_idx(v, i)), map);
	argv[n++] = "--exporter";
	argv[n++] = "console";
	argv[n++] = "--once";
	argv[n] = NULL;
	json_object_object_foreach(tu_json_get(m, "env"), key, val) {
		char *value = remap(json_object_get_string(val),
				    (const char *[]){ "$(NODE_NAME)", "test-node", NULL });

		setenv(key, value, 1);
		free(value);
	}

	host = start_host_producer(dir, demo);
	free(await_segment(dir));
	snprintf(out, sizeof out, "%s/out", root);
	ns_spawn(&reader, CLONE_NEWPID | CLONE_NEWNS, dir, proc_to, out, argv);
	assert_int_equal(waitpid(reader.keeper, &st, 0), reader.keeper);
	text = slurp_maybe(out);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the DaemonSet's reader exited %d: %s", st, text);
	{
		json_object *rm = resource_of(text, "on-the-node"), *self = resource_of(text, "rtm-reader");

		if (!rm || !has_metric(rm, "process.cpu.time"))
			fail_msg("the node's producer was not exported with its process: %s", text);
		assert_int_equal(int_attr(rm, "process.pid"), host);
		assert_string_equal(res_attr(self, "k8s.node.name"), "test-node");
		json_object_put(rm);
		json_object_put(self);
	}
	free(text);
	kill(host, SIGTERM);
	waitpid(host, NULL, 0);
	for (size_t i = 1; argv[i] && strcmp(argv[i], "--exporter"); i++)
		free(argv[i]);
	unlink(out);
	unlink(path);
	snprintf(path, sizeof path, "rm -r '%s'", root);
	assert_int_equal(system(path), 0);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_RESOURCE_ATTRIBUTES");
	free(conf);
	free(json);
	json_object_put(m);
	tu_rmdir(dir);
}

int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);

	if (n <= 0)
		return 1;
	self_exe[n] = '\0';
	if (argc == 3 && !strcmp(argv[1], "--produce"))
		return produce(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_runtimes_cgroup_path_names_its_container),
		cmocka_unit_test(proc_field_parsers_take_what_the_kernel_writes),
		cmocka_unit_test(bad_roots_are_one_line_errors),
		cmocka_unit_test(a_full_tmpfs_is_reported_as_such),
		cmocka_unit_test(a_producer_in_a_pid_namespace_is_exported_as_a_host_one),
		cmocka_unit_test(a_producer_in_a_user_namespace_is_mapped_to_its_host_uid),
		cmocka_unit_test(every_producer_records_its_namespaces),
		cmocka_unit_test(a_reader_in_a_container_reads_the_host_proc_through_proc_root),
		cmocka_unit_test(forged_namespace_identities_are_refused),
		cmocka_unit_test(a_containers_cgroup_gives_its_id_and_limits),
		cmocka_unit_test(the_daemonset_runs_as_its_manifest_says),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
