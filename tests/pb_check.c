/* SPDX-License-Identifier: MIT */
#include "pb_check.h"

#include "rtm_shm_text.h"

/* Which fields of each kind are strings, and which are messages. */
static const struct {
	uint32_t strs;
	uint32_t msgs;
	enum pb_kind sub[16];
} kinds[] = {
	[PB_FAMILY] = { .strs = 1u << 1 | 1u << 2, .msgs = 1u << 4, .sub = { [4] = PB_METRIC } },
	[PB_METRIC] = { .msgs = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 7,
			.sub = { [1] = PB_LABEL, [2] = PB_LEAF, [3] = PB_LEAF, [7] = PB_HIST } },
	[PB_LABEL] = { .strs = 1u << 1 | 1u << 2 },
	[PB_HIST] = { .msgs = 1u << 3 | 1u << 9 | 1u << 12,
		      .sub = { [3] = PB_LEAF, [9] = PB_LEAF, [12] = PB_LEAF } },
	[PB_LEAF] = { 0 },
};

bool pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	*v = 0;
	for (int sh = 0; *p < end && sh < 64; sh += 7) {
		unsigned char c = *(*p)++;

		*v |= (uint64_t)(c & 0x7f) << sh;
		if (!(c & 0x80))
			return true;
	}
	return false;
}

bool pb_message_ok(const unsigned char *p, const unsigned char *end, enum pb_kind k)
{
	while (p < end) {
		uint64_t tag, v, field;

		if (!pb_varint(&p, end, &tag))
			return false;
		field = tag >> 3;
		switch (tag & 7) {
		case 0:
			if (!pb_varint(&p, end, &v))
				return false;
			break;
		case 1:
			if (end - p < 8)
				return false;
			p += 8;
			break;
		case 2:
			if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return false;
			if (field < 32 && (kinds[k].strs >> field & 1) &&
			    !rtm_shm_utf8_valid((const char *)p, (size_t)v))
				return false;
			if (field < 16 && (kinds[k].msgs >> field & 1) &&
			    !pb_message_ok(p, p + v, kinds[k].sub[field]))
				return false;
			p += v;
			break;
		default:
			return false;
		}
	}
	return true;
}

bool pb_page_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		uint64_t len;

		if (!pb_varint(&p, end, &len) || len > (uint64_t)(end - p) ||
		    !pb_message_ok(p, p + len, PB_FAMILY))
			return false;
		p += len;
	}
	return true;
}
