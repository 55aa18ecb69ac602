/* SPDX-License-Identifier: MIT */
/*
 * rtm as others consume it: a Meson parent project that takes rtm as a
 * subproject with the reader, tools and tests off and no pkg-config
 * dependencies in view (the producer needs only pthread), linking the shared
 * librtm, whose exports are rtm_* only; and the README's example built
 * against an installed tree through rtm.pc.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static void a_parent_project_builds_the_producer_alone(void **state)
{
	char *dir = tu_mkdir(), path[512], cmd[2048], *out;

	(void)state;
	snprintf(path, sizeof path, "%s/subprojects", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/subprojects/rtm", dir);
	assert_int_equal(symlink(tu_prog("RTM_SOURCE_ROOT"), path), 0);
	snprintf(path, sizeof path, "%s/meson.build", dir);
	assert_true(tu_write_file(path,
		   "project('parent', 'c', default_options : ['c_std=gnu11'])\n"
		   "subproject('rtm', default_options : ['reader=disabled', 'tools=false',\n"
		   "  'tests=disabled', 'default_library=shared', 'werror=false'])\n"
		   "executable('parent', 'main.c', dependencies : dependency('rtm'))\n"));
	snprintf(path, sizeof path, "%s/main.c", dir);
	assert_true(tu_write_file(path,
		   "#include <stdio.h>\n#include <rtm.h>\n"
		   "int main(int argc, char **argv)\n{\n"
		   "\tstruct rtm_segment *seg;\n\trtm_counter_t c;\n"
		   "\tif (argc < 2 || rtm_segment_open(&seg, &(struct rtm_segment_opts){\n"
		   "\t\t.service_name = \"parent\", .dir = argv[1] }))\n\t\treturn 1;\n"
		   "\trtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = \"parent.runs\" });\n"
		   "\trtm_counter_add(&c, 1);\n\tputs(rtm_segment_path(seg));\n\treturn 0;\n}\n"));
	/* No pkg-config directory at all: liburing, libcurl and the rest are
	 * out of view, and the producer must not need them. */
	snprintf(cmd, sizeof cmd,
		 "cd %s && PKG_CONFIG_LIBDIR=%s/none PKG_CONFIG_PATH= meson setup b >b.log 2>&1 && "
		 "ninja -C b >>b.log 2>&1 || { cat b.log; exit 1; }", dir, dir);
	free(tu_run_ok(cmd));
	/* It runs, and publishes. */
	snprintf(cmd, sizeof cmd, "mkdir -p %s/segs && %s/b/parent %s/segs", dir, dir, dir);
	out = tu_run_ok(cmd);
	assert_non_null(strstr(out, "/segs/rtm."));
	free(out);
	/* The shared library exports rtm_* (and the rtm__* its inline
	 * functions call), nothing else, under a versioned soname. */
	snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/b/subprojects/rtm/producer/librtm.so | "
		 "awk '{print $3}' | grep -v '^rtm_' | grep -v '^RTM_0$' || true", dir);
	out = tu_run_ok(cmd);
	assert_string_equal(out, "");
	free(out);
	snprintf(cmd, sizeof cmd, "readelf -d %s/b/subprojects/rtm/producer/librtm.so | grep SONAME",
		 dir);
	out = tu_run_ok(cmd);
	assert_non_null(strstr(out, "[librtm.so.0]"));
	free(out);
	tu_rmdir(dir);
}

/* cmd builds tools/rtm_example.c, runs it and lists its segments: it
 * said where it published, and its segment is there. */
static void example_publishes(const char *cmd)
{
	char *out = tu_run(cmd, NULL, NULL);

	if (!out || !strstr(out, "published to") || !strstr(out, "rtm."))
		fail_msg("%s\n%s", cmd, out ? out : "");
	free(out);
}

static void the_readme_example_builds_against_the_installed_rtm_pc(void **state)
{
	char *dir, cmd[4096], *out;

	(void)state;
	/* A sanitizer build installs instrumented libraries, which plain cc
	 * cannot link without the sanitizer's runtime: the normal build
	 * checks this. */
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	/* Install this build into a staging root; find rtm.pc there. */
	snprintf(cmd, sizeof cmd, "meson install -C %s --destdir %s/root --quiet >/dev/null 2>&1 && "
		 "find %s/root -name rtm.pc | head -1", tu_prog("RTM_BUILD_ROOT"), dir, dir);
	out = tu_run_ok(cmd);
	out[strcspn(out, "\n")] = '\0';
	assert_true(*out);
	*strrchr(out, '/') = '\0'; /* its directory */
	/* The licence, the changelog, the README the unit's Documentation=
	 * names, the docs it links to and the example settings, under
	 * share/doc/rtm. */
	snprintf(cmd, sizeof cmd, "for f in README.md LICENSE CHANGELOG.md examples/reader.conf docs/c.md docs/reference/reader.md; do "
		 "find %s/root -path \"*/share/doc/rtm/$f\" | grep -q . || echo \"missing $f\"; done", dir);
	{
		char *miss = tu_run_ok(cmd);

		if (*miss)
			fail_msg("installed docs: %s", miss);
		free(miss);
	}
	/* Headers under include/rtm/, none generic at the top. */
	snprintf(cmd, sizeof cmd, "test -f %s/../../../include/rtm/rtm.h -o -f %s/../../include/rtm/rtm.h && "
		 "! find %s/root -path '*/include/rtm_shm.h' | grep -q .", out, out, dir);
	free(tu_run_ok(cmd));
	snprintf(cmd, sizeof cmd,
		 "cd %s && PKG_CONFIG_SYSROOT_DIR=%s/root PKG_CONFIG_LIBDIR=%s "
		 "cc -O2 %s/tools/rtm_example.c $(PKG_CONFIG_SYSROOT_DIR=%s/root PKG_CONFIG_LIBDIR=%s "
		 "pkg-config --cflags --libs --static rtm) -o example 2>&1 && mkdir -p segs && "
		 "RTM_DIR=%s/segs timeout -s KILL 2 ./example; ls segs", dir, dir, out,
		 tu_prog("RTM_SOURCE_ROOT"), dir, out, dir);
	free(out);
	example_publishes(cmd);
	tu_rmdir(dir);
}

/* The README example builds against the uninstalled .pc too (Meson's
 * meson-uninstalled directory), headers of the format included. */
static void the_readme_example_builds_against_the_uninstalled_pc(void **state)
{
	char *dir, cmd[4096];

	(void)state;
	TU_SKIP_IF_SANITIZED();
	dir = tu_mkdir();
	snprintf(cmd, sizeof cmd,
		 "cd %s && PKG_CONFIG_PATH=%s/meson-uninstalled cc -O2 %s/tools/rtm_example.c "
		 "$(PKG_CONFIG_PATH=%s/meson-uninstalled pkg-config --cflags --libs rtm-uninstalled) "
		 "-o example 2>&1 && mkdir -p segs && RTM_DIR=%s/segs LD_LIBRARY_PATH=%s/producer "
		 "timeout -s KILL 2 ./example; ls segs", dir, tu_prog("RTM_BUILD_ROOT"),
		 tu_prog("RTM_SOURCE_ROOT"), tu_prog("RTM_BUILD_ROOT"), dir, tu_prog("RTM_BUILD_ROOT"));
	example_publishes(cmd);
	tu_rmdir(dir);
}

/* `meson setup --prefix=DIR` of one's own, shared libraries: everything
 * installs inside DIR (the unit and tmpfiles.d entry too: before, they
 * went to systemd.pc's /lib/systemd/system), and the installed programs
 * run from there with nothing on the loader's path. */
static void a_prefix_install_stays_inside_and_runs(void **state)
{
	char *dir, cmd[4096], *out;

	(void)state;
	TU_SKIP_IF_SANITIZED(); /* a build of its own: the normal one checks it */
	dir = tu_mkdir();
	snprintf(cmd, sizeof cmd,
		 "cd %s && meson setup b %s --prefix=%s/p -Ddefault_library=both -Dtests=disabled "
		 ">b.log 2>&1 && ninja -C b >>b.log 2>&1 || { cat b.log; exit 1; }",
		 dir, tu_prog("RTM_SOURCE_ROOT"), dir);
	free(tu_run_ok(cmd));
	/* Every destination Meson would write lies under the prefix. */
	snprintf(cmd, sizeof cmd,
		 "meson introspect %s/b --installed | grep -o ': \"[^\"]*\"' | grep -v ': \"%s/p/' || true",
		 dir, dir);
	out = tu_run_ok(cmd);
	if (*out)
		fail_msg("installed outside the prefix:\n%s", out);
	free(out);
	snprintf(cmd, sizeof cmd,
		 "meson install -C %s/b --quiet >/dev/null 2>&1 && "
		 "test -f %s/p/lib/systemd/system/rtm-reader.service && "
		 "test -f %s/p/lib/tmpfiles.d/rtm.conf && "
		 "grep -x 'ExecStart=%s/p/bin/rtm-reader' %s/p/lib/systemd/system/rtm-reader.service",
		 dir, dir, dir, dir, dir);
	free(tu_run_ok(cmd));
	/* The programs link the shared librtm and find it in the prefix. */
	snprintf(cmd, sizeof cmd,
		 "cd %s && readelf -d p/bin/rtm-demo | grep -q 'librtm.so.0' && mkdir segs && "
		 "env -u LD_LIBRARY_PATH p/bin/rtm-reader --version && "
		 "env -u LD_LIBRARY_PATH RTM_DIR=%s/segs p/bin/rtm-demo --service prefixed --duration 1 "
		 ">/dev/null && env -u LD_LIBRARY_PATH p/bin/rtm-shmdump --dir %s/segs 2>&1",
		 dir, dir, dir);
	out = tu_run_ok(cmd);
	if (!strstr(out, "rtm-reader 0.1") || !strstr(out, "prefixed"))
		fail_msg("%s\n%s", cmd, out);
	free(out);
	tu_rmdir(dir);
}

/* The unit as installed, but starting this build's reader, passes
 * systemd's own check (skipped where systemd-analyze is missing). */
static void the_service_unit_verifies(void **state)
{
	char cmd[1024], *out;
	int st;

	(void)state;
	out = tu_run("command -v systemd-analyze", &st, NULL);
	free(out);
	if (st)
		skip();
	snprintf(cmd, sizeof cmd, "systemd-analyze verify %s/reader/rtm-reader-test.service 2>&1",
		 tu_prog("RTM_BUILD_ROOT"));
	out = tu_run(cmd, &st, NULL);
	if (st || (out && *out))
		fail_msg("%s: exit %d\n%s", cmd, st, out ? out : "");
	free(out);
}

static void produce_three(struct rtm_segment *seg, int unused)
{
	rtm_counter_t c;

	(void)unused;
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof name, "three.%d", i);
		rtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = name });
	}
}

/* The default settings file (its path from --help) is read when present;
 * --config overrides it; a directory is no settings file. */
static void the_default_config_file_is_read_when_present(void **state)
{
	char *dir = tu_mkdir(), *help, *at, path[512], cmd[2048], *out, mine[600];
	struct tu_producer p;
	int st;

	(void)state;
	snprintf(cmd, sizeof cmd, "%s --help", tu_prog("RTM_READER"));
	help = tu_run_ok(cmd);
	at = strstr(help, "--config");
	assert_non_null(at);
	at = strstr(at, "default /");
	assert_non_null(at);
	sscanf(at + 8, "%511s", path);
	free(help);
	if (access(path, F_OK) == 0) {
		tu_rmdir(dir);
		skip(); /* a real one: not ours to replace */
	}
	snprintf(cmd, sizeof cmd, "mkdir -p $(dirname %s) && printf 'limit.series = 1\\n' > %s", path,
		 path);
	free(tu_run_ok(cmd));
	tu_spawn(&p, dir, "three", produce_three, 0, false);
	snprintf(cmd, sizeof cmd, "RTM_DIR=%s %s --once --exporter none 2>&1", dir, tu_prog("RTM_READER"));
	out = tu_run(cmd, &st, NULL);
	unlink(path);
	if (!out || !strstr(out, "past the limit of 1 series"))
		fail_msg("the default file %s was not read: %s", path, out ? out : "");
	free(out);
	/* --config wins over the default file. */
	snprintf(mine, sizeof mine, "%s/mine.conf", dir);
	snprintf(cmd, sizeof cmd, "printf 'limit.series = 1\\n' > %s && printf 'limit.series = 2\\n' > %s && "
		 "RTM_DIR=%s %s --once --exporter none --config %s 2>&1", path, mine, dir,
		 tu_prog("RTM_READER"), mine);
	out = tu_run(cmd, &st, NULL);
	unlink(path);
	if (!out || !strstr(out, "past the limit of 2 series"))
		fail_msg("--config did not win: %s", out ? out : "");
	free(out);
	snprintf(cmd, sizeof cmd, "RTM_DIR=%s %s --once --config %s 2>&1", dir, tu_prog("RTM_READER"),
		 dir);
	tu_run_says(cmd, 2, "not a regular file");
	tu_reap(&p);
	unlink(p.path);
	unlink(mine);
	tu_rmdir(dir);
}

/* Every public function of rtm.h, every flag in the tools' --help and every
 * environment variable the code reads is in a man page, so the pages cannot
 * drift from the code unnoticed. */
static void man_pages_cover_the_api_flags_and_environment(void **state)
{
	const char *root = tu_prog("RTM_SOURCE_ROOT");
	char cmd[2048], *pages, *names, *save = NULL;
	size_t missing = 0;

	(void)state;
	snprintf(cmd, sizeof cmd, "find %s/producer %s/reader %s/shm-layout %s/tools -name '*.scd' "
		 "-exec cat {} +", root, root, root, root);
	pages = tu_run_ok(cmd);
	assert_true(strlen(pages) > 1000);
	snprintf(cmd, sizeof cmd,
		 /* Functions declared or defined in rtm.h (not the rtm__ helpers). */
		 "grep -oE '^[a-z].*\\brtm_[a-z][a-z0-9_]*\\(' %s/producer/rtm.h | "
		 "grep -oE 'rtm_[a-z][a-z0-9_]*\\($' | tr -d '(' | grep -v '^rtm__'; "
		 /* Flags of both tools. */
		 "%s --help | grep -oE -- '--[a-z][a-z-]*'; %s --help 2>&1 | grep -oE -- '--[a-z][a-z-]*'; "
		 /* Variables read by name, and the OTLP ones built from a suffix. */
		 "grep -rhoE '\"(OTEL|RTM)_[A-Z_]+\"' %s/reader %s/producer/*.c %s/shm-layout %s/tools/*.c | tr -d '\"'; "
		 "grep -rhoE 'otel_env\\(\"[A-Z_]+\"' %s/reader | grep -oE '[A-Z_]{3,}' | "
		 "sed 's/^/OTEL_EXPORTER_OTLP_/;p;s/OTLP_/OTLP_METRICS_/'; "
		 /* The format's header and descriptor fields, for rtm-segment(5). */
		 "for s in rtm_shm_header rtm_shm_desc; do awk \"/^struct $s \\\\{/,/^};/\" "
		 "%s/shm-layout/rtm_shm.h | grep -oE '[a-z_0-9]+(\\[[A-Z_0-9]+\\])?;' | "
		 "sed 's/\\[.*//; s/;//'; done",
		 root, tu_prog("RTM_READER"), tu_prog("RTM_SHMDUMP"), root, root, root, root, root, root);
	names = tu_run_ok(cmd);
	for (char *n = strtok_r(names, "\n", &save); n; n = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(n, "--") || strstr(pages, n))
			continue;
		print_message("not in any man page: %s\n", n);
		missing++;
	}
	assert_int_equal(missing, 0);
	free(names);
	free(pages);
	/* Built when scdoc is there (tools/run-tests installs it). */
	if (system("command -v scdoc >/dev/null") == 0) {
		snprintf(cmd, sizeof cmd, "test -s %s/tools/man/rtm-reader.8 && test -s %s/tools/man/rtm.h.3",
			 tu_prog("RTM_BUILD_ROOT"), tu_prog("RTM_BUILD_ROOT"));
		free(tu_run_ok(cmd));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_parent_project_builds_the_producer_alone),
		cmocka_unit_test(the_readme_example_builds_against_the_installed_rtm_pc),
		cmocka_unit_test(the_readme_example_builds_against_the_uninstalled_pc),
		cmocka_unit_test(a_prefix_install_stays_inside_and_runs),
		cmocka_unit_test(the_service_unit_verifies),
		cmocka_unit_test(the_default_config_file_is_read_when_present),
		cmocka_unit_test(man_pages_cover_the_api_flags_and_environment),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
