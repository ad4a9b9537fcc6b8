/* test-merge.c - unit tests for src/merge.c: every rule of the 3-way
 * config merge (the table in merge.h) on small files and then on random
 * ones checked against that table, the layout the result takes from the
 * new file, quoting, CRLF, the errors that name the bad input, and the
 * migration of table rows onto a new header (columns added, dropped,
 * moved, renamed; CSV quoting; TSV; limits), and truncated or garbled
 * variants of each input. Every result is parsed again with the
 * structure.h parsers. */
#include "config.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "structure.h"
#include "util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_MAX (256u << 20)

/* ---- helpers ----------------------------------------------------------- */

static struct ug_conf *conf_ok_n(const char *text, size_t len)
{
	struct ug_error err = { "" };
	struct ug_conf *c = NULL;
	int r = ug_conf_parse(text, len, &c, &err);

	cr_assert_eq(r, 0, "result does not parse: %d %s\n---\n%s---", r, err.msg, text);
	return c;
}

/* Merge, check that the result parses, return it (NUL-terminated). */
static char *merge_p(const char *base, const char *local, const char *next,
		     enum ug_merge_prefer prefer, struct ug_merge_report *rep)
{
	struct ug_buf out;
	struct ug_error err = { "" };
	uint8_t *data;
	size_t len;
	int r;

	ug_buf_init(&out, OUT_MAX);
	r = ug_merge_config(base, strlen(base), local, strlen(local), next, strlen(next), prefer, &out,
			    rep, &err);
	cr_assert_eq(r, 0, "merge: %d %s", r, err.msg);
	cr_assert_eq(ug_buf_steal(&out, &data, &len), 0);
	ug_conf_free(conf_ok_n((const char *)data, len));
	return (char *)data;
}

static char *merge(const char *base, const char *local, const char *next,
		   struct ug_merge_report *rep)
{
	return merge_p(base, local, next, UG_MERGE_PREFER_LOCAL, rep);
}

static void merge_is(const char *base, const char *local, const char *next, const char *want)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge(base, local, next, &rep);

	cr_assert_str_eq(got, want, "merge gave\n---\n%s---\nwant\n---\n%s---", got, want);
	free(got);
	ug_merge_report_release(&rep);
}

static void counts_are(const struct ug_merge_report *rep, size_t updated, size_t kept, size_t added,
		       size_t removed, size_t local_added, size_t conflicts)
{
	cr_assert_eq(rep->updated, updated, "updated %zu, want %zu", rep->updated, updated);
	cr_assert_eq(rep->kept_local, kept, "kept_local %zu, want %zu", rep->kept_local, kept);
	cr_assert_eq(rep->added, added, "added %zu, want %zu", rep->added, added);
	cr_assert_eq(rep->removed, removed, "removed %zu, want %zu", rep->removed, removed);
	cr_assert_eq(rep->local_added, local_added, "local_added %zu, want %zu", rep->local_added,
		     local_added);
	cr_assert_eq(rep->nconflicts, conflicts, "conflicts %zu, want %zu", rep->nconflicts, conflicts);
}

static void conflict_is(const struct ug_merge_conflict *c, const char *section, const char *key,
			const char *lv, const char *uv, enum ug_merge_side winner)
{
	cr_assert_str_eq(c->section, section);
	cr_assert_str_eq(c->key, key);
	if (lv)
		cr_assert_str_eq(c->local_value, lv);
	else
		cr_assert_null(c->local_value, "local value '%s', want none", c->local_value);
	if (uv)
		cr_assert_str_eq(c->upstream_value, uv);
	else
		cr_assert_null(c->upstream_value, "upstream value '%s', want none", c->upstream_value);
	cr_assert_eq(c->winner, winner);
}

/* The merge fails with rc and message want; out keeps what it had, and
 * the report is not touched. */
static void merge_fails_n(const char *base, size_t blen, const char *local, size_t llen,
			  const char *next, size_t nlen, int rc, const char *want)
{
	struct ug_buf out;
	struct ug_error err = { "" };
	struct ug_merge_report rep = { .updated = 77 };
	int r;

	ug_buf_init(&out, OUT_MAX);
	cr_assert_eq(ug_buf_put(&out, "keep", 4), 0);
	r = ug_merge_config(base, blen, local, llen, next, nlen, UG_MERGE_PREFER_LOCAL, &out, &rep,
			    &err);
	cr_assert_eq(r, rc, "merge gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(out.len, 4, "out must keep only what it had");
	cr_assert_eq(memcmp(out.data, "keep", 4), 0);
	cr_assert_eq(rep.updated, 77, "report untouched on failure");
	cr_assert_null(rep.conflicts);
	ug_buf_release(&out);
}

static void merge_fails(const char *base, const char *local, const char *next, const char *want)
{
	merge_fails_n(base, strlen(base), local, strlen(local), next, strlen(next), -EBADMSG, want);
}

static const char *value_of(const struct ug_conf *c, const char *section, const char *key)
{
	const struct ug_conf_entry *e = ug_conf_get(c, section, key);

	return e ? e->value : NULL;
}

/* ---- the rules, one by one --------------------------------------------- */

Test(merge, upstream_change_taken_where_terminal_did_not_edit)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("a = 1\nb = 2\n", "a = 1\nb = 2\n", "a = 1\nb = 3\n", &rep);

	cr_assert_str_eq(got, "a = 1\nb = 3\n");
	counts_are(&rep, 1, 0, 0, 0, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, local_edit_kept_where_upstream_did_not_change)
{
	struct ug_merge_report rep = { 0 };
	/* next adds a key (so the file is merged at all) and keeps b */
	char *got = merge("a = 1\nb = 2\n", "a = 1\nb = 20\n", "a = 1\nb = 2\nc = 3\n", &rep);

	cr_assert_str_eq(got, "a = 1\nb = 20\nc = 3\n");
	counts_are(&rep, 0, 1, 1, 0, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, new_keys_arrive)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("[s]\na = 1\n", "[s]\na = 1\n", "[s]\na = 1\nb = 2\n[t]\nc = 3\n", &rep);

	cr_assert_str_eq(got, "[s]\na = 1\nb = 2\n[t]\nc = 3\n");
	counts_are(&rep, 0, 0, 2, 0, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, removed_keys_go)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("a = 1\nold = 2\nc = 3\n", "a = 1\nold = 2\nc = 3\n", "a = 1\nc = 3\n", &rep);

	cr_assert_str_eq(got, "a = 1\nc = 3\n");
	counts_are(&rep, 0, 0, 0, 1, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, removed_key_edited_locally_goes_as_a_conflict_whatever_prefer)
{
	for (int p = 0; p < 2; p++) {
		struct ug_merge_report rep = { 0 };
		char *got = merge_p("[x]\na = 1\nold = 2\n", "[x]\na = 1\nold = 5\n", "[x]\na = 1\n",
				    p ? UG_MERGE_PREFER_UPSTREAM : UG_MERGE_PREFER_LOCAL, &rep);

		cr_assert_str_eq(got, "[x]\na = 1\n");
		counts_are(&rep, 0, 0, 0, 0, 0, 1);
		conflict_is(&rep.conflicts[0], "x", "old", "5", NULL, UG_MERGE_UPSTREAM);
		free(got);
		ug_merge_report_release(&rep);
	}
}

Test(merge, keys_added_on_the_terminal_are_kept_at_the_end_of_their_section)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("[a]\nx = 1\n\n[b]\ny = 1\n",
			  "[a]\nx = 1\nmine = 7\nmine2 = 8\n\n[b]\ny = 1\n",
			  "# new comment\n[a]\nx = 1\nz = 2\n\n# about b\n[b]\ny = 1\n", &rep);

	cr_assert_str_eq(got, "# new comment\n[a]\nx = 1\nz = 2\nmine = 7\nmine2 = 8\n\n# about b\n[b]\ny = 1\n");
	counts_are(&rep, 0, 0, 1, 0, 2, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, key_added_on_the_terminal_in_a_kv_file)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("A=1\n", "A=1\nLOCAL=yes\n", "# v2\nA=1\nB=2\n# trailer\n", &rep);

	cr_assert_str_eq(got, "# v2\nA=1\nB=2\nLOCAL=yes\n# trailer\n");
	counts_are(&rep, 0, 0, 1, 0, 1, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, both_sides_changed_local_wins_by_default)
{
	struct ug_merge_report rep = { 0 };
	char line[UG_MERGE_CONFLICT_LINE_MAX];
	char *got = merge("[net]\ntimeout = 10\nnew = 0\n", "[net]\ntimeout = 30\nnew = 0\n",
			  "[net]\ntimeout = 60\nnew = 0\nretries = 3\n", &rep);

	cr_assert_str_eq(got, "[net]\ntimeout = 30\nnew = 0\nretries = 3\n");
	counts_are(&rep, 0, 0, 1, 0, 0, 1);
	conflict_is(&rep.conflicts[0], "net", "timeout", "30", "60", UG_MERGE_LOCAL);
	ug_merge_conflict_format(&rep.conflicts[0], line, sizeof(line));
	cr_assert_str_eq(line, "merge conflict: [net] timeout: local '30', upstream '60': kept the local value");
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, both_sides_changed_upstream_wins_when_preferred)
{
	struct ug_merge_report rep = { 0 };
	char line[UG_MERGE_CONFLICT_LINE_MAX];
	char *got = merge_p("[net]\ntimeout = 10\n", "[net]\ntimeout = 30\n",
			    "[net]\ntimeout = 60\nretries = 3\n", UG_MERGE_PREFER_UPSTREAM, &rep);

	cr_assert_str_eq(got, "[net]\ntimeout = 60\nretries = 3\n");
	counts_are(&rep, 0, 0, 1, 0, 0, 1);
	conflict_is(&rep.conflicts[0], "net", "timeout", "30", "60", UG_MERGE_UPSTREAM);
	ug_merge_conflict_format(&rep.conflicts[0], line, sizeof(line));
	cr_assert_str_eq(line, "merge conflict: [net] timeout: local '30', upstream '60': took the upstream value");
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, both_sides_made_the_same_change_no_conflict)
{
	struct ug_merge_report rep = { 0 };
	/* the same value, written differently: values compare unquoted */
	char *got = merge("a = 1\nb = 2\n", "a = \"5\"\nb = 2\nc = 9\n", "a = 5\nb = 2\nc = '9'\n", &rep);

	cr_assert_str_eq(got, "a = 5\nb = 2\nc = '9'\n");
	counts_are(&rep, 1, 0, 1, 0, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, both_sides_added_a_key_with_different_values)
{
	for (int p = 0; p < 2; p++) {
		struct ug_merge_report rep = { 0 };
		char *got = merge_p("a = 1\n", "a = 1\nb = mine\n", "a = 1\nb = theirs\n",
				    p ? UG_MERGE_PREFER_UPSTREAM : UG_MERGE_PREFER_LOCAL, &rep);

		cr_assert_str_eq(got, p ? "a = 1\nb = theirs\n" : "a = 1\nb = mine\n");
		counts_are(&rep, 0, 0, 0, 0, 0, 1);
		conflict_is(&rep.conflicts[0], "", "b", "mine", "theirs",
			    p ? UG_MERGE_UPSTREAM : UG_MERGE_LOCAL);
		free(got);
		ug_merge_report_release(&rep);
	}
}

Test(merge, key_deleted_on_the_terminal)
{
	struct ug_merge_report rep = { 0 };
	char line[UG_MERGE_CONFLICT_LINE_MAX];
	char *got;

	/* upstream did not touch it: it stays deleted */
	got = merge("a = 1\nb = 2\n", "a = 1\n", "a = 1\nb = 2\nc = 3\n", &rep);
	cr_assert_str_eq(got, "a = 1\nc = 3\n");
	counts_are(&rep, 0, 1, 1, 0, 0, 0);
	free(got);
	ug_merge_report_release(&rep);

	/* upstream changed it: a conflict */
	got = merge("a = 1\nb = 2\n", "a = 1\n", "a = 1\nb = 4\n", &rep);
	cr_assert_str_eq(got, "a = 1\n");
	counts_are(&rep, 0, 0, 0, 0, 0, 1);
	conflict_is(&rep.conflicts[0], "", "b", NULL, "4", UG_MERGE_LOCAL);
	ug_merge_conflict_format(&rep.conflicts[0], line, sizeof(line));
	cr_assert_str_eq(line, "merge conflict: b: local deleted the key, upstream '4': left it deleted");
	free(got);
	ug_merge_report_release(&rep);

	got = merge_p("a = 1\nb = 2\n", "a = 1\n", "a = 1\nb = 4\n", UG_MERGE_PREFER_UPSTREAM, &rep);
	cr_assert_str_eq(got, "a = 1\nb = 4\n");
	conflict_is(&rep.conflicts[0], "", "b", NULL, "4", UG_MERGE_UPSTREAM);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, unchanged_everywhere_counts_nothing)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("a = 1\n", "a = 1\n", "a = 1\n", &rep);

	cr_assert_str_eq(got, "a = 1\n");
	counts_are(&rep, 0, 0, 0, 0, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, report_may_be_null_and_a_zeroed_report_releases)
{
	struct ug_merge_report rep = { 0 };
	struct ug_buf out;

	ug_merge_report_release(&rep);
	ug_merge_report_release(NULL);
	ug_buf_init(&out, OUT_MAX);
	cr_assert_eq(ug_merge_config("a=1\n", 4, "a=2\n", 4, "a=3\n", 4, UG_MERGE_PREFER_LOCAL, &out,
				     NULL, NULL), 0);
	cr_assert_eq(out.len, 4);
	cr_assert_eq(memcmp(out.data, "a=2\n", 4), 0);
	ug_buf_release(&out);
}

Test(merge, result_is_appended_to_what_out_holds)
{
	struct ug_buf out;
	struct ug_error err = { "" };

	ug_buf_init(&out, OUT_MAX);
	cr_assert_eq(ug_buf_put(&out, "head:", 5), 0);
	cr_assert_eq(ug_merge_config("a=1\n", 4, "a=1\nb=2\n", 8, "a=1\n", 4, UG_MERGE_PREFER_LOCAL,
				     &out, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(out.len, 5 + 8);
	cr_assert_eq(memcmp(out.data, "head:a=1\nb=2\n", 13), 0);
	ug_buf_release(&out);
}

/* ---- layout, quoting, line ends ----------------------------------------- */

Test(merge, comments_order_and_layout_follow_the_new_file)
{
	const char *base =
		"# app v1\n"
		"[server]\n"
		"port = 80\n"
		"host = a\n";
	const char *local =
		"# edited by hand on the terminal\n"
		"[server]\n"
		"host = kiosk   ; my host\n"
		"\n"
		"port=8080\n";
	const char *next =
		"; app v2 -- keys reordered, comments rewritten\n"
		"[server]\n"
		"\t# the host to bind\n"
		"\thost = a\n"
		"\t# the port\n"
		"\tport = 80\n"
		"\tworkers = 4\n";

	/* an unquoted value runs to the end of the line: the ';' is part
	 * of the local value, and it is kept whole */
	merge_is(base, local, next,
		 "; app v2 -- keys reordered, comments rewritten\n"
		 "[server]\n"
		 "\t# the host to bind\n"
		 "\thost = kiosk   ; my host\n"
		 "\t# the port\n"
		 "\tport = 8080\n"
		 "\tworkers = 4\n");
}

Test(merge, crlf_of_the_new_file_is_kept_in_every_line_written)
{
	const char *base = "[a]\r\nx = 1\r\n";
	const char *local = "[a]\nx = 2\nmine = 1\n[new]\nk = v\n";   /* LF on the terminal */
	const char *next = "[a]\r\nx = 1\r\ny = 2\r\n";
	char *got = merge(base, local, next, NULL);

	cr_assert_str_eq(got, "[a]\r\nx = 2\r\ny = 2\r\nmine = 1\r\n\r\n[new]\r\nk = v\r\n");
	for (const char *p = strchr(got, '\n'); p; p = strchr(p + 1, '\n'))
		cr_assert_eq(p[-1], '\r', "bare LF at offset %td", p - got);
	free(got);

	/* and LF stays LF when the terminal's copy is CRLF */
	merge_is("x = 1\n", "x = 2\r\nz = 3\r\n", "x = 1\ny = 2\n", "x = 2\ny = 2\nz = 3\n");
}

Test(merge, byte_order_mark_and_missing_final_newline)
{
	/* next's BOM stays; a key added at the end of a file without a
	 * final newline gets one before it */
	merge_is("a = 1\n", "a = 1\nb = 2\n", "\xef\xbb\xbf" "a = 1\nc = 3", "\xef\xbb\xbf" "a = 1\nc = 3\nb = 2\n");
	/* BOM in local or base only: not copied */
	merge_is("\xef\xbb\xbf" "a = 1\n", "\xef\xbb\xbf" "a = 5\n", "a = 1\nz = 0", "a = 5\nz = 0");
	/* a section appended after a last line without newline */
	merge_is("a = 1\n", "a = 1\n[s]\nk = 1\n", "a = 1\nb = 2", "a = 1\nb = 2\n\n[s]\nk = 1\n");
}

Test(merge, quoted_values)
{
	/* the local value quoted: written as the terminal wrote it */
	merge_is("name = x\nn = 1\n", "name = \"my \\\"box\\\"\"  # mine\nn = 1\n",
		 "name = 'x' ; default\nn = 1\nm = 2\n",
		 "name = \"my \\\"box\\\"\" ; default\nn = 1\nm = 2\n");
	/* unquoted local value into a quoted one with a comment after it:
	 * quoted in next's style, so the comment stays a comment */
	merge_is("path = \"/a\"\n", "path = /b c\n", "path = \"/a\" ; where\nz = 1\n",
		 "path = \"/b c\" ; where\nz = 1\n");
	merge_is("path = '/a'\n", "path = /b c\n", "path = '/a' # where\nz = 1\n",
		 "path = '/b c' # where\nz = 1\n");
	/* single quotes cannot hold a quote: double quotes with escapes */
	merge_is("msg = 'a'\n", "msg = it's \"x\" \\ y\n", "msg = 'a'\nz = 1\n",
		 "msg = \"it's \\\"x\\\" \\\\ y\"\nz = 1\n");
	/* an unquoted value into an unquoted one stays unquoted */
	merge_is("v = 1\n", "v = a b # c\n", "v = 1\nz = 1\n", "v = a b # c\nz = 1\n");
	/* the empty value */
	merge_is("v = 1\n", "v =\n", "v = 1 \nz = 1\n", "v =  \nz = 1\n");
	merge_is("v = 1\n", "v = ''\n", "v = \"1\"  # c\nz = 1\n", "v = ''  # c\nz = 1\n");
}

Test(merge, quoting_keeps_the_value_exact)
{
	/* values that could not stand unquoted: read back exactly */
	static const char *const values[] = {
		"\"", "'", "\\", "a\\", "\\\\", " lead", "trail ", "x\"y", "'q'", "\"q\"",
		"a # b", "a ; b", "tab\there", "\r", "cr\r", "",
	};
	for (size_t i = 0; i < N(values); i++) {
		for (int style = 0; style < 3; style++) {
			static const char *const nexts[] = { "v = 1\nz = 1\n", "v = '1'\nz = 1\n",
							     "v = \"1\" # c\nz = 1\n" };
			struct ug_merge_report rep = { 0 };
			struct ug_conf *o;
			char local[128];
			char *got;
			int k;

			/* the local copy holds the value in double quotes */
			k = snprintf(local, sizeof(local), "v = \"");
			for (const char *p = values[i]; *p; p++) {
				if (*p == '"' || *p == '\\')
					local[k++] = '\\';
				local[k++] = *p;
			}
			snprintf(local + k, sizeof(local) - (size_t)k, "\"\n");
			/* base equals next's value, so the local value wins */
			got = merge(nexts[style], local, nexts[style], &rep);
			o = conf_ok_n(got, strlen(got));
			cr_assert_str_eq(value_of(o, "", "v"), values[i], "value %zu style %d: %s", i, style,
					 got);
			ug_conf_free(o);
			free(got);
			ug_merge_report_release(&rep);
		}
	}
}

Test(merge, unquoted_local_values_read_back_in_every_quoting_of_next)
{
	static const char *const values[] = { "plain", "it's", "a\"b", "back\\\\", "x # y", "cr\r" };
	static const char *const nexts[] = { "v = 1\nz = 1\n", "v = '1'\nz = 1\n",
					     "v = \"1\" # c\nz = 1\n", "v = 1\r\nz = 1\r\n" };

	for (size_t i = 0; i < N(values); i++) {
		for (size_t s = 0; s < N(nexts); s++) {
			char local[64], *got;
			struct ug_conf *o;

			/* CRLF: the '\r' before the '\n' is the line end's, one
			 * before it is the value's */
			snprintf(local, sizeof(local), "v = %s\r\n", values[i]);
			got = merge(nexts[s], local, nexts[s], NULL);
			o = conf_ok_n(got, strlen(got));
			cr_assert_str_eq(value_of(o, "", "v"), values[i], "value %zu next %zu: %s", i, s, got);
			ug_conf_free(o);
			free(got);
		}
	}
}

Test(merge, indentation_of_added_lines_follows_the_key_above)
{
	/* a deeper indentation than the key above would not parse */
	merge_is("[s]\n  a = 1\n", "[s]\n      mine = 2\n  a = 1\n", "[s]\n  a = 1\n  b = 2\n",
		 "[s]\n  a = 1\n  b = 2\n  mine = 2\n");
	merge_is("[s]\n\ta = 1\n", "[s]\n\ta = 1\nmine = 2\n", "[s]\n\ta = 1\n\tb = 2\n",
		 "[s]\n\ta = 1\n\tb = 2\n\tmine = 2\n");
}

Test(merge, export_prefix_and_colon_separators_are_kept)
{
	merge_is("export A=1\nB: 2\n", "export A=5\nB: 2\nexport MINE=x\n", "export A=1\nB: 2\nexport C=3\n",
		 "export A=5\nB: 2\nexport C=3\nexport MINE=x\n");
}

/* ---- sections ----------------------------------------------------------- */

Test(merge, sections_added_and_removed_upstream)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("[keep]\na = 1\n[gone]\nb = 1\nc = 1\n",
			  "[keep]\na = 1\n[gone]\nb = 1\nc = 1\n",
			  "[keep]\na = 1\n[new]\nd = 1\n", &rep);

	cr_assert_str_eq(got, "[keep]\na = 1\n[new]\nd = 1\n");
	counts_are(&rep, 0, 0, 1, 2, 0, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, key_added_on_the_terminal_to_a_section_upstream_removed)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("[keep]\na = 1\n[gone]\nb = 1\n",
			  "[keep]\na = 1\n[gone]\nb = 1\nmine = 1\n",
			  "[keep]\na = 1\nz = 2\n", &rep);

	cr_assert_str_eq(got, "[keep]\na = 1\nz = 2\n\n[gone]\nmine = 1\n");
	counts_are(&rep, 0, 0, 1, 1, 1, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, sections_added_on_the_terminal_are_appended)
{
	struct ug_merge_report rep = { 0 };
	char *got = merge("[a]\nx = 1\n", "[mine]\nk = 1\n[a]\nx = 1\n[empty]\n[mine2]\nj = 2 ; c\n",
			  "[a]\nx = 1\ny = 2\n", &rep);

	cr_assert_str_eq(got, "[a]\nx = 1\ny = 2\n\n[mine]\nk = 1\n\n[empty]\n\n[mine2]\nj = 2 ; c\n");
	counts_are(&rep, 0, 0, 1, 0, 2, 0);
	free(got);
	ug_merge_report_release(&rep);
}

Test(merge, section_upstream_removed_with_no_local_keys_is_not_kept)
{
	/* a section that was the base's, emptied on the terminal */
	merge_is("[a]\nx = 1\n[b]\ny = 1\n", "[a]\nx = 1\n[b]\n", "[a]\nx = 1\n", "[a]\nx = 1\n");
}

Test(merge, key_added_to_a_section_next_has_without_keys)
{
	merge_is("[a]\nx = 1\n[b]\n", "[a]\nx = 1\n[b]\nmine = 1\n", "[a]\nx = 1\nz = 1\n[b]\n# nothing\n",
		 "[a]\nx = 1\nz = 1\n[b]\nmine = 1\n# nothing\n");
	/* its header the last line, no newline */
	merge_is("[a]\nx = 1\n[b]\n", "[a]\nx = 1\n[b]\nmine = 1\n", "[a]\nx = 1\nz = 1\n[b]",
		 "[a]\nx = 1\nz = 1\n[b]\nmine = 1\n");
}

Test(merge, top_level_keys_in_an_ini_file)
{
	/* next has no top-level keys: before the first header */
	merge_is("[a]\nx = 1\n", "top = 1\n[a]\nx = 1\n", "# head\n\n[a]\nx = 1\ny = 1\n",
		 "# head\n\ntop = 1\n[a]\nx = 1\ny = 1\n");
	/* next has some: after the last of them */
	merge_is("t = 0\n[a]\nx = 1\n", "t = 0\ntop = 1\n[a]\nx = 1\n", "t = 0\n# c\n[a]\nx = 1\ny = 1\n",
		 "t = 0\ntop = 1\n# c\n[a]\nx = 1\ny = 1\n");
	/* a key moved from the top into a section is a removal and an addition */
	merge_is("k = 1\n", "k = 1\n", "[s]\nk = 1\n", "[s]\nk = 1\n");
}

Test(merge, repeated_section_headers)
{
	merge_is("[a]\nx = 1\n[b]\ny = 1\n[a]\nz = 1\n", "[a]\nx = 1\n[b]\ny = 1\n[a]\nz = 1\nmine = 1\n",
		 "[a]\nx = 1\n[b]\ny = 1\n[a]\nz = 2\n[c]\n",
		 "[a]\nx = 1\n[b]\ny = 1\n[a]\nz = 2\nmine = 1\n[c]\n");
}

Test(merge, empty_files)
{
	struct ug_merge_report rep = { 0 };
	char *got;

	/* an empty next: every key removed upstream; the terminal's own stay */
	got = merge("a = 1\n", "a = 1\nmine = 2\n", "", &rep);
	cr_assert_str_eq(got, "mine = 2\n");
	counts_are(&rep, 0, 0, 0, 1, 1, 0);
	free(got);
	ug_merge_report_release(&rep);
	/* an empty base: everything is new on both sides */
	got = merge("", "a = 1\n", "a = 2\nb = 1\n", &rep);
	cr_assert_str_eq(got, "a = 1\nb = 1\n");
	counts_are(&rep, 0, 0, 1, 0, 0, 1);
	free(got);
	ug_merge_report_release(&rep);
	got = merge("", "", "", &rep);
	cr_assert_str_eq(got, "");
	free(got);
	ug_merge_report_release(&rep);
}

/* ---- a real-looking file ------------------------------------------------ */

Test(merge, a_terminal_config_upgrade)
{
	const char *base =
		"# kiosk agent configuration\r\n"
		"[agent]\r\n"
		"poll_interval = 300\r\n"
		"server = \"s1.example\"\r\n"
		"log_level = info\r\n"
		"\r\n"
		"[display]\r\n"
		"brightness = 80\r\n"
		"legacy_mode = off\r\n";
	const char *local =
		"# kiosk agent configuration\r\n"
		"[agent]\r\n"
		"poll_interval = 300\r\n"
		"server = \"s9.local\"\r\n"
		"log_level = debug\r\n"
		"site = \"Lyon 3\"\r\n"
		"\r\n"
		"[display]\r\n"
		"brightness = 40\r\n"
		"legacy_mode = on\r\n";
	const char *next =
		"# kiosk agent configuration (v2)\r\n"
		"[agent]\r\n"
		"poll_interval = 120   \r\n"
		"server = \"s1.example\"   # the group server\r\n"
		"log_level = warning\r\n"
		"\r\n"
		"[display]\r\n"
		"brightness = 80\r\n"
		"\r\n"
		"[power]\r\n"
		"sleep_after = 900\r\n";
	struct ug_merge_report rep = { 0 };
	char line[UG_MERGE_CONFLICT_LINE_MAX];
	char *got = merge(base, local, next, &rep);

	cr_assert_str_eq(got,
			 "# kiosk agent configuration (v2)\r\n"
			 "[agent]\r\n"
			 "poll_interval = 120   \r\n"
			 "server = \"s9.local\"   # the group server\r\n"
			 "log_level = debug\r\n"
			 "site = \"Lyon 3\"\r\n"
			 "\r\n"
			 "[display]\r\n"
			 "brightness = 40\r\n"
			 "\r\n"
			 "[power]\r\n"
			 "sleep_after = 900\r\n");
	/* poll_interval updated; server, brightness kept; log_level both;
	 * legacy_mode edited and removed; sleep_after added; site local */
	counts_are(&rep, 1, 2, 1, 0, 1, 2);
	conflict_is(&rep.conflicts[0], "agent", "log_level", "debug", "warning", UG_MERGE_LOCAL);
	conflict_is(&rep.conflicts[1], "display", "legacy_mode", "on", NULL, UG_MERGE_UPSTREAM);
	ug_merge_conflict_format(&rep.conflicts[1], line, sizeof(line));
	cr_assert_str_eq(line, "merge conflict: [display] legacy_mode: local 'on', upstream removed the key: removed it");
	free(got);
	ug_merge_report_release(&rep);
}

/* ---- random files against the table in merge.h --------------------------- */

static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((rng_state >> 33) % n);
}

static const char *const r_secs[] = { "", "a", "b", "c" };
static const char *const r_vals[] = { "1", "2", "x y", "it's", "q\"q", "" };
#define R_KEYS 5

/* vals[s][k]: index into r_vals, or -1 for no such key */
struct rfile {
	int vals[N(r_secs)][R_KEYS];
};

static void rfile_write(const struct rfile *f, bool crlf, char *out, size_t size)
{
	const char *eol = crlf ? "\r\n" : "\n";
	size_t n = 0;
	size_t order[N(r_secs)];

	/* sections in a random order, "" first as it must be */
	for (size_t s = 0; s < N(r_secs); s++)
		order[s] = s;
	for (size_t s = N(r_secs) - 1; s > 1; s--) {
		size_t t = 1 + rnd((unsigned)s), x = order[s];

		order[s] = order[t];
		order[t] = x;
	}
	for (size_t oi = 0; oi < N(r_secs); oi++) {
		size_t s = order[oi];
		bool any = false;

		for (int k = 0; k < R_KEYS; k++)
			any |= f->vals[s][k] >= 0;
		if (s > 0 && !any && rnd(2))
			continue;
		if (rnd(3) == 0)
			n += (size_t)snprintf(out + n, size - n, "# comment %u%s", rnd(100), eol);
		if (s > 0)
			n += (size_t)snprintf(out + n, size - n, "[%s]%s", r_secs[s], eol);
		for (int k = 0; k < R_KEYS; k++) {
			int v = f->vals[s][k];
			const char *val = v >= 0 ? r_vals[v] : NULL;

			if (!val)
				continue;
			/* "it's" cannot be single-quoted, q"q cannot be bare-safe
			 * everywhere: double quotes hold anything */
			switch (strchr(val, '\'') || strchr(val, '"') ? 2 : rnd(3)) {
			case 0:
				n += (size_t)snprintf(out + n, size - n, "k%d = %s%s", k, val, eol);
				break;
			case 1:
				n += (size_t)snprintf(out + n, size - n, "k%d='%s' # c%s", k, val, eol);
				break;
			default:
				n += (size_t)snprintf(out + n, size - n, "k%d = \"", k);
				for (const char *p = val; *p; p++) {
					if (*p == '"' || *p == '\\')
						out[n++] = '\\';
					out[n++] = *p;
				}
				n += (size_t)snprintf(out + n, size - n, "\"%s", eol);
				break;
			}
			cr_assert_lt(n, size);
		}
	}
	out[n] = '\0';
}

static void rfile_random(struct rfile *f)
{
	for (size_t s = 0; s < N(r_secs); s++)
		for (int k = 0; k < R_KEYS; k++)
			f->vals[s][k] = rnd(3) == 0 ? -1 : (int)rnd(N(r_vals));
}

/* Another version: each key kept, changed, removed or added at random. */
static void rfile_edit(const struct rfile *from, struct rfile *to)
{
	*to = *from;
	for (size_t s = 0; s < N(r_secs); s++)
		for (int k = 0; k < R_KEYS; k++)
			if (rnd(3) == 0)
				to->vals[s][k] = rnd(4) == 0 ? -1 : (int)rnd(N(r_vals));
}

Test(merge, random_files_follow_the_table)
{
	static char tb[4096], tl[4096], tn[4096];

	rng_state = 42;
	for (int iter = 0; iter < 3000; iter++) {
		struct rfile b, l, n;
		enum ug_merge_prefer prefer = rnd(2) ? UG_MERGE_PREFER_UPSTREAM : UG_MERGE_PREFER_LOCAL;
		struct ug_merge_report rep = { 0 };
		size_t cnt[6] = { 0 }, conflicts = 0;
		struct ug_conf *o;
		char *got;

		rfile_random(&b);
		rfile_edit(&b, &l);
		rfile_edit(&b, &n);
		rfile_write(&b, rnd(2), tb, sizeof(tb));
		rfile_write(&l, rnd(2), tl, sizeof(tl));
		rfile_write(&n, rnd(2), tn, sizeof(tn));
		got = merge_p(tb, tl, tn, prefer, &rep);
		o = conf_ok_n(got, strlen(got));
		for (size_t s = 0; s < N(r_secs); s++) {
			for (int k = 0; k < R_KEYS; k++) {
				int bv = b.vals[s][k], lv = l.vals[s][k], nv = n.vals[s][k], want;
				char key[16];
				const char *gv;

				snprintf(key, sizeof(key), "k%d", k);
				/* the table in merge.h, with values by index */
				if (bv < 0 && lv < 0) {
					want = nv;
					cnt[2] += nv >= 0;
				} else if (bv < 0 && nv < 0) {
					want = lv;
					cnt[4]++;
				} else if (bv < 0) {
					want = lv == nv ? nv : prefer == UG_MERGE_PREFER_LOCAL ? lv : nv;
					if (lv == nv)
						cnt[2]++;
					else
						conflicts++;
				} else if (nv < 0) {
					want = -1;
					if (lv == bv)
						cnt[3]++;
					else if (lv >= 0)
						conflicts++;
				} else if (lv == bv) {
					want = nv;
					cnt[0] += nv != bv;
				} else if (nv == bv) {
					want = lv;
					cnt[1]++;
				} else if (nv == lv) {
					want = nv;
					cnt[0]++;
				} else {
					want = prefer == UG_MERGE_PREFER_LOCAL ? lv : nv;
					conflicts++;
				}
				gv = value_of(o, r_secs[s], key);
				if (want < 0)
					cr_assert_null(gv, "iter %d: [%s] %s = '%s', want none\nbase\n%s\nlocal\n%s\nnext\n%s\ngot\n%s",
						       iter, r_secs[s], key, gv, tb, tl, tn, got);
				else
					cr_assert(gv && strcmp(gv, r_vals[want]) == 0,
						  "iter %d: [%s] %s = '%s', want '%s'\nbase\n%s\nlocal\n%s\nnext\n%s\ngot\n%s",
						  iter, r_secs[s], key, gv ? gv : "(none)", r_vals[want], tb, tl, tn, got);
			}
		}
		counts_are(&rep, cnt[0], cnt[1], cnt[2], cnt[3], cnt[4], conflicts);
		ug_conf_free(o);
		free(got);
		ug_merge_report_release(&rep);
	}
}

/* ---- errors -------------------------------------------------------------- */

Test(merge, garbled_inputs_name_which_one)
{
	const char *ok = "[a]\nx = 1\n";

	merge_fails("[a]\nx = \"open\n", ok, ok, "pristine copy: line 2: unterminated quoted value");
	merge_fails(ok, "[a]\nx = 1\nx = 2\n", ok,
		    "local copy: line 3: duplicate key 'x' in section [a] (first on line 2)");
	merge_fails(ok, ok, "[a\nx = 1\n", "new version: line 1: section header without ']'");
	merge_fails(ok, ok, "[a]\njust words\n",
		    "new version: line 2: expected 'key = value', '[section]' or a comment");
	merge_fails_n(ok, strlen(ok), "x = a\0b\n", 8, ok, strlen(ok), -EBADMSG,
		      "local copy: line 1: NUL byte");
}

Test(merge, inputs_over_the_size_limit)
{
	size_t big = (size_t)UG_STRUCT_FILE_MAX + 1;
	char *huge = calloc(1, big);
	const char *ok = "a = 1\n";
	char want[128];

	cr_assert_not_null(huge);
	snprintf(want, sizeof(want), "pristine copy: larger than %u bytes", UG_STRUCT_FILE_MAX);
	merge_fails_n(huge, big, ok, 6, ok, 6, -E2BIG, want);
	snprintf(want, sizeof(want), "local copy: larger than %u bytes", UG_STRUCT_FILE_MAX);
	merge_fails_n(ok, 6, huge, big, ok, 6, -E2BIG, want);
	snprintf(want, sizeof(want), "new version: larger than %u bytes", UG_STRUCT_FILE_MAX);
	merge_fails_n(ok, 6, ok, 6, huge, big, -E2BIG, want);
	free(huge);
}

Test(merge, result_over_the_output_cap)
{
	struct ug_buf out;
	struct ug_error err = { "" };
	int r;

	ug_buf_init(&out, 10);
	cr_assert_eq(ug_buf_put(&out, "xy", 2), 0);
	r = ug_merge_config("a = 1\n", 6, "a = 1\nmine = 2\n", 15, "a = 1\nb = 2\n", 12,
			    UG_MERGE_PREFER_LOCAL, &out, NULL, &err);
	cr_assert_eq(r, -E2BIG, "%d %s", r, err.msg);
	cr_assert_str_eq(err.msg, "merged result: larger than the output buffer allows");
	cr_assert_eq(out.len, 2);
	ug_buf_release(&out);
}

Test(merge, a_result_that_would_not_read_back_is_refused)
{
	/* a local value at the line limit, quoted into a line that already
	 * holds a key and a comment: over UG_STRUCT_LINE_MAX */
	size_t vlen = UG_STRUCT_LINE_MAX - 8;
	char *local = malloc(vlen + 16);
	const char *next = "v = \"1\"   # a comment\nz = 1\n";
	struct ug_buf out;
	struct ug_error err = { "" };
	size_t n;
	int r;

	cr_assert_not_null(local);
	n = (size_t)snprintf(local, 8, "v = ");
	memset(local + n, 'x', vlen);
	n += vlen;
	local[n++] = '\n';
	ug_buf_init(&out, OUT_MAX);
	r = ug_merge_config("v = 1\n", 6, local, n, next, strlen(next), UG_MERGE_PREFER_LOCAL, &out,
			    NULL, &err);
	cr_assert_eq(r, -EBADMSG, "%d %s", r, err.msg);
	cr_assert_str_eq(err.msg, "merged result: line 1: longer than 1048576 bytes; the local copy is kept");
	cr_assert_eq(out.len, 0);
	ug_buf_release(&out);
	free(local);
}

Test(merge, bad_arguments)
{
	struct ug_buf out;

	ug_buf_init(&out, 100);
	cr_assert_eq(ug_merge_config(NULL, 1, "", 0, "", 0, UG_MERGE_PREFER_LOCAL, &out, NULL, NULL),
		     -EINVAL);
	cr_assert_eq(ug_merge_config("", 0, "", 0, "", 0, UG_MERGE_PREFER_LOCAL, NULL, NULL, NULL),
		     -EINVAL);
	cr_assert_eq(ug_merge_config(NULL, 0, NULL, 0, NULL, 0, UG_MERGE_PREFER_LOCAL, &out, NULL, NULL), 0);
	cr_assert_eq(out.len, 0);
	ug_buf_release(&out);
}

/* ---- conflict lines ------------------------------------------------------ */

Test(merge, conflict_lines_are_safe_and_bounded)
{
	char big[300], line[UG_MERGE_CONFLICT_LINE_MAX], want[UG_MERGE_CONFLICT_LINE_MAX], small[16];
	struct ug_merge_conflict c = {
		.section = "", .key = "k", .local_value = "a\nfake: line\x1b[31m",
		.upstream_value = "it's \\ \xc3\xa9t\xc3\xa9 \xff \xc2\x85", .winner = UG_MERGE_LOCAL,
	};
	size_t n;

	n = ug_merge_conflict_format(&c, line, sizeof(line));
	cr_assert_eq(n, strlen(line));
	cr_assert_str_eq(line, "merge conflict: k: local 'a\\x0afake: line\\x1b[31m', upstream 'it\\'s \\\\ "
			       "\xc3\xa9t\xc3\xa9 \\xff \\xc2\\x85': kept the local value");

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[63] = '\xc3'; /* a character across the cut: cut before it */
	big[64] = '\xa9';
	c.section = "s";
	c.local_value = big;
	c.upstream_value = NULL;
	c.winner = UG_MERGE_UPSTREAM;
	ug_merge_conflict_format(&c, line, sizeof(line));
	snprintf(want, sizeof(want), "merge conflict: [s] k: local '%.63s...', "
		 "upstream removed the key: removed it", big);
	cr_assert_str_eq(line, want);

	n = ug_merge_conflict_format(&c, small, sizeof(small));
	cr_assert_eq(n, sizeof(small) - 1);
	cr_assert_str_eq(small, "merge conflict:");
	cr_assert_eq(ug_merge_conflict_format(&c, small, 0), 0);
}

/* ---- migrate -------------------------------------------------------------- */

static char *migrate_r(enum ug_struct_format fmt, const char *local, const char *next,
		       const struct ug_column_rename *rn, size_t nrn, struct ug_merge_table_report *rep)
{
	struct ug_buf out;
	struct ug_error err = { "" };
	struct ug_table *lt = NULL, *ot = NULL;
	uint8_t *data;
	size_t len;
	int r;

	ug_buf_init(&out, OUT_MAX);
	r = ug_merge_table_renames(local, strlen(local), next, strlen(next), fmt, rn, nrn, &out, rep,
				   &err);
	cr_assert_eq(r, 0, "migrate: %d %s", r, err.msg);
	cr_assert_eq(ug_buf_steal(&out, &data, &len), 0);
	/* it parses, with as many rows as the local copy */
	cr_assert_eq(ug_table_parse(fmt, data, len, &ot, &err), 0, "result: %s\n%s", err.msg, data);
	cr_assert_eq(ug_table_parse(fmt, local, strlen(local), &lt, &err), 0, "local: %s", err.msg);
	cr_assert_eq(ot->nrows, lt->nrows, "%zu rows, local has %zu", ot->nrows, lt->nrows);
	ug_table_free(ot);
	ug_table_free(lt);
	return (char *)data;
}

static char *migrate(enum ug_struct_format fmt, const char *local, const char *next,
		     struct ug_merge_table_report *rep)
{
	return migrate_r(fmt, local, next, NULL, 0, rep);
}

static void migrate_is(enum ug_struct_format fmt, const char *local, const char *next, const char *want)
{
	char *got = migrate(fmt, local, next, NULL);

	cr_assert_str_eq(got, want, "migrate gave\n---\n%s---\nwant\n---\n%s---", got, want);
	free(got);
}

static void table_counts_are(const struct ug_merge_table_report *rep, size_t rows, size_t kept,
			     size_t renamed, size_t added, size_t dropped)
{
	cr_assert_eq(rep->rows, rows, "rows %zu, want %zu", rep->rows, rows);
	cr_assert_eq(rep->columns_kept, kept, "kept %zu, want %zu", rep->columns_kept, kept);
	cr_assert_eq(rep->columns_renamed, renamed, "renamed %zu, want %zu", rep->columns_renamed, renamed);
	cr_assert_eq(rep->columns_added, added, "added %zu, want %zu", rep->columns_added, added);
	cr_assert_eq(rep->columns_dropped, dropped, "dropped %zu, want %zu", rep->columns_dropped, dropped);
}

static void migrate_fails_n(enum ug_struct_format fmt, const char *local, size_t llen,
			    const char *next, size_t nlen, int rc, const char *want)
{
	struct ug_buf out;
	struct ug_error err = { "" };
	struct ug_merge_table_report rep = { .rows = 77 };
	int r;

	ug_buf_init(&out, OUT_MAX);
	cr_assert_eq(ug_buf_put(&out, "keep", 4), 0);
	r = ug_merge_table(local, llen, next, nlen, fmt, &out, &rep, &err);
	cr_assert_eq(r, rc, "migrate gave %d (%s), want %d", r, err.msg, rc);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(out.len, 4);
	cr_assert_eq(rep.rows, 77, "report untouched on failure");
	ug_buf_release(&out);
}

static void migrate_fails(enum ug_struct_format fmt, const char *local, const char *next,
			  const char *want)
{
	migrate_fails_n(fmt, local, strlen(local), next, strlen(next), -EBADMSG, want);
}

Test(migrate, columns_added_dropped_and_moved)
{
	struct ug_merge_table_report rep = { 0 };
	char *got = migrate(UG_STRUCT_CSV, "id,name,price\n1,a,2\n2,b,3\n7,local,9\n",
			    "price,id,currency\n100,1,EUR\n", &rep);

	/* next's own row (100,1,EUR) is not added: the terminal's rows are kept */
	cr_assert_str_eq(got, "price,id,currency\n2,1,\n3,2,\n9,7,\n");
	table_counts_are(&rep, 3, 2, 0, 1, 1);
	free(got);
}

Test(migrate, quoted_fields_with_commas_quotes_and_newlines)
{
	const char *local =
		"id,note,old\n"
		"1,\"a, b\",x\n"
		"2,\"say \"\"hi\"\"\",x\n"
		"3,\"line1\nline2\",x\n"
		"4,\"cr\rhere\",x\n"
		"5,,x\n";
	struct ug_merge_table_report rep = { 0 };
	struct ug_table_reader rd;
	struct ug_table_record rec;
	struct ug_error err = { "" };
	static const char *const notes[] = { "a, b", "say \"hi\"", "line1\nline2", "cr\rhere", "" };
	char *got = migrate(UG_STRUCT_CSV, local, "note,\"id\",extra\n", &rep);

	cr_assert_str_eq(got,
			 "note,\"id\",extra\n"
			 "\"a, b\",1,\n"
			 "\"say \"\"hi\"\"\",2,\n"
			 "\"line1\nline2\",3,\n"
			 "\"cr\rhere\",4,\n"
			 ",5,\n");
	table_counts_are(&rep, 5, 2, 0, 1, 1);
	/* and the fields read back as they were */
	ug_table_reader_init(&rd, UG_STRUCT_CSV, got, strlen(got));
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1);
	for (size_t i = 0; i < N(notes); i++) {
		cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 1, "%s", err.msg);
		cr_assert_eq(rec.nfields, 3);
		cr_assert_str_eq(rec.fields[0], notes[i]);
	}
	cr_assert_eq(ug_table_reader_next(&rd, &rec, &err), 0);
	ug_table_reader_release(&rd);
	free(got);
}

Test(migrate, crlf_bom_and_header_as_next_writes_it)
{
	/* CRLF and BOM of next; the local copy's are not copied */
	migrate_is(UG_STRUCT_CSV, "\xef\xbb\xbf" "a,b\n1,2\n", "\xef\xbb\xbf" "\"b\",a\r\n9,9\r\n",
		   "\xef\xbb\xbf" "\"b\",a\r\n2,1\r\n");
	migrate_is(UG_STRUCT_CSV, "a,b\r\n1,2\r\n", "b,a\n", "b,a\n2,1\n");
	/* a header without a final newline gets one before the rows */
	migrate_is(UG_STRUCT_CSV, "a,b\n1,2\n", "b,a", "b,a\n2,1\n");
	migrate_is(UG_STRUCT_CSV, "a,b\n1,2\n", "b,a\r\nx,y", "b,a\r\n2,1\r\n");
	/* blank lines before the header are next's, blank lines between
	 * local rows are not records */
	migrate_is(UG_STRUCT_CSV, "a\n\n1\n\n2\n", "\n\na,z\n", "\n\na,z\n1,\n2,\n");
}

Test(migrate, local_without_rows_gives_the_header_alone)
{
	struct ug_merge_table_report rep = { 0 };
	char *got;

	got = migrate(UG_STRUCT_CSV, "a,b\n", "b,c\n1,2\n", &rep);
	cr_assert_str_eq(got, "b,c\n");
	table_counts_are(&rep, 0, 1, 0, 1, 1);
	free(got);
	got = migrate(UG_STRUCT_CSV, "", "b,c\n1,2\n", &rep);
	cr_assert_str_eq(got, "b,c\n");
	table_counts_are(&rep, 0, 0, 0, 2, 0);
	free(got);
	got = migrate(UG_STRUCT_CSV, "\n\n", "b,c", &rep);
	cr_assert_str_eq(got, "b,c");
	free(got);
}

Test(migrate, next_without_header)
{
	struct ug_merge_table_report rep = { 0 };
	char *got = migrate(UG_STRUCT_CSV, "a,b\n", "\n", &rep);

	cr_assert_str_eq(got, "\n");
	table_counts_are(&rep, 0, 0, 0, 0, 2);
	free(got);
	migrate_fails(UG_STRUCT_CSV, "a,b\n1,2\n", "",
		      "new version: no header row, so the local copy's 1 row would have no columns to go to");
}

Test(migrate, one_column_rows_that_would_be_empty_lines)
{
	/* CSV: quoted, so the row is still a record */
	migrate_is(UG_STRUCT_CSV, "a,b\n,1\nx,2\n", "a\n", "a\n\"\"\nx\n");
	migrate_is(UG_STRUCT_CSV, "b\n1\n2\n", "new\n", "new\n\"\"\n\"\"\n");
	/* TSV cannot write it */
	migrate_fails(UG_STRUCT_TSV, "a\tb\n\t1\n", "a\n",
		      "local copy: line 2: the row would be an empty line in a one-column TSV file (and no row)");
}

Test(migrate, tsv)
{
	struct ug_merge_table_report rep = { 0 };
	char *got = migrate(UG_STRUCT_TSV, "id\tname\tnote\n1\ta, b\t\"q\"\n2\tz\t\n",
			    "note\tid\tadded\r\n", &rep);

	/* commas and quotes are plain data in TSV */
	cr_assert_str_eq(got, "note\tid\tadded\r\n\"q\"\t1\t\r\n\t2\t\r\n");
	table_counts_are(&rep, 2, 2, 0, 1, 1);
	free(got);
	/* a carriage return that would end a LF line */
	migrate_fails(UG_STRUCT_TSV, "a\tb\nx\r\t1\n", "b\ta\n",
		      "local copy: line 2: the field of column 'a' ends in a carriage return, which would end the line");
	/* with CRLF lines it is data */
	got = migrate(UG_STRUCT_TSV, "a\tb\nx\r\t1\n", "b\ta\r\n", NULL);
	cr_assert_str_eq(got, "b\ta\r\n1\tx\r\r\n");
	free(got);
}

Test(migrate, renamed_columns_keep_their_data)
{
	struct ug_column_rename rn[] = {
		{ "tariff", "price" },
		{ "nope", "currency" },   /* local has no such column */
		{ "id", "ident" },        /* id stays in next: not a rename */
	};
	struct ug_merge_table_report rep = { 0 };
	char *got = migrate_r(UG_STRUCT_CSV, "id,tariff,x\n1,0.2,a\n2,0.3,b\n",
			      "id,price,currency,ident\n", rn, N(rn), &rep);

	cr_assert_str_eq(got, "id,price,currency,ident\n1,0.2,,\n2,0.3,,\n");
	table_counts_are(&rep, 2, 2, 1, 2, 1);
	free(got);
	/* without the rule: a removal and an addition */
	got = migrate(UG_STRUCT_CSV, "id,tariff\n1,0.2\n", "id,price\n", &rep);
	cr_assert_str_eq(got, "id,price\n1,\n");
	table_counts_are(&rep, 1, 1, 0, 1, 1);
	free(got);
}

Test(migrate, many_rows_stream_through)
{
	size_t rows = 200000, cap = rows * 32 + 64, n;
	char *local = malloc(cap);
	struct ug_merge_table_report rep = { 0 };
	struct ug_buf out;
	struct ug_error err = { "" };
	struct ug_table *t = NULL;

	cr_assert_not_null(local);
	n = (size_t)snprintf(local, cap, "meter,reading,ts\n");
	for (size_t i = 0; i < rows; i++)
		n += (size_t)snprintf(local + n, cap - n, "m%zu,%zu,\"2026,%zu\"\n", i % 97, i, i);
	ug_buf_init(&out, OUT_MAX);
	cr_assert_eq(ug_merge_table(local, n, "ts,meter,unit\n", 14, UG_STRUCT_CSV, &out, &rep, &err),
		     0, "%s", err.msg);
	table_counts_are(&rep, rows, 2, 0, 1, 1);
	cr_assert_eq(ug_table_parse(UG_STRUCT_CSV, out.data, out.len, &t, &err), 0, "%s", err.msg);
	cr_assert_eq(t->nrows, rows);
	cr_assert(out.len < n + rows * 2, "the result is about the size of the local copy");
	ug_table_free(t);
	ug_buf_release(&out);
	free(local);
}

Test(migrate, garbled_inputs_name_which_one)
{
	migrate_fails(UG_STRUCT_CSV, "a,b\n1,\"open\n", "a\n", "local copy: line 2: unterminated quoted field");
	migrate_fails(UG_STRUCT_CSV, "a,b\n1,2,3\n", "a\n",
		      "local copy: line 2: 3 fields, but the header has 2 columns");
	migrate_fails(UG_STRUCT_CSV, "a\n1\n", "a,a\n", "new version: line 1: duplicate column 'a' (columns 1 and 2)");
	migrate_fails(UG_STRUCT_CSV, "a\n1\n", "a,b\n1,x\"y\n",
		      "new version: line 2: quote inside an unquoted field (quote the whole field and double the quote)");
	migrate_fails(UG_STRUCT_TSV, "a\tb\n1\n", "a\n", "local copy: line 2: 1 field, but the header has 2 columns");
}

Test(migrate, inputs_over_the_size_limit)
{
	size_t big = (size_t)UG_STRUCT_FILE_MAX + 1;
	char *huge = calloc(1, big);
	char want[128];

	cr_assert_not_null(huge);
	snprintf(want, sizeof(want), "local copy: larger than %u bytes", UG_STRUCT_FILE_MAX);
	migrate_fails_n(UG_STRUCT_CSV, huge, big, "a\n", 2, -E2BIG, want);
	snprintf(want, sizeof(want), "new version: larger than %u bytes", UG_STRUCT_FILE_MAX);
	migrate_fails_n(UG_STRUCT_TSV, "a\n", 2, huge, big, -E2BIG, want);
	free(huge);
}

Test(migrate, result_over_the_output_cap_or_the_file_limit)
{
	struct ug_buf out;
	struct ug_error err = { "" };
	size_t ncols = 1000, rows = UG_STRUCT_FILE_MAX / ncols + 100, n, nn;
	char *local, *next;
	int r;

	ug_buf_init(&out, 8);
	r = ug_merge_table("a\n1\n2\n", 6, "a,b,c\n", 6, UG_STRUCT_CSV, &out, NULL, &err);
	cr_assert_eq(r, -E2BIG);
	cr_assert_str_eq(err.msg, "migrated result: larger than the output buffer allows");
	cr_assert_eq(out.len, 0);
	ug_buf_release(&out);

	/* 1000 columns in next, of which the local copy fills one: each
	 * 2-byte row becomes 1001 bytes, past 64 MiB */
	local = malloc(rows * 2 + 2);
	next = malloc(ncols * 8 + 2);
	cr_assert(local && next);
	memcpy(local, "a\n", 2);
	n = 2;
	for (size_t i = 0; i < rows; i++) {
		local[n++] = 'x';
		local[n++] = '\n';
	}
	nn = (size_t)snprintf(next, 8, "a");
	for (size_t j = 1; j < ncols; j++)
		nn += (size_t)snprintf(next + nn, 8, ",c%zu", j);
	next[nn++] = '\n';
	ug_buf_init(&out, OUT_MAX);
	r = ug_merge_table(local, n, next, nn, UG_STRUCT_CSV, &out, NULL, &err);
	cr_assert_eq(r, -E2BIG, "%d %s", r, err.msg);
	cr_assert_str_eq(err.msg, "migrated result: larger than 67108864 bytes; the local copy is kept");
	cr_assert_eq(out.len, 0);
	ug_buf_release(&out);
	free(local);
	free(next);
}

Test(migrate, bad_arguments)
{
	struct ug_buf out;
	struct ug_error err = { "" };

	ug_buf_init(&out, 100);
	cr_assert_eq(ug_merge_table("a\n", 2, "a\n", 2, UG_STRUCT_INI, &out, NULL, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "format 'ini' is not a table");
	cr_assert_eq(ug_merge_table(NULL, 2, "a\n", 2, UG_STRUCT_CSV, &out, NULL, NULL), -EINVAL);
	cr_assert_eq(ug_merge_table_renames("a\n", 2, "a\n", 2, UG_STRUCT_CSV, NULL, 1, &out, NULL, NULL),
		     -EINVAL);
	cr_assert_eq(ug_merge_table(NULL, 0, NULL, 0, UG_STRUCT_CSV, &out, NULL, NULL), 0);
	cr_assert_eq(out.len, 0);
	ug_buf_release(&out);
}

/* ---- hostile inputs -------------------------------------------------------- */

static const char fz_conf[] =
	"# head\r\n[agent]\r\n  server = \"s1\" # c\r\n  poll = 30\r\nexport X='y'\r\n\r\n[b]\r\nk: v\r\n";
static const char fz_csv[] = "id,\"no,te\",x\r\n1,\"a\"\"b\",\"l1\nl2\"\r\n2,,z\r\n";

/* Truncate or flip one byte of text into buf: a variant that may or may
 * not parse. */
static size_t mutate(const char *text, char *buf)
{
	size_t n = strlen(text);
	static const char bytes[] = "\"'[]=:,\t\r\n\\#; x\0\xff";

	memcpy(buf, text, n);
	switch (rnd(3)) {
	case 0:
		return rnd((unsigned)n + 1);
	case 1:
		buf[rnd((unsigned)n)] = bytes[rnd(sizeof(bytes) - 1)];
		return n;
	default:
		memmove(buf + 1, buf, n);
		buf[0] = bytes[rnd(sizeof(bytes) - 1)];
		return n + 1;
	}
}

Test(merge, mutated_inputs_merge_or_fail_cleanly)
{
	char v[3][256];
	const char *texts[3];
	size_t lens[3], ok = 0, bad = 0;

	rng_state = 7;
	for (int iter = 0; iter < 3000; iter++) {
		struct ug_buf out;
		struct ug_error err = { "" };
		struct ug_merge_report rep = { 0 };
		int which = (int)rnd(3), r;

		for (int i = 0; i < 3; i++) {
			texts[i] = fz_conf;
			lens[i] = strlen(fz_conf);
		}
		lens[which] = mutate(fz_conf, v[which]);
		texts[which] = v[which];
		ug_buf_init(&out, OUT_MAX);
		r = ug_merge_config(texts[0], lens[0], texts[1], lens[1], texts[2], lens[2],
				    rnd(2) ? UG_MERGE_PREFER_UPSTREAM : UG_MERGE_PREFER_LOCAL, &out, &rep, &err);
		if (r == 0) {
			ug_conf_free(conf_ok_n(out.len ? (const char *)out.data : "", out.len));
			ok++;
		} else {
			bad++;
			static const char *const sides[] = { "pristine copy: ", "local copy: ", "new version: " };

			cr_assert_eq(r, -EBADMSG, "iter %d: %d %s", iter, r, err.msg);
			cr_assert_eq(strncmp(err.msg, sides[which], strlen(sides[which])), 0,
				     "iter %d: '%s' should name the %s", iter, err.msg, sides[which]);
			cr_assert_eq(out.len, 0);
		}
		ug_merge_report_release(&rep);
		ug_buf_release(&out);
	}
	cr_assert(ok > 300 && bad > 300, "%zu merged, %zu refused: the variants test little", ok, bad);
}

Test(migrate, mutated_inputs_migrate_or_fail_cleanly)
{
	char v[256];
	size_t ok = 0, bad = 0;

	rng_state = 11;
	for (int iter = 0; iter < 3000; iter++) {
		struct ug_buf out;
		struct ug_error err = { "" };
		struct ug_table *t = NULL;
		bool local_side = rnd(2);
		enum ug_struct_format fmt = rnd(2) ? UG_STRUCT_TSV : UG_STRUCT_CSV;
		size_t n = mutate(fz_csv, v);
		int r;

		ug_buf_init(&out, OUT_MAX);
		r = local_side ? ug_merge_table(v, n, fz_csv, strlen(fz_csv), fmt, &out, NULL, &err)
			       : ug_merge_table(fz_csv, strlen(fz_csv), v, n, fmt, &out, NULL, &err);
		if (r == 0) {
			cr_assert_eq(ug_table_parse(fmt, out.len ? (const char *)out.data : "", out.len, &t, &err),
				     0, "iter %d: %s", iter, err.msg);
			ug_table_free(t);
			ok++;
		} else {
			bad++;
			cr_assert_eq(r, -EBADMSG, "iter %d: %d %s", iter, r, err.msg);
			cr_assert(strncmp(err.msg, "local copy: ", 12) == 0 ||
				  strncmp(err.msg, "new version: ", 13) == 0, "iter %d: '%s'", iter, err.msg);
			cr_assert_eq(out.len, 0);
		}
		ug_buf_release(&out);
	}
	cr_assert(ok > 300 && bad > 300, "%zu migrated, %zu refused: the variants test little", ok, bad);
}
