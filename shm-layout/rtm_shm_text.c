/* SPDX-License-Identifier: MIT */
#include "rtm_shm_text.h"

#include "rtm_shm.h"

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
