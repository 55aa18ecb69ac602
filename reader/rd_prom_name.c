/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_prom_name.h"

#include <stdbool.h>
#include <string.h>

struct word {
	const char *ucum, *word;
};

/* The specification's table of UCUM units and their Prometheus words. */
static const struct word units[] = {
	{ "d", "days" }, { "h", "hours" }, { "min", "minutes" }, { "s", "seconds" },
	{ "ms", "milliseconds" }, { "us", "microseconds" }, { "ns", "nanoseconds" },
	{ "By", "bytes" }, { "KiBy", "kibibytes" }, { "MiBy", "mebibytes" },
	{ "GiBy", "gibibytes" }, { "TiBy", "tebibytes" }, { "KBy", "kilobytes" },
	{ "MBy", "megabytes" }, { "GBy", "gigabytes" }, { "TBy", "terabytes" },
	{ "m", "meters" }, { "V", "volts" }, { "A", "amperes" }, { "J", "joules" },
	{ "W", "watts" }, { "g", "grams" }, { "Cel", "celsius" }, { "Hz", "hertz" },
	{ "%", "percent" },
};

/* ... and of the units that follow a '/'. */
static const struct word per_units[] = {
	{ "s", "second" }, { "m", "minute" }, { "h", "hour" }, { "d", "day" },
	{ "w", "week" }, { "mo", "month" }, { "y", "year" },
};

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == ':';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Appends [s, s+n) to out at *len, each invalid character as '_', runs of
 * '_' as one; never past RD_PROM_NAME_MAX - 2 (room for a prefix). */
static void append_clean(char *out, size_t *len, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *len < RD_PROM_NAME_MAX - 2; i++) {
		char c = name_char(s[i]) ? s[i] : '_';

		if (c == '_' && *len && out[*len - 1] == '_')
			continue;
		out[(*len)++] = c;
	}
	out[*len] = '\0';
}

/* One UCUM unit (no '/') as a word: from the table, else cleaned up as is;
 * "{...}" annotations are dropped wherever they stand. */
static void unit_part(const char *s, size_t n, const struct word *table, size_t n_table,
		      char *out, size_t *len)
{
	char bare[64];
	size_t k = 0;
	int depth = 0;

	for (size_t i = 0; i < n && k < sizeof bare - 1; i++) {
		if (s[i] == '{')
			depth++;
		else if (s[i] == '}' && depth)
			depth--;
		else if (!depth)
			bare[k++] = s[i];
	}
	bare[k] = '\0';
	if (!k)
		return;
	for (size_t i = 0; i < n_table; i++)
		if (!strcmp(bare, table[i].ucum)) {
			append_clean(out, len, table[i].word, strlen(table[i].word));
			return;
		}
	append_clean(out, len, bare, k);
}

static void unit_words(const char *unit, enum rd_prom_type type, char *out)
{
	const char *slash = strchr(unit, '/');
	size_t len = 0;

	out[0] = '\0';
	if (!strcmp(unit, "1")) {
		if (type == RD_PROM_GAUGE)
			append_clean(out, &len, "ratio", 5);
		return;
	}
	unit_part(unit, slash ? (size_t)(slash - unit) : strlen(unit), units,
		  sizeof units / sizeof units[0], out, &len);
	if (slash) {
		char per[RD_PROM_NAME_MAX];
		size_t plen = 0;

		unit_part(slash + 1, strlen(slash + 1), per_units,
			  sizeof per_units / sizeof per_units[0], per, &plen);
		if (plen) {
			append_clean(out, &len, len ? "_per_" : "per_", len ? 5 : 4);
			append_clean(out, &len, per, plen);
		}
	}
	/* Trim the '_' a cleaned-up unit may start or end with. */
	while (len && out[len - 1] == '_')
		out[--len] = '\0';
	if (out[0] == '_')
		memmove(out, out + 1, len--);
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && !memcmp(s + n - k, suffix, k) && (n == k || s[n - k - 1] == '_');
}

size_t rd_prom_family_name(const char *name, const char *unit, enum rd_prom_type type,
			   char *out, char *unit_word)
{
	size_t len = 0, lead = 0;

	append_clean(out, &len, name, strlen(name));
	while (lead < len && out[lead] == '_')
		lead++;
	memmove(out, out + lead, len - lead + 1);
	len -= lead;
	while (len && out[len - 1] == '_')
		out[--len] = '\0';
	if (!len || is_digit(out[0])) {
		memmove(out + 1, out, len + 1);
		out[0] = '_';
		len++;
	}
	/* Counters get _total from the renderer: a name that has it already
	 * keeps one. */
	if (type == RD_PROM_COUNTER && ends_with(out, len, "total") && len > 5) {
		len -= 6;
		out[len] = '\0';
	}
	unit_words(unit ? unit : "", type, unit_word);
	if (*unit_word && !ends_with(out, len, unit_word) && len < RD_PROM_NAME_MAX - 1) {
		/* A name of no valid character is "_": "_bytes", never "__". */
		if (out[len - 1] != '_')
			out[len++] = '_';
		append_clean(out, &len, unit_word, strlen(unit_word));
	}
	return len;
}

size_t rd_prom_label_name(const char *key, char *out)
{
	size_t len = 0;

	if (is_digit(key[0]))
		len = (size_t)stpcpy(out, "key_") - (size_t)out;
	else if (key[0] == '_' || !key[0])
		len = (size_t)stpcpy(out, "key") - (size_t)out;
	for (const char *p = key; *p && len < RD_PROM_NAME_MAX - 1; p++)
		out[len++] = name_char(*p) && *p != ':' ? *p : '_';
	out[len] = '\0';
	return len;
}
