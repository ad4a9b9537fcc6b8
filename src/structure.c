/* structure.c - parsers for config (INI, key=value) and data (CSV, TSV)
 * files, and the structural diff between two versions of one file.
 *
 * Everything here reads hostile bytes. The rules that keep it safe:
 * the whole input is bounded (UG_STRUCT_FILE_MAX) before a byte is read;
 * every line is bounded before anything is copied out of it; counts of
 * keys, sections and fields have named limits; lookups go through hash
 * tables sized once from the input (never rehashed) and keyed with
 * SipHash under a per-parse random key, so crafted names cannot force
 * collisions and make a parse quadratic. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <sodium.h>

#include "structure.h"

static const char *const format_names[UG_STRUCT__COUNT] = {
	"none", "kv", "ini", "csv", "tsv",
};

const char *ug_struct_format_name(enum ug_struct_format f)
{
	return (unsigned)f < UG_STRUCT__COUNT ? format_names[f] : "?";
}

int ug_struct_format_from_name(const char *s, enum ug_struct_format *ret)
{
	for (unsigned i = UG_STRUCT_KV; s && i < UG_STRUCT__COUNT; i++) {
		if (strcmp(format_names[i], s) == 0) {
			*ret = (enum ug_struct_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum ug_struct_format ug_struct_format_for(enum ug_class cls, const char *path)
{
	size_t n;

	switch (cls) {
	case UG_CLASS_CONFIG:
		return UG_STRUCT_INI;
	case UG_CLASS_DATA:
		n = path ? strlen(path) : 0;
		if (n >= 4 && strcasecmp(path + n - 4, ".tsv") == 0)
			return UG_STRUCT_TSV;
		return UG_STRUCT_CSV;
	default:
		return UG_STRUCT_NONE;
	}
}

/* ---- small helpers ----------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

static char *memdup0(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* A name for an error message: at most 64 bytes, then "...". Names are
 * checked for control characters before they are ever shown. */
static void shown(char out[72], const char *s, size_t n)
{
	size_t k = n > 64 ? 64 : n;

	memcpy(out, s, k);
	if (n > k) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

/* Names travel in the manifest (JSON: UTF-8 only) and are shown by
 * "upgrid diff": no control characters, bounded. */
static int name_check(const char *s, size_t n, size_t line, const char *what,
		      struct ug_error *err)
{
	if (n > UG_STRUCT_NAME_MAX)
		return ug_error_set(err, -EBADMSG, "line %zu: %s is longer than %u bytes",
				    line, what, UG_STRUCT_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return ug_error_set(err, -EBADMSG, "line %zu: %s contains a control character",
					    line, what);
	}
	if (!ug_utf8_valid(s, n))
		return ug_error_set(err, -EBADMSG, "line %zu: %s is not valid UTF-8", line, what);
	return 0;
}

static void random_key(unsigned char key[crypto_shorthash_KEYBYTES])
{
	/* only the cost of a lookup depends on it, never a result: fall back
	 * to a fixed key if the kernel has no entropy to give yet */
	if (getrandom(key, crypto_shorthash_KEYBYTES, GRND_NONBLOCK) !=
	    (ssize_t)crypto_shorthash_KEYBYTES)
		memset(key, 0x5a, crypto_shorthash_KEYBYTES);
}

static uint64_t siphash(const unsigned char *key, const void *p, size_t n)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, p, n, key);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* Open addressing with linear probing over element indices (stored + 1,
 * 0 = empty). Sized at creation for at most max elements at half load. */
struct htab {
	uint32_t *slots;
	size_t mask;
};

static int htab_init(struct htab *t, size_t max)
{
	size_t n = 16;

	while (n < max * 2)
		n *= 2;
	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->mask = n - 1;
	return 0;
}

static const uint8_t utf8_bom[3] = { 0xef, 0xbb, 0xbf };

/* ---- config files ------------------------------------------------------ */

struct ug_conf_index {
	unsigned char key[crypto_shorthash_KEYBYTES];
	struct htab sections;  /* by name */
	struct htab keys;      /* by (section, key) */
	uint64_t *sec_hash;    /* per section */
	uint64_t *key_hash;    /* per entry */
};

static uint64_t sec_hash(const struct ug_conf_index *ix, const char *name, size_t n)
{
	return siphash(ix->key, name, n);
}

static uint64_t key_hash(const struct ug_conf_index *ix, size_t section, const char *key, size_t n)
{
	/* unpredictable per key, and the same key in two sections differs */
	return siphash(ix->key, key, n) ^ ((uint64_t)section * UINT64_C(0x9e3779b97f4a7c15));
}

static ssize_t sec_lookup(const struct ug_conf *c, const char *name, size_t n, uint64_t h)
{
	const struct ug_conf_index *ix = c->index;

	for (size_t i = h & ix->sections.mask;; i = (i + 1) & ix->sections.mask) {
		uint32_t s = ix->sections.slots[i];

		if (s == 0)
			return -1;
		if (ix->sec_hash[s - 1] == h && strlen(c->sections[s - 1].name) == n &&
		    memcmp(c->sections[s - 1].name, name, n) == 0)
			return (ssize_t)(s - 1);
	}
}

static ssize_t key_lookup(const struct ug_conf *c, size_t section, const char *key, size_t n,
			  uint64_t h)
{
	const struct ug_conf_index *ix = c->index;

	for (size_t i = h & ix->keys.mask;; i = (i + 1) & ix->keys.mask) {
		uint32_t s = ix->keys.slots[i];
		const struct ug_conf_entry *e;

		if (s == 0)
			return -1;
		e = &c->entries[s - 1];
		if (ix->key_hash[s - 1] == h && e->section == section && strlen(e->key) == n &&
		    memcmp(e->key, key, n) == 0)
			return (ssize_t)(s - 1);
	}
}

static void htab_insert(struct htab *t, uint64_t h, size_t idx)
{
	size_t i = h & t->mask;

	while (t->slots[i] != 0)
		i = (i + 1) & t->mask;
	t->slots[i] = (uint32_t)(idx + 1);
}

void ug_conf_free(struct ug_conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsections; i++)
		free(c->sections[i].name);
	free(c->sections);
	for (size_t i = 0; i < c->nentries; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->entries);
	if (c->index) {
		free(c->index->sections.slots);
		free(c->index->keys.slots);
		free(c->index->sec_hash);
		free(c->index->key_hash);
		free(c->index);
	}
	free(c);
}

ssize_t ug_conf_section_find(const struct ug_conf *c, const char *name)
{
	size_t n;

	if (!c || !name)
		return -1;
	n = strlen(name);
	return sec_lookup(c, name, n, sec_hash(c->index, name, n));
}

const struct ug_conf_entry *ug_conf_get(const struct ug_conf *c, const char *section,
					const char *key)
{
	ssize_t s = ug_conf_section_find(c, section);
	size_t n;
	ssize_t e;

	if (s < 0 || !key)
		return NULL;
	n = strlen(key);
	e = key_lookup(c, (size_t)s, key, n, key_hash(c->index, (size_t)s, key, n));
	return e < 0 ? NULL : &c->entries[e];
}

struct conf_parser {
	struct ug_conf *c;
	size_t max_sections, max_entries; /* what the index was sized for */
	size_t cur;                       /* current section */
	size_t key_indent;                /* indent of the last key line */
	struct ug_error *err;
};

static int add_section(struct conf_parser *p, const char *name, size_t n, size_t line,
		       size_t *ret)
{
	struct ug_conf *c = p->c;
	uint64_t h = sec_hash(c->index, name, n);
	ssize_t s = sec_lookup(c, name, n, h);
	struct ug_conf_section *sec;

	if (s >= 0) {
		/* a repeated header continues the section, as git and systemd
		 * read them; a key repeated across the two is still an error */
		c->sections[s].nheaders++;
		*ret = (size_t)s;
		return 0;
	}
	/* the "" section does not count against the limit */
	if (c->nsections > UG_STRUCT_SECTIONS_MAX)
		return ug_error_set(p->err, -EBADMSG, "line %zu: more than %u sections", line,
				    UG_STRUCT_SECTIONS_MAX);
	if (c->nsections >= p->max_sections)
		return -ENOMEM; /* cannot happen: sized from the line count */
	sec = &c->sections[c->nsections];
	memset(sec, 0, sizeof(*sec));
	sec->name = memdup0(name, n);
	if (!sec->name)
		return -ENOMEM;
	sec->line = line;
	sec->nheaders = line ? 1 : 0;
	c->index->sec_hash[c->nsections] = h;
	htab_insert(&c->index->sections, h, c->nsections);
	*ret = c->nsections++;
	return 0;
}

static const char *trim(const char *s, size_t *n)
{
	while (*n > 0 && is_blank(s[0])) {
		s++;
		(*n)--;
	}
	while (*n > 0 && is_blank(s[*n - 1]))
		(*n)--;
	return s;
}

/* "[name]" with an optional comment after it. */
static int conf_header(struct conf_parser *p, const char *s, size_t n, size_t line)
{
	const char *close = memchr(s, ']', n);
	const char *name, *rest;
	size_t nlen, rlen;
	int r;

	if (!close)
		return ug_error_set(p->err, -EBADMSG, "line %zu: section header without ']'", line);
	nlen = (size_t)(close - s - 1);
	name = trim(s + 1, &nlen);
	rlen = n - (size_t)(close + 1 - s);
	rest = trim(close + 1, &rlen);
	if (rlen > 0 && rest[0] != ';' && rest[0] != '#')
		return ug_error_set(p->err, -EBADMSG, "line %zu: text after the ']' of a section header",
				    line);
	if (nlen == 0)
		return ug_error_set(p->err, -EBADMSG, "line %zu: empty section name", line);
	if ((r = name_check(name, nlen, line, "section name", p->err)) < 0)
		return r;
	p->key_indent = SIZE_MAX;
	return add_section(p, name, nlen, line, &p->cur);
}

/* The value after the separator: v[0..n) trimmed. Fills the decoded value
 * and how much of v it spans. */
static int conf_value(struct conf_parser *p, const char *v, size_t n, size_t line,
		      char **ret, size_t *ret_span, char *ret_quote)
{
	char *out;
	size_t k = 0, j;

	if (n > 0 && (v[0] == '"' || v[0] == '\'')) {
		char q = v[0];
		const char *rest;
		size_t rlen;

		out = malloc(n);
		if (!out)
			return -ENOMEM;
		for (j = 1; j < n && v[j] != q; j++) {
			if (q == '"' && v[j] == '\\' && j + 1 < n && (v[j + 1] == '"' || v[j + 1] == '\\'))
				j++;
			out[k++] = v[j];
		}
		if (j >= n) {
			free(out);
			return ug_error_set(p->err, -EBADMSG, "line %zu: unterminated quoted value", line);
		}
		rlen = n - j - 1;
		rest = trim(v + j + 1, &rlen);
		if (rlen > 0 && rest[0] != '#' && rest[0] != ';') {
			free(out);
			return ug_error_set(p->err, -EBADMSG, "line %zu: text after the closing quote of a value",
					    line);
		}
		out[k] = '\0';
		*ret = out;
		*ret_span = j + 1;
		*ret_quote = q;
		return 0;
	}
	/* a trailing unescaped '\' continues the line in .properties; that
	 * dialect is not understood here, so do not guess */
	for (j = n; j > 0 && v[j - 1] == '\\'; j--)
		k++;
	if (k % 2 == 1)
		return ug_error_set(p->err, -EBADMSG,
				    "line %zu: a '\\' at the end of a line (line continuation) is not supported",
				    line);
	out = memdup0(v, n);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_span = n;
	*ret_quote = 0;
	return 0;
}

static int conf_line(struct conf_parser *p, const char *data, size_t off, size_t full,
		     size_t n, size_t line)
{
	struct ug_conf *c = p->c;
	const char *s = data + off, *sep, *key;
	struct ug_conf_entry *e;
	size_t indent = 0, klen, vlen, span = 0;
	char *value = NULL, quote = 0, q[72];
	const char *v;
	uint64_t h;
	ssize_t dup;
	int r;

	while (indent < n && is_blank(s[indent]))
		indent++;
	if (indent == n || s[indent] == ';' || s[indent] == '#' || s[indent] == '!')
		return 0;
	if (s[indent] == '[')
		return conf_header(p, s + indent, n - indent, line);
	/* Python's configparser reads a line indented deeper than the key
	 * above as more of its value; rather than guess, refuse */
	if (p->key_indent != SIZE_MAX && indent > p->key_indent)
		return ug_error_set(p->err, -EBADMSG,
				    "line %zu: indented deeper than the key above (continuation lines are not supported)",
				    line);
	key = s + indent;
	klen = n - indent;
	/* .env: "export KEY=value"; but "export = 1" is a key named export */
	if (klen > 7 && memcmp(key, "export", 6) == 0 && is_blank(key[6])) {
		size_t k = 7;

		while (k < klen && is_blank(key[k]))
			k++;
		if (k < klen && key[k] != '=' && key[k] != ':') {
			key += k;
			klen -= k;
		}
	}
	sep = NULL;
	for (size_t k = 0; k < klen; k++) {
		if (key[k] == '=' || key[k] == ':') {
			sep = key + k;
			break;
		}
	}
	if (!sep)
		return ug_error_set(p->err, -EBADMSG,
				    "line %zu: expected 'key = value', '[section]' or a comment", line);
	vlen = klen - (size_t)(sep + 1 - key);
	v = trim(sep + 1, &vlen);
	klen = (size_t)(sep - key);
	key = trim(key, &klen);
	if (klen == 0)
		return ug_error_set(p->err, -EBADMSG, "line %zu: empty key", line);
	if ((r = name_check(key, klen, line, "key", p->err)) < 0)
		return r;

	h = key_hash(c->index, p->cur, key, klen);
	dup = key_lookup(c, p->cur, key, klen, h);
	if (dup >= 0) {
		shown(q, key, klen);
		if (p->cur == 0)
			return ug_error_set(p->err, -EBADMSG, "line %zu: duplicate key '%s' (first on line %zu)",
					    line, q, c->entries[dup].line);
		return ug_error_set(p->err, -EBADMSG,
				    "line %zu: duplicate key '%s' in section [%.64s] (first on line %zu)",
				    line, q, c->sections[p->cur].name, c->entries[dup].line);
	}
	if (c->nentries >= UG_STRUCT_KEYS_MAX)
		return ug_error_set(p->err, -EBADMSG, "line %zu: more than %u keys", line,
				    UG_STRUCT_KEYS_MAX);
	if (c->nentries >= p->max_entries)
		return -ENOMEM; /* cannot happen: sized from the line count */
	if ((r = conf_value(p, v, vlen, line, &value, &span, &quote)) < 0)
		return r;
	e = &c->entries[c->nentries];
	memset(e, 0, sizeof(*e));
	e->key = memdup0(key, klen);
	if (!e->key) {
		free(value);
		return -ENOMEM;
	}
	e->value = value;
	e->section = p->cur;
	e->line = line;
	e->off = off;
	e->len = full;
	e->value_off = (size_t)(v - data);
	e->value_len = span;
	e->quote = quote;
	c->index->key_hash[c->nentries] = h;
	htab_insert(&c->index->keys, h, c->nentries);
	c->nentries++;
	c->sections[p->cur].nkeys++;
	p->key_indent = indent;
	return 0;
}

int ug_conf_parse(const void *data, size_t len, struct ug_conf **ret, struct ug_error *err)
{
	const char *d = data;
	struct conf_parser p = { .err = err, .key_indent = SIZE_MAX };
	struct ug_conf *c = NULL;
	struct ug_conf_index *ix;
	size_t nl = 1, off = 0, line = 0, dummy;
	int r;

	if (len > UG_STRUCT_FILE_MAX)
		return ug_error_set(err, -E2BIG, "larger than %u bytes", UG_STRUCT_FILE_MAX);
	if (len > 0 && !data)
		return -EINVAL;
	/* idempotent and thread-safe; SipHash comes from libsodium */
	if (sodium_init() < 0)
		return ug_error_set(err, -EIO, "cannot initialise libsodium");
	/* a line holds at most one key or header: the line count bounds
	 * both tables, so they are sized once and never grow */
	for (const char *q = d; q && (q = memchr(q, '\n', len - (size_t)(q - d))) != NULL; q++)
		nl++;
	p.max_entries = nl < UG_STRUCT_KEYS_MAX ? nl : UG_STRUCT_KEYS_MAX;
	p.max_sections = (nl < UG_STRUCT_SECTIONS_MAX ? nl : UG_STRUCT_SECTIONS_MAX) + 1;

	c = calloc(1, sizeof(*c));
	ix = calloc(1, sizeof(*ix));
	if (!c || !ix) {
		free(c);
		free(ix);
		return -ENOMEM;
	}
	c->index = ix;
	random_key(ix->key);
	c->format = UG_STRUCT_KV;
	p.c = c;
	c->sections = calloc(p.max_sections, sizeof(*c->sections));
	c->entries = calloc(p.max_entries, sizeof(*c->entries));
	ix->sec_hash = calloc(p.max_sections, sizeof(*ix->sec_hash));
	ix->key_hash = calloc(p.max_entries, sizeof(*ix->key_hash));
	if (!c->sections || !c->entries || !ix->sec_hash || !ix->key_hash ||
	    htab_init(&ix->sections, p.max_sections) < 0 || htab_init(&ix->keys, p.max_entries) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = add_section(&p, "", 0, 0, &dummy)) < 0)
		goto out;

	if (len >= 3 && memcmp(d, utf8_bom, 3) == 0) {
		c->bom = true;
		off = 3;
	}
	while (off < len) {
		const char *s = d + off;
		const char *end = memchr(s, '\n', len - off);
		size_t n = end ? (size_t)(end - s) : len - off;
		size_t full = n + (end ? 1 : 0);

		line++;
		if (n > UG_STRUCT_LINE_MAX) {
			r = ug_error_set(err, -EBADMSG, "line %zu: longer than %u bytes", line,
					 UG_STRUCT_LINE_MAX);
			goto out;
		}
		if (memchr(s, '\0', n)) {
			r = ug_error_set(err, -EBADMSG, "line %zu: NUL byte", line);
			goto out;
		}
		if (n > 0 && s[n - 1] == '\r') {
			n--;
			if (line == 1)
				c->crlf = true;
		}
		if ((r = conf_line(&p, d, off, full, n, line)) < 0)
			goto out;
		off += full;
	}
	c->nlines = line;
	if (c->nsections > 1)
		c->format = UG_STRUCT_INI;
	*ret = c;
	return 0;
out:
	if (r == -ENOMEM)
		ug_error_set(err, r, "out of memory");
	ug_conf_free(c);
	return r;
}

/* ---- data files -------------------------------------------------------- */

void ug_table_reader_init(struct ug_table_reader *rd, enum ug_struct_format fmt,
			  const void *data, size_t len)
{
	memset(rd, 0, sizeof(*rd));
	rd->format = fmt;
	rd->data = data;
	rd->len = data ? len : 0;
	rd->line = 1;
	/* a record holds at most the whole input plus one NUL per field */
	ug_buf_init(&rd->scratch, (size_t)UG_STRUCT_FILE_MAX + UG_STRUCT_COLUMNS_MAX + 1);
	if (rd->len >= 3 && memcmp(rd->data, utf8_bom, 3) == 0)
		rd->off = 3;
}

void ug_table_reader_release(struct ug_table_reader *rd)
{
	ug_buf_release(&rd->scratch);
	free(rd->starts);
	free(rd->fields);
	free(rd->lens);
	rd->starts = NULL;
	rd->fields = NULL;
	rd->lens = NULL;
	rd->nalloc = 0;
}

/* Start field number nfields at the current end of scratch. */
static int field_begin(struct ug_table_reader *rd, size_t nfields, size_t line,
		       struct ug_error *err)
{
	if (nfields >= UG_STRUCT_COLUMNS_MAX)
		return ug_error_set(err, -EBADMSG, "line %zu: more than %u fields", line,
				    UG_STRUCT_COLUMNS_MAX);
	if (nfields >= rd->nalloc) {
		size_t na = rd->nalloc ? rd->nalloc * 2 : 16;
		size_t *ns, *nl;
		const char **nf;

		if (na > UG_STRUCT_COLUMNS_MAX)
			na = UG_STRUCT_COLUMNS_MAX;
		ns = realloc(rd->starts, na * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		rd->starts = ns;
		nf = realloc(rd->fields, na * sizeof(*nf));
		if (!nf)
			return -ENOMEM;
		rd->fields = nf;
		nl = realloc(rd->lens, na * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		rd->lens = nl;
		rd->nalloc = na;
	}
	rd->starts[nfields] = rd->scratch.len;
	return 0;
}

static int field_end(struct ug_table_reader *rd, size_t nfields)
{
	rd->lens[nfields] = rd->scratch.len - rd->starts[nfields];
	return ug_buf_put_u8(&rd->scratch, 0);
}

int ug_table_reader_next(struct ug_table_reader *rd, struct ug_table_record *ret,
			 struct ug_error *err)
{
	const unsigned char *d = rd->data;
	const bool csv = rd->format == UG_STRUCT_CSV;
	const unsigned char delim = csv ? ',' : '\t';
	size_t off = rd->off, len = rd->len, line_start, rec_line, nfields = 0;
	bool crlf = false;
	int r;

	/* empty lines are not records */
	while (off < len) {
		if (d[off] == '\n')
			off++;
		else if (d[off] == '\r' && off + 1 < len && d[off + 1] == '\n')
			off += 2;
		else
			break;
		rd->line++;
	}
	rd->off = off;
	if (off >= len)
		return 0;
	ug_buf_reset(&rd->scratch);
	rec_line = rd->line;
	line_start = off;

	for (;;) {                      /* one field */
		size_t field_line = rd->line;
		bool quoted = csv && d[off] == '"';
		bool end_record = false;

		if ((r = field_begin(rd, nfields, rec_line, err)) < 0)
			return r;
		if (quoted)
			off++;
		for (;;) {              /* runs of plain bytes within the field */
			size_t run = off;
			unsigned char ch;

			while (off < len) {
				ch = d[off];
				if (ch == '\0' || ch == '\n' || (csv && ch == '"') ||
				    (!quoted && (ch == delim || ch == '\r')))
					break;
				off++;
			}
			/* before copying: a 10 MB line is refused, not buffered */
			if (off - line_start > UG_STRUCT_LINE_MAX)
				return ug_error_set(err, -EBADMSG, "line %zu: longer than %u bytes",
						    rd->line, UG_STRUCT_LINE_MAX);
			if ((r = ug_buf_put(&rd->scratch, d + run, off - run)) < 0)
				return r;
			if (off >= len) {
				if (quoted)
					return ug_error_set(err, -EBADMSG,
							    "line %zu: unterminated quoted field", field_line);
				end_record = true;
				break;
			}
			ch = d[off];
			if (ch == '\0')
				return ug_error_set(err, -EBADMSG, "line %zu: NUL byte", rd->line);
			if (quoted) {
				if (ch == '\n') {
					if ((r = ug_buf_put_u8(&rd->scratch, '\n')) < 0)
						return r;
					off++;
					rd->line++;
					line_start = off;
					continue;
				}
				/* ch == '"': an escaped quote, or the end */
				if (off + 1 < len && d[off + 1] == '"') {
					if ((r = ug_buf_put_u8(&rd->scratch, '"')) < 0)
						return r;
					off += 2;
					continue;
				}
				off++;
				if (off >= len) {
					end_record = true;
				} else if (d[off] == delim) {
					off++;
				} else if (d[off] == '\n') {
					off++;
					end_record = true;
				} else if (d[off] == '\r' && off + 1 < len && d[off + 1] == '\n') {
					off += 2;
					crlf = true;
					end_record = true;
				} else {
					return ug_error_set(err, -EBADMSG,
							    "line %zu: text after the closing quote of a field",
							    rd->line);
				}
				break;
			}
			if (ch == '"')
				return ug_error_set(err, -EBADMSG,
						    "line %zu: quote inside an unquoted field (quote the whole field and double the quote)",
						    rd->line);
			if (ch == delim) {
				off++;
				break;
			}
			if (ch == '\n') {
				off++;
				end_record = true;
				break;
			}
			/* '\r': the end of a CRLF line, else a plain byte */
			if (off + 1 < len && d[off + 1] == '\n') {
				off += 2;
				crlf = true;
				end_record = true;
				break;
			}
			if ((r = ug_buf_put_u8(&rd->scratch, '\r')) < 0)
				return r;
			off++;
		}
		if ((r = field_end(rd, nfields)) < 0)
			return r;
		nfields++;
		if (end_record)
			break;
		/* a delimiter at the very end still opens one more, empty field */
		if (off >= len) {
			if ((r = field_begin(rd, nfields, rec_line, err)) < 0 ||
			    (r = field_end(rd, nfields)) < 0)
				return r;
			nfields++;
			break;
		}
	}
	/* the record ended with a newline unless it ended the input */
	if (off > 0 && d[off - 1] == '\n')
		rd->line++;
	rd->off = off;
	rd->crlf = crlf;
	for (size_t i = 0; i < nfields; i++)
		rd->fields[i] = (const char *)rd->scratch.data + rd->starts[i];
	ret->line = rec_line;
	ret->nfields = nfields;
	ret->fields = rd->fields;
	ret->lens = rd->lens;
	return 1;
}

void ug_table_free(struct ug_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncolumns; i++)
		free(t->columns[i]);
	free(t->columns);
	free(t->sorted);
	free(t);
}

struct name_idx {
	const char *name;
	size_t idx;
};

static int name_idx_cmp(const void *x, const void *y)
{
	const struct name_idx *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	if (c)
		return c;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

ssize_t ug_table_column(const struct ug_table *t, const char *name)
{
	size_t lo = 0, hi;

	if (!t || !name)
		return -1;
	hi = t->ncolumns;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->columns[t->sorted[mid]], name);

		if (c == 0)
			return (ssize_t)t->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Column names from the header record; unique and well formed. */
static int table_header(struct ug_table *t, const struct ug_table_record *h, struct ug_error *err)
{
	struct name_idx *tmp;
	char what[64], q[72];
	int r;

	t->columns = calloc(h->nfields, sizeof(*t->columns));
	t->sorted = calloc(h->nfields, sizeof(*t->sorted));
	if (!t->columns || !t->sorted)
		return -ENOMEM;
	for (size_t i = 0; i < h->nfields; i++) {
		snprintf(what, sizeof(what), "column %zu name", i + 1);
		if ((r = name_check(h->fields[i], h->lens[i], h->line, what, err)) < 0)
			return r;
		t->columns[i] = memdup0(h->fields[i], h->lens[i]);
		if (!t->columns[i])
			return -ENOMEM;
		t->ncolumns++;
		t->sorted[i] = i;
	}
	/* sorted by name once: duplicates meet, and lookups bisect */
	tmp = calloc(t->ncolumns + 1, sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	for (size_t i = 0; i < t->ncolumns; i++) {
		tmp[i].name = t->columns[i];
		tmp[i].idx = i;
	}
	qsort(tmp, t->ncolumns, sizeof(*tmp), name_idx_cmp);
	for (size_t i = 0; i < t->ncolumns; i++) {
		t->sorted[i] = tmp[i].idx;
		if (i > 0 && strcmp(tmp[i - 1].name, tmp[i].name) == 0) {
			size_t a = tmp[i - 1].idx, b = tmp[i].idx;

			shown(q, tmp[i].name, strlen(tmp[i].name));
			free(tmp);
			return ug_error_set(err, -EBADMSG, "line %zu: duplicate column '%s' (columns %zu and %zu)",
					    h->line, q, a + 1, b + 1);
		}
	}
	free(tmp);
	return 0;
}

int ug_table_parse(enum ug_struct_format fmt, const void *data, size_t len,
		   struct ug_table **ret, struct ug_error *err)
{
	struct ug_table_reader rd;
	struct ug_table_record rec;
	struct ug_table *t;
	int r;

	if (fmt != UG_STRUCT_CSV && fmt != UG_STRUCT_TSV)
		return -EINVAL;
	if (len > UG_STRUCT_FILE_MAX)
		return ug_error_set(err, -E2BIG, "larger than %u bytes", UG_STRUCT_FILE_MAX);
	if (len > 0 && !data)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->format = fmt;
	ug_table_reader_init(&rd, fmt, data, len);
	t->bom = rd.off == 3;
	r = ug_table_reader_next(&rd, &rec, err);
	if (r < 0)
		goto out;
	if (r > 0) {
		if ((r = table_header(t, &rec, err)) < 0)
			goto out;
		t->crlf = rd.crlf;
		t->body_off = rd.off;
		while ((r = ug_table_reader_next(&rd, &rec, err)) > 0) {
			if (rec.nfields != t->ncolumns) {
				r = ug_error_set(err, -EBADMSG,
						 "line %zu: %zu field%s, but the header has %zu column%s",
						 rec.line, rec.nfields, rec.nfields == 1 ? "" : "s",
						 t->ncolumns, t->ncolumns == 1 ? "" : "s");
				goto out;
			}
			t->nrows++;
		}
		if (r < 0)
			goto out;
	} else {
		/* no record at all: an empty table, like an empty config */
		t->body_off = len;
	}
	r = 0;
	*ret = t;
	t = NULL;
out:
	if (r == -ENOMEM || r == -E2BIG)
		ug_error_set(err, -ENOMEM, "out of memory");
	if (r == -E2BIG)
		r = -ENOMEM; /* the scratch cap is above any input we accept */
	ug_table_reader_release(&rd);
	ug_table_free(t);
	return r;
}

/* ---- diffs ------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void pairs_free(struct ug_strpair *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].a);
		free(v[i].b);
	}
	free(v);
}

void ug_struct_diff_free(struct ug_struct_diff *d)
{
	if (!d)
		return;
	strv_free(d->sections_added, d->nsections_added);
	strv_free(d->sections_removed, d->nsections_removed);
	pairs_free(d->keys_added, d->nkeys_added);
	pairs_free(d->keys_removed, d->nkeys_removed);
	pairs_free(d->keys_changed, d->nkeys_changed);
	strv_free(d->columns, d->ncolumns);
	strv_free(d->columns_added, d->ncolumns_added);
	strv_free(d->columns_removed, d->ncolumns_removed);
	pairs_free(d->columns_renamed, d->ncolumns_renamed);
	free(d);
}

/* Append a copy of s to v (room for it was allocated up front). */
static int push(char **v, size_t *n, const char *s)
{
	char *c = strdup(s);

	if (!c)
		return -ENOMEM;
	v[(*n)++] = c;
	return 0;
}

static int push_pair(struct ug_strpair *v, size_t *n, const char *a, const char *b)
{
	char *x = strdup(a), *y = strdup(b);

	if (!x || !y) {
		free(x);
		free(y);
		return -ENOMEM;
	}
	v[*n].a = x;
	v[*n].b = y;
	(*n)++;
	return 0;
}

int ug_conf_diff(const struct ug_conf *a, const struct ug_conf *b, struct ug_struct_diff **ret)
{
	struct ug_struct_diff *d = calloc(1, sizeof(*d));
	int r = -ENOMEM;

	if (!d)
		return -ENOMEM;
	d->format = b->format;
	/* +1: calloc(0) may return NULL */
	d->sections_added = calloc(b->nsections + 1, sizeof(char *));
	d->sections_removed = calloc(a->nsections + 1, sizeof(char *));
	d->keys_added = calloc(b->nentries + 1, sizeof(*d->keys_added));
	d->keys_changed = calloc(b->nentries + 1, sizeof(*d->keys_changed));
	d->keys_removed = calloc(a->nentries + 1, sizeof(*d->keys_removed));
	if (!d->sections_added || !d->sections_removed || !d->keys_added || !d->keys_changed ||
	    !d->keys_removed)
		goto fail;
	for (size_t i = 1; i < b->nsections; i++)
		if (ug_conf_section_find(a, b->sections[i].name) < 0 &&
		    push(d->sections_added, &d->nsections_added, b->sections[i].name) < 0)
			goto fail;
	for (size_t i = 1; i < a->nsections; i++)
		if (ug_conf_section_find(b, a->sections[i].name) < 0 &&
		    push(d->sections_removed, &d->nsections_removed, a->sections[i].name) < 0)
			goto fail;
	for (size_t i = 0; i < b->nentries; i++) {
		const struct ug_conf_entry *e = &b->entries[i];
		const char *sec = b->sections[e->section].name;
		const struct ug_conf_entry *o = ug_conf_get(a, sec, e->key);

		if (!o)
			r = push_pair(d->keys_added, &d->nkeys_added, sec, e->key);
		else if (strcmp(o->value, e->value) != 0)
			r = push_pair(d->keys_changed, &d->nkeys_changed, sec, e->key);
		else
			r = 0;
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < a->nentries; i++) {
		const struct ug_conf_entry *e = &a->entries[i];
		const char *sec = a->sections[e->section].name;

		if (!ug_conf_get(b, sec, e->key) &&
		    (r = push_pair(d->keys_removed, &d->nkeys_removed, sec, e->key)) < 0)
			goto fail;
	}
	d->structural = d->nsections_added || d->nsections_removed || d->nkeys_added ||
			d->nkeys_removed;
	d->content = d->nkeys_changed > 0;
	*ret = d;
	return 0;
fail:
	ug_struct_diff_free(d);
	return -ENOMEM;
}

/* Rows compared by position on the columns both tables have: map[j] is
 * the old index of new column j, or SIZE_MAX. */
static int rows_differ(const struct ug_table *a, const void *a_data, size_t a_len,
		       const struct ug_table *b, const void *b_data, size_t b_len,
		       const size_t *map, bool *ret, struct ug_error *err)
{
	struct ug_table_reader ra, rb;
	struct ug_table_record x, y;
	bool differ = false;
	int r, s;

	if (a->nrows != b->nrows) {
		*ret = true;
		return 0;
	}
	ug_table_reader_init(&ra, a->format, a_data, a_len);
	ug_table_reader_init(&rb, b->format, b_data, b_len);
	/* headers first (an empty table has none, and then no rows) */
	r = ug_table_reader_next(&ra, &x, err);
	s = r < 0 ? 0 : ug_table_reader_next(&rb, &y, err);
	while (r > 0 && s > 0 && !differ) {
		r = ug_table_reader_next(&ra, &x, err);
		s = r <= 0 ? 0 : ug_table_reader_next(&rb, &y, err);
		if (r <= 0 || s <= 0)
			break;
		if (x.nfields != a->ncolumns || y.nfields != b->ncolumns) {
			r = ug_error_set(err, -EBADMSG, "line %zu: the table changed while being read",
					 x.nfields != a->ncolumns ? x.line : y.line);
			break;
		}
		for (size_t j = 0; j < b->ncolumns && !differ; j++) {
			size_t i = map[j];

			if (i != SIZE_MAX && (x.lens[i] != y.lens[j] ||
					      memcmp(x.fields[i], y.fields[j], y.lens[j]) != 0))
				differ = true;
		}
	}
	ug_table_reader_release(&ra);
	ug_table_reader_release(&rb);
	if (r < 0)
		return r;
	if (s < 0)
		return s;
	*ret = differ;
	return 0;
}

int ug_table_diff(const struct ug_table *a, const void *a_data, size_t a_len,
		  const struct ug_table *b, const void *b_data, size_t b_len,
		  const struct ug_column_rename *renames, size_t nrenames,
		  struct ug_struct_diff **ret, struct ug_error *err)
{
	struct ug_struct_diff *d = calloc(1, sizeof(*d));
	size_t *map = calloc(b->ncolumns + 1, sizeof(*map));
	bool *used = calloc(a->ncolumns + 1, sizeof(*used));
	bool *renamed = calloc(b->ncolumns + 1, sizeof(*renamed));
	size_t last = 0;
	bool first = true;
	int r = -ENOMEM;

	if (!d || !map || !used || !renamed)
		goto out;
	d->format = b->format;
	for (size_t j = 0; j < b->ncolumns; j++) {
		ssize_t i = ug_table_column(a, b->columns[j]);

		map[j] = i < 0 ? SIZE_MAX : (size_t)i;
		if (i >= 0)
			used[i] = true;
	}
	/* a rule pairs a column only the old header has with one only the
	 * new header has; each column takes part in one rename at most */
	for (size_t k = 0; k < nrenames; k++) {
		ssize_t i = ug_table_column(a, renames[k].from);
		ssize_t j = ug_table_column(b, renames[k].to);

		if (i < 0 || j < 0 || used[i] || map[j] != SIZE_MAX)
			continue;
		map[j] = (size_t)i;
		used[i] = true;
		renamed[j] = true;
	}
	d->columns = calloc(b->ncolumns + 1, sizeof(char *));
	d->columns_added = calloc(b->ncolumns + 1, sizeof(char *));
	d->columns_removed = calloc(a->ncolumns + 1, sizeof(char *));
	d->columns_renamed = calloc(b->ncolumns + 1, sizeof(*d->columns_renamed));
	if (!d->columns || !d->columns_added || !d->columns_removed || !d->columns_renamed)
		goto out;
	for (size_t j = 0; j < b->ncolumns; j++) {
		if (push(d->columns, &d->ncolumns, b->columns[j]) < 0)
			goto out;
		if (map[j] == SIZE_MAX) {
			if (push(d->columns_added, &d->ncolumns_added, b->columns[j]) < 0)
				goto out;
			continue;
		}
		if (renamed[j] && push_pair(d->columns_renamed, &d->ncolumns_renamed,
					    a->columns[map[j]], b->columns[j]) < 0)
			goto out;
		/* the old positions of the columns kept, in new order, must
		 * rise: otherwise some kept columns swapped places */
		if (!first && map[j] < last)
			d->reordered = true;
		last = map[j];
		first = false;
	}
	for (size_t i = 0; i < a->ncolumns; i++)
		if (!used[i] && push(d->columns_removed, &d->ncolumns_removed, a->columns[i]) < 0)
			goto out;
	d->structural = d->ncolumns_added || d->ncolumns_removed || d->ncolumns_renamed ||
			d->reordered;
	r = rows_differ(a, a_data, a_len, b, b_data, b_len, map, &d->content, err);
	if (r < 0)
		goto out;
	*ret = d;
	d = NULL;
out:
	if (r == -ENOMEM)
		ug_error_set(err, r, "out of memory");
	ug_struct_diff_free(d);
	free(map);
	free(used);
	free(renamed);
	return r;
}

int ug_struct_compare(enum ug_class cls, const char *path,
		      const void *old_data, size_t old_len,
		      const void *new_data, size_t new_len,
		      const struct ug_column_rename *renames, size_t nrenames,
		      struct ug_struct_diff **ret, struct ug_error *err)
{
	enum ug_struct_format fmt = ug_struct_format_for(cls, path);
	struct ug_error e = { "" };
	struct ug_conf *ca = NULL, *cb = NULL;
	struct ug_table *ta = NULL, *tb = NULL;
	const char *side = "old version";
	int r;

	if (fmt == UG_STRUCT_NONE)
		return ug_error_set(err, -EINVAL, "class '%s' has no structural view",
				    ug_class_name(cls));
	if (old_len > UG_STRUCT_FILE_MAX || new_len > UG_STRUCT_FILE_MAX)
		return ug_error_set(err, -E2BIG, "%s: larger than %u bytes",
				    old_len > UG_STRUCT_FILE_MAX ? "old version" : "new version",
				    UG_STRUCT_FILE_MAX);
	if (fmt == UG_STRUCT_INI) {
		r = ug_conf_parse(old_data, old_len, &ca, &e);
		if (r == 0) {
			side = "new version";
			r = ug_conf_parse(new_data, new_len, &cb, &e);
		}
		if (r == 0)
			r = ug_conf_diff(ca, cb, ret);
	} else {
		r = ug_table_parse(fmt, old_data, old_len, &ta, &e);
		if (r == 0) {
			side = "new version";
			r = ug_table_parse(fmt, new_data, new_len, &tb, &e);
		}
		if (r == 0) {
			side = "diff";
			r = ug_table_diff(ta, old_data, old_len, tb, new_data, new_len, renames,
					  nrenames, ret, &e);
		}
	}
	if (r < 0)
		ug_error_set(err, r, "%s: %s", side, e.msg[0] ? e.msg : strerror(-r));
	ug_conf_free(ca);
	ug_conf_free(cb);
	ug_table_free(ta);
	ug_table_free(tb);
	return r;
}

enum ug_action ug_struct_action(enum ug_class cls, const struct ug_struct_diff *d,
				bool has_deltas)
{
	enum ug_action plain = has_deltas ? UG_ACTION_PATCH : UG_ACTION_REPLACE;

	switch (cls) {
	case UG_CLASS_PRESERVE:
		return UG_ACTION_PRESERVE;
	case UG_CLASS_CONFIG:
		return d && d->structural ? UG_ACTION_MERGE : plain;
	case UG_CLASS_DATA:
		return d && d->structural ? UG_ACTION_MIGRATE : plain;
	default:
		return plain;
	}
}
