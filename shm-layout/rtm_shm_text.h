/* SPDX-License-Identifier: MIT */
/*
 * rtm_shm_text.h - the text rules of the segment format, shared by the
 * producer (which refuses to write bad text) and the reader (which refuses
 * to export it: OTLP strings must be valid UTF-8, and collectors reject
 * instrument names outside the OTel syntax).
 */
#ifndef RTM_SHM_TEXT_H
#define RTM_SHM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) with no NUL. */
bool rtm_shm_utf8_valid(const char *s, size_t n);

/* Copies [s, s+n) to out (cap bytes, NUL-terminated, cut on a character
 * boundary to fit), each byte that does not start a valid UTF-8 sequence
 * (a NUL included) replaced by U+FFFD.  Returns the length written. */
size_t rtm_shm_utf8_repair(const char *s, size_t n, char *out, size_t cap);

/* s made safe for a terminal or a log into out (cap bytes, NUL-terminated,
 * cut to fit): control characters — C0 (ESC, BEL, CR, LF...), DEL and the
 * C1 range U+0080..U+009F — and bytes that are not UTF-8 are written as a
 * visible "\xNN".  Returns out. */
char *rtm_shm_text_visible(const char *s, char *out, size_t cap);

/* OTel instrument name: 1..255 bytes, an ASCII letter first, then
 * letters, digits, '_', '.', '-' and '/'. */
bool rtm_shm_name_valid(const char *s, size_t n);

/* Unit: 0..63 bytes of printable ASCII (UCUM case-sensitive codes and
 * OTel's "{annotation}" form). */
bool rtm_shm_unit_valid(const char *s, size_t n);

/* The value of hexadecimal digit c, or -1. */
int rtm_shm_hex_value(char c);

/* [s, s+n) trimmed of blanks and percent-decoded into a malloc'd string, as
 * the OTel specification encodes OTEL_RESOURCE_ATTRIBUTES and *_HEADERS
 * values; NULL when malformed (a % not followed by two hex digits, or %00,
 * which would cut the string short) or out of memory. */
char *rtm_shm_percent_decode(const char *s, size_t n);

#endif /* RTM_SHM_TEXT_H */
