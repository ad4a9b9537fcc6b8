/* test-structure.c - unit tests for src/structure.c: the INI / key=value
 * and CSV / TSV parsers on real-looking files, every structural diff case
 * and the action it leads to, every malformed input with the line it
 * names, the limits, and a fuzz loop of truncations and byte flips. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "structure.h"
#include "util.h"

#define DATA UG_TEST_DATA "/structure/"

/* ---- helpers ----------------------------------------------------------- */

struct blob {
	char *data;
	size_t len;
};

static struct blob fixture(const char *name)
{
	struct blob b = { 0 };
	char path[512];

	snprintf(path, sizeof(path), DATA "%s", name);
	cr_assert_eq(ug_file_read(AT_FDCWD, path, 1u << 20, &b.data, &b.len), 0, "read %s", path);
	return b;
}

static struct ug_conf *conf_ok_n(const char *text, size_t len)
{
	struct ug_error err = { "" };
	struct ug_conf *c = NULL;
	int r = ug_conf_parse(text, len, &c, &err);

	cr_assert_eq(r, 0, "conf parse: %d %s", r, err.msg);
	cr_assert_not_null(c);
	return c;
}

static struct ug_conf *conf_ok(const char *text)
{
	return conf_ok_n(text, strlen(text));
}

static void conf_fails_n(const char *text, size_t len, int rc, const char *want)
{
	struct ug_error err = { "" };
	struct ug_conf *c = (struct ug_conf *)0x1;
	int r = ug_conf_parse(text, len, &c, &err);

	cr_assert_eq(r, rc, "conf parse gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_eq(c, (struct ug_conf *)0x1, "ret must be untouched on failure");
	cr_assert_str_eq(err.msg, want);
}

static void conf_fails(const char *text, const char *want)
{
	conf_fails_n(text, strlen(text), -EBADMSG, want);
}

static struct ug_table *table_ok_n(enum ug_struct_format fmt, const char *text, size_t len)
{
	struct ug_error err = { "" };
	struct ug_table *t = NULL;
	int r = ug_table_parse(fmt, text, len, &t, &err);

	cr_assert_eq(r, 0, "table parse: %d %s", r, err.msg);
	cr_assert_not_null(t);
	return t;
}

static struct ug_table *csv_ok(const char *text)
{
	return table_ok_n(UG_STRUCT_CSV, text, strlen(text));
}

static void table_fails_n(enum ug_struct_format fmt, const char *text, size_t len, int rc,
			  const char *want)
{
	struct ug_error err = { "" };
	struct ug_table *t = (struct ug_table *)0x1;
	int r = ug_table_parse(fmt, text, len, &t, &err);

	cr_assert_eq(r, rc, "table parse gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_eq(t, (struct ug_table *)0x1, "ret must be untouched on failure");
	cr_assert_str_eq(err.msg, want);
}

static void csv_fails(const char *text, const char *want)
{
	table_fails_n(UG_STRUCT_CSV, text, strlen(text), -EBADMSG, want);
}

static void assert_columns(const struct ug_table *t, const char *const *want, size_t n)
{
	cr_assert_eq(t->ncolumns, n, "%zu columns, want %zu", t->ncolumns, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(t->columns[i], want[i], "column %zu", i);
}

static void assert_strv(char **v, size_t n, const char *const *want, size_t wn, const char *what)
{
	cr_assert_eq(n, wn, "%s: %zu entries, want %zu", what, n, wn);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(v[i], want[i], "%s[%zu]", what, i);
}

/* want: "a/b" pairs, split at the first '/' */
static void assert_pairs(const struct ug_strpair *v, size_t n, const char *const *want, size_t wn,
			 const char *what)
{
	cr_assert_eq(n, wn, "%s: %zu entries, want %zu", what, n, wn);
	for (size_t i = 0; i < n; i++) {
		char got[256];

		snprintf(got, sizeof(got), "%s/%s", v[i].a, v[i].b);
		cr_assert_str_eq(got, want[i], "%s[%zu]", what, i);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define NONE ((const char *const *)NULL), 0

static struct ug_struct_diff *compare_ok(enum ug_class cls, const char *path, const char *a,
					 size_t alen, const char *b, size_t blen,
					 const struct ug_column_rename *rn, size_t nrn)
{
	struct ug_error err = { "" };
	struct ug_struct_diff *d = NULL;
	int r = ug_struct_compare(cls, path, a, alen, b, blen, rn, nrn, &d, &err);

	cr_assert_eq(r, 0, "compare: %d %s", r, err.msg);
	cr_assert_not_null(d);
	return d;
}

static struct ug_struct_diff *conf_diff_s(const char *a, const char *b)
{
	return compare_ok(UG_CLASS_CONFIG, "x.conf", a, strlen(a), b, strlen(b), NULL, 0);
}

static struct ug_struct_diff *csv_diff_s(const char *a, const char *b,
					 const struct ug_column_rename *rn, size_t nrn)
{
	return compare_ok(UG_CLASS_DATA, "t.csv", a, strlen(a), b, strlen(b), rn, nrn);
}

static struct ug_struct_diff *fixture_diff(enum ug_class cls, const char *a, const char *b,
					   const struct ug_column_rename *rn, size_t nrn)
{
	struct blob x = fixture(a), y = fixture(b);
	struct ug_struct_diff *d = compare_ok(cls, b, x.data, x.len, y.data, y.len, rn, nrn);

	free(x.data);
	free(y.data);
	return d;
}

/* ---- formats ----------------------------------------------------------- */

Test(structure, format_names_and_choice)
{
	enum ug_struct_format f = UG_STRUCT_NONE;
	static const char *const names[] = { "kv", "ini", "csv", "tsv" };

	for (size_t i = 0; i < N(names); i++) {
		cr_assert_eq(ug_struct_format_from_name(names[i], &f), 0);
		cr_assert_str_eq(ug_struct_format_name(f), names[i]);
	}
	f = UG_STRUCT_CSV;
	cr_assert_eq(ug_struct_format_from_name("none", &f), -EINVAL, "'none' is not a format");
	cr_assert_eq(ug_struct_format_from_name("INI", &f), -EINVAL);
	cr_assert_eq(ug_struct_format_from_name("", &f), -EINVAL);
	cr_assert_eq(ug_struct_format_from_name(NULL, &f), -EINVAL);
	cr_assert_eq(f, UG_STRUCT_CSV, "ret untouched on failure");
	cr_assert_str_eq(ug_struct_format_name(UG_STRUCT__COUNT), "?");

	cr_assert_eq(ug_struct_format_for(UG_CLASS_CONFIG, "etc/app.properties"), UG_STRUCT_INI);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_CONFIG, ".env"), UG_STRUCT_INI);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_DATA, "var/meters.tsv"), UG_STRUCT_TSV);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_DATA, "METERS.TSV"), UG_STRUCT_TSV);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_DATA, "prices.csv"), UG_STRUCT_CSV);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_DATA, "table"), UG_STRUCT_CSV, "data defaults to CSV");
	cr_assert_eq(ug_struct_format_for(UG_CLASS_DATA, "tsv"), UG_STRUCT_CSV);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_BINARY, "a.ini"), UG_STRUCT_NONE);
	cr_assert_eq(ug_struct_format_for(UG_CLASS_PRESERVE, "a.csv"), UG_STRUCT_NONE);
}

/* ---- config parsing ---------------------------------------------------- */

Test(structure, ini_with_sections_and_comments)
{
	struct blob b = fixture("agent-v1.ini");
	struct ug_conf *c = conf_ok_n(b.data, b.len);
	static const char *const sections[] = { "", "agent", "uplink", "legacy" };
	const struct ug_conf_entry *e;

	cr_assert_eq(c->format, UG_STRUCT_INI);
	cr_assert_eq(c->nsections, N(sections));
	for (size_t i = 0; i < N(sections); i++)
		cr_assert_str_eq(c->sections[i].name, sections[i]);
	cr_assert_eq(c->sections[0].nkeys, 1);
	cr_assert_eq(c->sections[1].line, 6);
	cr_assert_eq(c->sections[1].nkeys, 3);
	cr_assert_eq(c->nentries, 8, "comments and blank lines are not keys");
	cr_assert_eq(c->nlines, 18);

	e = ug_conf_get(c, "", "log_level");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->value, "info");
	cr_assert_eq(e->line, 4);
	e = ug_conf_get(c, "agent", "endpoint");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->value, "https://collect.example.net/v2/readings", "':' inside a value is kept");
	/* spans point into the file: a merge can rewrite the value in place */
	cr_assert(strncmp(b.data + e->off, "endpoint = https://", 19) == 0);
	cr_assert_eq(b.data[e->off + e->len - 1], '\n');
	cr_assert(strncmp(b.data + e->value_off, "https://collect", 15) == 0);
	cr_assert_eq(e->value_len, strlen("https://collect.example.net/v2/readings"));
	e = ug_conf_get(c, "uplink", "apn");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->value, "iot.example", "quotes are not part of the value");
	cr_assert_eq(e->quote, '"');
	cr_assert_eq(e->value_len, strlen("\"iot.example\""));
	cr_assert_eq(c->entries[e - c->entries].section, 2);

	cr_assert_null(ug_conf_get(c, "agent", "port"), "keys belong to their section");
	cr_assert_null(ug_conf_get(c, "nosuch", "port"));
	cr_assert_eq(ug_conf_section_find(c, "uplink"), 2);
	cr_assert_eq(ug_conf_section_find(c, "Uplink"), -1, "names are case-sensitive");
	ug_conf_free(c);
	free(b.data);
}

Test(structure, properties_file)
{
	struct blob b = fixture("gateway.properties");
	struct ug_conf *c = conf_ok_n(b.data, b.len);

	cr_assert_eq(c->format, UG_STRUCT_KV, "no header: key=value format");
	cr_assert_eq(c->nsections, 1);
	cr_assert_eq(c->nentries, 5, "'#' and '!' lines are comments");
	cr_assert_str_eq(ug_conf_get(c, "", "server.host")->value, "collect.example.net");
	cr_assert_str_eq(ug_conf_get(c, "", "server.port")->value, "8443", "':' separates too");
	cr_assert_str_eq(ug_conf_get(c, "", "server.path")->value, "/v2/readings");
	cr_assert_str_eq(ug_conf_get(c, "", "tls.ciphers")->value,
			 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
			 "the first separator wins");
	cr_assert_str_eq(ug_conf_get(c, "", "display.greeting")->value, "Welcome = Bienvenue");
	ug_conf_free(c);
	free(b.data);
}

Test(structure, env_file_with_export_and_quotes)
{
	struct blob b = fixture("site.env");
	struct ug_conf *c = conf_ok_n(b.data, b.len);
	const struct ug_conf_entry *e;

	cr_assert_eq(c->format, UG_STRUCT_KV);
	cr_assert_eq(c->nentries, 6);
	cr_assert_str_eq(c->entries[0].key, "SITE_ID", "'export ' is not part of the key");
	cr_assert_str_eq(c->entries[0].value, "FR-75-0042");
	cr_assert_str_eq(ug_conf_get(c, "", "SITE_NAME")->value, "Gare de l'Est, quai 3");
	e = ug_conf_get(c, "", "TZ");
	cr_assert_str_eq(e->value, "Europe/Paris");
	cr_assert_eq(e->quote, '\'');
	cr_assert_str_eq(ug_conf_get(c, "", "EMPTY")->value, "");
	e = ug_conf_get(c, "", "NOTE");
	cr_assert_str_eq(e->value, "say \"hi\" and \\ bye", "\\\" and \\\\ are escapes, the comment goes");
	/* the span is the value as written: from quote to quote */
	cr_assert_eq(b.data[e->value_off], '"');
	cr_assert_eq(b.data[e->value_off + e->value_len - 1], '"');
	cr_assert(strncmp(b.data + e->value_off + e->value_len, " # trailing", 11) == 0);
	cr_assert_null(ug_conf_get(c, "", "export SITE_ID"));
	ug_conf_free(c);
	free(b.data);
}

Test(structure, config_syntax_details)
{
	struct ug_conf *c;

	/* "export" followed by a separator is a key named export */
	c = conf_ok("export = 1\nexport\tPATH_X=2\nexport   Y:3\n");
	cr_assert_eq(c->nentries, 3);
	cr_assert_str_eq(c->entries[0].key, "export");
	cr_assert_str_eq(c->entries[1].key, "PATH_X");
	cr_assert_str_eq(c->entries[2].key, "Y");
	cr_assert_str_eq(c->entries[2].value, "3");
	ug_conf_free(c);

	/* blanks around keys, values and inside headers are not significant;
	 * an inline comment in an unquoted value is part of the value (as
	 * Python's configparser reads it), after a quoted one it is not */
	c = conf_ok("[ main ]   ; the main section\n\tkey\t=\tvalue with spaces  \n"
		    "k2 = v ; not a comment\nk3 = \"v\" ; a comment\nk4=\n");
	cr_assert_eq(c->format, UG_STRUCT_INI);
	cr_assert_str_eq(c->sections[1].name, "main");
	cr_assert_str_eq(ug_conf_get(c, "main", "key")->value, "value with spaces");
	cr_assert_str_eq(ug_conf_get(c, "main", "k2")->value, "v ; not a comment");
	cr_assert_str_eq(ug_conf_get(c, "main", "k3")->value, "v");
	cr_assert_str_eq(ug_conf_get(c, "main", "k4")->value, "");
	ug_conf_free(c);

	/* keys at one indent are fine (gitconfig style) */
	c = conf_ok("[core]\n\tbare = false\n\tfilemode = true\n[remote]\n  url = x\n");
	cr_assert_eq(c->nentries, 3);
	ug_conf_free(c);

	/* CRLF: the CR is not part of the value; a BOM is skipped */
	c = conf_ok("\xef\xbb\xbf" "a = 1\r\n[s]\r\nb = \"2\"\r\n");
	cr_assert(c->crlf);
	cr_assert(c->bom);
	cr_assert_str_eq(ug_conf_get(c, "", "a")->value, "1", "the BOM is not part of the first key");
	cr_assert_str_eq(ug_conf_get(c, "s", "b")->value, "2");
	ug_conf_free(c);

	/* a value may hold any byte but NUL: only names must be UTF-8 */
	c = conf_ok("name = caf\xe9\n");
	cr_assert_str_eq(ug_conf_get(c, "", "name")->value, "caf\xe9");
	ug_conf_free(c);

	/* an even number of trailing backslashes is an escaped backslash */
	c = conf_ok("dir = C:\\\\\n");
	cr_assert_str_eq(ug_conf_get(c, "", "dir")->value, "C:\\\\");
	ug_conf_free(c);
}

Test(structure, repeated_section_headers_are_merged)
{
	struct ug_conf *c = conf_ok("[a]\nx = 1\n[b]\ny = 2\n[a]\nz = 3\n");

	cr_assert_eq(c->nsections, 3, "'', a and b");
	cr_assert_str_eq(c->sections[1].name, "a");
	cr_assert_eq(c->sections[1].nheaders, 2);
	cr_assert_eq(c->sections[1].line, 1, "line of the first header");
	cr_assert_eq(c->sections[1].nkeys, 2);
	cr_assert_eq(ug_conf_get(c, "a", "z")->line, 6);
	cr_assert_eq(ug_conf_get(c, "a", "z")->section, 1);
	ug_conf_free(c);
}

Test(structure, empty_config_is_valid)
{
	struct ug_conf *c = conf_ok_n("", 0);

	cr_assert_eq(c->format, UG_STRUCT_KV);
	cr_assert_eq(c->nentries, 0);
	cr_assert_eq(c->nsections, 1);
	ug_conf_free(c);
	c = conf_ok_n(NULL, 0);
	cr_assert_eq(c->nentries, 0);
	ug_conf_free(c);
	c = conf_ok("# only comments\n; and blanks\n\n   \n");
	cr_assert_eq(c->nentries, 0);
	cr_assert_eq(c->format, UG_STRUCT_KV);
	ug_conf_free(c);
	c = conf_ok("[empty]\n");
	cr_assert_eq(c->format, UG_STRUCT_INI, "a header alone makes it INI");
	cr_assert_eq(c->nentries, 0);
	ug_conf_free(c);
}

/* ---- config: malformed ------------------------------------------------- */

Test(structure, config_malformed_lines)
{
	conf_fails("[uplink]\nport = 1883\nport = 8883\n",
		   "line 3: duplicate key 'port' in section [uplink] (first on line 2)");
	conf_fails("a=1\nb=2\na=3\n", "line 3: duplicate key 'a' (first on line 1)");
	conf_fails("[s\nk=v\n", "line 1: section header without ']'");
	conf_fails("[s] x\n", "line 1: text after the ']' of a section header");
	conf_fails("k=v\n[ ]\n", "line 2: empty section name");
	conf_fails("k=v\n= v\n", "line 2: empty key");
	conf_fails("just some words\n", "line 1: expected 'key = value', '[section]' or a comment");
	conf_fails("k = \"open\n", "line 1: unterminated quoted value");
	conf_fails("k = 'open\n", "line 1: unterminated quoted value");
	conf_fails("k = \"a\\\"\n", "line 1: unterminated quoted value");
	conf_fails("k = \"a\" b\n", "line 1: text after the closing quote of a value");
	conf_fails("k = a \\\n  b\n",
		   "line 1: a '\\' at the end of a line (line continuation) is not supported");
	conf_fails("[s]\nk\x1b[31m = 1\n", "line 2: key contains a control character");
	conf_fails("[s\x7f]\n", "line 1: section name contains a control character");
	conf_fails("k\xff = 1\n", "line 1: key is not valid UTF-8");
	conf_fails("[\xc0\xaf]\n", "line 1: section name is not valid UTF-8");
	conf_fails("[a]\nx = 1\n[b]\ny = 1\n[a]\nx = 2\n",
		   "line 6: duplicate key 'x' in section [a] (first on line 2)");
}

Test(structure, config_malformed_fixtures)
{
	static const struct {
		const char *file;
		const char *msg;
	} cases[] = {
		{ "bad-duplicate-key.ini", "line 8: duplicate key 'port' in section [uplink] (first on line 2)" },
		{ "bad-nul-byte.ini", "line 3: NUL byte" },
		{ "bad-utf8-key.ini", "line 3: key is not valid UTF-8" },
		{ "bad-continuation.ini",
		  "line 3: indented deeper than the key above (continuation lines are not supported)" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct blob b = fixture(cases[i].file);

		conf_fails_n(b.data, b.len, -EBADMSG, cases[i].msg);
		free(b.data);
	}
}

Test(structure, config_limits)
{
	size_t cap = 64u << 20, len;
	char *text = malloc(cap);
	struct ug_conf *c;

	cr_assert_not_null(text);
	/* a 10 MB line: refused, naming its line */
	len = (size_t)snprintf(text, cap, "a = 1\nb = ");
	memset(text + len, 'x', 10u << 20);
	len += 10u << 20;
	text[len++] = '\n';
	conf_fails_n(text, len, -EBADMSG, "line 2: longer than 1048576 bytes");
	/* exactly the limit is fine */
	len = (size_t)snprintf(text, cap, "b = ");
	memset(text + len, 'y', UG_STRUCT_LINE_MAX - len);
	len = UG_STRUCT_LINE_MAX;
	c = conf_ok_n(text, len);
	cr_assert_eq(strlen(ug_conf_get(c, "", "b")->value), UG_STRUCT_LINE_MAX - 4);
	ug_conf_free(c);

	/* a key longer than UG_STRUCT_NAME_MAX */
	memset(text, 'k', UG_STRUCT_NAME_MAX + 1);
	memcpy(text + UG_STRUCT_NAME_MAX + 1, "=1\n", 3);
	conf_fails_n(text, UG_STRUCT_NAME_MAX + 4, -EBADMSG, "line 1: key is longer than 4096 bytes");
	text[0] = '=';
	memset(text, 'k', UG_STRUCT_NAME_MAX);
	memcpy(text + UG_STRUCT_NAME_MAX, "=1\n", 3);
	c = conf_ok_n(text, UG_STRUCT_NAME_MAX + 3);
	cr_assert_eq(c->nentries, 1);
	ug_conf_free(c);

	/* UG_STRUCT_KEYS_MAX keys parse (quickly: hashed), one more does not */
	len = 0;
	for (unsigned i = 0; i < UG_STRUCT_KEYS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "key%u=%u\n", i, i);
	c = conf_ok_n(text, len);
	cr_assert_eq(c->nentries, UG_STRUCT_KEYS_MAX);
	cr_assert_str_eq(ug_conf_get(c, "", "key99999")->value, "99999");
	ug_conf_free(c);
	len += (size_t)snprintf(text + len, cap - len, "# c\nlast=1\n");
	conf_fails_n(text, len, -EBADMSG, "line 100002: more than 100000 keys");

	/* sections: UG_STRUCT_SECTIONS_MAX, not one more */
	len = 0;
	for (unsigned i = 0; i < UG_STRUCT_SECTIONS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "[s%u]\n", i);
	len += (size_t)snprintf(text + len, cap - len, "[s0]\n[s9999]\n");
	c = conf_ok_n(text, len);
	cr_assert_eq(c->nsections, UG_STRUCT_SECTIONS_MAX + 1);
	ug_conf_free(c);
	len += (size_t)snprintf(text + len, cap - len, "[one-more]\n");
	conf_fails_n(text, len, -EBADMSG, "line 10003: more than 10000 sections");

	/* over the file limit: refused before a byte is read */
	conf_fails_n(text, (size_t)UG_STRUCT_FILE_MAX + 1, -E2BIG, "larger than 67108864 bytes");
	free(text);
}

/* ---- tables ------------------------------------------------------------ */

Test(structure, csv_rfc4180_with_quotes_commas_newlines)
{
	struct blob b = fixture("tariffs-v1.csv");
	struct ug_table *t = table_ok_n(UG_STRUCT_CSV, b.data, b.len);
	static const char *const cols[] = { "code", "tariff", "period" };
	struct ug_table_reader rd;
	struct ug_table_record rec;
	struct ug_error err = { "" };

	assert_columns(t, cols, N(cols));
	cr_assert_eq(t->nrows, 4);
	cr_assert(t->crlf);
	cr_assert_not(t->bom);
	cr_assert_eq(t->body_off, strlen("code,tariff,period\r\n"));
	cr_assert_eq(ug_table_column(t, "period"), 2);
	cr_assert_eq(ug_table_column(t, "Period"), -1);

	ug_table_reader_init(&rd, UG_STRUCT_CSV, b.data, b.len);
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1, "header: %s", err.msg);
	cr_assert_eq(rec.line, 1);
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1);
	cr_assert_str_eq(rec.fields[0], "BASE");
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1);
	cr_assert_eq(rec.nfields, 3);
	cr_assert_str_eq(rec.fields[0], "HC,night", "a comma inside quotes");
	cr_assert_str_eq(rec.fields[1], "0.2068");
	cr_assert_eq(rec.lens[0], 8);
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1);
	cr_assert_str_eq(rec.fields[2], "day \"peak\" hours", "doubled quotes");
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1);
	cr_assert_eq(rec.line, 5);
	cr_assert_str_eq(rec.fields[2], "winter\r\nonly", "a line break inside quotes is data");
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 0);
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 0, "the end stays the end");
	ug_table_reader_release(&rd);
	ug_table_free(t);
	free(b.data);
}

Test(structure, tsv_has_no_quoting)
{
	struct blob b = fixture("meters.tsv");
	struct ug_table *t = table_ok_n(UG_STRUCT_TSV, b.data, b.len);
	static const char *const cols[] = { "serial", "model", "installed", "location" };
	struct ug_table_reader rd;
	struct ug_table_record rec;

	assert_columns(t, cols, N(cols));
	cr_assert_eq(t->nrows, 2);
	cr_assert_not(t->crlf);
	ug_table_reader_init(&rd, UG_STRUCT_TSV, b.data, b.len);
	cr_assert_eq(ug_table_reader_next(&rd, &rec, NULL), 1);
	cr_assert_eq(ug_table_reader_next(&rd, &rec, NULL), 1);
	cr_assert_str_eq(rec.fields[3], "cellar, left wall", "commas are data in TSV");
	cr_assert_eq(ug_table_reader_next(&rd, &rec, NULL), 1);
	cr_assert_str_eq(rec.fields[3], "\"garage\"", "quotes are data in TSV");
	ug_table_reader_release(&rd);
	ug_table_free(t);
	free(b.data);
}

Test(structure, table_syntax_details)
{
	struct ug_table *t;
	static const char *const ab[] = { "a", "b" };
	static const char *const abe[] = { "a", "b", "" };

	/* no final newline; empty lines are not rows */
	t = csv_ok("\n\na,b\n\n1,2\r\n\r\n3,4");
	assert_columns(t, ab, 2);
	cr_assert_eq(t->nrows, 2);
	ug_table_free(t);
	/* a trailing comma makes an empty last column, also at EOF */
	t = csv_ok("a,b,\n1,2,");
	assert_columns(t, abe, 3);
	cr_assert_eq(t->nrows, 1);
	ug_table_free(t);
	/* empty fields, quoted empty fields, a lone CR inside a field */
	t = csv_ok("a,b\n,\n\"\",\"\"\nx\ry,z\n");
	cr_assert_eq(t->nrows, 3);
	ug_table_free(t);
	/* a BOM is not part of the first column name */
	t = csv_ok("\xef\xbb\xbf" "a,b\n1,2\n");
	assert_columns(t, ab, 2);
	cr_assert(t->bom);
	ug_table_free(t);
	/* non-UTF-8 values are data */
	t = csv_ok("a,b\n\xff,\xfe\n");
	cr_assert_eq(t->nrows, 1);
	ug_table_free(t);
	/* a header of one column; the empty column name is a name */
	t = csv_ok("a,,b\n1,2,3\n");
	cr_assert_str_eq(t->columns[1], "");
	ug_table_free(t);
}

Test(structure, empty_table_is_valid)
{
	struct ug_table *t = table_ok_n(UG_STRUCT_CSV, "", 0);

	cr_assert_eq(t->ncolumns, 0);
	cr_assert_eq(t->nrows, 0);
	ug_table_free(t);
	t = table_ok_n(UG_STRUCT_TSV, NULL, 0);
	cr_assert_eq(t->ncolumns, 0);
	ug_table_free(t);
	t = csv_ok("\r\n\n\n");
	cr_assert_eq(t->ncolumns, 0, "only empty lines: no header, no rows");
	ug_table_free(t);
	t = csv_ok("a,b\n");
	cr_assert_eq(t->ncolumns, 2);
	cr_assert_eq(t->nrows, 0, "a header alone is a table without rows");
	ug_table_free(t);
}

/* ---- tables: malformed ------------------------------------------------- */

Test(structure, table_malformed)
{
	csv_fails("a,b\n1,\"open\n2,3\n", "line 2: unterminated quoted field");
	csv_fails("a,b\n1,\"x\"y\n", "line 2: text after the closing quote of a field");
	csv_fails("a,b\n1,x\"y\n",
		  "line 2: quote inside an unquoted field (quote the whole field and double the quote)");
	csv_fails("a,b\n1,2\n3\n", "line 3: 1 field, but the header has 2 columns");
	csv_fails("a,b\n1,2,3\n", "line 2: 3 fields, but the header has 2 columns");
	csv_fails("a,b,a\n", "line 1: duplicate column 'a' (columns 1 and 3)");
	csv_fails("a,\"b\nc\"\n", "line 1: column 2 name contains a control character");
	csv_fails("a,b\xff\n", "line 1: column 2 name is not valid UTF-8");
	/* a multi-line field moves the line numbers on */
	csv_fails("a,b\n1,\"x\ny\nz\"\n2\n", "line 5: 1 field, but the header has 2 columns");
	table_fails_n(UG_STRUCT_CSV, "a,b\n1,\"x\0y\"\n", 12, -EBADMSG, "line 2: NUL byte");
	table_fails_n(UG_STRUCT_CSV, "a,b\n1,x\0y\n", 10, -EBADMSG, "line 2: NUL byte");
	table_fails_n(UG_STRUCT_CSV, "a\0,b\n", 5, -EBADMSG, "line 1: NUL byte");
	table_fails_n(UG_STRUCT_TSV, "a\tb\n1\t2\t3\n", 10, -EBADMSG,
		      "line 2: 3 fields, but the header has 2 columns");
	/* in TSV a quote is data, so this is fine */
	{
		struct ug_table *t = table_ok_n(UG_STRUCT_TSV, "a\tb\n\"1\t2\n", 9);
		cr_assert_str_eq(t->columns[0], "a");
		ug_table_free(t);
	}
	cr_assert_eq(ug_table_parse(UG_STRUCT_INI, "a", 1, &(struct ug_table *){ NULL }, NULL), -EINVAL);
}

Test(structure, table_malformed_fixtures)
{
	static const struct {
		const char *file;
		enum ug_struct_format fmt;
		const char *msg;
	} cases[] = {
		{ "bad-unterminated-quote.csv", UG_STRUCT_CSV, "line 2: unterminated quoted field" },
		{ "bad-ragged-row.csv", UG_STRUCT_CSV, "line 3: 2 fields, but the header has 3 columns" },
		{ "bad-duplicate-column.csv", UG_STRUCT_CSV, "line 1: duplicate column 'price' (columns 2 and 4)" },
		{ "bad-ragged-row.tsv", UG_STRUCT_TSV, "line 2: 3 fields, but the header has 2 columns" },
		{ "bad-stray-quote.csv", UG_STRUCT_CSV,
		  "line 2: quote inside an unquoted field (quote the whole field and double the quote)" },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct blob b = fixture(cases[i].file);

		table_fails_n(cases[i].fmt, b.data, b.len, -EBADMSG, cases[i].msg);
		free(b.data);
	}
}

Test(structure, table_limits)
{
	size_t cap = 16u << 20, len;
	char *text = malloc(cap);
	struct ug_table *t;

	cr_assert_not_null(text);
	/* a 10 MB line, unquoted and quoted */
	len = (size_t)snprintf(text, cap, "a,b\n1,");
	memset(text + len, 'x', 10u << 20);
	len += 10u << 20;
	text[len++] = '\n';
	table_fails_n(UG_STRUCT_CSV, text, len, -EBADMSG, "line 2: longer than 1048576 bytes");
	text[6] = '"';
	text[len - 2] = '"';
	table_fails_n(UG_STRUCT_CSV, text, len, -EBADMSG, "line 2: longer than 1048576 bytes");
	/* a quoted field may be long if its lines are not */
	len = (size_t)snprintf(text, cap, "a\n\"");
	for (int i = 0; i < 3; i++) {
		memset(text + len, 'y', UG_STRUCT_LINE_MAX - 1);
		len += UG_STRUCT_LINE_MAX - 1;
		text[len++] = '\n';
	}
	text[len++] = '"';
	t = table_ok_n(UG_STRUCT_CSV, text, len);
	cr_assert_eq(t->nrows, 1);
	ug_table_free(t);

	/* UG_STRUCT_COLUMNS_MAX columns, and not one more */
	len = 0;
	for (unsigned i = 0; i < UG_STRUCT_COLUMNS_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "%sc%u", i ? "," : "", i);
	text[len++] = '\n';
	t = table_ok_n(UG_STRUCT_CSV, text, len);
	cr_assert_eq(t->ncolumns, UG_STRUCT_COLUMNS_MAX);
	cr_assert_eq(ug_table_column(t, "c9999"), 9999);
	cr_assert_eq(ug_table_column(t, "c0"), 0);
	ug_table_free(t);
	memcpy(text + len - 1, ",x\n", 3);
	table_fails_n(UG_STRUCT_CSV, text, len + 2, -EBADMSG, "line 1: more than 10000 fields");

	/* a column name over UG_STRUCT_NAME_MAX */
	memset(text, 'n', UG_STRUCT_NAME_MAX + 1);
	text[UG_STRUCT_NAME_MAX + 1] = '\n';
	table_fails_n(UG_STRUCT_CSV, text, UG_STRUCT_NAME_MAX + 2, -EBADMSG,
		      "line 1: column 1 name is longer than 4096 bytes");

	table_fails_n(UG_STRUCT_CSV, text, (size_t)UG_STRUCT_FILE_MAX + 1, -E2BIG,
		      "larger than 67108864 bytes");
	free(text);
}

/* ---- config diffs ------------------------------------------------------ */

Test(structure, diff_config_sections_and_keys)
{
	struct ug_struct_diff *d = fixture_diff(UG_CLASS_CONFIG, "agent-v1.ini", "agent-v2.ini", NULL, 0);
	static const char *const sadd[] = { "power" }, *const srm[] = { "legacy" };
	static const char *const kadd[] = { "agent/batch_size", "power/sleep_after" };
	static const char *const krm[] = { "legacy/modem_reset" };
	static const char *const kch[] = { "agent/poll_interval" };

	cr_assert_eq(d->format, UG_STRUCT_INI);
	cr_assert(d->structural);
	cr_assert(d->content);
	assert_strv(d->sections_added, d->nsections_added, sadd, N(sadd), "sections_added");
	assert_strv(d->sections_removed, d->nsections_removed, srm, N(srm), "sections_removed");
	assert_pairs(d->keys_added, d->nkeys_added, kadd, N(kadd), "keys_added");
	assert_pairs(d->keys_removed, d->nkeys_removed, krm, N(krm), "keys_removed");
	assert_pairs(d->keys_changed, d->nkeys_changed, kch, N(kch), "keys_changed");
	cr_assert_eq(d->ncolumns + d->ncolumns_added + d->ncolumns_removed + d->ncolumns_renamed, 0);
	cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, d, true), UG_ACTION_MERGE);
	cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, d, false), UG_ACTION_MERGE);
	ug_struct_diff_free(d);
}

Test(structure, diff_config_content_only)
{
	struct ug_struct_diff *d = fixture_diff(UG_CLASS_CONFIG, "agent-v1.ini", "agent-v1-tuned.ini", NULL, 0);
	static const char *const kch[] = { "agent/retry_after" };

	cr_assert_not(d->structural, "a value and a comment changed: not structural");
	cr_assert(d->content);
	assert_pairs(d->keys_changed, d->nkeys_changed, kch, N(kch), "keys_changed");
	cr_assert_eq(d->nkeys_added + d->nkeys_removed + d->nsections_added + d->nsections_removed, 0);
	cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, d, true), UG_ACTION_PATCH);
	cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, d, false), UG_ACTION_REPLACE);
	ug_struct_diff_free(d);
}

Test(structure, diff_config_each_case)
{
	struct ug_struct_diff *d;
	static const char *const k_b[] = { "/b" }, *const s_x[] = { "x" };

	/* key added */
	d = conf_diff_s("a=1\n", "a=1\nb=2\n");
	assert_pairs(d->keys_added, d->nkeys_added, k_b, 1, "keys_added");
	cr_assert(d->structural);
	cr_assert_not(d->content);
	cr_assert_eq(d->format, UG_STRUCT_KV);
	ug_struct_diff_free(d);
	/* key removed */
	d = conf_diff_s("a=1\nb=2\n", "a=1\n");
	assert_pairs(d->keys_removed, d->nkeys_removed, k_b, 1, "keys_removed");
	cr_assert(d->structural);
	ug_struct_diff_free(d);
	/* value changed, and only that */
	d = conf_diff_s("a=1\nb=2\n", "a=1\nb=3\n");
	assert_pairs(d->keys_changed, d->nkeys_changed, k_b, 1, "keys_changed");
	cr_assert_not(d->structural);
	cr_assert(d->content);
	ug_struct_diff_free(d);
	/* empty section added, then removed */
	d = conf_diff_s("[a]\nk=1\n", "[a]\nk=1\n[x]\n");
	assert_strv(d->sections_added, d->nsections_added, s_x, 1, "sections_added");
	cr_assert_eq(d->nkeys_added, 0);
	cr_assert(d->structural);
	cr_assert_not(d->content);
	ug_struct_diff_free(d);
	d = conf_diff_s("[a]\nk=1\n[x]\n", "[a]\nk=1\n");
	assert_strv(d->sections_removed, d->nsections_removed, s_x, 1, "sections_removed");
	cr_assert(d->structural);
	ug_struct_diff_free(d);
	/* a key that moves to another section is removed and added */
	d = conf_diff_s("k=1\n", "[s]\nk=1\n");
	cr_assert_eq(d->format, UG_STRUCT_INI);
	cr_assert_eq(d->nkeys_added, 1);
	cr_assert_str_eq(d->keys_added[0].a, "s");
	cr_assert_eq(d->nkeys_removed, 1);
	cr_assert_str_eq(d->keys_removed[0].a, "");
	cr_assert(d->structural);
	ug_struct_diff_free(d);
	/* order, comments, blanks, quoting and line endings are not changes */
	d = conf_diff_s("# v1\na = 1\nb = \"two\"\n", "b=two\r\n\r\n; v2\na=\"1\"\r\n");
	cr_assert_not(d->structural);
	cr_assert_not(d->content);
	cr_assert_eq(d->nkeys_changed, 0);
	cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, d, true), UG_ACTION_PATCH);
	ug_struct_diff_free(d);
	/* a value change inside a quoted value */
	d = conf_diff_s("apn = \"iot.example\"\n", "apn = \"iot.example.net\"\n");
	cr_assert_eq(d->nkeys_changed, 1);
	cr_assert_not(d->structural);
	ug_struct_diff_free(d);
	/* case matters: a renamed key is removed + added */
	d = conf_diff_s("Port=1\n", "port=1\n");
	cr_assert_eq(d->nkeys_added, 1);
	cr_assert_eq(d->nkeys_removed, 1);
	ug_struct_diff_free(d);
}

/* ---- data diffs -------------------------------------------------------- */

Test(structure, diff_data_rename_by_rule)
{
	struct ug_column_rename rn[] = { { "tariff", "price" } };
	struct ug_struct_diff *d = fixture_diff(UG_CLASS_DATA, "tariffs-v1.csv", "tariffs-v2.csv", rn, 1);
	static const char *const cols[] = { "code", "price", "period", "currency" };
	static const char *const add[] = { "currency" };
	static const char *const ren[] = { "tariff/price" };

	cr_assert_eq(d->format, UG_STRUCT_CSV);
	assert_strv(d->columns, d->ncolumns, cols, N(cols), "columns");
	assert_strv(d->columns_added, d->ncolumns_added, add, N(add), "columns_added");
	cr_assert_eq(d->ncolumns_removed, 0);
	assert_pairs(d->columns_renamed, d->ncolumns_renamed, ren, N(ren), "columns_renamed");
	cr_assert_not(d->reordered);
	cr_assert(d->structural);
	cr_assert_not(d->content, "the rows kept every value, quoted newlines included");
	cr_assert_eq(ug_struct_action(UG_CLASS_DATA, d, true), UG_ACTION_MIGRATE);
	cr_assert_eq(d->nkeys_added + d->nsections_added, 0);
	ug_struct_diff_free(d);
}

Test(structure, diff_data_rename_without_rule_is_add_and_remove)
{
	struct ug_column_rename other[] = { { "tariff", "cost" }, { "nosuch", "price" } };
	struct ug_struct_diff *d = fixture_diff(UG_CLASS_DATA, "tariffs-v1.csv", "tariffs-v2.csv", other, 2);
	static const char *const add[] = { "price", "currency" }, *const rm[] = { "tariff" };

	assert_strv(d->columns_added, d->ncolumns_added, add, N(add), "columns_added");
	assert_strv(d->columns_removed, d->ncolumns_removed, rm, N(rm), "columns_removed");
	cr_assert_eq(d->ncolumns_renamed, 0, "rules that do not name both columns do nothing");
	cr_assert(d->structural);
	cr_assert_not(d->content);
	ug_struct_diff_free(d);
}

Test(structure, diff_data_each_case)
{
	struct ug_struct_diff *d;
	static const char *const c_c[] = { "c" }, *const c_b[] = { "b" };

	/* column added */
	d = csv_diff_s("a,b\n1,2\n", "a,b,c\n1,2,3\n", NULL, 0);
	assert_strv(d->columns_added, d->ncolumns_added, c_c, 1, "columns_added");
	cr_assert(d->structural);
	cr_assert_not(d->content);
	cr_assert_not(d->reordered);
	ug_struct_diff_free(d);
	/* column removed */
	d = csv_diff_s("a,b,c\n1,2,3\n", "a,c\n1,3\n", NULL, 0);
	assert_strv(d->columns_removed, d->ncolumns_removed, c_b, 1, "columns_removed");
	cr_assert(d->structural);
	cr_assert_not(d->content);
	cr_assert_not(d->reordered, "removing a column does not reorder the others");
	ug_struct_diff_free(d);
	/* same columns, another order: values follow their columns */
	d = csv_diff_s("a,b,c\n1,2,3\n", "c,a,b\n3,1,2\n", NULL, 0);
	cr_assert(d->reordered);
	cr_assert(d->structural);
	cr_assert_eq(d->ncolumns_added + d->ncolumns_removed + d->ncolumns_renamed, 0);
	cr_assert_not(d->content);
	cr_assert_eq(ug_struct_action(UG_CLASS_DATA, d, true), UG_ACTION_MIGRATE);
	ug_struct_diff_free(d);
	/* kept columns swap while one is added */
	d = csv_diff_s("a,b\n1,2\n", "x,b,a\n0,2,1\n", NULL, 0);
	cr_assert(d->reordered);
	cr_assert_eq(d->ncolumns_added, 1);
	ug_struct_diff_free(d);
	/* rows only: a value inside a quoted field with a comma */
	d = csv_diff_s("a,b\n1,\"x,y\"\n", "a,b\n1,\"x,z\"\n", NULL, 0);
	cr_assert_not(d->structural);
	cr_assert(d->content);
	cr_assert_eq(ug_struct_action(UG_CLASS_DATA, d, true), UG_ACTION_PATCH);
	cr_assert_eq(ug_struct_action(UG_CLASS_DATA, d, false), UG_ACTION_REPLACE);
	ug_struct_diff_free(d);
	/* a row added */
	d = csv_diff_s("a,b\n1,2\n", "a,b\n1,2\n3,4\n", NULL, 0);
	cr_assert_not(d->structural);
	cr_assert(d->content);
	ug_struct_diff_free(d);
	/* quoting and line endings are not content */
	d = csv_diff_s("a,b\n1,x\n", "\"a\",b\r\n\"1\",\"x\"\r\n", NULL, 0);
	cr_assert_not(d->structural);
	cr_assert_not(d->content);
	ug_struct_diff_free(d);
	/* a value change in a renamed column is content */
	{
		struct ug_column_rename rn[] = { { "b", "bee" } };

		d = csv_diff_s("a,b\n1,2\n", "a,bee\n1,3\n", rn, 1);
		cr_assert_eq(d->ncolumns_renamed, 1);
		cr_assert(d->content);
		ug_struct_diff_free(d);
	}
	/* an added column's values are not content */
	d = csv_diff_s("a\n1\n2\n", "a,b\n1,x\n2,y\n", NULL, 0);
	cr_assert_not(d->content);
	ug_struct_diff_free(d);
	/* from and to an empty table */
	d = csv_diff_s("", "a,b\n1,2\n", NULL, 0);
	cr_assert_eq(d->ncolumns_added, 2);
	cr_assert(d->content, "a row appeared");
	ug_struct_diff_free(d);
	d = csv_diff_s("a,b\n", "", NULL, 0);
	cr_assert_eq(d->ncolumns_removed, 2);
	cr_assert_eq(d->ncolumns, 0);
	cr_assert_not(d->content);
	ug_struct_diff_free(d);
}

Test(structure, diff_data_rename_rules_edge_cases)
{
	struct ug_struct_diff *d;

	/* the old column still exists: nothing to rename, c is added */
	{
		struct ug_column_rename rn[] = { { "a", "c" } };

		d = csv_diff_s("a,b\n1,2\n", "a,b,c\n1,2,3\n", rn, 1);
		cr_assert_eq(d->ncolumns_renamed, 0);
		cr_assert_eq(d->ncolumns_added, 1);
		ug_struct_diff_free(d);
	}
	/* two rules for one column: the first wins, the second adds */
	{
		struct ug_column_rename rn[] = { { "a", "x" }, { "a", "y" } };

		d = csv_diff_s("a\n1\n", "x,y\n1,2\n", rn, 2);
		cr_assert_eq(d->ncolumns_renamed, 1);
		cr_assert_str_eq(d->columns_renamed[0].b, "x");
		cr_assert_eq(d->ncolumns_added, 1);
		cr_assert_str_eq(d->columns_added[0], "y");
		ug_struct_diff_free(d);
	}
	/* a swap by two renames: a->b, b->a with both names in both headers
	 * keeps them by name (reordered), the rules do not apply */
	{
		struct ug_column_rename rn[] = { { "a", "b" }, { "b", "a" } };

		d = csv_diff_s("a,b\n1,2\n", "b,a\n2,1\n", rn, 2);
		cr_assert_eq(d->ncolumns_renamed, 0);
		cr_assert(d->reordered);
		cr_assert_not(d->content);
		ug_struct_diff_free(d);
	}
	/* renames listed in the new header's order, reordering seen through them */
	{
		struct ug_column_rename rn[] = { { "b", "B" }, { "a", "A" } };

		d = csv_diff_s("a,b\n1,2\n", "A,B\n1,2\n", rn, 2);
		cr_assert_eq(d->ncolumns_renamed, 2);
		cr_assert_str_eq(d->columns_renamed[0].a, "a");
		cr_assert_str_eq(d->columns_renamed[1].a, "b");
		cr_assert_not(d->reordered);
		cr_assert_not(d->content);
		ug_struct_diff_free(d);
		d = csv_diff_s("a,b\n1,2\n", "B,A\n2,1\n", rn, 2);
		cr_assert(d->reordered);
		ug_struct_diff_free(d);
	}
}

Test(structure, diff_tsv)
{
	struct ug_struct_diff *d;
	const char *a = "serial\tmodel\nA1\tG3\n", *b = "serial\tmodel\tphase\nA1\tG3\tmono\n";

	d = compare_ok(UG_CLASS_DATA, "m.tsv", a, strlen(a), b, strlen(b), NULL, 0);
	cr_assert_eq(d->format, UG_STRUCT_TSV);
	cr_assert_eq(d->ncolumns_added, 1);
	cr_assert_str_eq(d->columns_added[0], "phase");
	ug_struct_diff_free(d);
}

/* ---- actions and compare errors ---------------------------------------- */

Test(structure, action_table)
{
	struct ug_struct_diff none = { .format = UG_STRUCT_INI };
	struct ug_struct_diff structural = { .format = UG_STRUCT_INI, .structural = true, .content = true };

	for (int has = 0; has <= 1; has++) {
		enum ug_action plain = has ? UG_ACTION_PATCH : UG_ACTION_REPLACE;

		cr_assert_eq(ug_struct_action(UG_CLASS_BINARY, NULL, has), plain);
		cr_assert_eq(ug_struct_action(UG_CLASS_BINARY, &structural, has), plain,
			     "binary ignores any diff");
		cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, NULL, has), plain,
			     "no diff (new or malformed): as binary");
		cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, &none, has), plain);
		cr_assert_eq(ug_struct_action(UG_CLASS_CONFIG, &structural, has), UG_ACTION_MERGE);
		cr_assert_eq(ug_struct_action(UG_CLASS_DATA, NULL, has), plain);
		cr_assert_eq(ug_struct_action(UG_CLASS_DATA, &none, has), plain);
		structural.format = UG_STRUCT_CSV;
		cr_assert_eq(ug_struct_action(UG_CLASS_DATA, &structural, has), UG_ACTION_MIGRATE);
		structural.format = UG_STRUCT_INI;
		cr_assert_eq(ug_struct_action(UG_CLASS_PRESERVE, NULL, has), UG_ACTION_PRESERVE);
		cr_assert_eq(ug_struct_action(UG_CLASS_PRESERVE, &structural, has), UG_ACTION_PRESERVE);
	}
}

static void compare_fails(enum ug_class cls, const char *path, const char *a, size_t alen,
			  const char *b, size_t blen, int rc, const char *want)
{
	struct ug_error err = { "" };
	struct ug_struct_diff *d = (struct ug_struct_diff *)0x1;
	int r = ug_struct_compare(cls, path, a, alen, b, blen, NULL, 0, &d, &err);

	cr_assert_eq(r, rc, "compare gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_eq(d, (struct ug_struct_diff *)0x1, "ret untouched on failure");
	cr_assert_str_eq(err.msg, want);
}

Test(structure, compare_errors_say_which_side)
{
	compare_fails(UG_CLASS_CONFIG, "a.ini", "k=\"x\n", 5, "k=1\n", 4, -EBADMSG,
		      "old version: line 1: unterminated quoted value");
	compare_fails(UG_CLASS_CONFIG, "a.ini", "k=1\n", 4, "k=1\nk=2\n", 8, -EBADMSG,
		      "new version: line 2: duplicate key 'k' (first on line 1)");
	compare_fails(UG_CLASS_DATA, "a.csv", "a,b\n", 4, "a,a\n", 4, -EBADMSG,
		      "new version: line 1: duplicate column 'a' (columns 1 and 2)");
	compare_fails(UG_CLASS_DATA, "a.tsv", "a\tb\n1\n", 6, "a\n", 2, -EBADMSG,
		      "old version: line 2: 1 field, but the header has 2 columns");
	compare_fails(UG_CLASS_BINARY, "a.ini", "", 0, "", 0, -EINVAL,
		      "class 'binary' has no structural view");
	compare_fails(UG_CLASS_PRESERVE, "a.csv", "", 0, "", 0, -EINVAL,
		      "class 'preserve' has no structural view");
	/* sizes are checked before a byte is read */
	compare_fails(UG_CLASS_DATA, "a.csv", "", (size_t)UG_STRUCT_FILE_MAX + 1, "", 0, -E2BIG,
		      "old version: larger than 67108864 bytes");
	compare_fails(UG_CLASS_CONFIG, "a.ini", "", 0, "", SIZE_MAX, -E2BIG,
		      "new version: larger than 67108864 bytes");
}

/* ---- fuzz -------------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible, so a failure can be replayed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static unsigned fuzz_ok, fuzz_bad;

static void fuzz_one(enum ug_class cls, const char *path, const struct blob *orig,
		     const char *buf, size_t len)
{
	struct ug_error err = { "" };
	struct ug_struct_diff *d = NULL;
	int r;

	if (cls == UG_CLASS_CONFIG) {
		struct ug_conf *c = NULL;

		r = ug_conf_parse(buf, len, &c, &err);
		cr_assert(r == 0 || r == -EBADMSG, "conf parse gave %d (%s)", r, err.msg);
		/* what parses is consistent: spans inside the input */
		for (size_t i = 0; r == 0 && i < c->nentries; i++) {
			const struct ug_conf_entry *e = &c->entries[i];

			cr_assert_leq(e->off + e->len, len);
			cr_assert_geq(e->value_off, e->off);
			cr_assert_leq(e->value_off + e->value_len, e->off + e->len);
			cr_assert_lt(e->section, c->nsections);
			cr_assert_eq(ug_conf_get(c, c->sections[e->section].name, e->key), e);
		}
		ug_conf_free(c);
	} else {
		struct ug_table *t = NULL;

		r = ug_table_parse(ug_struct_format_for(cls, path), buf, len, &t, &err);
		cr_assert(r == 0 || r == -EBADMSG, "table parse gave %d (%s)", r, err.msg);
		cr_assert(r < 0 || t->body_off <= len);
		ug_table_free(t);
	}
	r = ug_struct_compare(cls, path, orig->data, orig->len, buf, len, NULL, 0, &d, &err);
	cr_assert(r == 0 || r == -EBADMSG, "compare gave %d (%s)", r, err.msg);
	if (r == 0)
		fuzz_ok++;
	else
		fuzz_bad++;
	ug_struct_diff_free(d);
}

static void fuzz_file(enum ug_class cls, const char *name, unsigned rounds)
{
	struct blob b = fixture(name);
	char *buf = malloc(b.len + 1);

	cr_assert_not_null(buf);
	fuzz_ok = fuzz_bad = 0;
	/* every truncation */
	for (size_t n = 0; n <= b.len; n++) {
		memcpy(buf, b.data, n);
		fuzz_one(cls, name, &b, buf, n);
	}
	/* random flips of 1 to 4 bytes, biased toward the syntax bytes */
	for (unsigned i = 0; i < rounds; i++) {
		static const char special[] = "\"',;#=:[]\r\n\t\\\0\x80\xff ";
		unsigned flips = 1 + (unsigned)(rnd() % 4);

		memcpy(buf, b.data, b.len);
		for (unsigned k = 0; k < flips; k++) {
			size_t at = (size_t)(rnd() % b.len);

			buf[at] = (rnd() & 1) ? (char)rnd() : special[rnd() % (sizeof(special) - 1)];
		}
		fuzz_one(cls, name, &b, buf, (size_t)(rnd() % (b.len + 1)));
		fuzz_one(cls, name, &b, buf, b.len);
	}
	/* both outcomes happen, or the loop tests nothing */
	cr_assert_gt(fuzz_ok, rounds / 10, "%s: %u accepted", name, fuzz_ok);
	cr_assert_gt(fuzz_bad, rounds / 10, "%s: %u rejected", name, fuzz_bad);
	free(buf);
	free(b.data);
}

Test(structure, fuzz_truncations_and_flips_never_crash)
{
	fuzz_file(UG_CLASS_CONFIG, "agent-v2.ini", 3000);
	fuzz_file(UG_CLASS_CONFIG, "site.env", 2000);
	fuzz_file(UG_CLASS_DATA, "tariffs-v1.csv", 3000);
	fuzz_file(UG_CLASS_DATA, "meters.tsv", 1000);
}
