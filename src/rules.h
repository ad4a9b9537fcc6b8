/* rules.h - .upgrid/rules: which files are published and in which class.
 *
 * One rule per line: "ACTION PATTERN", where ACTION is exclude, include,
 * binary, config, data or preserve, and PATTERN is a gitignore-style glob:
 *   - '*' matches within one path component, '?' one character, [a-z] and
 *     [!a-z] a set; a '**' component matches any number of components
 *     (a leading, trailing or middle "**" as in gitignore);
 *   - a pattern without '/' (other than a trailing one) matches the basename
 *     at any depth; with a '/' it is anchored at the tree root (a leading '/'
 *     is optional);
 *   - a trailing '/' matches only directories (and so everything below).
 * '#' starts a comment line; blank lines are ignored. For each path the LAST
 * matching rule of each kind wins (exclude/include decide publication, the
 * class rules decide the class), as in gitignore. Built-in defaults come
 * first and can be overridden: .upgrid/ is always excluded; editor and
 * temp files (*.swp, *.swx, *~, .#*, *.tmp, #*#) are excluded; *.ini,
 * *.conf, *.cfg, *.properties, *.env, .env are config; *.csv, *.tsv data.
 *
 * One more rule says that a column of a data file was renamed, so that the
 * structural diff (structure.h) records a rename instead of a removal and
 * an addition:
 *   rename-column PATTERN OLD NEW
 * PATTERN is one word (a blank in it escaped with '\'), matched like a
 * class rule (the file or a directory above it); OLD and NEW are words or
 * "double-quoted" strings in which \" and \\ stand for '"' and '\'. */
#ifndef UG_RULES_H
#define UG_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "types.h"
#include "util.h"

#define UG_RULES_PATH ".upgrid/rules"
#define UG_RULES_FILE_MAX (1u << 20)

struct ug_rules;

/* Parse rules text (defaults are prepended). Errors name the line:
 * "line 3: unknown rule 'exlude'". */
int ug_rules_parse(const char *text, size_t len, struct ug_rules **ret,
		   struct ug_error *err);
/* Read .upgrid/rules under treefd (no symlinks followed); a missing file
 * gives the defaults. */
int ug_rules_load(int treefd, struct ug_rules **ret, struct ug_error *err);
void ug_rules_free(struct ug_rules *r);

/* path is excluded if it, or any directory above it, is excluded (as in
 * gitignore, a later include cannot re-include a path below an excluded
 * directory: the walk never enters it). Any component named ".upgrid" is
 * excluded whatever the rules say. */
bool ug_rules_excluded(const struct ug_rules *r, const char *path, bool is_dir);
/* The same verdict for path alone, for a walk that has already checked
 * (and entered) every directory above it: O(rules) instead of
 * O(depth x rules). Added for scan.c. */
bool ug_rules_excluded_leaf(const struct ug_rules *r, const char *path, bool is_dir);
/* The class of the regular file at path: the last class rule that matches
 * the file, or any directory above it, wins; default UG_CLASS_BINARY. */
enum ug_class ug_rules_class(const struct ug_rules *r, const char *path);

/* The glob matcher itself (pattern already stripped of leading '/' and
 * trailing '/'): true if the whole path matches. A trailing "**" component
 * matches one or more components, so it does not match the directory it
 * follows. Malformed syntax that the parser refuses (an unterminated '[',
 * a final '\\') is taken literally. */
bool ug_glob_match(const char *pattern, const char *path);

/* A column rename (rename-column rule); the strings belong to the rules. */
struct ug_column_rename {
	const char *from;
	const char *to;
};

/* The renames of every rename-column rule that matches path (the file or
 * a directory above it), in file order. *ret is a malloc'd array (NULL
 * when there is none) that the caller frees; its strings stay owned by r
 * and live as long as r. Returns 0 or -ENOMEM. */
int ug_rules_renames(const struct ug_rules *r, const char *path,
		     struct ug_column_rename **ret, size_t *ret_n);

#endif
