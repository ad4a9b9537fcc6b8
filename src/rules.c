/* rules.c - .upgrid/rules: a gitignore-style glob matcher and the rule list.
 *
 * The matcher is written here because fnmatch(3) has no '**'. It works on
 * two levels, each an iterative wildcard match that backtracks only to the
 * most recent star: path components against pattern components ('**' is
 * the star), and characters inside one component ('*' is the star). Every
 * other token consumes exactly one unit (one component, one byte), which is
 * what makes "retry from the last star only" correct, so the cost is
 * O(pattern x path) at each level, never exponential. */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules.h"

enum rule_kind {
	RULE_EXCLUDE,
	RULE_INCLUDE,
	RULE_BINARY,
	RULE_CONFIG,
	RULE_DATA,
	RULE_PRESERVE,
	RULE_RENAME,    /* rename-column: not a class, not a publication rule */
};

static const struct {
	const char *name;
	enum rule_kind kind;
} kind_names[] = {
	{ "exclude", RULE_EXCLUDE },
	{ "include", RULE_INCLUDE },
	{ "binary", RULE_BINARY },
	{ "config", RULE_CONFIG },
	{ "data", RULE_DATA },
	{ "preserve", RULE_PRESERVE },
};

struct ug_rule {
	enum rule_kind kind;
	bool dir_only;  /* pattern had a trailing '/' */
	bool anchored;  /* matched against the whole path, else the basename */
	size_t len;
	char *pat;      /* without leading and trailing '/' */
	char *from;     /* RULE_RENAME: old and new column name */
	char *to;
};

struct ug_rules {
	struct ug_rule *v;
	size_t n;
};

/* Kept as text so they read like a rules file; parsed before the user's. */
static const char *const default_rules[] = {
	"exclude .upgrid/",
	"exclude *.swp",
	"exclude *.swx",
	"exclude *~",
	"exclude .#*",
	"exclude *.tmp",
	"exclude #*#",
	"config *.ini",
	"config *.conf",
	"config *.cfg",
	"config *.properties",
	"config *.env",
	"config .env",
	"data *.csv",
	"data *.tsv",
};

#define META_DIR ".upgrid"

/* ------------------------------------------------------------ matcher */

/* Find the ']' closing the set that starts at p[i] == '['. Returns its
 * index, or 0 if the set is unterminated (0 can never be a closing index). */
static size_t bracket_end(const char *p, size_t plen, size_t i)
{
	i++;
	if (i < plen && (p[i] == '!' || p[i] == '^'))
		i++;
	/* a ']' right after '[' or '[!' is a member, not the end */
	if (i < plen && p[i] == ']')
		i++;
	while (i < plen) {
		if (p[i] == ']')
			return i;
		if (p[i] == '\\' && i + 1 < plen)
			i++;
		i++;
	}
	return 0;
}

/* Does byte c belong to the set p[start..end] (start at '[', end at ']')? */
static bool bracket_match(const char *p, size_t start, size_t end, unsigned char c)
{
	size_t i = start + 1;
	bool neg = false, hit = false, first = true;

	if (p[i] == '!' || p[i] == '^') {
		neg = true;
		i++;
	}
	while (i < end) {
		unsigned char lo, hi;

		if (p[i] == ']' && !first)
			break;
		first = false;
		if (p[i] == '\\' && i + 1 < end)
			i++;
		lo = (unsigned char)p[i++];
		hi = lo;
		if (i + 1 < end && p[i] == '-') {
			i++;
			if (p[i] == '\\' && i + 1 < end)
				i++;
			hi = (unsigned char)p[i++];
		}
		if (c >= lo && c <= hi)
			hit = true;
	}
	return hit != neg;
}

/* Match one non-'*' token at p[*pi] against byte c; on a match, advance
 * *pi past the token. An unterminated '[' and a final lone '\' are taken
 * literally here (the rules parser refuses both). */
static bool token_match(const char *p, size_t plen, size_t *pi, unsigned char c)
{
	size_t i = *pi, end;

	switch (p[i]) {
	case '?':
		*pi = i + 1;
		return true;
	case '[':
		end = bracket_end(p, plen, i);
		if (end == 0)
			break;
		if (!bracket_match(p, i, end, c))
			return false;
		*pi = end + 1;
		return true;
	case '\\':
		if (i + 1 < plen) {
			if ((unsigned char)p[i + 1] != c)
				return false;
			*pi = i + 2;
			return true;
		}
		break;
	default:
		break;
	}
	if ((unsigned char)p[i] != c)
		return false;
	*pi = i + 1;
	return true;
}

/* Glob within one component: the classic two-pointer match with a single
 * backtrack point (the last '*' seen). */
static bool comp_match(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t pi = 0, si = 0, star_pi = SIZE_MAX, star_si = 0;

	while (si < slen) {
		if (pi < plen) {
			if (p[pi] == '*') {
				while (pi < plen && p[pi] == '*')
					pi++;
				star_pi = pi;
				star_si = si;
				continue;
			}
			if (token_match(p, plen, &pi, (unsigned char)s[si])) {
				si++;
				continue;
			}
		}
		if (star_pi == SIZE_MAX)
			return false;
		pi = star_pi;
		si = ++star_si;
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

static size_t comp_len(const char *s, const char *end)
{
	const char *slash = memchr(s, '/', (size_t)(end - s));
	return slash ? (size_t)(slash - s) : (size_t)(end - s);
}

/* Whole-path match, component by component, '**' being the star. */
static bool glob_match_n(const char *pat, size_t patlen, const char *path, size_t pathlen)
{
	const char *pend = pat + patlen, *send = path + pathlen;
	const char *p = pat, *s = path, *star_p = NULL, *star_s = NULL;

	for (;;) {
		size_t pl, sl;

		if (p == pend) {
			if (s == send)
				return true;
			goto backtrack;
		}
		pl = comp_len(p, pend);
		if (pl == 2 && p[0] == '*' && p[1] == '*') {
			if (p + pl == pend) {
				/* A trailing "**" means "everything inside": one
				 * or more components, as in gitignore (it does
				 * not match the directory itself). */
				if (s != send)
					return true;
				goto backtrack;
			}
			star_p = p + pl + 1;
			star_s = s;
			p = star_p;
			continue;
		}
		if (s == send)
			return false;   /* no later star choice gives more path */
		sl = comp_len(s, send);
		if (comp_match(p, pl, s, sl)) {
			p += pl;
			if (p < pend)
				p++;
			s += sl;
			if (s < send)
				s++;
			continue;
		}
backtrack:
		if (!star_p || star_s == send)
			return false;
		star_s += comp_len(star_s, send);
		if (star_s < send)
			star_s++;
		p = star_p;
		s = star_s;
	}
}

bool ug_glob_match(const char *pattern, const char *path)
{
	return glob_match_n(pattern, strlen(pattern), path, strlen(path));
}

/* ------------------------------------------------------------ parser */

static void rules_release(struct ug_rules *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].pat);
		free(r->v[i].from);
		free(r->v[i].to);
	}
	free(r->v);
}

void ug_rules_free(struct ug_rules *r)
{
	if (!r)
		return;
	rules_release(r);
	free(r);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Copy at most 64 bytes of s for an error message, hiding control bytes
 * so a hostile rules file cannot put escape sequences on a terminal. */
static void quote_for_msg(char out[68], const char *s, size_t len)
{
	size_t n = len > 64 ? 64 : len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* Check a pattern (already without leading/trailing '/') so that every
 * rule the parser accepts means what it says. */
static int pattern_check(const char *p, size_t len, size_t line, struct ug_error *err)
{
	char q[68];
	size_t comp = 0;

	quote_for_msg(q, p, len);
	if (len == 0)
		return ug_error_set(err, -EBADMSG, "line %zu: empty pattern", line);
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)p[i] : '/';

		if (c == '/') {
			const char *cs = p + i - comp;
			if (comp == 0)
				return ug_error_set(err, -EBADMSG,
						    "line %zu: pattern '%s' has an empty component", line, q);
			if ((comp == 1 && cs[0] == '.') ||
			    (comp == 2 && cs[0] == '.' && cs[1] == '.'))
				return ug_error_set(err, -EBADMSG,
						    "line %zu: pattern '%s' contains '%.*s' (paths never do)",
						    line, q, (int)comp, cs);
			comp = 0;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			return ug_error_set(err, -EBADMSG,
					    "line %zu: pattern contains a control character", line);
		comp++;
		if (c == '\\') {
			if (i + 1 >= len || p[i + 1] == '/')
				return ug_error_set(err, -EBADMSG,
						    "line %zu: pattern '%s' has a '\\' with nothing to escape ('/' cannot be escaped)",
						    line, q);
			i++;
			comp++;
		} else if (c == '[') {
			size_t clen = comp_len(p + i, p + len);
			size_t end = bracket_end(p + i, clen, 0);
			if (end == 0)
				return ug_error_set(err, -EBADMSG,
						    "line %zu: unterminated '[' in pattern", line);
			comp += end;
			i += end;
		}
	}
	return 0;
}

static int rules_add(struct ug_rules *r, size_t *alloc, enum rule_kind kind,
		     const char *pat, size_t len, size_t line, struct ug_error *err)
{
	struct ug_rule *rule;
	bool anchored = false, dir_only = false;
	int rc;

	if (len > 0 && pat[len - 1] == '/') {
		dir_only = true;
		len--;
	}
	if (len > 0 && pat[0] == '/') {
		anchored = true;
		pat++;
		len--;
	}
	rc = pattern_check(pat, len, line, err);
	if (rc < 0)
		return rc;
	if (memchr(pat, '/', len))
		anchored = true;
	if (r->n == *alloc) {
		size_t na = *alloc ? *alloc * 2 : 32, bytes;
		struct ug_rule *nv;

		if (ug_size_mul(na, sizeof(*nv), &bytes) < 0)
			return -ENOMEM;
		nv = realloc(r->v, bytes);
		if (!nv)
			return -ENOMEM;
		r->v = nv;
		*alloc = na;
	}
	rule = &r->v[r->n];
	rule->pat = malloc(len + 1);
	if (!rule->pat)
		return -ENOMEM;
	memcpy(rule->pat, pat, len);
	rule->pat[len] = '\0';
	rule->len = len;
	rule->kind = kind;
	rule->anchored = anchored;
	rule->dir_only = dir_only;
	rule->from = NULL;
	rule->to = NULL;
	r->n++;
	return 0;
}

#define RENAME_WORD "rename-column"

/* One argument of rename-column at s[*i]: a "..." string (\" and \\
 * escapes) or a run of non-blank bytes taken literally. The result is
 * NUL-terminated and malloc'd. */
static int rename_arg(const char *s, size_t len, size_t *i, size_t line, char **ret,
		      struct ug_error *err)
{
	size_t j = *i, n = 0;
	char *out;

	if (j >= len)
		return ug_error_set(err, -EBADMSG, "line %zu: usage: " RENAME_WORD " PATTERN OLD NEW",
				    line);
	out = malloc(len - j + 1);
	if (!out)
		return -ENOMEM;
	if (s[j] == '"') {
		for (j++;; j++) {
			if (j >= len) {
				free(out);
				return ug_error_set(err, -EBADMSG, "line %zu: unterminated '\"' in column name",
						    line);
			}
			if (s[j] == '"')
				break;
			if (s[j] == '\\' && j + 1 < len && (s[j + 1] == '"' || s[j + 1] == '\\'))
				j++;
			out[n++] = s[j];
		}
		j++;
		if (j < len && !is_blank(s[j])) {
			free(out);
			return ug_error_set(err, -EBADMSG, "line %zu: text after the closing '\"' of a column name",
					    line);
		}
	} else {
		while (j < len && !is_blank(s[j]))
			out[n++] = s[j++];
	}
	out[n] = '\0';
	while (j < len && is_blank(s[j]))
		j++;
	*i = j;
	*ret = out;
	return 0;
}

static int column_name_check(const char *name, size_t line, struct ug_error *err)
{
	size_t n = strlen(name);

	if (n == 0)
		return ug_error_set(err, -EBADMSG, "line %zu: empty column name", line);
	for (size_t k = 0; k < n; k++) {
		unsigned char c = (unsigned char)name[k];
		if (c < 0x20 || c == 0x7f)
			return ug_error_set(err, -EBADMSG, "line %zu: column name contains a control character",
					    line);
	}
	if (!ug_utf8_valid(name, n))
		return ug_error_set(err, -EBADMSG, "line %zu: column name is not valid UTF-8", line);
	return 0;
}

/* "rename-column PATTERN OLD NEW", s[i..len) being what follows the word. */
static int parse_rename(struct ug_rules *r, size_t *alloc, const char *s, size_t len,
			size_t i, size_t line, struct ug_error *err)
{
	size_t pstart = i, plen;
	char *from = NULL, *to = NULL, q[68];
	int rc;

	/* the pattern is one word; a blank in it is escaped, as in a glob */
	while (i < len && !is_blank(s[i]))
		i += (s[i] == '\\' && i + 1 < len) ? 2 : 1;
	plen = i - pstart;
	while (i < len && is_blank(s[i]))
		i++;
	if (plen == 0)
		return ug_error_set(err, -EBADMSG, "line %zu: usage: " RENAME_WORD " PATTERN OLD NEW",
				    line);
	if ((rc = rename_arg(s, len, &i, line, &from, err)) < 0)
		return rc;
	if ((rc = rename_arg(s, len, &i, line, &to, err)) < 0)
		goto fail;
	if (i < len) {
		rc = ug_error_set(err, -EBADMSG, "line %zu: usage: " RENAME_WORD " PATTERN OLD NEW",
				  line);
		goto fail;
	}
	if ((rc = column_name_check(from, line, err)) < 0 ||
	    (rc = column_name_check(to, line, err)) < 0)
		goto fail;
	if (strcmp(from, to) == 0) {
		quote_for_msg(q, from, strlen(from));
		rc = ug_error_set(err, -EBADMSG, "line %zu: column '%s' is renamed to itself", line, q);
		goto fail;
	}
	rc = rules_add(r, alloc, RULE_RENAME, s + pstart, plen, line, err);
	if (rc < 0)
		goto fail;
	r->v[r->n - 1].from = from;
	r->v[r->n - 1].to = to;
	return 0;
fail:
	free(from);
	free(to);
	return rc;
}

/* One line, without its '\n'. line == 0 for the built-in defaults. */
static int parse_line(struct ug_rules *r, size_t *alloc, const char *s, size_t len,
		      size_t line, size_t *nuser, struct ug_error *err)
{
	const char *word, *pat;
	size_t wlen, i = 0;
	char q[68];

	/* Trim trailing blanks (this also drops the '\r' of CRLF), but keep
	 * one escaped by a backslash: "exclude foo\ " names "foo ". */
	while (len > 0 && is_blank(s[len - 1])) {
		size_t bs = 0;
		while (bs + 1 < len && s[len - 2 - bs] == '\\')
			bs++;
		if (bs % 2 == 1)
			break;
		len--;
	}
	while (i < len && is_blank(s[i]))
		i++;
	if (i == len || s[i] == '#')
		return 0;
	word = s + i;
	while (i < len && !is_blank(s[i]))
		i++;
	wlen = (size_t)(s + i - word);
	while (i < len && is_blank(s[i]))
		i++;
	pat = s + i;

	if (wlen == strlen(RENAME_WORD) && memcmp(word, RENAME_WORD, wlen) == 0) {
		if (line > 0 && ++*nuser > UG_RULES_MAX)
			return ug_error_set(err, -E2BIG, "line %zu: more than %u rules",
					    line, UG_RULES_MAX);
		return parse_rename(r, alloc, s, len, i, line, err);
	}
	for (size_t k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++) {
		if (strlen(kind_names[k].name) != wlen ||
		    memcmp(kind_names[k].name, word, wlen) != 0)
			continue;
		if (i == len)
			return ug_error_set(err, -EBADMSG, "line %zu: '%s' needs a pattern",
					    line, kind_names[k].name);
		if (line > 0 && ++*nuser > UG_RULES_MAX)
			return ug_error_set(err, -E2BIG, "line %zu: more than %u rules",
					    line, UG_RULES_MAX);
		return rules_add(r, alloc, kind_names[k].kind, pat, len - i, line, err);
	}
	quote_for_msg(q, word, wlen);
	return ug_error_set(err, -EBADMSG,
			    "line %zu: unknown rule '%s' (expected exclude, include, binary, config, data, preserve or " RENAME_WORD ")",
			    line, q);
}

int ug_rules_parse(const char *text, size_t len, struct ug_rules **ret,
		   struct ug_error *err)
{
	struct ug_rules r = { 0 };
	struct ug_rules *out;
	size_t alloc = 0, nuser = 0, line = 0, off = 0;
	struct ug_error dflt_err;
	int rc;

	if (len > UG_RULES_FILE_MAX)
		return ug_error_set(err, -E2BIG, "rules are larger than %u bytes", UG_RULES_FILE_MAX);
	if (len > 0 && !text)
		return -EINVAL;

	for (size_t i = 0; i < sizeof(default_rules) / sizeof(default_rules[0]); i++) {
		rc = parse_line(&r, &alloc, default_rules[i], strlen(default_rules[i]), 0,
				&nuser, &dflt_err);
		if (rc < 0)
			goto out;
	}

	while (off < len) {
		const char *s = text + off;
		const char *nl = memchr(s, '\n', len - off);
		size_t l = nl ? (size_t)(nl - s) : len - off;

		line++;
		off += l + (nl ? 1 : 0);
		if (memchr(s, '\0', l)) {
			rc = ug_error_set(err, -EBADMSG, "line %zu: contains a NUL byte", line);
			goto out;
		}
		if (l > UG_CONFIG_LINE_MAX) {
			rc = ug_error_set(err, -E2BIG, "line %zu: longer than %u bytes",
					  line, UG_CONFIG_LINE_MAX);
			goto out;
		}
		rc = parse_line(&r, &alloc, s, l, line, &nuser, err);
		if (rc < 0)
			goto out;
	}

	out = malloc(sizeof(*out));
	if (!out) {
		rc = -ENOMEM;
		goto out;
	}
	*out = r;
	*ret = out;
	return 0;
out:
	rules_release(&r);
	return rc;
}

/* Read at most UG_RULES_FILE_MAX + 1 bytes, so an oversized file is
 * detected without reading it all. */
static int read_bounded(int fd, char **ret_data, size_t *ret_len)
{
	struct stat st;
	size_t alloc, len = 0;
	char *data;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > UG_RULES_FILE_MAX)
		return -E2BIG;
	alloc = (size_t)st.st_size + 1;
	data = malloc(alloc);
	if (!data)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == alloc) {
			/* grew since fstat */
			char *nd;
			if (alloc > UG_RULES_FILE_MAX) {
				free(data);
				return -E2BIG;
			}
			nd = realloc(data, UG_RULES_FILE_MAX + 1);
			if (!nd) {
				free(data);
				return -ENOMEM;
			}
			data = nd;
			alloc = UG_RULES_FILE_MAX + 1;
		}
		n = read(fd, data + len, alloc - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			free(data);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > UG_RULES_FILE_MAX) {
		free(data);
		return -E2BIG;
	}
	*ret_data = data;
	*ret_len = len;
	return 0;
}

int ug_rules_load(int treefd, struct ug_rules **ret, struct ug_error *err)
{
	struct ug_error perr;
	struct stat st;
	char *data = NULL;
	size_t len = 0;
	int fd, rc;

	/* O_NONBLOCK: a fifo planted as the rules file must not hang us. */
	fd = ug_open_beneath(treefd, UG_RULES_PATH, O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ENOENT)
		return ug_rules_parse(NULL, 0, ret, err);
	if (fd == -ELOOP || fd == -ENOTDIR) {
		/* Say which component is in the way (ug_open_beneath
		 * reports only the errno). */
		if (fstatat(treefd, META_DIR, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISLNK(st.st_mode))
				return ug_error_set(err, -ELOOP,
						    "'%s' is a symlink (upgrid does not follow links; make it a directory)",
						    META_DIR);
			if (!S_ISDIR(st.st_mode))
				return ug_error_set(err, -ENOTDIR, "'%s' is not a directory", META_DIR);
		}
		if (fd == -ELOOP)
			return ug_error_set(err, -ELOOP,
					    "'%s' is a symlink (upgrid does not follow links; make it a regular file)",
					    UG_RULES_PATH);
	}
	if (fd < 0)
		return ug_error_set(err, fd, "cannot open '%s': %s", UG_RULES_PATH, strerror(-fd));
	rc = read_bounded(fd, &data, &len);
	close(fd);
	if (rc == -E2BIG)
		return ug_error_set(err, rc, "'%s' is larger than %u bytes", UG_RULES_PATH,
				    UG_RULES_FILE_MAX);
	if (rc == -EINVAL)
		return ug_error_set(err, rc, "'%s' is not a regular file", UG_RULES_PATH);
	if (rc < 0)
		return ug_error_set(err, rc, "cannot read '%s': %s", UG_RULES_PATH, strerror(-rc));
	rc = ug_rules_parse(data, len, ret, &perr);
	free(data);
	if (rc < 0)
		return ug_error_set(err, rc, "'%s' %s", UG_RULES_PATH, perr.msg);
	return 0;
}

/* ------------------------------------------------------------ queries */

/* Does rule match path[0..len) (a file, or a directory if is_dir)? */
static bool rule_match(const struct ug_rule *rule, const char *path, size_t len, bool is_dir)
{
	const char *base;

	if (rule->dir_only && !is_dir)
		return false;
	if (rule->anchored)
		return glob_match_n(rule->pat, rule->len, path, len);
	base = path + len;
	while (base > path && base[-1] != '/')
		base--;
	return comp_match(rule->pat, rule->len, base, (size_t)(path + len - base));
}

static bool is_meta(const char *path, size_t start, size_t end)
{
	return end - start == sizeof(META_DIR) - 1 &&
	       memcmp(path + start, META_DIR, sizeof(META_DIR) - 1) == 0;
}

/* The verdict for path[0..len) itself, its ancestors not considered. */
static bool excluded_one(const struct ug_rules *r, const char *path, size_t len, bool is_dir)
{
	size_t start = len;

	while (start > 0 && path[start - 1] != '/')
		start--;
	/* metadata is never published, whatever the rules say */
	if (is_meta(path, start, len))
		return true;
	for (size_t i = r->n; i-- > 0;) {
		const struct ug_rule *rule = &r->v[i];
		if (rule->kind != RULE_EXCLUDE && rule->kind != RULE_INCLUDE)
			continue;
		if (rule_match(rule, path, len, is_dir))
			return rule->kind == RULE_EXCLUDE;
	}
	return false;
}

/* As in gitignore, a path below an excluded directory stays excluded even
 * if a later rule includes it: the walk never enters that directory, so
 * the answer must not depend on whether the caller walks or asks. */
bool ug_rules_excluded(const struct ug_rules *r, const char *path, bool is_dir)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < len; i++)
		if (path[i] == '/' && excluded_one(r, path, i, true))
			return true;
	return excluded_one(r, path, len, is_dir);
}

bool ug_rules_excluded_leaf(const struct ug_rules *r, const char *path, bool is_dir)
{
	return excluded_one(r, path, strlen(path), is_dir);
}

static enum ug_class kind_class(enum rule_kind k)
{
	switch (k) {
	case RULE_CONFIG:
		return UG_CLASS_CONFIG;
	case RULE_DATA:
		return UG_CLASS_DATA;
	case RULE_PRESERVE:
		return UG_CLASS_PRESERVE;
	default:
		return UG_CLASS_BINARY;
	}
}

/* A class rule that matches a directory applies to every file below it,
 * so a rule counts as matching if it matches the file or any ancestor;
 * among those, the last one in the file wins. */
enum ug_class ug_rules_class(const struct ug_rules *r, const char *path)
{
	size_t len = strlen(path);

	for (size_t i = r->n; i-- > 0;) {
		const struct ug_rule *rule = &r->v[i];

		if (rule->kind == RULE_EXCLUDE || rule->kind == RULE_INCLUDE ||
		    rule->kind == RULE_RENAME)
			continue;
		if (rule_match(rule, path, len, false))
			return kind_class(rule->kind);
		for (size_t k = 0; k < len; k++)
			if (path[k] == '/' && rule_match(rule, path, k, true))
				return kind_class(rule->kind);
	}
	return UG_CLASS_BINARY;
}

/* A rename applies where a class rule would: to the file or everything
 * below a matching directory. */
int ug_rules_renames(const struct ug_rules *r, const char *path,
		     struct ug_column_rename **ret, size_t *ret_n)
{
	struct ug_column_rename *v = NULL;
	size_t len = strlen(path), n = 0, cap = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct ug_rule *rule = &r->v[i];
		bool hit;

		if (rule->kind != RULE_RENAME)
			continue;
		hit = rule_match(rule, path, len, false);
		for (size_t k = 0; !hit && k < len; k++)
			if (path[k] == '/' && rule_match(rule, path, k, true))
				hit = true;
		if (!hit)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4, bytes;
			struct ug_column_rename *nv;

			if (ug_size_mul(nc, sizeof(*nv), &bytes) < 0 || !(nv = realloc(v, bytes))) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		v[n].from = rule->from;
		v[n].to = rule->to;
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
