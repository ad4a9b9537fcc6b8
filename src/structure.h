/* structure.h - the structural view of config and data files: what keys,
 * sections and columns a file has, and what changed between two versions
 * of it. The strategy manifest records that change per file (see
 * upgrid-manifest(5), STRUCTURE) and the action follows from it: a config
 * file whose keys or sections change is merged, a table whose columns
 * change is migrated, anything else is patched or replaced.
 *
 * Formats:
 *   - config (class config): one parser for INI and key=value files
 *     (.conf, .properties, .env). "[name]" opens a section; "key = value"
 *     or "key: value" (the first '=' or ':' separates); an "export "
 *     prefix is dropped; a value in "..." (where \" and \\ are escapes) or
 *     '...' is unquoted; lines starting with ';', '#' or '!' are comments.
 *     Keys before any header are in section "". A file without a header is
 *     UG_STRUCT_KV, otherwise UG_STRUCT_INI. A header repeated later
 *     continues the same section (merged, as git and systemd read them);
 *     a key repeated within a section is an error.
 *   - data (class data): CSV (RFC 4180: "..." quoting with "" for a quote,
 *     fields may hold ',' and newlines; CRLF or LF) and TSV (fields split
 *     on tabs, no quoting); both start with a header row. Empty lines are
 *     not records.
 *
 * Every parser is a trust boundary: input is a memory buffer of at most
 * UG_STRUCT_FILE_MAX bytes (more: -E2BIG, nothing read), anything that is
 * not well formed is -EBADMSG with the line in err ("line 3: unterminated
 * quoted field"), and memory stays within a small multiple of the input.
 * A caller that gets either error treats the file as binary.
 *
 * The parsers are written here rather than taken from inih or libcsv:
 * inih (as packaged) silently truncates lines at 200 bytes, stops at a NUL,
 * reports no positions and knows neither quotes nor "export"; libcsv
 * reports no line numbers; neither gives the line spans that a 3-way merge
 * needs. */
#ifndef UG_STRUCTURE_H
#define UG_STRUCTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "rules.h"
#include "types.h"
#include "util.h"

/* Limits on everything a parser reads. */
#define UG_STRUCT_FILE_MAX     (64u << 20) /* bytes of a file given a structural view */
#define UG_STRUCT_LINE_MAX     (1u << 20)  /* bytes in one line (its newline excluded) */
#define UG_STRUCT_KEYS_MAX     100000u     /* keys in a config file */
#define UG_STRUCT_SECTIONS_MAX 10000u      /* distinct sections in a config file */
#define UG_STRUCT_COLUMNS_MAX  10000u      /* fields in one CSV/TSV record */
#define UG_STRUCT_NAME_MAX     4096u       /* bytes in a section, key or column name */

enum ug_struct_format {
	UG_STRUCT_NONE = 0, /* no structural view */
	UG_STRUCT_KV,       /* key=value lines, no section header */
	UG_STRUCT_INI,      /* with at least one [section] header */
	UG_STRUCT_CSV,
	UG_STRUCT_TSV,
	UG_STRUCT__COUNT
};

/* "kv", "ini", "csv", "tsv" ("none" for UG_STRUCT_NONE); from_name
 * accepts only the four real formats. */
const char *ug_struct_format_name(enum ug_struct_format f);
int ug_struct_format_from_name(const char *s, enum ug_struct_format *ret);

/* The parser for a file: UG_STRUCT_INI (the config parser, which reports
 * KV or INI) for class config; UG_STRUCT_TSV for class data whose name
 * ends in ".tsv" (any case), else UG_STRUCT_CSV; UG_STRUCT_NONE for
 * binary and preserve. */
enum ug_struct_format ug_struct_format_for(enum ug_class cls, const char *path);

/* ---- config files ------------------------------------------------------ */

struct ug_conf_section {
	char *name;       /* "" for the keys before the first header */
	size_t line;      /* line of its first header (1-based); 0 for "" */
	size_t nheaders;  /* header lines naming it (> 1: merged); 0 for "" */
	size_t nkeys;
};

struct ug_conf_entry {
	size_t section;   /* index in sections[] */
	char *key;
	char *value;      /* as a program reads it: trimmed, unquoted */
	size_t line;      /* 1-based */
	size_t off, len;  /* the whole line in the file, its newline included */
	size_t value_off, value_len; /* the value as written (with its quotes) */
	char quote;       /* '"', '\'' or 0 */
};

struct ug_conf_index;

/* Everything a 3-way merge needs: entries in file order with their lines
 * and byte spans, so a merge can rewrite values in place and keep the
 * comments and layout of the terminal's copy. */
struct ug_conf {
	enum ug_struct_format format;     /* UG_STRUCT_KV or UG_STRUCT_INI */
	struct ug_conf_section *sections; /* order of first appearance; [0] is "" */
	size_t nsections;
	struct ug_conf_entry *entries;    /* file order */
	size_t nentries;
	size_t nlines;
	bool bom;                         /* began with a UTF-8 BOM (skipped) */
	bool crlf;                        /* the first line ends with CRLF */
	struct ug_conf_index *index;      /* private: lookups */
};

/* Parse a config file. Names (sections, keys) must be valid UTF-8 without
 * control characters, at most UG_STRUCT_NAME_MAX bytes; values may hold
 * any byte but NUL. An empty file is valid (format KV, no keys). */
int ug_conf_parse(const void *data, size_t len, struct ug_conf **ret,
		  struct ug_error *err);
void ug_conf_free(struct ug_conf *c);
/* Index of the section called name in c->sections, or -1. */
ssize_t ug_conf_section_find(const struct ug_conf *c, const char *name);
/* The entry for key in section (section "" for the keys before any
 * header), or NULL. */
const struct ug_conf_entry *ug_conf_get(const struct ug_conf *c, const char *section,
					const char *key);

/* ---- data files -------------------------------------------------------- */

/* The table keeps its header only; rows are streamed from the bytes again
 * with a ug_table_reader, so a 64 MiB table never becomes a 1 GiB tree. */
struct ug_table {
	enum ug_struct_format format; /* UG_STRUCT_CSV or UG_STRUCT_TSV */
	char **columns;               /* the header, in file order; unique */
	size_t ncolumns;              /* 0 only for an empty file */
	size_t nrows;                 /* records after the header */
	size_t body_off;              /* byte offset just past the header record */
	bool bom;                     /* began with a UTF-8 BOM (skipped) */
	bool crlf;                    /* the header ends with CRLF */
	size_t *sorted;               /* private: column indices by name */
};

/* Parse and check a whole table: every record has as many fields as the
 * header, column names are unique, valid UTF-8 without control
 * characters, at most UG_STRUCT_NAME_MAX bytes. A file that holds no
 * record at all (empty, or only empty lines) is valid: no columns, no
 * rows. fmt is UG_STRUCT_CSV or UG_STRUCT_TSV. */
int ug_table_parse(enum ug_struct_format fmt, const void *data, size_t len,
		   struct ug_table **ret, struct ug_error *err);
void ug_table_free(struct ug_table *t);
/* Index of the column called name, or -1. */
ssize_t ug_table_column(const struct ug_table *t, const char *name);

/* One record, valid until the next call on its reader. */
struct ug_table_record {
	size_t line;                 /* line where it starts (1-based) */
	size_t nfields;
	const char *const *fields;   /* unescaped, NUL-terminated */
	const size_t *lens;
};

/* A streaming record reader over a buffer; embed it, members private. */
struct ug_table_reader {
	enum ug_struct_format format;
	const unsigned char *data;
	size_t len, off, line;
	bool crlf;                   /* the last record ended with CRLF */
	struct ug_buf scratch;       /* unescaped fields of the current record */
	size_t *starts;              /* offset of each field in scratch */
	const char **fields;
	size_t *lens;
	size_t nalloc;
};

void ug_table_reader_init(struct ug_table_reader *rd, enum ug_struct_format fmt,
			  const void *data, size_t len);
/* Next record (the header first): 1 and *ret filled, 0 at the end, or
 * -EBADMSG (err names the line), -ENOMEM. Checks the syntax only (not
 * the field count against the header, which ug_table_parse does). */
int ug_table_reader_next(struct ug_table_reader *rd, struct ug_table_record *ret,
			 struct ug_error *err);
void ug_table_reader_release(struct ug_table_reader *rd);

/* ---- the change between two versions ----------------------------------- */

struct ug_strpair {
	char *a;
	char *b;
};

/* What changed in one file from the parent version. Lists keep the order
 * of the file they come from: added and changed names in the new file's
 * order, removed ones in the old file's order. */
struct ug_struct_diff {
	enum ug_struct_format format;  /* of the new content */
	/* config: a section or key added or removed; data: the columns
	 * differ in any way (added, removed, renamed or reordered) */
	bool structural;
	/* config: a key's value changed; data: a row was added or removed,
	 * or a value of a column both versions have changed */
	bool content;

	/* config (kv, ini); the "" section is never listed as a section */
	char **sections_added;
	size_t nsections_added;
	char **sections_removed;
	size_t nsections_removed;
	struct ug_strpair *keys_added;    /* (section, key) */
	size_t nkeys_added;
	struct ug_strpair *keys_removed;
	size_t nkeys_removed;
	struct ug_strpair *keys_changed;  /* value differs */
	size_t nkeys_changed;

	/* data (csv, tsv) */
	char **columns;                   /* the new header */
	size_t ncolumns;
	char **columns_added;
	size_t ncolumns_added;
	char **columns_removed;
	size_t ncolumns_removed;
	struct ug_strpair *columns_renamed; /* (old, new), new header order */
	size_t ncolumns_renamed;
	bool reordered;                   /* kept columns changed relative order */
};

void ug_struct_diff_free(struct ug_struct_diff *d);

/* Diff of two parsed config files; ret->format is b's. */
int ug_conf_diff(const struct ug_conf *a, const struct ug_conf *b,
		 struct ug_struct_diff **ret);

/* Diff of two parsed tables, with their bytes (the rows are compared by
 * streaming both). A column is renamed only by a rule: when an old column
 * that the new header lacks and a new column that the old header lacks
 * are named by one of renames (the first such rule wins); without a rule
 * they are one removal and one addition. Rows are compared by position on
 * the columns both versions have (kept or renamed). */
int ug_table_diff(const struct ug_table *a, const void *a_data, size_t a_len,
		  const struct ug_table *b, const void *b_data, size_t b_len,
		  const struct ug_column_rename *renames, size_t nrenames,
		  struct ug_struct_diff **ret, struct ug_error *err);

/* Parse the old and new content of the file at path (class cls), and
 * diff them. -EINVAL for a class without a structural view; -E2BIG if
 * either side is over UG_STRUCT_FILE_MAX; -EBADMSG if either side is
 * malformed, err saying which ("new version: line 3: unterminated quoted
 * field"). On any of these the caller treats the file as binary. */
int ug_struct_compare(enum ug_class cls, const char *path,
		      const void *old_data, size_t old_len,
		      const void *new_data, size_t new_len,
		      const struct ug_column_rename *renames, size_t nrenames,
		      struct ug_struct_diff **ret, struct ug_error *err);

/* The action for a changed file of class cls whose structural diff is d
 * (NULL: none, e.g. a new file or one that failed to parse). preserve:
 * preserve; config with a structural change: merge; data with a structural
 * change: migrate; anything else: patch if has_deltas, else replace. */
enum ug_action ug_struct_action(enum ug_class cls, const struct ug_struct_diff *d,
				bool has_deltas);

#endif
