/* SPDX-License-Identifier: MIT */
/*
 * rd_json.h - a small streaming JSON writer into a growable buffer, for
 * rtm-shmdump --json and the reader's OTLP/JSON stdout exporter.
 * Strings are escaped per RFC 8259; non-finite doubles, which JSON cannot
 * hold, are written as the strings "NaN", "Infinity" and "-Infinity" (the
 * protobuf JSON mapping's spelling).
 */
#ifndef RD_JSON_H
#define RD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RD_JSON_DEPTH 32

struct rd_json {
	char *buf;
	size_t len, cap;
	int depth;
	bool need_comma[RD_JSON_DEPTH];
	bool oom; /* an allocation failed; the output is incomplete */
};

/* key is NULL for array elements and the top-level value. */
void rd_json_obj_open(struct rd_json *j, const char *key);
void rd_json_obj_close(struct rd_json *j);
void rd_json_arr_open(struct rd_json *j, const char *key);
void rd_json_arr_close(struct rd_json *j);
void rd_json_str(struct rd_json *j, const char *key, const char *v);
void rd_json_int(struct rd_json *j, const char *key, int64_t v);
void rd_json_uint(struct rd_json *j, const char *key, uint64_t v);
/* 64-bit integer as a decimal string, as OTLP/JSON requires. */
void rd_json_uint_str(struct rd_json *j, const char *key, uint64_t v);
void rd_json_int_str(struct rd_json *j, const char *key, int64_t v);
void rd_json_double(struct rd_json *j, const char *key, double v);
void rd_json_bool(struct rd_json *j, const char *key, bool v);
void rd_json_null(struct rd_json *j, const char *key);
/* Empties the buffer for reuse; keeps its memory. */
void rd_json_reset(struct rd_json *j);
void rd_json_free(struct rd_json *j);

#endif /* RD_JSON_H */
