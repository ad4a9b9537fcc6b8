/* prom.h - metrics for Prometheus, as node_exporter's textfile collector
 * reads them (`upgrid status --prometheus FILE`, `upgrid fleet
 * --prometheus FILE`).
 *
 * The text exposition format, version 0.0.4: each metric family is a
 * "# HELP name text" line, a "# TYPE name gauge|counter" line, then its
 * samples, one a line:
 *
 *   name{label="value",...} 42
 *
 * Label values escape '\' as "\\", '"' as "\"" and a newline as "\n";
 * HELP texts escape '\' and newline. A label value that is not valid
 * UTF-8 (the format allows nothing else) has its bytes above 0x7f
 * replaced by '?'. Names are checked ([a-zA-Z_:][a-zA-Z0-9_:]* for
 * metrics, [a-zA-Z_][a-zA-Z0-9_]* for labels, no "__" prefix): a bad one
 * is a programming error, reported as -EINVAL by ug_prom_write.
 *
 * The text is built in memory (bounded by UG_PROM_MAX) and written in one
 * go by ug_prom_write: a temporary file in the target's directory, fsync,
 * rename over the target. node_exporter reads only files ending in
 * ".prom", and the temporary name (".ug.PID.RANDOM.tmp") is not one, so
 * a scrape sees the old file or the new one, never a partial one.
 *
 * Usage: ug_prom_init; for each family ug_prom_family then its samples
 * with ug_prom_sample / ug_prom_sample_u64; ug_prom_write;
 * ug_prom_release. The first error is kept and every later call is a
 * no-op, so callers check once, at the write. */
#ifndef UG_PROM_H
#define UG_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "util.h"

#define UG_PROM_MAX      (16u << 20)  /* bytes of one metrics text */
#define UG_PROM_NAME_MAX 128u         /* bytes of a metric or label name */
#define UG_PROM_LABELS_MAX 16u        /* labels on one sample */

enum ug_prom_type {
	UG_PROM_GAUGE,
	UG_PROM_COUNTER,     /* its name ends in "_total" */
};

struct ug_prom_label {
	const char *name;
	const char *value;
};

struct ug_prom {
	struct ug_buf out;
	char family[UG_PROM_NAME_MAX + 1];   /* the family samples go to ("": none) */
	int err;                             /* the first error, or 0 */
};

void ug_prom_init(struct ug_prom *p);
void ug_prom_release(struct ug_prom *p);

/* Start a family: its HELP and TYPE lines. The samples that follow belong
 * to it (the format wants a family's samples together, once). A counter's
 * name must end in "_total". */
void ug_prom_family(struct ug_prom *p, const char *name, enum ug_prom_type type,
		    const char *help);

/* One sample of the current family with nlabels labels (nlabels 0: none;
 * labels may then be NULL). A value that is not finite is written as the
 * format spells it (NaN, +Inf, -Inf). */
void ug_prom_sample(struct ug_prom *p, const struct ug_prom_label *labels, size_t nlabels,
		    double value);
/* The same with an exact integer (a version, a byte count, a time). */
void ug_prom_sample_u64(struct ug_prom *p, const struct ug_prom_label *labels,
			size_t nlabels, uint64_t value);

/* The text so far (NUL-terminated) and its length; NULL after an error. */
const char *ug_prom_text(const struct ug_prom *p, size_t *ret_len);

/* Write the text to path (relative to the working directory, or
 * absolute) atomically, mode 0644 (node_exporter runs as another user).
 * The directory must exist. Returns 0, the first building error
 * (-EINVAL, -E2BIG, -ENOMEM), or the write's -errno, with a message in
 * err that names path. */
int ug_prom_write(struct ug_prom *p, const char *path, struct ug_error *err);

/* Append value to b with the label value escaping above (for tests and
 * for callers building their own lines). */
int ug_prom_escape_label(struct ug_buf *b, const char *value);

#endif
