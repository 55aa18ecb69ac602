/* SPDX-License-Identifier: MIT */
/*
 * rtm-shmdump --locks: where a process waits for locks.  The producer keeps
 * raw return addresses (rtm_lock_sites.c); they are resolved here, never on
 * its hot path, against the process's own mappings while it runs: libdwfl
 * (elfutils) reads /proc/<pid>/maps, the mapped ELF files' symbol tables
 * and, where the program has it, DWARF line information.  rd_segment_open
 * has checked that the segment's owner is the user running that pid, so a
 * planted file cannot make us describe another user's process.
 */
#define _GNU_SOURCE
#include "shmdump_locks.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RTM_HAVE_LIBDW
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#endif

#ifdef RTM_HAVE_DEMANGLE
/* libstdc++'s demangler (the C++ ABI's): C++ sites print as perf and gdb
 * print them.  Its recursion is bounded, since the symbol tables it reads
 * are the watched user's. */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);
#endif

#include "rd_json.h"
#include "rd_proc.h"
#include "rd_segment.h"
#include "rtm_shm_text.h"

#define SCHEMA "rtm-shmdump-locks/1"

struct where {
	char function[256]; /* "" when unknown */
	uint64_t offset;    /* of the address in function */
	char module[256];   /* the mapped file, "" when unknown */
	char file[256];     /* source file, "" without line information */
	int line;
};

#ifdef RTM_HAVE_LIBDW
/* The process's executable mappings: an address outside all of them is
 * not code (a forged or stale site), whatever module libdwfl's ranges,
 * which span the gaps between a module's segments, would name. */
static struct xrange {
	uint64_t lo, hi;
} *xr;
static size_t n_xr;

static void load_exec_ranges(int pid)
{
	char path[384], line[4096];
	size_t cap = 0;
	FILE *f;

	n_xr = 0;
	rd_proc_path(path, sizeof path, (pid_t)pid, "maps");
	f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long lo, hi;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3 || !strchr(perms, 'x'))
			continue;
		if (n_xr == cap) {
			struct xrange *p = realloc(xr, (cap = cap ? cap * 2 : 64) * sizeof *p);

			if (!p)
				break;
			xr = p;
		}
		xr[n_xr++] = (struct xrange){ lo, hi };
	}
	if (f)
		fclose(f);
}

static bool is_code(uint64_t pc)
{
	for (size_t i = 0; i < n_xr; i++)
		if (pc >= xr[i].lo && pc < xr[i].hi)
			return true;
	return false;
}

static Dwfl *open_process(int pid)
{
	static char *debuginfo_path;
	static const Dwfl_Callbacks cb = {
		.find_elf = dwfl_linux_proc_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.debuginfo_path = &debuginfo_path,
	};
	Dwfl *d = dwfl_begin(&cb);

	if (!d)
		return NULL;
	load_exec_ranges(pid);
	dwfl_report_begin(d);
	if (dwfl_linux_proc_report(d, pid) || dwfl_report_end(d, NULL, NULL)) {
		dwfl_end(d);
		return NULL;
	}
	return d;
}

static void base_name(char *out, size_t n, const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	snprintf(out, n, "%s", slash ? slash + 1 : path ? path : "");
}

/* The line of pc found by walking the compile units' own address ranges:
 * libdw finds a unit through .debug_aranges, which Go binaries lack. */
static void cu_line(Dwfl_Module *m, Dwarf_Addr pc, struct where *w)
{
	Dwarf_Addr bias;
	Dwarf *dw = dwfl_module_getdwarf(m, &bias);
	Dwarf_Off off = 0, next;
	size_t hsize;

	while (dw && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		Dwarf_Line *l;

		if (dwarf_offdie(dw, off + hsize, &cu) && dwarf_haspc(&cu, pc - bias) > 0 &&
		    (l = dwarf_getsrc_die(&cu, pc - bias))) {
			base_name(w->file, sizeof w->file, dwarf_linesrc(l, NULL, NULL));
			dwarf_lineno(l, &w->line);
			return;
		}
		off = next;
	}
}

/* addr is a return address: the call that waited is just before it, so
 * that byte is what is looked up (a call at the end of a function would
 * otherwise resolve to the next one). */
static void resolve(Dwfl *d, uint64_t addr, struct where *w)
{
	Dwarf_Addr pc = addr - 1;
	Dwfl_Module *m = d && is_code(pc) ? dwfl_addrmodule(d, pc) : NULL;
	const char *name, *mainfile = NULL;
	GElf_Off off = 0;
	GElf_Sym sym;
	Dwfl_Line *line;

	if (!m)
		return;
	name = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, &mainfile, NULL);
	base_name(w->module, sizeof w->module, mainfile ? mainfile : name);
	name = dwfl_module_addrinfo(m, pc, &off, &sym, NULL, NULL, NULL);
	if (name) {
		snprintf(w->function, sizeof w->function, "%s", name);
		w->offset = off + 1;
#ifdef RTM_HAVE_DEMANGLE
		if (!strncmp(name, "_Z", 2)) {
			int st = -1;
			char *plain = __cxa_demangle(name, NULL, NULL, &st);

			if (plain && !st)
				snprintf(w->function, sizeof w->function, "%s", plain);
			free(plain);
		}
#endif
	}
	line = dwfl_module_getsrc(m, pc);
	if (line) {
		const char *file = dwfl_lineinfo(line, NULL, &w->line, NULL, NULL, NULL);

		base_name(w->file, sizeof w->file, file);
	} else {
		cu_line(m, pc, w);
	}
}
#else
typedef void Dwfl;
static Dwfl *open_process(int pid)
{
	(void)pid;
	return NULL;
}
static void resolve(Dwfl *d, uint64_t addr, struct where *w)
{
	(void)d, (void)addr, (void)w;
}
static void dwfl_end(Dwfl *d)
{
	(void)d;
}
#endif

static const char *kind_name(uint32_t k)
{
	return k == RTM_SHM_LOCK_MUTEX ? "mutex" : k == RTM_SHM_LOCK_RWLOCK ? "rwlock" : "?";
}

/* Text from a mapped file or a symbol table: anyone's bytes. */
static const char *visible(const char *s, char *buf, size_t n)
{
	return rtm_shm_text_visible(s, buf, n);
}

static void print_json(const struct rd_segment *seg, const struct rd_lock_sites *l,
		       const struct where *w, bool resolved)
{
	struct rd_json j = { 0 };
	char buf[1024], hex[32];

	rd_json_obj_open(&j, NULL);
	rd_json_str(&j, "schema", SCHEMA);
	rd_json_str(&j, "path", seg->path);
	rd_json_int(&j, "pid", seg->hdr.pid);
	rd_json_uint(&j, "sample", l->sample);
	rd_json_bool(&j, "resolved", resolved);
	rd_json_uint_str(&j, "dropped", l->dropped);
	rd_json_uint(&j, "site_count", l->n);
	rd_json_arr_open(&j, "sites");
	for (unsigned i = 0; i < l->n; i++) {
		const struct rd_lock_site *s = &l->sites[i];

		rd_json_obj_open(&j, NULL);
		snprintf(hex, sizeof hex, "0x%" PRIx64, s->address);
		rd_json_str(&j, "address", hex);
		rd_json_str(&j, "kind", kind_name(s->kind));
		rd_json_uint_str(&j, "contentions", s->contentions);
		rd_json_uint_str(&j, "wait_ns", s->wait_ns);
		rd_json_uint_str(&j, "max_wait_ns", s->max_wait_ns);
		if (*w[i].function) {
			rd_json_str(&j, "function", visible(w[i].function, buf, sizeof buf));
			rd_json_uint(&j, "offset", w[i].offset);
		}
		if (*w[i].module)
			rd_json_str(&j, "module", visible(w[i].module, buf, sizeof buf));
		if (*w[i].file) {
			rd_json_str(&j, "file", visible(w[i].file, buf, sizeof buf));
			rd_json_int(&j, "line", w[i].line);
		}
		rd_json_obj_close(&j);
	}
	rd_json_arr_close(&j);
	rd_json_obj_close(&j);
	if (j.buf)
		printf("%s\n", j.buf);
	rd_json_free(&j);
}

static void print_text(const struct rd_segment *seg, const struct rd_lock_sites *l,
		       const struct where *w, bool resolved, bool alive)
{
	char buf[3][1024];

	printf("%s (pid %d): %u lock site%s", visible(seg->path, buf[0], sizeof buf[0]),
	       seg->hdr.pid, l->n, l->n == 1 ? "" : "s");
	if (l->sample > 1)
		printf(", 1 in %u contended waits sampled (counts scaled up)", l->sample);
	if (l->dropped)
		printf(", %" PRIu64 " waits at sites past the table's %u", l->dropped,
		       seg->hdr.sites_capacity);
	printf("\n");
	if (!l->n)
		return;
	if (!resolved)
		printf("(addresses unresolved: %s)\n",
		       !alive ? "the process has ended" :
#ifdef RTM_HAVE_LIBDW
		       "its mappings are not readable (another user's process?)"
#else
		       "rtm-shmdump was built without libdw"
#endif
		);
	printf("%12s %10s %10s %10s  %-6s  %s\n", "wait (s)", "waits", "avg (us)", "max (us)",
	       "kind", "call site");
	for (unsigned i = 0; i < l->n; i++) {
		const struct rd_lock_site *s = &l->sites[i];
		char site[1200], max[32];

		if (*w[i].function)
			snprintf(site, sizeof site, "%s+0x%" PRIx64 " (%s)",
				 visible(w[i].function, buf[0], sizeof buf[0]), w[i].offset,
				 visible(w[i].module, buf[1], sizeof buf[1]));
		else if (*w[i].module)
			snprintf(site, sizeof site, "0x%" PRIx64 " (%s)", s->address,
				 visible(w[i].module, buf[1], sizeof buf[1]));
		else
			snprintf(site, sizeof site, "0x%" PRIx64, s->address);
		if (*w[i].file)
			snprintf(site + strlen(site), sizeof site - strlen(site), " %s:%d",
				 visible(w[i].file, buf[2], sizeof buf[2]), w[i].line);
		/* A Go producer's profile keeps totals only: no longest wait. */
		if (s->max_wait_ns)
			snprintf(max, sizeof max, "%.1f", (double)s->max_wait_ns / 1e3);
		else
			snprintf(max, sizeof max, "-");
		printf("%12.6f %10" PRIu64 " %10.1f %10s  %-6s  %s\n", (double)s->wait_ns / 1e9,
		       s->contentions,
		       s->contentions ? (double)s->wait_ns / (double)s->contentions / 1e3 : 0.0,
		       max, kind_name(s->kind), site);
	}
}

int locks_dump(const char *path, bool json, bool quiet_if_none)
{
	struct rd_segment seg;
	struct rd_lock_sites l;
	struct where *w = NULL;
	Dwfl *d = NULL;
	bool alive;
	int rc = rd_segment_open(&seg, AT_FDCWD, path, 0);

	if (!rc)
		rc = rd_segment_lock_sites(&seg, &l);
	if (rc) {
		char buf[512], err[512];

		fprintf(stderr, "rtm-shmdump: %s: %s\n", visible(path, buf, sizeof buf),
			*seg.err ? visible(seg.err, err, sizeof err) : strerror(-rc));
		rd_segment_close(&seg);
		return 1;
	}
	if (!(seg.hdr.compat_features & RTM_SHM_COMPAT_LOCK_SITES) || !l.sample) {
		char buf[512];

		if (!quiet_if_none)
			fprintf(stderr, "rtm-shmdump: %s: records no lock contention (%s)\n",
				visible(path, buf, sizeof buf),
				!(seg.hdr.compat_features & RTM_SHM_COMPAT_LOCK_SITES) ?
				"its producer writes no lock-site table" :
				"only librtm-preload.so and librtm-alloc do, with RTM_LOCK_SAMPLE not 0");
		rd_lock_sites_free(&l);
		rd_segment_close(&seg);
		return quiet_if_none ? 2 : 1;
	}
	alive = rd_segment_liveness(&seg) == RD_ALIVE;
	if (alive && l.n)
		d = open_process(seg.proc_pid);
	w = calloc(l.n ? l.n : 1, sizeof *w);
	if (!w) {
		fprintf(stderr, "rtm-shmdump: out of memory\n");
		rc = 1;
	} else {
		for (unsigned i = 0; i < l.n; i++)
			resolve(d, l.sites[i].address, &w[i]);
		if (json)
			print_json(&seg, &l, w, d != NULL);
		else
			print_text(&seg, &l, w, d != NULL, alive);
	}
	if (d)
		dwfl_end(d);
	free(w);
	rd_lock_sites_free(&l);
	rd_segment_close(&seg);
	return rc;
}
