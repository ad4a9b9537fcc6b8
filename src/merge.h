/* merge.h - what a terminal does for the actions "merge" (class config)
 * and "migrate" (class data) of upgrid-manifest(5): a 3-way merge of a
 * config file that keeps the terminal's local edits, and a migration of
 * a table's rows onto the new version's columns.
 *
 * Both work on memory buffers of at most UG_STRUCT_FILE_MAX bytes each,
 * parsed with the parsers of structure.h, and append the result to a
 * caller's ug_buf. They never touch a file: the caller writes the result
 * with ug_file_write_atomic. On any error (-EBADMSG for an input that
 * does not parse, naming which one: "local copy: line 3: ..."; -E2BIG
 * for an input or a result over UG_STRUCT_FILE_MAX; -ENOMEM) nothing is
 * appended and the report is untouched: the caller keeps the terminal's
 * file as it is and fails the install of that version (the version is
 * not half installed with one file left unmerged).
 *
 * ---- merge (config) ---------------------------------------------------
 *
 * Inputs: the pristine copy the terminal installed (base: the file as
 * the old version had it, which the terminal keeps beside the live
 * one), the terminal's current file (local: maybe edited on the
 * terminal), and the new version's file (next). A key is named by
 * (section, key); values are compared as a program reads them (unquoted,
 * trimmed), so requoting a value is not a change. Per key:
 *
 *   base     local          next           result                 count
 *   -------  -------------  -------------  ---------------------  -----------
 *   v        v              w              w (upstream change)    updated
 *   v        u              v              u (local edit)         kept_local
 *   v        -              v              - (local deletion)     kept_local
 *   v        u              u              u (same change)        updated
 *   v        u              w              prefer's side          conflict
 *   v        -              w              prefer's side          conflict
 *   -        -              w              w (new key)            added
 *   -        w              w              w (same addition)      added
 *   -        u              w              prefer's side          conflict
 *   v        v              -              - (removed upstream)   removed
 *   v        u              -              - (removed upstream)   conflict
 *   -        u              -              u (the terminal's)     local_added
 *   v        v              v              v                      (none)
 *
 * ("-": the file has no such key). Each key is counted once at most. A
 * key upstream removed is removed even when the terminal had edited it,
 * whatever prefer says: the new version's program no longer reads it
 * (or reads it elsewhere), and the edit is reported as a conflict with
 * upstream_value NULL so an operator can carry it over by hand.
 *
 * The result is the new file's text: its comments, blank lines, key
 * order, quoting, line ends (CRLF stays CRLF) and byte order mark. Where
 * the local value wins, only the value's bytes on next's line are
 * replaced: by the local value as the terminal wrote it when it was
 * quoted, else in next's quoting (double quotes with \" and \\ escapes
 * when single quotes cannot hold it, or when the value would not read
 * back the same unquoted). A line the terminal deleted is left out.
 *
 * Keys the terminal added (in local only) are kept, as the terminal
 * wrote the line (its indentation replaced by that of the key above):
 * after the last key of their section in next; in a section that next
 * has but without keys, just after its header; in the "" section of an
 * INI file whose "" section has no keys, just before the first header.
 * A section that next does not have (added on the terminal, or removed
 * upstream but holding keys the terminal added) is appended at the end,
 * after a blank line, with those keys, in local order; a section the
 * terminal added without keys is carried the same way. Sections are not
 * otherwise kept: a section removed upstream goes with its keys.
 *
 * Before returning, the result is parsed again and every key checked
 * against the value the merge chose: a result that would not read back
 * as intended (a line over UG_STRUCT_LINE_MAX after quoting, more than
 * UG_STRUCT_KEYS_MAX keys) is -EBADMSG ("merged result: ..."), never
 * written.
 *
 * ---- migrate (data) ---------------------------------------------------
 *
 * The result has the new file's header exactly as next writes it (with
 * its byte order mark and quoting) and then every row of the terminal's
 * copy, in order, with its fields moved to the column of the same name
 * (or of a renamed column, see ug_merge_table_renames); a column that
 * only next has gets an empty field, a column that only local has is
 * dropped. The rows of next are NOT added: the terminal's rows are the
 * truth of that terminal (meter readings, a local price list) and next's
 * rows are only the publisher's sample of the new layout. Fields are
 * written in RFC 4180 form (quoted when they hold ',', '"', CR or LF, or
 * when the only field of a row is empty, which would otherwise be an
 * empty line and no record), lines end as next's header does. A TSV
 * field cannot hold a tab or line feed, nor end in CR when it ends a
 * line with LF endings: such a row is -EBADMSG. A local copy without
 * rows, or empty, gives next's header alone. A next without a header
 * (empty) cannot take rows: -EBADMSG if local has any, else next's text.
 * Memory: one record at a time besides the result; the result is parsed
 * again and must have next's columns and as many rows as local.
 */
#ifndef UG_MERGE_H
#define UG_MERGE_H

#include <stddef.h>

#include "buf.h"
#include "rules.h"
#include "structure.h"
#include "util.h"

/* Who wins when both sides changed one key to different values. */
enum ug_merge_prefer {
	UG_MERGE_PREFER_LOCAL = 0,  /* the default: the terminal's edit stays */
	UG_MERGE_PREFER_UPSTREAM,
};

enum ug_merge_side {
	UG_MERGE_LOCAL = 0,
	UG_MERGE_UPSTREAM,
};

struct ug_merge_conflict {
	char *section;        /* "" for the keys before any header */
	char *key;
	char *local_value;    /* NULL: the terminal had deleted the key */
	char *upstream_value; /* NULL: upstream removed the key */
	enum ug_merge_side winner;
};

/* Counts of keys, each key in one at most (see the table above). */
struct ug_merge_report {
	size_t updated;
	size_t kept_local;
	size_t added;
	size_t removed;
	size_t local_added;
	size_t nconflicts;
	struct ug_merge_conflict *conflicts; /* in next's order, then removals in base's */
};

/* Frees the conflicts and zeroes the counts; a zeroed report is fine. */
void ug_merge_report_release(struct ug_merge_report *rep);

/* Merge as described above and append the result to out (its cap is the
 * caller's; past it -E2BIG). rep may be NULL; when given it is
 * overwritten on success (release a used one first). */
int ug_merge_config(const void *base, size_t base_len,
		    const void *local, size_t local_len,
		    const void *next, size_t next_len,
		    enum ug_merge_prefer prefer,
		    struct ug_buf *out, struct ug_merge_report *rep,
		    struct ug_error *err);

/* Room for any line ug_merge_conflict_format writes, NUL included. */
#define UG_MERGE_CONFLICT_LINE_MAX 1024u

/* One log line (no newline) for a conflict, e.g.
 *   merge conflict: [net] timeout: local '30', upstream '60': kept the local value
 *   merge conflict: old_key: local '5', upstream removed the key: removed it
 * Names and values are cut at 64 bytes ("...") and bytes that are not
 * printable ASCII, quote or backslash are escaped as \xNN, so a hostile
 * value cannot forge log lines. Writes at most size bytes (NUL included;
 * cut if short) and returns the length it wrote. */
size_t ug_merge_conflict_format(const struct ug_merge_conflict *c, char *out, size_t size);

/* ---- migrate ----------------------------------------------------------- */

struct ug_merge_table_report {
	size_t rows;            /* rows written: all of local's */
	size_t columns_kept;    /* next's columns filled from local (renamed included) */
	size_t columns_renamed; /* of those, filled from a renamed column */
	size_t columns_added;   /* next's columns with no local source: empty */
	size_t columns_dropped; /* local's columns next has no place for */
};

/* Migrate as described above (fmt: UG_STRUCT_CSV or UG_STRUCT_TSV, else
 * -EINVAL) and append the result to out. rep may be NULL; it is written
 * only on success. */
int ug_merge_table(const void *local, size_t local_len,
		   const void *next, size_t next_len,
		   enum ug_struct_format fmt, struct ug_buf *out,
		   struct ug_merge_table_report *rep, struct ug_error *err);

/* The same, with the rename-column rules that the manifest records for
 * the file (files[].structure.columns_renamed, as (old, new) pairs): a
 * column of next that local lacks takes the fields of the old column a
 * rename names, when local has that column and next does not (the rule
 * of ug_table_diff; the first such rename wins, each column takes part
 * in one at most). */
int ug_merge_table_renames(const void *local, size_t local_len,
			   const void *next, size_t next_len,
			   enum ug_struct_format fmt,
			   const struct ug_column_rename *renames, size_t nrenames,
			   struct ug_buf *out, struct ug_merge_table_report *rep,
			   struct ug_error *err);

#endif
