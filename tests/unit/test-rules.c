/* test-rules.c - unit tests for src/rules.c: the glob matcher (every
 * feature, checked against fnmatch(3) where they agree, and against a
 * pathological pattern), anchoring, directory-only and class-below-a-
 * directory rules, last-match-wins, the built-in defaults and overriding
 * them, every parse error with its line, loading without following
 * symlinks, and rename-column rules. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rules.h"

static struct ug_rules *parse_ok(const char *text)
{
	struct ug_rules *r = NULL;
	struct ug_error err = { "" };
	int rc = ug_rules_parse(text, strlen(text), &r, &err);

	cr_assert_eq(rc, 0, "parse failed (%d): %s", rc, err.msg);
	cr_assert_not_null(r);
	return r;
}

/* Parse text (len bytes), expect rc and exactly msg; ret must stay as is. */
static void parse_fails(const char *text, size_t len, int want_rc, const char *want_msg)
{
	struct ug_rules *sentinel = (struct ug_rules *)(uintptr_t)0x1234;
	struct ug_rules *r = sentinel;
	struct ug_error err = { "" };
	int rc = ug_rules_parse(text, len, &r, &err);

	cr_assert_eq(rc, want_rc, "rc %d, want %d (%s)", rc, want_rc, err.msg);
	cr_assert_eq(r, sentinel, "ret written on failure");
	cr_assert_str_eq(err.msg, want_msg);
}

static void parse_fails_s(const char *text, int want_rc, const char *want_msg)
{
	parse_fails(text, strlen(text), want_rc, want_msg);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ matcher */

Test(rules, glob_star_within_component)
{
	cr_assert(ug_glob_match("*.c", "main.c"));
	cr_assert(ug_glob_match("*.c", ".c"));
	cr_assert(ug_glob_match("*.c", ".hidden.c"), "'*' matches a leading dot, as in gitignore");
	cr_assert_not(ug_glob_match("*.c", "main.h"));
	cr_assert_not(ug_glob_match("*.c", "src/main.c"), "'*' must not cross '/'");
	cr_assert(ug_glob_match("a*b", "ab"));
	cr_assert(ug_glob_match("a*b", "axxxb"));
	cr_assert_not(ug_glob_match("a*b", "axxxbc"));
	cr_assert(ug_glob_match("a*b*c", "abxbc"));
	cr_assert(ug_glob_match("src/*.c", "src/x.c"));
	cr_assert_not(ug_glob_match("src/*.c", "src/sub/x.c"));
	cr_assert(ug_glob_match("*/*", "a/b"));
	cr_assert_not(ug_glob_match("*/*", "a"));
	cr_assert_not(ug_glob_match("*/*", "a/b/c"));
	cr_assert(ug_glob_match("a**b", "axyb"), "'**' inside a component is '*'");
	cr_assert_not(ug_glob_match("a**b", "ax/yb"));
}

Test(rules, glob_question_mark)
{
	cr_assert(ug_glob_match("a?c", "abc"));
	cr_assert(ug_glob_match("a?c", "a.c"));
	cr_assert_not(ug_glob_match("a?c", "ac"));
	cr_assert_not(ug_glob_match("a?c", "abbc"));
	cr_assert_not(ug_glob_match("a?c", "a/c"), "'?' must not match '/'");
	cr_assert(ug_glob_match("???", "xyz"));
	cr_assert_not(ug_glob_match("???", "xy"));
}

Test(rules, glob_brackets)
{
	cr_assert(ug_glob_match("[abc].txt", "b.txt"));
	cr_assert_not(ug_glob_match("[abc].txt", "d.txt"));
	cr_assert(ug_glob_match("log[0-9]", "log7"));
	cr_assert_not(ug_glob_match("log[0-9]", "logx"));
	cr_assert(ug_glob_match("[a-cx-z]", "y"));
	cr_assert_not(ug_glob_match("[a-cx-z]", "m"));
	cr_assert(ug_glob_match("[!x]y", "ay"));
	cr_assert_not(ug_glob_match("[!x]y", "xy"));
	cr_assert(ug_glob_match("[^x]y", "ay"));
	cr_assert_not(ug_glob_match("[^x]y", "xy"));
	/* ']' first in a set is a member; '-' last is literal */
	cr_assert(ug_glob_match("[]]", "]"));
	cr_assert(ug_glob_match("[!]]", "a"));
	cr_assert_not(ug_glob_match("[!]]", "]"));
	cr_assert(ug_glob_match("[a-]", "-"));
	cr_assert(ug_glob_match("[\\]x]", "]"), "escaped ']' inside a set");
	cr_assert_not(ug_glob_match("a[/]b", "a/b"), "a set never matches '/'");
	cr_assert_not(ug_glob_match("[!a]", "/"));
	/* high bytes compare unsigned */
	cr_assert(ug_glob_match("[\x80-\xff]", "\xe9"));
	cr_assert_not(ug_glob_match("[a-z]", "\xe9"));
	/* an unterminated '[' (refused by the parser) is literal here */
	cr_assert(ug_glob_match("[ab", "[ab"));
	cr_assert_not(ug_glob_match("[ab", "a"));
}

Test(rules, glob_escapes)
{
	cr_assert(ug_glob_match("\\*", "*"));
	cr_assert_not(ug_glob_match("\\*", "x"));
	cr_assert(ug_glob_match("\\?", "?"));
	cr_assert_not(ug_glob_match("\\?", "x"));
	cr_assert(ug_glob_match("\\[x]", "[x]"));
	cr_assert_not(ug_glob_match("\\[x]", "x"));
	cr_assert(ug_glob_match("a\\\\b", "a\\b"));
	cr_assert(ug_glob_match("\\a", "a"));
	cr_assert(ug_glob_match("*\\*", "abc*"));
	cr_assert_not(ug_glob_match("*\\*", "abc"));
}

Test(rules, glob_double_star_leading)
{
	cr_assert(ug_glob_match("**/x", "x"), "leading '**' matches zero components");
	cr_assert(ug_glob_match("**/x", "a/x"));
	cr_assert(ug_glob_match("**/x", "a/b/c/x"));
	cr_assert_not(ug_glob_match("**/x", "a/xy"));
	cr_assert_not(ug_glob_match("**/x", "x/a"));
	cr_assert(ug_glob_match("**/a/b", "q/a/b"));
	cr_assert(ug_glob_match("**/a/b", "a/a/b"), "needs backtracking over components");
	cr_assert_not(ug_glob_match("**/a/b", "a/b/c"));
}

Test(rules, glob_double_star_trailing)
{
	cr_assert(ug_glob_match("a/**", "a/b"));
	cr_assert(ug_glob_match("a/**", "a/b/c/d"));
	cr_assert_not(ug_glob_match("a/**", "a"), "trailing '**' is what is inside, not the dir");
	cr_assert_not(ug_glob_match("a/**", "b/a/c"));
	cr_assert(ug_glob_match("**", "a"));
	cr_assert(ug_glob_match("**", "a/b/c"));
}

Test(rules, glob_double_star_middle)
{
	cr_assert(ug_glob_match("a/**/b", "a/b"), "middle '**' matches zero components");
	cr_assert(ug_glob_match("a/**/b", "a/x/b"));
	cr_assert(ug_glob_match("a/**/b", "a/x/y/z/b"));
	cr_assert(ug_glob_match("a/**/b", "a/b/b"));
	cr_assert_not(ug_glob_match("a/**/b", "a/x/c"));
	cr_assert_not(ug_glob_match("a/**/b", "x/a/b"));
	cr_assert_not(ug_glob_match("a/**/b", "a/b/c"));
	cr_assert(ug_glob_match("a/**/*.c", "a/s/t/u.c"));
	cr_assert(ug_glob_match("a/**/b/**/c", "a/1/b/2/3/c"));
	cr_assert(ug_glob_match("a/**/b/**/c", "a/b/c"));
	cr_assert_not(ug_glob_match("a/**/b/**/c", "a/1/2/c"));
	cr_assert(ug_glob_match("**/**/x", "x"));
	cr_assert(ug_glob_match("**/**/x", "p/q/x"));
}

/* Tiny deterministic generator, so a failure is reproducible. */
static uint32_t rng_next(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

/* A path-like string: 1..3 non-empty components over {a, b, .}. */
static void gen_path(uint32_t *st, char *out)
{
	size_t n = 0, comps = 1 + rng_next(st) % 3;

	for (size_t c = 0; c < comps; c++) {
		size_t len = 1 + rng_next(st) % 4;
		if (c)
			out[n++] = '/';
		for (size_t i = 0; i < len; i++)
			out[n++] = "ab."[rng_next(st) % 3];
	}
	out[n] = '\0';
}

/* Components made of tokens that fnmatch(FNM_PATHNAME) reads the same
 * way; no "**" (which differs on purpose). */
static void gen_pattern(uint32_t *st, char *out)
{
	static const char *const tok[] = { "a", "b", ".", "*", "?", "[ab]", "[!a]", "[.-a]", "\\a" };
	size_t n = 0, comps = 1 + rng_next(st) % 3;

	for (size_t c = 0; c < comps; c++) {
		size_t len = 1 + rng_next(st) % 4;
		bool last_star = false;
		if (c)
			out[n++] = '/';
		for (size_t i = 0; i < len; i++) {
			const char *t = tok[rng_next(st) % (sizeof(tok) / sizeof(tok[0]))];
			if (t[0] == '*' && last_star)
				t = "a";
			last_star = t[0] == '*';
			memcpy(out + n, t, strlen(t));
			n += strlen(t);
		}
	}
	out[n] = '\0';
}

Test(rules, glob_agrees_with_fnmatch)
{
	uint32_t st = 0x9e3779b9u;
	char pat[128], path[64];
	size_t positives = 0;

	for (int i = 0; i < 30000; i++) {
		bool want, got;

		gen_pattern(&st, pat);
		gen_path(&st, path);
		want = fnmatch(pat, path, FNM_PATHNAME) == 0;
		got = ug_glob_match(pat, path);
		cr_assert_eq(got, want, "'%s' vs '%s': got %d, fnmatch says %d", pat, path, got, want);
		positives += want;
	}
	cr_assert_gt(positives, 300, "the generator should produce matches too (%zu)", positives);
}

/* The timeout turns an exponential matcher into a failure, not a hang. */
Test(rules, glob_pathological_is_fast, .timeout = 20.0)
{
	char path[256], deep[512];
	double t0 = now_s(), dt;
	struct ug_rules *r;

	memset(path, 'a', 200);
	path[200] = '\0';
	/* deep = "a/a/a/.../a" with 100 components */
	for (int i = 0; i < 100; i++) {
		deep[2 * i] = 'a';
		deep[2 * i + 1] = '/';
	}
	deep[199] = '\0';

	for (int k = 0; k < 100; k++) {
		cr_assert_not(ug_glob_match("*a*a*a*a*a*a*a*a*b", path));
		cr_assert_not(ug_glob_match("**/a/**/a/**/a/**/a/**/a/**/a/**/b", deep));
		cr_assert_not(ug_glob_match("**/*a*a*a*a*a*a*b/**/x", deep));
	}
	cr_assert(ug_glob_match("*a*a*a*a*a*a*a*a*a", path));

	r = parse_ok("exclude *a*a*a*a*a*a*a*a*b\nexclude **/a/**/a/**/a/**/a/**/b\n");
	for (int k = 0; k < 100; k++) {
		cr_assert_not(ug_rules_excluded(r, path, false));
		cr_assert_not(ug_rules_excluded(r, deep, false));
	}
	ug_rules_free(r);
	dt = now_s() - t0;
	/* exponential backtracking would take hours; linear-ish is ~ms */
	cr_assert_lt(dt, 2.0, "pathological patterns took %.3f s", dt);
}

/* ------------------------------------------------------------ rule semantics */

Test(rules, anchoring)
{
	struct ug_rules *r = parse_ok("exclude /build\nexclude docs/tmp\nexclude /a/b/\n");

	cr_assert(ug_rules_excluded(r, "build", true));
	cr_assert(ug_rules_excluded(r, "build", false));
	cr_assert(ug_rules_excluded(r, "build/x.o", false), "below an excluded dir");
	cr_assert_not(ug_rules_excluded(r, "src/build", true), "leading '/' anchors");
	cr_assert_not(ug_rules_excluded(r, "src/build/x.o", false));
	cr_assert(ug_rules_excluded(r, "docs/tmp", false), "inner '/' anchors too");
	cr_assert_not(ug_rules_excluded(r, "x/docs/tmp", false));
	cr_assert(ug_rules_excluded(r, "a/b", true));
	cr_assert_not(ug_rules_excluded(r, "a/b", false), "dir-only");
	cr_assert_not(ug_rules_excluded(r, "z/a/b", true));
	ug_rules_free(r);
}

Test(rules, basename_at_any_depth)
{
	struct ug_rules *r = parse_ok("exclude *.o\nexclude core\n");

	cr_assert(ug_rules_excluded(r, "x.o", false));
	cr_assert(ug_rules_excluded(r, "a/x.o", false));
	cr_assert(ug_rules_excluded(r, "a/b/c/d/x.o", false));
	cr_assert(ug_rules_excluded(r, "a/b/core", false));
	cr_assert(ug_rules_excluded(r, "a/core", true), "no trailing '/': dirs too");
	cr_assert(ug_rules_excluded(r, "a/core/inner.txt", false));
	cr_assert_not(ug_rules_excluded(r, "a/score", false));
	cr_assert_not(ug_rules_excluded(r, "a/x.oo", false));
	cr_assert_not(ug_rules_excluded(r, "x.o.c", false));
	ug_rules_free(r);
}

Test(rules, dir_only_patterns)
{
	struct ug_rules *r = parse_ok("exclude cache/\nexclude out/**/gen/\n");

	cr_assert(ug_rules_excluded(r, "cache", true));
	cr_assert_not(ug_rules_excluded(r, "cache", false), "a file named cache stays");
	cr_assert(ug_rules_excluded(r, "cache/x", false), "everything below");
	cr_assert(ug_rules_excluded(r, "cache/d/e/f", false));
	cr_assert(ug_rules_excluded(r, "a/b/cache", true));
	cr_assert(ug_rules_excluded(r, "a/b/cache/x", false));
	cr_assert(ug_rules_excluded(r, "out/gen", true));
	cr_assert(ug_rules_excluded(r, "out/1/2/gen/file", false));
	cr_assert_not(ug_rules_excluded(r, "out/1/2/gen", false));
	cr_assert_not(ug_rules_excluded(r, "other/gen/file", false));
	ug_rules_free(r);
}

Test(rules, double_star_rules)
{
	struct ug_rules *r = parse_ok("exclude **/tmpdir\nexclude logs/**\nexclude a/**/z.bin\n"
				      "config **/conf.d/**\n");

	cr_assert(ug_rules_excluded(r, "tmpdir", true));
	cr_assert(ug_rules_excluded(r, "x/y/tmpdir", false));
	cr_assert(ug_rules_excluded(r, "logs/a", false));
	cr_assert(ug_rules_excluded(r, "logs/a/b", false));
	cr_assert_not(ug_rules_excluded(r, "logs", true), "'logs/**' keeps the dir itself");
	cr_assert(ug_rules_excluded(r, "a/z.bin", false));
	cr_assert(ug_rules_excluded(r, "a/b/c/z.bin", false));
	cr_assert_not(ug_rules_excluded(r, "b/a/z.bin", false));
	cr_assert_eq(ug_rules_class(r, "conf.d/x"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "etc/app/conf.d/a/x"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "etc/app/conf.dx"), UG_CLASS_BINARY);
	ug_rules_free(r);
}

Test(rules, class_of_files_below_a_directory)
{
	struct ug_rules *r = parse_ok("config etc/\npreserve var/local/\ndata /tables\n");

	cr_assert_eq(ug_rules_class(r, "etc/app.bin"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "opt/etc/a/b"), UG_CLASS_CONFIG, "basename dir at depth");
	cr_assert_eq(ug_rules_class(r, "etc"), UG_CLASS_BINARY, "a file named etc is not a dir");
	cr_assert_eq(ug_rules_class(r, "var/local/state.db"), UG_CLASS_PRESERVE);
	cr_assert_eq(ug_rules_class(r, "var/local/x/y/z"), UG_CLASS_PRESERVE);
	cr_assert_eq(ug_rules_class(r, "var/localx/y"), UG_CLASS_BINARY);
	cr_assert_eq(ug_rules_class(r, "x/var/local/y"), UG_CLASS_BINARY, "anchored");
	cr_assert_eq(ug_rules_class(r, "tables"), UG_CLASS_DATA, "no '/': files match too");
	cr_assert_eq(ug_rules_class(r, "tables/a.bin"), UG_CLASS_DATA);
	cr_assert_eq(ug_rules_class(r, "x/tables/a.bin"), UG_CLASS_BINARY);
	ug_rules_free(r);
}

Test(rules, last_match_wins)
{
	struct ug_rules *r = parse_ok("config *.bin\nbinary special.bin\n");
	struct ug_rules *r2 = parse_ok("binary special.bin\nconfig *.bin\n");
	struct ug_rules *r3 = parse_ok("config etc/\nbinary *.so\n");
	struct ug_rules *r4 = parse_ok("binary *.so\nconfig etc/\n");

	cr_assert_eq(ug_rules_class(r, "x.bin"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "special.bin"), UG_CLASS_BINARY);
	cr_assert_eq(ug_rules_class(r2, "special.bin"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r3, "etc/lib.so"), UG_CLASS_BINARY);
	cr_assert_eq(ug_rules_class(r3, "etc/app"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r4, "etc/lib.so"), UG_CLASS_CONFIG, "dir rule is later");
	ug_rules_free(r);
	ug_rules_free(r2);
	ug_rules_free(r3);
	ug_rules_free(r4);
}

Test(rules, include_overrides_exclude)
{
	struct ug_rules *r = parse_ok("exclude *.log\ninclude keep.log\n");
	struct ug_rules *r2 = parse_ok("include keep.log\nexclude *.log\n");
	struct ug_rules *r3 = parse_ok("exclude *\ninclude */\ninclude *.c\n");

	cr_assert(ug_rules_excluded(r, "a.log", false));
	cr_assert_not(ug_rules_excluded(r, "keep.log", false));
	cr_assert_not(ug_rules_excluded(r, "d/keep.log", false));
	cr_assert(ug_rules_excluded(r2, "keep.log", false), "the later exclude wins");
	cr_assert_not(ug_rules_excluded(r3, "src", true));
	cr_assert_not(ug_rules_excluded(r3, "src/a.c", false));
	cr_assert(ug_rules_excluded(r3, "src/a.h", false));
	ug_rules_free(r);
	ug_rules_free(r2);
	ug_rules_free(r3);
}

Test(rules, include_cannot_reach_below_excluded_dir)
{
	struct ug_rules *r = parse_ok("exclude logs/\ninclude logs/keep.txt\n");
	struct ug_rules *r2 = parse_ok("exclude logs/*\ninclude logs/keep.txt\n");

	/* as in gitignore: the walk never enters logs/ */
	cr_assert(ug_rules_excluded(r, "logs/keep.txt", false));
	cr_assert(ug_rules_excluded(r2, "logs/other.txt", false));
	cr_assert_not(ug_rules_excluded(r2, "logs", true));
	cr_assert_not(ug_rules_excluded(r2, "logs/keep.txt", false));
	cr_assert_not(ug_rules_excluded_leaf(r, "logs/keep.txt", false),
		      "the leaf check judges only the last component");
	ug_rules_free(r);
	ug_rules_free(r2);
}

Test(rules, metadata_always_excluded)
{
	struct ug_rules *r = parse_ok("include .upgrid/\ninclude .upgrid\ninclude **\n"
				      "include .upgrid/**\ninclude /.upgrid/rules\n");

	cr_assert(ug_rules_excluded(r, ".upgrid", true));
	cr_assert(ug_rules_excluded(r, ".upgrid", false));
	cr_assert(ug_rules_excluded(r, ".upgrid/rules", false));
	cr_assert(ug_rules_excluded(r, ".upgrid/a/b", false));
	cr_assert(ug_rules_excluded(r, "sub/.upgrid/rules", false));
	cr_assert(ug_rules_excluded_leaf(r, ".upgrid", true));
	cr_assert_not(ug_rules_excluded(r, ".upgridx", true));
	cr_assert_not(ug_rules_excluded(r, "x.upgrid", false));
	ug_rules_free(r);
}

Test(rules, defaults)
{
	struct ug_rules *r = parse_ok("");
	static const char *const excluded[] = {
		"a.swp", "d/.main.c.swp", "a.swx", "notes~", "d/.#lock", "x.tmp", "#auto#",
		"d/e/#save#", ".upgrid/rules",
	};
	static const char *const kept[] = {
		"main.c", "swp", "a.swp.txt", "~x", "#x", "tmp", ".env.d/x",
	};

	for (size_t i = 0; i < sizeof(excluded) / sizeof(excluded[0]); i++)
		cr_assert(ug_rules_excluded(r, excluded[i], false), "'%s' should be excluded", excluded[i]);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		cr_assert_not(ug_rules_excluded(r, kept[i], false), "'%s' should be kept", kept[i]);
	cr_assert_eq(ug_rules_class(r, "app.ini"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "etc/x.conf"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "x.cfg"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "a/b.properties"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "prod.env"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "app/.env"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "t.csv"), UG_CLASS_DATA);
	cr_assert_eq(ug_rules_class(r, "db/t.tsv"), UG_CLASS_DATA);
	cr_assert_eq(ug_rules_class(r, "bin/tool"), UG_CLASS_BINARY);
	cr_assert_eq(ug_rules_class(r, "app.ini.bak"), UG_CLASS_BINARY);
	ug_rules_free(r);

	/* NULL text with len 0 is "no user rules" */
	cr_assert_eq(ug_rules_parse(NULL, 0, &r, NULL), 0);
	cr_assert(ug_rules_excluded(r, "a.swp", false));
	ug_rules_free(r);
	ug_rules_free(NULL);
}

Test(rules, user_overrides_defaults)
{
	struct ug_rules *r = parse_ok("include *.tmp\nbinary *.ini\ndata *.conf\nconfig *.csv\n"
				      "preserve local.env\n");

	cr_assert_not(ug_rules_excluded(r, "x.tmp", false));
	cr_assert(ug_rules_excluded(r, "x.swp", false), "other defaults still apply");
	cr_assert_eq(ug_rules_class(r, "a.ini"), UG_CLASS_BINARY);
	cr_assert_eq(ug_rules_class(r, "a.conf"), UG_CLASS_DATA);
	cr_assert_eq(ug_rules_class(r, "a.csv"), UG_CLASS_CONFIG);
	cr_assert_eq(ug_rules_class(r, "local.env"), UG_CLASS_PRESERVE);
	cr_assert_eq(ug_rules_class(r, "prod.env"), UG_CLASS_CONFIG);
	ug_rules_free(r);
}

Test(rules, syntax_comments_whitespace_crlf)
{
	struct ug_rules *r = parse_ok("# a comment\n"
				      "   # indented comment\n"
				      "\n"
				      "  \t \n"
				      "exclude *.o   \t\r\n"
				      "\texclude\t\tbuild dir/\r\n"
				      "exclude with space.txt\n"
				      "exclude trail\\ \n"
				      "exclude \\[lit]\n"
				      "exclude #*.bak"); /* no final newline */

	cr_assert(ug_rules_excluded(r, "a/x.o", false), "trailing blanks and CR trimmed");
	cr_assert_not(ug_rules_excluded(r, "a/x.o ", false));
	cr_assert(ug_rules_excluded(r, "build dir", true));
	cr_assert_not(ug_rules_excluded(r, "build dir", false));
	cr_assert(ug_rules_excluded(r, "with space.txt", false));
	cr_assert(ug_rules_excluded(r, "trail ", false), "escaped trailing space is kept");
	cr_assert_not(ug_rules_excluded(r, "trail", false));
	cr_assert(ug_rules_excluded(r, "#x.bak", false), "'#' inside a rule is not a comment");
	cr_assert(ug_rules_excluded(r, "[lit]", false), "an escaped '[' opens no set");
	cr_assert_not(ug_rules_excluded(r, "l", false));
	ug_rules_free(r);
}

/* ------------------------------------------------------------ parse errors */

Test(rules, error_unknown_rule)
{
	parse_fails_s("# comment\n\nexlude *.o\n", -EBADMSG,
		      "line 3: unknown rule 'exlude' (expected exclude, include, binary, config, data, preserve or rename-column)");
	parse_fails_s("EXCLUDE x\n", -EBADMSG,
		      "line 1: unknown rule 'EXCLUDE' (expected exclude, include, binary, config, data, preserve or rename-column)");
	/* control bytes in the echoed word are hidden */
	parse_fails_s("exclude a\nex\x1b[31m x\n", -EBADMSG,
		      "line 2: unknown rule 'ex?[31m' (expected exclude, include, binary, config, data, preserve or rename-column)");
}

Test(rules, error_unterminated_bracket)
{
	parse_fails_s("exclude a\ninclude b\n\nexclude foo[ab\n", -EBADMSG,
		      "line 4: unterminated '[' in pattern");
	parse_fails_s("exclude [!]\n", -EBADMSG, "line 1: unterminated '[' in pattern");
	parse_fails_s("exclude a[b/c]\n", -EBADMSG, "line 1: unterminated '[' in pattern");
	parse_fails_s("exclude [a\\]\n", -EBADMSG, "line 1: unterminated '[' in pattern");
}

Test(rules, error_missing_pattern)
{
	parse_fails_s("exclude *.o\nconfig\n", -EBADMSG, "line 2: 'config' needs a pattern");
	parse_fails_s("data   \t \r\n", -EBADMSG, "line 1: 'data' needs a pattern");
}

Test(rules, error_bad_patterns)
{
	parse_fails_s("exclude x\nexclude /\n", -EBADMSG, "line 2: empty pattern");
	parse_fails_s("exclude //\n", -EBADMSG, "line 1: empty pattern");
	parse_fails_s("exclude a//b\n", -EBADMSG, "line 1: pattern 'a//b' has an empty component");
	parse_fails_s("exclude a/../b\n", -EBADMSG, "line 1: pattern 'a/../b' contains '..' (paths never do)");
	parse_fails_s("exclude ./a\n", -EBADMSG, "line 1: pattern './a' contains '.' (paths never do)");
	parse_fails_s("\n\nexclude foo\\\n", -EBADMSG,
		      "line 3: pattern 'foo\\' has a '\\' with nothing to escape ('/' cannot be escaped)");
	parse_fails_s("exclude a\\/b\n", -EBADMSG,
		      "line 1: pattern 'a\\/b' has a '\\' with nothing to escape ('/' cannot be escaped)");
	parse_fails_s("exclude a\x01" "b\n", -EBADMSG, "line 1: pattern contains a control character");
	parse_fails_s("exclude a\rb\n", -EBADMSG, "line 1: pattern contains a control character");
}

Test(rules, error_nul_byte)
{
	static const char text[] = "exclude a\nexclude b\0c\n";

	parse_fails(text, sizeof(text) - 1, -EBADMSG, "line 2: contains a NUL byte");
	parse_fails("\0", 1, -EBADMSG, "line 1: contains a NUL byte");
}

Test(rules, error_line_too_long)
{
	size_t n = UG_CONFIG_LINE_MAX + 1;
	char *text = malloc(n + 32);
	struct ug_rules *r;

	cr_assert_not_null(text);
	memcpy(text, "exclude a\n", 10);
	memcpy(text + 10, "exclude ", 8);
	memset(text + 18, 'x', n - 8);
	parse_fails(text, 10 + n, -E2BIG, "line 2: longer than 4096 bytes");
	/* exactly the limit is fine */
	cr_assert_eq(ug_rules_parse(text, 10 + n - 1, &r, NULL), 0);
	cr_assert(ug_rules_excluded(r, "a", false));
	ug_rules_free(r);
	free(text);
}

Test(rules, error_too_many_rules)
{
	size_t cap = (UG_RULES_MAX + 2) * 16, len = 0;
	char *text = malloc(cap);
	struct ug_rules *r;

	cr_assert_not_null(text);
	len += (size_t)snprintf(text, cap, "# many rules\n");
	for (unsigned i = 0; i < UG_RULES_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "exclude f%u\n", i);
	/* exactly UG_RULES_MAX rules (plus a comment) parse */
	cr_assert_eq(ug_rules_parse(text, len, &r, NULL), 0);
	cr_assert(ug_rules_excluded(r, "f4095", false));
	cr_assert_not(ug_rules_excluded(r, "f4096", false));
	ug_rules_free(r);
	len += (size_t)snprintf(text + len, cap - len, "\n# c\nexclude one-more\n");
	parse_fails(text, len, -E2BIG, "line 4100: more than 4096 rules");
	free(text);
}

Test(rules, error_file_too_big)
{
	size_t n = UG_RULES_FILE_MAX + 1;
	char *text = malloc(n);

	cr_assert_not_null(text);
	memset(text, '\n', n);
	parse_fails(text, n, -E2BIG, "rules are larger than 1048576 bytes");
	/* the limit itself is fine (all blank lines) */
	{
		struct ug_rules *r;
		cr_assert_eq(ug_rules_parse(text, n - 1, &r, NULL), 0);
		ug_rules_free(r);
	}
	free(text);
}

Test(rules, error_without_detail)
{
	struct ug_rules *r;

	cr_assert_eq(ug_rules_parse("bogus x", 7, &r, NULL), -EBADMSG, "err may be NULL");
}

/* ------------------------------------------------------------ loading */

#include "tmpdir.h"

static void tmp_setup(void)
{
	ug_test_tmp_make("rules");
}

static void tmp_teardown(void)
{
	ug_test_tmp_remove();
}

static void put(const char *path, const char *content)
{
	int fd = openat(tmpfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "create '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void load_fails(int want_rc, const char *want_msg)
{
	struct ug_rules *sentinel = (struct ug_rules *)(uintptr_t)0x1234;
	struct ug_rules *r = sentinel;
	struct ug_error err = { "" };
	int rc = ug_rules_load(tmpfd, &r, &err);

	cr_assert_eq(rc, want_rc, "rc %d, want %d (%s)", rc, want_rc, err.msg);
	cr_assert_eq(r, sentinel);
	cr_assert_str_eq(err.msg, want_msg);
}

Test(rules, load_missing_gives_defaults, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_rules *r = NULL;
	struct ug_error err = { "" };

	cr_assert_eq(ug_rules_load(tmpfd, &r, &err), 0, "%s", err.msg);
	cr_assert(ug_rules_excluded(r, "a.swp", false));
	cr_assert_eq(ug_rules_class(r, "a.ini"), UG_CLASS_CONFIG);
	ug_rules_free(r);

	/* .upgrid present but no rules file: defaults too */
	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	cr_assert_eq(ug_rules_load(tmpfd, &r, &err), 0, "%s", err.msg);
	cr_assert(ug_rules_excluded(r, "a.tmp", false));
	ug_rules_free(r);
}

Test(rules, load_reads_file, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_rules *r = NULL;
	struct ug_error err = { "" };

	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	put(".upgrid/rules", "exclude *.log\r\nconfig etc/\n");
	cr_assert_eq(ug_rules_load(tmpfd, &r, &err), 0, "%s", err.msg);
	cr_assert(ug_rules_excluded(r, "x/a.log", false));
	cr_assert(ug_rules_excluded(r, "a.swp", false), "defaults still there");
	cr_assert_eq(ug_rules_class(r, "etc/x"), UG_CLASS_CONFIG);
	ug_rules_free(r);
}

Test(rules, load_parse_error_names_file_and_line, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	put(".upgrid/rules", "exclude a\nexclude [x\n");
	load_fails(-EBADMSG, "'.upgrid/rules' line 2: unterminated '[' in pattern");
}

Test(rules, load_refuses_symlinked_rules, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	put("real-rules", "exclude *.log\n");
	cr_assert_eq(symlinkat("../real-rules", tmpfd, ".upgrid/rules"), 0);
	load_fails(-ELOOP, "'.upgrid/rules' is a symlink (upgrid does not follow links; make it a regular file)");
}

Test(rules, load_refuses_symlinked_metadata_dir, .init = tmp_setup, .fini = tmp_teardown)
{
	cr_assert_eq(mkdirat(tmpfd, "elsewhere", 0755), 0);
	put("elsewhere/rules", "exclude *.log\n");
	cr_assert_eq(symlinkat("elsewhere", tmpfd, ".upgrid"), 0);
	load_fails(-ELOOP, "'.upgrid' is a symlink (upgrid does not follow links; make it a directory)");
}

Test(rules, load_refuses_odd_files, .init = tmp_setup, .fini = tmp_teardown)
{
	put(".upgrid", "not a dir\n");
	load_fails(-ENOTDIR, "'.upgrid' is not a directory");
	cr_assert_eq(unlinkat(tmpfd, ".upgrid", 0), 0);
	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	/* a fifo must be refused, not block the reader forever */
	cr_assert_eq(mkfifoat(tmpfd, ".upgrid/rules", 0644), 0);
	load_fails(-EINVAL, "'.upgrid/rules' is not a regular file");
	cr_assert_eq(unlinkat(tmpfd, ".upgrid/rules", 0), 0);
	cr_assert_eq(mkdirat(tmpfd, ".upgrid/rules", 0755), 0);
	load_fails(-EINVAL, "'.upgrid/rules' is not a regular file");
}

Test(rules, load_refuses_oversized_file, .init = tmp_setup, .fini = tmp_teardown)
{
	int fd;

	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	fd = openat(tmpfd, ".upgrid/rules", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, UG_RULES_FILE_MAX + 1), 0);
	close(fd);
	load_fails(-E2BIG, "'.upgrid/rules' is larger than 1048576 bytes");
}

Test(rules, load_nul_byte, .init = tmp_setup, .fini = tmp_teardown)
{
	int fd;

	cr_assert_eq(mkdirat(tmpfd, ".upgrid", 0755), 0);
	fd = openat(tmpfd, ".upgrid/rules", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_write_all(fd, "exclude a\n\nexclude b\0\n", 22), 0);
	close(fd);
	load_fails(-EBADMSG, "'.upgrid/rules' line 3: contains a NUL byte");
}

/* ------------------------------------------------------------ rename-column */

static void renames_of(const struct ug_rules *r, const char *path, struct ug_column_rename **v,
		       size_t *n)
{
	*v = (struct ug_column_rename *)0x1;
	*n = 99;
	cr_assert_eq(ug_rules_renames(r, path, v, n), 0);
}

Test(rules, rename_column_applies_in_file_order)
{
	struct ug_rules *r = parse_ok("data *.dat\n"
				      "rename-column prices.csv tariff price\n"
				      "# a comment between\n"
				      "rename-column *.csv \"unit price\" \"price per \\\"kWh\\\"\"\n"
				      "rename-column\ttables/ old\tnew  \r\n"
				      "rename-column /top.csv a b\n");
	struct ug_column_rename *v;
	size_t n;

	renames_of(r, "prices.csv", &v, &n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[0].from, "tariff");
	cr_assert_str_eq(v[0].to, "price");
	cr_assert_str_eq(v[1].from, "unit price");
	cr_assert_str_eq(v[1].to, "price per \"kWh\"");
	free(v);

	/* basename patterns match at any depth; a directory rule applies below it */
	renames_of(r, "tables/x/prices.csv", &v, &n);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0].from, "tariff");
	cr_assert_str_eq(v[1].from, "unit price");
	cr_assert_str_eq(v[2].from, "old");
	cr_assert_str_eq(v[2].to, "new", "trailing blanks and CR are not part of the name");
	free(v);

	renames_of(r, "top.csv", &v, &n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[1].from, "a");
	free(v);
	renames_of(r, "sub/top.csv", &v, &n);
	cr_assert_eq(n, 1, "an anchored pattern does not match deeper");
	free(v);

	renames_of(r, "tables", &v, &n);
	cr_assert_eq(n, 0);
	cr_assert_null(v, "no renames: NULL array");
	renames_of(r, "other.tsv", &v, &n);
	cr_assert_eq(n, 0);
	cr_assert_null(v);
	ug_rules_free(r);
}

Test(rules, rename_column_is_neither_class_nor_exclusion)
{
	struct ug_rules *r = parse_ok("preserve keep/\nrename-column keep/*.csv a b\nrename-column x.bin a b\n");

	cr_assert_eq(ug_rules_class(r, "keep/t.csv"), UG_CLASS_PRESERVE, "a later rename does not change the class");
	cr_assert_eq(ug_rules_class(r, "x.bin"), UG_CLASS_BINARY);
	cr_assert_eq(ug_rules_class(r, "t.csv"), UG_CLASS_DATA);
	cr_assert_not(ug_rules_excluded(r, "x.bin", false));
	cr_assert_not(ug_rules_excluded(r, "keep/t.csv", false));
	ug_rules_free(r);
}

Test(rules, rename_column_pattern_with_escaped_blank)
{
	struct ug_rules *r = parse_ok("rename-column my\\ table.csv a b\n");
	struct ug_column_rename *v;
	size_t n;

	renames_of(r, "my table.csv", &v, &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0].from, "a");
	free(v);
	renames_of(r, "my", &v, &n);
	cr_assert_eq(n, 0);
	ug_rules_free(r);
}

Test(rules, rename_column_errors)
{
	const char *usage = ": usage: rename-column PATTERN OLD NEW";
	char want[128];

	snprintf(want, sizeof(want), "line 2%s", usage);
	parse_fails_s("data *.x\nrename-column\n", -EBADMSG, want);
	snprintf(want, sizeof(want), "line 1%s", usage);
	parse_fails_s("rename-column t.csv\n", -EBADMSG, want);
	parse_fails_s("rename-column t.csv a\n", -EBADMSG, want);
	parse_fails_s("rename-column t.csv a b c\n", -EBADMSG, want);
	parse_fails_s("rename-column t.csv a b # no comments here\n", -EBADMSG, want);
	parse_fails_s("rename-column t.csv \"a b\n", -EBADMSG,
		      "line 1: unterminated '\"' in column name");
	parse_fails_s("rename-column t.csv \"a\"b c\n", -EBADMSG,
		      "line 1: text after the closing '\"' of a column name");
	parse_fails_s("rename-column t.csv \"\" c\n", -EBADMSG, "line 1: empty column name");
	parse_fails_s("rename-column t.csv a \"\x01\"\n", -EBADMSG,
		      "line 1: column name contains a control character");
	parse_fails_s("rename-column t.csv \xff\xfe b\n", -EBADMSG,
		      "line 1: column name is not valid UTF-8");
	parse_fails_s("\n\nrename-column t.csv same \"same\"\n", -EBADMSG,
		      "line 3: column 'same' is renamed to itself");
	parse_fails_s("rename-column a/../t.csv a b\n", -EBADMSG,
		      "line 1: pattern 'a/../t.csv' contains '..' (paths never do)");
	parse_fails_s("rename-column t.csv\\ a b\n", -EBADMSG, want);
}

Test(rules, rename_column_counts_against_the_rule_limit)
{
	size_t cap = (UG_RULES_MAX + 2) * 40, len = 0;
	char *text = malloc(cap);

	cr_assert_not_null(text);
	for (unsigned i = 0; i <= UG_RULES_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "rename-column t%u.csv a b\n", i);
	parse_fails(text, len, -E2BIG, "line 4097: more than 4096 rules");
	free(text);
}
