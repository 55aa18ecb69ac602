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

/* OTel instrument name: 1..255 bytes, an ASCII letter first, then
 * letters, digits, '_', '.', '-' and '/'. */
bool rtm_shm_name_valid(const char *s, size_t n);

/* Unit: 0..63 bytes of printable ASCII (UCUM case-sensitive codes and
 * OTel's "{annotation}" form). */
bool rtm_shm_unit_valid(const char *s, size_t n);

#endif /* RTM_SHM_TEXT_H */
