/* SPDX-License-Identifier: MIT */
#include "rtm_shm_text.h"

#include "rtm_shm.h"

#include <stdlib.h>
#include <string.h>

bool rtm_shm_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		/* Shortest form only, no surrogates, nothing past U+10FFFF. */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool rtm_shm_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > RTM_SHM_NAME_MAX || !is_alpha(s[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];
		if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '_' &&
		    c != '.' && c != '-' && c != '/')
			return false;
	}
	return true;
}

bool rtm_shm_unit_valid(const char *s, size_t n)
{
	if (n > RTM_SHM_UNIT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7E)
			return false;
	return true;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t seq_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 :
		     s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;

	return len && len <= n && rtm_shm_utf8_valid((const char *)s, len) ? len : 0;
}

size_t rtm_shm_utf8_repair(const char *str, size_t n, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, o = 0;

	if (!cap)
		return 0;
	while (i < n) {
		size_t len = seq_len(s + i, n - i);
		const char *put = len ? str + i : "\xef\xbf\xbd";
		size_t k = len ? len : 3;

		if (o + k > cap - 1)
			break;
		for (size_t j = 0; j < k; j++)
			out[o++] = put[j];
		i += len ? len : 1;
	}
	out[o] = '\0';
	return o;
}

char *rtm_shm_text_visible(const char *str, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), i = 0, o = 0;

	if (!cap)
		return out;
	while (i < n) {
		size_t len = seq_len(s + i, n - i);
		bool c1 = len == 2 && s[i] == 0xC2 && s[i + 1] < 0xA0;

		if (!len || c1 || s[i] < 0x20 || s[i] == 0x7F) {
			size_t k = c1 ? 2 : 1;

			if (o + 4 * k > cap - 1)
				break;
			for (size_t j = 0; j < k; j++) {
				out[o++] = '\\';
				out[o++] = 'x';
				out[o++] = hex[s[i + j] >> 4];
				out[o++] = hex[s[i + j] & 15];
			}
			i += k;
			continue;
		}
		if (o + len > cap - 1)
			break;
		for (size_t j = 0; j < len; j++)
			out[o++] = (char)s[i++];
	}
	out[o] = '\0';
	return out;
}

int rtm_shm_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *rtm_shm_percent_decode(const char *s, size_t n)
{
	char *out, *o;

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	out = o = malloc(n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		hi = i + 2 < n ? rtm_shm_hex_value(s[i + 1]) : -1;
		lo = i + 2 < n ? rtm_shm_hex_value(s[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(out);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*o = '\0';
	return out;
}
