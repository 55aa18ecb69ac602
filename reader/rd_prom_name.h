/* SPDX-License-Identifier: MIT */
/*
 * rd_prom_name.h - OpenTelemetry names and units as Prometheus names, per
 * the OTel specification "Prometheus and OpenMetrics compatibility" (and as
 * the OTel Collector's Prometheus exporter spells them, so dashboards and
 * rules carry over):
 *
 *   name   every character outside [a-zA-Z0-9_:] becomes '_', runs of '_'
 *          collapse to one, leading and trailing '_' go, a leading digit
 *          gets a '_' in front:  process.cpu.time -> process_cpu_time
 *   unit   UCUM to words appended as a suffix unless the name already ends
 *          in it: By -> bytes, s -> seconds, By/s -> bytes_per_second;
 *          "{...}" annotations add nothing; "1" is "ratio" for gauges only
 *   total  monotonic sums (Prometheus counters) end in _total; the family
 *          name returned here is without it (OpenMetrics' counter family
 *          name), the renderer appends it to the samples
 *   labels invalid characters become '_'; a key starting with a digit gets
 *          "key_" in front, one starting with '_' gets "key" (Prometheus
 *          reserves "__")
 */
#ifndef RD_PROM_NAME_H
#define RD_PROM_NAME_H

#include <stddef.h>

enum rd_prom_type { RD_PROM_COUNTER, RD_PROM_GAUGE, RD_PROM_HISTOGRAM };

/* Longest name the renderer produces; longer OTel names are cut (they are
 * at most 255 bytes, units 63: this holds both with room to spare). */
#define RD_PROM_NAME_MAX 512

/*
 * rd_prom_family_name - the Prometheus family name of an OTel metric of
 * the given type into out (RD_PROM_NAME_MAX bytes), and the unit word into
 * unit_word (RD_PROM_NAME_MAX bytes; "" when the unit adds nothing).  The
 * unit word is what OpenMetrics' "# UNIT" line carries: the family name
 * ends in "_<unit_word>" whenever unit_word is not empty.  Returns the
 * length of out.
 */
size_t rd_prom_family_name(const char *name, const char *unit, enum rd_prom_type type,
			   char *out, char *unit_word);

/* The Prometheus label name for an attribute key into out
 * (RD_PROM_NAME_MAX bytes).  Returns its length. */
size_t rd_prom_label_name(const char *key, char *out);

#endif /* RD_PROM_NAME_H */
