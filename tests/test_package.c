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

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Runs cmd; fails the test with its output unless it exits 0. */
static char *must_run(const char *cmd)
{
	int st;
	char *out = tu_run(cmd, &st, NULL);

	if (st)
		fail_msg("%s: exit %d\n%s", cmd, st, out ? out : "");
	return out;
}

static void a_parent_project_builds_the_producer_alone(void **state)
{
	char *dir = tu_mkdir(), path[512], cmd[2048], *out;

	(void)state;
	snprintf(path, sizeof path, "%s/subprojects", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/subprojects/rtm", dir);
	assert_int_equal(symlink(tu_prog("RTM_SOURCE_ROOT"), path), 0);
	snprintf(path, sizeof path, "%s/meson.build", dir);
	write_file(path,
		   "project('parent', 'c', default_options : ['c_std=gnu11'])\n"
		   "subproject('rtm', default_options : ['reader=disabled', 'tools=false',\n"
		   "  'tests=disabled', 'default_library=shared', 'werror=false'])\n"
		   "executable('parent', 'main.c', dependencies : dependency('rtm'))\n");
	snprintf(path, sizeof path, "%s/main.c", dir);
	write_file(path,
		   "#include <stdio.h>\n#include <rtm.h>\n"
		   "int main(int argc, char **argv)\n{\n"
		   "\tstruct rtm_segment *seg;\n\trtm_counter_t c;\n"
		   "\tif (argc < 2 || rtm_segment_open(&seg, &(struct rtm_segment_opts){\n"
		   "\t\t.service_name = \"parent\", .dir = argv[1] }))\n\t\treturn 1;\n"
		   "\trtm_counter_create(seg, &c, &(struct rtm_metric_def){ .name = \"parent.runs\" });\n"
		   "\trtm_counter_add(&c, 1);\n\tputs(rtm_segment_path(seg));\n\treturn 0;\n}\n");
	/* No pkg-config directory at all: liburing, libcurl and the rest are
	 * out of view, and the producer must not need them. */
	snprintf(cmd, sizeof cmd,
		 "cd %s && PKG_CONFIG_LIBDIR=%s/none PKG_CONFIG_PATH= meson setup b >b.log 2>&1 && "
		 "ninja -C b >>b.log 2>&1 || { cat b.log; exit 1; }", dir, dir);
	free(must_run(cmd));
	/* It runs, and publishes. */
	snprintf(cmd, sizeof cmd, "mkdir -p %s/segs && %s/b/parent %s/segs", dir, dir, dir);
	out = must_run(cmd);
	assert_non_null(strstr(out, "/segs/rtm."));
	free(out);
	/* The shared library exports rtm_* (and the rtm__* its inline
	 * functions call), nothing else, under a versioned soname. */
	snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/b/subprojects/rtm/producer/librtm.so | "
		 "awk '{print $3}' | grep -v '^rtm_' | grep -v '^RTM_0$' || true", dir);
	out = must_run(cmd);
	assert_string_equal(out, "");
	free(out);
	snprintf(cmd, sizeof cmd, "readelf -d %s/b/subprojects/rtm/producer/librtm.so | grep SONAME",
		 dir);
	out = must_run(cmd);
	assert_non_null(strstr(out, "[librtm.so.0]"));
	free(out);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	free(must_run(cmd));
	free(dir);
}

static void the_readme_example_builds_against_the_installed_rtm_pc(void **state)
{
	char *dir = tu_mkdir(), cmd[4096], *out;

	(void)state;
	/* Install this build into a staging root; find rtm.pc there. */
	snprintf(cmd, sizeof cmd, "meson install -C %s --destdir %s/root --quiet >/dev/null 2>&1 && "
		 "find %s/root -name rtm.pc | head -1", tu_prog("RTM_BUILD_ROOT"), dir, dir);
	out = must_run(cmd);
	out[strcspn(out, "\n")] = '\0';
	assert_true(*out);
	*strrchr(out, '/') = '\0'; /* its directory */
	/* Headers under include/rtm/, none generic at the top. */
	snprintf(cmd, sizeof cmd, "test -f %s/../../../include/rtm/rtm.h -o -f %s/../../include/rtm/rtm.h && "
		 "! find %s/root -path '*/include/rtm_shm.h' | grep -q .", out, out, dir);
	free(must_run(cmd));
	snprintf(cmd, sizeof cmd,
		 "cd %s && PKG_CONFIG_SYSROOT_DIR=%s/root PKG_CONFIG_LIBDIR=%s "
		 "cc -O2 %s/tools/rtm_example.c $(PKG_CONFIG_SYSROOT_DIR=%s/root PKG_CONFIG_LIBDIR=%s "
		 "pkg-config --cflags --libs --static rtm) -o example 2>&1 && mkdir -p segs && "
		 "RTM_DIR=%s/segs timeout -s KILL 2 ./example; ls segs", dir, dir, out,
		 tu_prog("RTM_SOURCE_ROOT"), dir, out, dir);
	free(out);
	out = tu_run(cmd, NULL, NULL);
	if (!out || !strstr(out, "published to") || !strstr(out, "rtm."))
		fail_msg("%s\n%s", cmd, out ? out : "");
	free(out);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	free(must_run(cmd));
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_parent_project_builds_the_producer_alone),
		cmocka_unit_test(the_readme_example_builds_against_the_installed_rtm_pc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
