/* SPDX-License-Identifier: MIT */
/*
 * The examples in README.md and docs/ against the code: every C program
 * compiles and runs (or is the file it quotes), every Go program builds,
 * every command names flags, options, programs and variables that exist,
 * every Prometheus configuration passes promtool, every settings file is
 * read by the reader, and every metric rtm registers is in the metrics
 * reference.  A change that leaves an example behind fails here.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

struct block {
	char file[256]; /* relative to the source root */
	char lang[16];
	int line;       /* of the opening fence */
	char *text;
};

static struct block *blocks;
static size_t n_blocks;

static const char *src(void)
{
	return tu_prog("RTM_SOURCE_ROOT");
}

static const char *bld(void)
{
	return tu_prog("RTM_BUILD_ROOT");
}

/* Every fenced block of one Markdown file. */
static void scan(const char *rel)
{
	char path[1024], *text, *p, *open = NULL, lang[16] = "";
	int line = 0, open_line = 0;
	size_t len;

	snprintf(path, sizeof path, "%s/%s", src(), rel);
	text = tu_slurp(path, &len);
	assert_non_null(text);
	for (p = text; *p;) {
		char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);

		line++;
		if (end - p >= 3 && !memcmp(p, "```", 3)) {
			if (!open) {
				size_t k = (size_t)(end - p - 3);

				if (k >= sizeof lang)
					k = sizeof lang - 1;
				memcpy(lang, p + 3, k);
				lang[k] = '\0';
				open = nl ? nl + 1 : end;
				open_line = line;
			} else {
				struct block *b;

				blocks = realloc(blocks, (n_blocks + 1) * sizeof *blocks);
				assert_non_null(blocks);
				b = &blocks[n_blocks++];
				snprintf(b->file, sizeof b->file, "%s", rel);
				snprintf(b->lang, sizeof b->lang, "%s", lang);
				b->line = open_line;
				b->text = strndup(open, (size_t)(p - open));
				open = NULL;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (open)
		fail_msg("%s:%d: a code block that never closes", rel, open_line);
	free(text);
}

static void scan_dir(const char *rel)
{
	char path[1024];
	struct dirent **names;
	int n;

	snprintf(path, sizeof path, "%s/%s", src(), rel);
	n = scandir(path, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		size_t k = strlen(names[i]->d_name);

		if (k > 3 && !strcmp(names[i]->d_name + k - 3, ".md")) {
			char f[512];

			snprintf(f, sizeof f, "%s/%s", rel, names[i]->d_name);
			scan(f);
		}
		free(names[i]);
	}
	free(names);
}

static int setup(void **state)
{
	(void)state;
	scan("README.md");
	scan_dir("docs");
	scan_dir("docs/reference");
	return 0;
}

/* Builds and runs one example with cmd; a failure names its place. */
static void example_runs(const struct block *b, const char *lang, const char *cmd)
{
	int st;
	char *out = tu_run(cmd, &st, NULL);

	if (st)
		fail_msg("%s:%d: the %s example does not build or run (exit %d):\n%s", b->file, b->line,
			 lang, st, out ? out : "");
	free(out);
}

static bool file_has(const char *path, const char *needle)
{
	size_t len;
	char *t = tu_slurp(path, &len);
	bool yes = t && strstr(t, needle);

	free(t);
	return yes;
}

/* A C example is a whole program that compiles warning-free against this
 * tree and exits 0, or the very file of the tree it quotes; a fragment
 * calls only functions rtm.h declares. */
static void c_examples_compile_and_run(void **state)
{
	char *dir, cmd[4096], path[1024], hdr[1024];
	int programs = 0;

	(void)state;
	TU_SKIP_IF_SANITIZED(); /* plain cc cannot link an instrumented librtm.a */
	dir = tu_mkdir();
	snprintf(hdr, sizeof hdr, "%s/producer/rtm.h", src());
	for (size_t i = 0; i < n_blocks; i++) {
		const struct block *b = &blocks[i];
		char quoted[1024];
		size_t qlen;
		char *q;

		if (strcmp(b->lang, "c"))
			continue;
		snprintf(quoted, sizeof quoted, "%s/tools/rtm_example.c", src());
		q = tu_slurp(quoted, &qlen);
		if (q && !strcmp(q, b->text)) {
			free(q);
			continue;
		}
		free(q);
		if (!strstr(b->text, "int main")) {
			regex_t re;
			regmatch_t m;
			const char *p = b->text;

			assert_int_equal(regcomp(&re, "rtm_[a-z0-9_]+\\(", REG_EXTENDED), 0);
			while (!regexec(&re, p, 1, &m, 0)) {
				char name[128];

				snprintf(name, sizeof name, "%.*s", (int)(m.rm_eo - m.rm_so - 1), p + m.rm_so);
				if (!file_has(hdr, name))
					fail_msg("%s:%d: %s is not in rtm.h", b->file, b->line, name);
				p += m.rm_eo;
			}
			regfree(&re);
			continue;
		}
		snprintf(path, sizeof path, "%s/ex%zu.c", dir, i);
		assert_true(tu_write_file(path, b->text));
		snprintf(cmd, sizeof cmd,
			 "cd %s && cc -std=gnu11 -O2 -Wall -Wextra -Werror -I%s/producer -I%s/shm-layout "
			 "ex%zu.c %s/producer/librtm.a -pthread -lm -o ex%zu 2>&1 && mkdir -p segs%zu && "
			 "RTM_DIR=%s/segs%zu timeout -s KILL 20 ./ex%zu",
			 dir, src(), src(), i, bld(), i, i, dir, i, i);
		example_runs(b, "C", cmd);
		programs++;
	}
	assert_true(programs >= 1); /* the README's */
	print_message("%d C programs built and run\n", programs);
	tu_rmdir(dir);
}

/* --flags of rtm-reader and rtm-shmdump lines, as their usage lists them;
 * build/ and tools/ paths that exist; RTM_/OTEL_ variables some code
 * reads; -D options Meson or meson_options.txt define. */
static char *usage_of(const char *prog)
{
	char cmd[1100];

	snprintf(cmd, sizeof cmd, "%s --help 2>&1; true", prog);
	return tu_run(cmd, NULL, NULL);
}

static bool grep_src(const char *fixed)
{
	char cmd[4096];
	int st;
	char *out;

	snprintf(cmd, sizeof cmd, "grep -rqiF -- '%s' %s/reader %s/producer %s/shm-layout", fixed, src(),
		 src(), src());
	out = tu_run(cmd, &st, NULL);
	free(out);
	return st == 0;
}

/* A variable some code reads: its name as a string, or a family's prefix
 * ("RTM_GROUP_" + a group's name) with the rest a word the code knows. */
static bool in_source(const char *word)
{
	char q[160];
	const char *us = strrchr(word, '_');

	snprintf(q, sizeof q, "\"%s\"", word);
	if (grep_src(q))
		return true;
	if (!us)
		return false;
	snprintf(q, sizeof q, "\"%.*s_", (int)(us - word), word);
	return grep_src(q) && grep_src(us + 1);
}

static void check_word(const struct block *b, const char *line, const char *prog, const char *usage,
		       const char *w)
{
	static const char *const builtin_d[] = { "default_library", "b_sanitize", "buildtype", "c_args",
						 "werror", "b_lundef", "prefix" };
	char opt[128];

	if (!strncmp(w, "--", 2) && prog && usage) {
		snprintf(opt, sizeof opt, "%.*s", (int)strcspn(w, "= "), w);
		if (!strstr(usage, opt))
			fail_msg("%s:%d: '%s' is not an option of %s:\n%s", b->file, b->line, opt, prog,
				 line);
	}
	if (!strncmp(w, "-D", 2)) {
		bool ok = false;

		snprintf(opt, sizeof opt, "%.*s", (int)strcspn(w + 2, "="), w + 2);
		for (size_t k = 0; k < sizeof builtin_d / sizeof builtin_d[0]; k++)
			ok |= !strcmp(opt, builtin_d[k]);
		if (!ok) {
			char path[1024], want[160];

			snprintf(path, sizeof path, "%s/meson_options.txt", src());
			snprintf(want, sizeof want, "option('%s'", opt);
			if (!file_has(path, want))
				fail_msg("%s:%d: meson has no option %s:\n%s", b->file, b->line, opt, line);
		}
	}
	if ((!strncmp(w, "RTM_", 4) || !strncmp(w, "OTEL_", 5)) && strchr(w, '=')) {
		snprintf(opt, sizeof opt, "%.*s", (int)strcspn(w, "="), w);
		if (!in_source(opt))
			fail_msg("%s:%d: nothing reads %s:\n%s", b->file, b->line, opt, line);
	}
	if (!strncmp(w, "build/", 6) || !strncmp(w, "tools/", 6) || !strncmp(w, "$PWD/build/", 11)) {
		char path[1024];
		const char *rel = w[0] == '$' ? w + 5 : w;

		snprintf(opt, sizeof opt, "%.*s", (int)strcspn(rel, " ;)|&"), rel);
		if (!strncmp(opt, "build/", 6))
			snprintf(path, sizeof path, "%s/%s", bld(), opt + 6);
		else
			snprintf(path, sizeof path, "%s/%s", src(), opt);
		if (access(path, F_OK))
			fail_msg("%s:%d: %s does not exist:\n%s", b->file, b->line, opt, line);
	}
}

static void shell_examples_name_what_exists(void **state)
{
	char reader[1024], shmdump[1024];
	char *ru, *su;
	int lines = 0;

	(void)state;
	snprintf(reader, sizeof reader, "%s/reader/rtm-reader", bld());
	snprintf(shmdump, sizeof shmdump, "%s/tools/rtm-shmdump", bld());
	ru = usage_of(reader);
	su = usage_of(shmdump);
	for (size_t i = 0; i < n_blocks; i++) {
		const struct block *b = &blocks[i];
		char *copy, *save = NULL;

		if (strcmp(b->lang, "sh") || !strncmp(b->text, "# /etc/rtm/reader.conf", 22))
			continue;
		copy = strdup(b->text);
		for (char *ln = strtok_r(copy, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
			char *hash = strstr(ln, " #"), *wsave = NULL, *full = strdup(ln);
			const char *prog = NULL, *usage = NULL;

			if (ln[0] == '#')
				continue;
			if (hash)
				*hash = '\0';
			lines++;
			for (char *w = strtok_r(ln, " \t", &wsave); w; w = strtok_r(NULL, " \t", &wsave)) {
				size_t k = strlen(w);

				if (k >= 10 && !strcmp(w + k - 10, "rtm-reader")) {
					prog = "rtm-reader";
					usage = ru;
				} else if (k >= 11 && !strcmp(w + k - 11, "rtm-shmdump")) {
					prog = "rtm-shmdump";
					usage = su;
				} else if (!strcmp(w, "|") || !strcmp(w, "&&") || !strcmp(w, ";")) {
					prog = usage = NULL;
				}
				check_word(b, full, prog, usage, w);
			}
			free(full);
		}
		free(copy);
	}
	assert_true(lines > 20);
	print_message("%d command lines checked\n", lines);
	free(ru);
	free(su);
}

/* Prometheus configurations and rule groups pass promtool. */
static void prometheus_examples_pass_promtool(void **state)
{
	const char *promtool = getenv("RTM_PROMTOOL");
	char *dir, path[1024], cmd[2048];
	int checked = 0;

	(void)state;
	if (!promtool || !*promtool)
		skip();
	dir = tu_mkdir();
	for (size_t i = 0; i < n_blocks; i++) {
		const struct block *b = &blocks[i];
		const char *what = strstr(b->text, "scrape_configs:") ? "config" :
				   strstr(b->text, "groups:") ? "rules" : NULL;

		if (strcmp(b->lang, "yaml") || !what)
			continue;
		snprintf(path, sizeof path, "%s/p%zu.yml", dir, i);
		assert_true(tu_write_file(path, b->text));
		snprintf(cmd, sizeof cmd, "%s check %s %s 2>&1", promtool, what, path);
		{
			int st;
			char *out = tu_run(cmd, &st, NULL);

			if (st)
				fail_msg("%s:%d: promtool check %s:\n%s", b->file, b->line, what, out);
			free(out);
		}
		checked++;
	}
	assert_true(checked >= 2); /* the README's scrape config and prometheus.md's */
	print_message("%d Prometheus files passed promtool\n", checked);
	tu_rmdir(dir);
}

/* A settings file shown in the docs is one the reader reads. */
static void settings_examples_are_read_by_the_reader(void **state)
{
	char *dir = tu_mkdir(), path[1024], cmd[4096];
	int checked = 0;

	(void)state;
	for (size_t i = 0; i < n_blocks; i++) {
		const struct block *b = &blocks[i];

		if (strncmp(b->text, "# /etc/rtm/reader.conf", 22))
			continue;
		snprintf(path, sizeof path, "%s/c%zu.conf", dir, i);
		assert_true(tu_write_file(path, b->text));
		/* --once over an empty directory: 1, "nothing to collect";
		 * a bad settings file is 2. */
		snprintf(cmd, sizeof cmd,
			 "%s/reader/rtm-reader --config %s --dir %s --once --exporter none --prometheus off "
			 "2>&1; echo \"exit $?\"", bld(), path, dir);
		{
			char *out = tu_run(cmd, NULL, NULL);

			if (!strstr(out, "exit 1") || !strstr(out, "nothing to collect"))
				fail_msg("%s:%d: the reader does not take this file:\n%s", b->file, b->line,
					 out);
			free(out);
		}
		checked++;
	}
	assert_true(checked >= 1);
	tu_rmdir(dir);
}

/* Go programs build against producer/go; a fragment's rtm.X names exist. */
static void go_examples_build(void **state)
{
	char *dir, cmd[4096], path[1024];
	int built = 0;

	(void)state;
	if (system("command -v go >/dev/null 2>&1"))
		skip();
	dir = tu_mkdir();
	snprintf(cmd, sizeof cmd, "cp -r %s/producer/go %s/m", src(), dir);
	free(tu_run_ok(cmd));
	for (size_t i = 0; i < n_blocks; i++) {
		const struct block *b = &blocks[i];

		if (strcmp(b->lang, "go"))
			continue;
		if (!strstr(b->text, "package main")) {
			regex_t re;
			regmatch_t mm[2], m;
			const char *p = b->text;

			assert_int_equal(regcomp(&re, "rtm\\.([A-Z][A-Za-z0-9]*)", REG_EXTENDED), 0);
			while (!regexec(&re, p, 2, mm, 0)) {
				m = mm[0];
				snprintf(cmd, sizeof cmd,
					 "grep -qE '^(func|type|const|var)( \\([^)]*\\))? %.*s\\b|^\t%.*s +=' "
					 "%s/producer/go/*.go",
					 (int)(m.rm_eo - m.rm_so - 4), p + m.rm_so + 4,
					 (int)(m.rm_eo - m.rm_so - 4), p + m.rm_so + 4, src());
				if (system(cmd))
					fail_msg("%s:%d: the Go package has no %.*s", b->file, b->line,
						 (int)(m.rm_eo - m.rm_so), p + m.rm_so);
				p += m.rm_eo;
			}
			regfree(&re);
			continue;
		}
		snprintf(path, sizeof path, "%s/m/cmd/doc%zu", dir, i);
		mkdir(path, 0755);
		snprintf(path, sizeof path, "%s/m/cmd/doc%zu/main.go", dir, i);
		assert_true(tu_write_file(path, b->text));
		snprintf(cmd, sizeof cmd,
			 "GOCACHE=%s/producer/go/go-cache %s/tools/go-build %s/m ./cmd/doc%zu %s/doc%zu 2>&1 && "
			 "mkdir -p %s/segs && RTM_DIR=%s/segs timeout -s KILL 20 %s/doc%zu 2>&1",
			 bld(), src(), dir, i, dir, i, dir, dir, dir, i);
		example_runs(b, "Go", cmd);
		built++;
	}
	assert_true(built >= 1); /* the README's */
	print_message("%d Go programs built and run\n", built);
	tu_rmdir(dir);
}

/* Every metric name the C producer, the preload and the reader register
 * is in docs/reference/metrics.md (resource attribute keys are not
 * metrics). */
static void every_metric_is_in_the_reference(void **state)
{
	static const char *const not_metrics[] = {
		"process.command_line", "process.creation.time", "process.executable.name",
		"process.pid", "process.runtime.name", "process.runtime.version", "rtm.h",
	};
	char cmd[2048], ref[1024], *names, *save = NULL;
	int n = 0;

	(void)state;
	snprintf(cmd, sizeof cmd,
		 "cat %s/reader/*.c %s/producer/*.c %s/shm-layout/*.c | "
		 "grep -oE '\"(rtm|process|runtime\\.native)\\.[a-z_.]+\"' | tr -d '\"' | sort -u",
		 src(), src(), src());
	names = tu_run_ok(cmd);
	snprintf(ref, sizeof ref, "%s/docs/reference/metrics.md", src());
	for (char *w = strtok_r(names, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
		char want[160];
		bool skip_it = false;

		for (size_t k = 0; k < sizeof not_metrics / sizeof not_metrics[0]; k++)
			skip_it |= !strcmp(w, not_metrics[k]);
		if (skip_it)
			continue;
		snprintf(want, sizeof want, "`%s`", w);
		if (!file_has(ref, want))
			fail_msg("%s is registered but not in docs/reference/metrics.md", w);
		n++;
	}
	assert_true(n > 40);
	print_message("%d metric names found in the reference\n", n);
	free(names);
}

/* The README stays a door: short, every link it makes resolves. */
static void the_readme_is_short_and_its_links_resolve(void **state)
{
	char cmd[2048], *out;

	(void)state;
	snprintf(cmd, sizeof cmd, "wc -l < %s/README.md", src());
	out = tu_run_ok(cmd);
	if (atoi(out) > 400)
		fail_msg("README.md has %d lines (at most 400: reference goes to docs/)", atoi(out));
	free(out);
	/* Relative links in README.md and docs/ name files that exist. */
	snprintf(cmd, sizeof cmd,
		 "cd %s && for f in README.md docs/*.md docs/reference/*.md; do "
		 "grep -oE '\\]\\([^)#:]+(#[^)]*)?\\)' \"$f\" | sed -E 's/^\\]\\(//; s/[)#].*//' | "
		 "while read -r l; do test -e \"$(dirname \"$f\")/$l\" || echo \"$f: $l\"; done; done",
		 src());
	out = tu_run_ok(cmd);
	if (*out)
		fail_msg("links to nothing:\n%s", out);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(c_examples_compile_and_run),
		cmocka_unit_test(shell_examples_name_what_exists),
		cmocka_unit_test(prometheus_examples_pass_promtool),
		cmocka_unit_test(settings_examples_are_read_by_the_reader),
		cmocka_unit_test(go_examples_build),
		cmocka_unit_test(every_metric_is_in_the_reference),
		cmocka_unit_test(the_readme_is_short_and_its_links_resolve),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
