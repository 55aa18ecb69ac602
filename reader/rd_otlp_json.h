/* SPDX-License-Identifier: MIT */
/*
 * rd_otlp_json.h - OTLP/JSON encoding of an export request, as the OTLP
 * specification defines it: lowerCamelCase field names, enums as integers,
 * 64-bit integers (timestamps, counts, asInt) as decimal strings, default
 * values omitted.  Used by the stdout exporter and for http/json.
 */
#ifndef RD_OTLP_JSON_H
#define RD_OTLP_JSON_H

#include "rd_json.h"
#include "rd_otlp.h"

void rd_otlp_json(struct rd_json *j, const otlp_req *req);

#endif /* RD_OTLP_JSON_H */
