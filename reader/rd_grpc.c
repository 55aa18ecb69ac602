/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "rd_grpc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grpc_status.pb-c.h"
#include "rtm_shm_text.h"

#define RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"
#define MAX_RETRY_DELAY_NS (3600ull * 1000000000ull)

void rd_grpc_reply_reset(struct rd_grpc_reply *r)
{
	r->status = -1;
	r->message[0] = '\0';
	r->has_retry_info = false;
	r->retry_delay_ns = 0;
	r->details[0] = '\0';
	r->truncated_details = false;
}

/* grpc-message is percent-encoded UTF-8; what reaches the log is printable
 * ASCII only (a server's message must not put escapes on a terminal). */
static void set_message(struct rd_grpc_reply *r, const char *v, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < sizeof r->message; i++) {
		int c = (unsigned char)v[i];

		if (c == '%' && i + 2 < n && rtm_shm_hex_value(v[i + 1]) >= 0 && rtm_shm_hex_value(v[i + 2]) >= 0) {
			c = rtm_shm_hex_value(v[i + 1]) * 16 + rtm_shm_hex_value(v[i + 2]);
			i += 2;
		}
		r->message[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	r->message[o] = '\0';
}

/* A field's value: after "name:", blanks trimmed, without the line end. */
static bool field(const char *line, size_t len, const char *name, const char **v, size_t *vn)
{
	size_t k = strlen(name);

	if (len <= k || strncasecmp(line, name, k) || line[k] != ':')
		return false;
	line += k + 1;
	len -= k + 1;
	while (len && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
		len--;
	*v = line;
	*vn = len;
	return true;
}

bool rd_grpc_header(struct rd_grpc_reply *r, const char *line, size_t len)
{
	const char *v;
	size_t n;

	if (field(line, len, "grpc-status", &v, &n)) {
		int s = 0;

		/* Digits only; anything else is a status we cannot read. */
		for (size_t i = 0; i < n && s >= 0; i++)
			s = v[i] >= '0' && v[i] <= '9' && s < 100000 ? s * 10 + (v[i] - '0') : -2;
		r->status = n && s >= 0 ? s : RD_GRPC_UNKNOWN;
		return true;
	}
	if (field(line, len, "grpc-message", &v, &n)) {
		set_message(r, v, n);
		return true;
	}
	if (field(line, len, "grpc-status-details-bin", &v, &n)) {
		r->truncated_details = n >= sizeof r->details;
		if (!r->truncated_details) {
			memcpy(r->details, v, n);
			r->details[n] = '\0';
		}
		return true;
	}
	return false;
}

/* -bin values are base64, padded or not (PROTOCOL-HTTP2.md). */
static int unbase64(const char *in, uint8_t **out, size_t *n)
{
	size_t len = strlen(in), pad = (4 - len % 4) % 4;
	char *padded;
	size_t eq = 0;
	int got;

	if (pad == 3 || !len)
		return -EINVAL;
	padded = malloc(len + pad + 1);
	*out = malloc((len + pad) / 4 * 3 + 1);
	if (!padded || !*out) {
		free(padded);
		free(*out);
		return -ENOMEM;
	}
	memcpy(padded, in, len);
	memset(padded + len, '=', pad);
	padded[len + pad] = '\0';
	got = EVP_DecodeBlock(*out, (const unsigned char *)padded, (int)(len + pad));
	/* EVP_DecodeBlock counts the padding's zero bytes too. */
	for (size_t i = len + pad; i > 0 && padded[i - 1] == '='; i--)
		eq++;
	free(padded);
	if (got < 0 || (size_t)got < eq) {
		free(*out);
		return -EINVAL;
	}
	*n = (size_t)got - eq;
	return 0;
}

void rd_grpc_reply_finish(struct rd_grpc_reply *r)
{
	Google__Rpc__Status *st;
	uint8_t *raw;
	size_t n;

	if (!r->details[0] || unbase64(r->details, &raw, &n))
		return;
	st = google__rpc__status__unpack(NULL, n, raw);
	free(raw);
	if (!st)
		return;
	for (size_t i = 0; i < st->n_details; i++) {
		Google__Rpc__Any *a = st->details[i];
		Google__Rpc__RetryInfo *ri;

		if (!a->type_url || strcmp(a->type_url, RETRY_INFO_TYPE))
			continue;
		ri = google__rpc__retry_info__unpack(NULL, a->value.len, a->value.data);
		if (!ri)
			continue;
		if (ri->retry_delay && ri->retry_delay->seconds >= 0 && ri->retry_delay->nanos >= 0) {
			uint64_t s = (uint64_t)ri->retry_delay->seconds;

			r->retry_delay_ns = s >= MAX_RETRY_DELAY_NS / 1000000000u ? MAX_RETRY_DELAY_NS :
				s * 1000000000u + (uint64_t)ri->retry_delay->nanos % 1000000000u;
			r->has_retry_info = true;
		}
		google__rpc__retry_info__free_unpacked(ri, NULL);
	}
	google__rpc__status__free_unpacked(st, NULL);
}

void rd_grpc_prefix(uint8_t out[5], bool compressed, uint32_t len)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

int rd_grpc_unframe(const uint8_t *body, size_t n, const uint8_t **msg, size_t *len,
		    bool *compressed)
{
	uint32_t l;

	if (!n)
		return -ENODATA;
	if (n < 5 || body[0] > 1)
		return -EINVAL;
	l = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 | (uint32_t)body[3] << 8 | body[4];
	if (l > n - 5)
		return -EINVAL;
	*msg = body + 5;
	*len = l;
	*compressed = body[0] == 1;
	return 0;
}

bool rd_grpc_retryable(int s, bool has_retry_info)
{
	switch (s) {
	case RD_GRPC_CANCELLED:
	case RD_GRPC_DEADLINE_EXCEEDED:
	case RD_GRPC_ABORTED:
	case RD_GRPC_OUT_OF_RANGE:
	case RD_GRPC_UNAVAILABLE:
	case RD_GRPC_DATA_LOSS:
		return true;
	case RD_GRPC_RESOURCE_EXHAUSTED:
		return has_retry_info;
	default:
		return false;
	}
}

const char *rd_grpc_code_name(int s, char *buf, size_t n)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};

	if (s >= 0 && (size_t)s < sizeof names / sizeof names[0])
		return names[s];
	snprintf(buf, n, "code %d", s);
	return buf;
}
