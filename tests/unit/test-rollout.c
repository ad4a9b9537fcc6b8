/* test-rollout.c - unit tests for src/rollout.c: percentages as written,
 * buckets that only add terminals as a rollout grows, group and pattern
 * restrictions, and the checks a manifest's rollout must pass. */
#include "config.h"

#include <criterion/criterion.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "hash.h"
#include "manifest.h"
#include "rollout.h"
#include "sign.h"
#include "store.h"
#include "tmpdir.h"
#include "util.h"

#define FLEET 10000u

TestSuite(rollout);

static void fleet_id(size_t i, char out[32])
{
	snprintf(out, 32, "meter-%05zu", i);
}

/* ---- percentages --------------------------------------------------------- */

Test(rollout, parse_percent_accepts)
{
	static const struct { const char *s; unsigned want; } ok[] = {
		{ "10%", 100 },  { "10", 100 },    { "12.5%", 125 }, { "0%", 0 },
		{ "100%", 1000 }, { "100", 1000 }, { "0", 0 },       { "0.1%", 1 },
		{ "99.9", 999 }, { "100.0%", 1000 }, { "5.0", 50 },  { "007%", 70 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct ug_error err = { "" };
		unsigned pm = 12345;
		int r = ug_rollout_parse_percent(ok[i].s, &pm, &err);

		cr_assert_eq(r, 0, "'%s': %d %s", ok[i].s, r, err.msg);
		cr_assert_eq(pm, ok[i].want, "'%s' gave %u", ok[i].s, pm);
	}
}

Test(rollout, parse_percent_rejects)
{
	static const struct { const char *s; const char *msg; } bad[] = {
		{ "", "empty" },
		{ "%", "not a percentage" },
		{ "-10%", "not a percentage" },
		{ "+10", "not a percentage" },
		{ " 10", "not a percentage" },
		{ "10 %", "not a percentage" },
		{ "10%%", "not a percentage" },
		{ "10% ", "not a percentage" },
		{ "101%", "above 100%" },
		{ "100.1", "above 100%" },
		{ "1000", "above 100%" },
		{ "99999999999999999999999", "above 100%" },
		{ "12.55%", "more than one decimal" },
		{ "12.", "digit must follow" },
		{ "12.%", "digit must follow" },
		{ ".5", "not a percentage" },
		{ "1e2", "not a percentage" },
		{ "0x10", "not a percentage" },
		{ "ten", "not a percentage" },
		{ "10\n", "not a percentage" },
		{ "1.2.3", "not a percentage" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ug_error err = { "" };
		unsigned pm = 12345;
		int r = ug_rollout_parse_percent(bad[i].s, &pm, &err);

		cr_assert_eq(r, -EINVAL, "'%s' gave %d", bad[i].s, r);
		cr_assert_eq(pm, 12345, "'%s': ret untouched on failure", bad[i].s);
		cr_assert_not_null(strstr(err.msg, bad[i].msg), "'%s': message '%s' lacks '%s'",
				   bad[i].s, err.msg, bad[i].msg);
	}
	cr_assert_eq(ug_rollout_parse_percent(NULL, &(unsigned){ 0 }, NULL), -EINVAL);
	{
		struct ug_error err = { "" };
		cr_assert_eq(ug_rollout_parse_percent("1\x1b[2J", &(unsigned){ 0 }, &err), -EINVAL);
		cr_assert_null(strchr(err.msg, '\x1b'), "control bytes are not echoed: %s",
			       err.msg);
	}
}

/* ---- buckets ------------------------------------------------------------- */

Test(rollout, bucket_follows_the_formula)
{
	const unsigned char in[] = "upgrid-rollout\0meter-00001\0\0\0\0\0\0\0\x01\x02";
	struct ug_hash h;
	uint64_t w = 0;

	ug_hash_buf(in, sizeof(in) - 1, &h, NULL);
	for (size_t i = 0; i < 8; i++)
		w = (w << 8) | h.b[i];
	cr_assert_eq(ug_rollout_bucket("meter-00001", 0x0102), w % 1000);
}

static unsigned count_included(const struct ug_rollout *r, uint64_t version, bool *in)
{
	unsigned n = 0;

	for (size_t i = 0; i < FLEET; i++) {
		char id[32];
		bool yes;

		fleet_id(i, id);
		yes = ug_rollout_includes(r, id, version, "east");
		if (in)
			in[i] = yes;
		n += yes;
	}
	return n;
}

Test(rollout, raising_the_percentage_only_adds)
{
	static bool at10[FLEET], at50[FLEET];
	struct ug_rollout r = { .permille = 100 };
	unsigned n10, n50;

	n10 = count_included(&r, 7, at10);
	r.permille = 500;
	n50 = count_included(&r, 7, at50);
	for (size_t i = 0; i < FLEET; i++)
		if (at10[i])
			cr_assert(at50[i], "meter-%05zu is in 10%% but not in 50%%", i);
	printf("rollout: 10%% -> %u of %u, 50%% -> %u\n", n10, FLEET, n50);
	cr_assert(n10 >= FLEET * 85 / 1000 && n10 <= FLEET * 115 / 1000, "10%%: %u", n10);
	cr_assert(n50 >= FLEET * 485 / 1000 && n50 <= FLEET * 515 / 1000, "50%%: %u", n50);
}

Test(rollout, nobody_and_everybody)
{
	struct ug_rollout r = { .permille = 0 };

	cr_assert_eq(count_included(&r, 1, NULL), 0);
	r.permille = 1000;
	cr_assert_eq(count_included(&r, 1, NULL), FLEET);
	r.permille = 999;
	cr_assert_geq(count_included(&r, 1, NULL), FLEET * 99 / 100);
	r.permille = 1;
	cr_assert_leq(count_included(&r, 1, NULL), FLEET * 5 / 1000);
	cr_assert_not(ug_rollout_includes(&r, NULL, 1, "east"));
}

/* Each version's 10% is another tenth of the fleet: two independent
 * tenths overlap on about 1%. */
Test(rollout, versions_pick_different_terminals)
{
	static bool a[FLEET], b[FLEET];
	struct ug_rollout r = { .permille = 100 };
	unsigned both = 0;

	count_included(&r, 41, a);
	count_included(&r, 42, b);
	for (size_t i = 0; i < FLEET; i++)
		both += a[i] && b[i];
	printf("rollout: versions 41 and 42 at 10%%: %u of %u in both\n", both, FLEET);
	cr_assert(both >= FLEET * 5 / 1000 && both <= FLEET * 15 / 1000, "overlap %u", both);
}

Test(rollout, group_restriction)
{
	char *groups[] = { "east", "north" };
	struct ug_rollout r = { .permille = 1000, .groups = groups, .ngroups = 2 };

	cr_assert(ug_rollout_includes(&r, "meter-00001", 1, "east"));
	cr_assert(ug_rollout_includes(&r, "meter-00001", 1, "north"));
	cr_assert_not(ug_rollout_includes(&r, "meter-00001", 1, "west"));
	cr_assert_not(ug_rollout_includes(&r, "meter-00001", 1, "eas"));
	cr_assert_not(ug_rollout_includes(&r, "meter-00001", 1, "east2"));
	cr_assert_not(ug_rollout_includes(&r, "meter-00001", 1, NULL), "no group, not inside");

	/* restriction and percentage both apply */
	r.permille = 100;
	r.ngroups = 1;
	{
		unsigned n = count_included(&r, 3, NULL);  /* all as "east" */
		cr_assert(n > FLEET * 8 / 100 && n < FLEET * 12 / 100, "%u", n);
	}
	for (size_t i = 0; i < 500; i++) {
		char id[32];
		fleet_id(i, id);
		cr_assert_not(ug_rollout_includes(&r, id, 3, "north"));
	}
}

Test(rollout, pattern_restriction)
{
	char *patterns[] = { "meter-00*" };
	struct ug_rollout r = { .permille = 1000, .patterns = patterns, .npatterns = 1 };
	unsigned n = count_included(&r, 5, NULL);

	cr_assert_eq(n, 1000, "meter-00000..meter-00999: %u", n);
	cr_assert(ug_rollout_includes(&r, "meter-00042", 5, NULL), "no group needed");
	cr_assert_not(ug_rollout_includes(&r, "meter-01042", 5, NULL));
	cr_assert_not(ug_rollout_includes(&r, "xmeter-00042", 5, NULL));

	/* any one pattern suffices */
	{
		char *two[] = { "meter-00*", "*-0999?" };
		struct ug_rollout r2 = { .permille = 1000, .patterns = two, .npatterns = 2 };
		cr_assert(ug_rollout_includes(&r2, "meter-09990", 5, NULL));
		cr_assert_eq(count_included(&r2, 5, NULL), 1010);
	}

	/* patterns, groups and percentage together */
	{
		char *groups[] = { "east" };
		r.groups = groups;
		r.ngroups = 1;
		r.permille = 500;
		n = count_included(&r, 5, NULL);
		cr_assert(n > 440 && n < 560, "half of 1000: %u", n);
		cr_assert_not(ug_rollout_includes(&r, "meter-00042", 5, "west"));
	}
}

/* ---- validation ---------------------------------------------------------- */

static void expect_check(const struct ug_rollout *r, int want, const char *msg)
{
	struct ug_error err = { "" };
	int got = ug_rollout_check(r, &err);

	cr_assert_eq(got, want, "check gave %d (%s), want %d", got, err.msg, want);
	if (msg)
		cr_assert_not_null(strstr(err.msg, msg), "message '%s' lacks '%s'", err.msg, msg);
}

Test(rollout, check_accepts)
{
	char *groups[64], *patterns[64];
	char longest[UG_ROLLOUT_PATTERN_MAX + 1];
	struct ug_rollout r = { .permille = 1000 };

	expect_check(&r, 0, NULL);
	memset(longest, '*', UG_ROLLOUT_PATTERN_MAX);
	longest[UG_ROLLOUT_PATTERN_MAX] = '\0';
	for (size_t i = 0; i < 64; i++) {
		groups[i] = "g-1.x_y";
		patterns[i] = longest;
	}
	r.groups = groups;
	r.ngroups = 64;
	r.patterns = patterns;
	r.npatterns = 64;
	r.permille = 0;
	expect_check(&r, 0, NULL);
}

Test(rollout, check_rejects)
{
	char *groups[65], *patterns[65];
	char toolong[UG_ROLLOUT_PATTERN_MAX + 2];
	struct ug_rollout r = { .permille = 1001 };

	expect_check(NULL, -EINVAL, "missing");
	expect_check(&r, -EINVAL, "above 1000");
	r.permille = 500;

	for (size_t i = 0; i < 65; i++) {
		groups[i] = "east";
		patterns[i] = "meter-*";
	}
	r.groups = groups;
	r.ngroups = 65;
	expect_check(&r, -E2BIG, "65 groups");
	r.ngroups = 3;
	groups[2] = "we st";
	expect_check(&r, -EINVAL, "groups[2]: name 'we st'");
	groups[2] = "";
	expect_check(&r, -EINVAL, "groups[2]: name is empty");
	groups[2] = NULL;
	expect_check(&r, -EINVAL, "groups[2]");
	groups[2] = "west";
	r.groups = NULL;
	expect_check(&r, -EINVAL, "no list");
	r.groups = groups;
	expect_check(&r, 0, NULL);

	r.patterns = patterns;
	r.npatterns = 65;
	expect_check(&r, -E2BIG, "65 patterns");
	r.npatterns = 2;
	patterns[1] = "";
	expect_check(&r, -EINVAL, "patterns[1] is empty");
	patterns[1] = NULL;
	expect_check(&r, -EINVAL, "patterns[1] is empty");
	patterns[1] = "meter-\t*";
	expect_check(&r, -EINVAL, "patterns[1] has a byte other than printable ASCII");
	patterns[1] = "m\xc3\xa9ter-*";
	expect_check(&r, -EINVAL, "patterns[1] has a byte other than printable ASCII");
	memset(toolong, 'a', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';
	patterns[1] = toolong;
	expect_check(&r, -EINVAL, "longer than 128 bytes");
	patterns[1] = "meter-??";
	r.patterns = NULL;
	expect_check(&r, -EINVAL, "no list");
	r.patterns = patterns;
	expect_check(&r, 0, NULL);
}

/* ---- owned rollouts, operator input, groups ------------------------------ */

Test(rollout, from_args_sorts_dedupes_and_checks)
{
	char *pats[] = { "meter-00*", "a,b", "meter-00*" };
	struct ug_error err = { "" };
	struct ug_rollout *r = NULL, *d;
	char out[256];

	cr_assert_eq(ug_rollout_from_args("12.5%", "g3,g1,g3", pats, 3, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r->permille, 125);
	cr_assert_eq(r->ngroups, 2);
	cr_assert_str_eq(r->groups[0], "g1");
	cr_assert_str_eq(r->groups[1], "g3");
	cr_assert_eq(r->npatterns, 2, "a pattern given twice is kept once");
	cr_assert_str_eq(r->patterns[0], "meter-00*");
	cr_assert_str_eq(r->patterns[1], "a,b", "a pattern may hold a comma");
	ug_rollout_format(r, out, sizeof(out));
	cr_assert_str_eq(out, "12.5% of groups g1,g3 and terminals 'meter-00*','a,b'");

	d = ug_rollout_dup(r);
	cr_assert_not_null(d);
	cr_assert(ug_rollout_equal(r, d));
	cr_assert_neq(d->groups, r->groups, "a deep copy");
	d->permille = 126;
	cr_assert_not(ug_rollout_equal(r, d));
	ug_rollout_free(d);
	cr_assert(ug_rollout_equal(NULL, NULL));
	cr_assert_not(ug_rollout_equal(r, NULL));
	cr_assert_not(ug_rollout_is_everyone(r));
	ug_rollout_free(r);
	ug_rollout_free(NULL);

	/* no percentage: 100%; nothing else: everyone */
	cr_assert_eq(ug_rollout_from_args(NULL, NULL, NULL, 0, &r, &err), 0);
	cr_assert_eq(r->permille, 1000);
	cr_assert(ug_rollout_is_everyone(r));
	ug_rollout_format(r, out, sizeof(out));
	cr_assert_str_eq(out, "everyone");
	ug_rollout_free(r);
	cr_assert_eq(ug_rollout_from_args("50", NULL, pats, 1, &r, &err), 0);
	ug_rollout_format(r, out, sizeof(out));
	cr_assert_str_eq(out, "50% of terminals 'meter-00*'");
	ug_rollout_free(r);
	cr_assert(ug_rollout_is_everyone(NULL));
}

Test(rollout, from_args_rejects)
{
	static const struct { const char *pct, *groups; const char *pat; int rc; const char *msg; }
	bad[] = {
		{ "120%", NULL, NULL, -EINVAL, "above 100%" },
		{ "ten", NULL, NULL, -EINVAL, "not a percentage" },
		{ "10", "g1,,g2", NULL, -EINVAL, "a group name is empty" },
		{ "10", "g1,", NULL, -EINVAL, "a group name is empty" },
		{ "10", "a b", NULL, -EINVAL, "--groups:" },
		{ "10", "g1", "", -EINVAL, "--terminals: a pattern is empty" },
		{ "10", NULL, "bad\x01", -EINVAL, "printable ASCII" },
	};
	char many[64 * 5 + 16];
	size_t at = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *pats[] = { (char *)bad[i].pat };
		struct ug_error err = { "" };
		struct ug_rollout *r = (struct ug_rollout *)0x1;
		int rc = ug_rollout_from_args(bad[i].pct, bad[i].groups, pats, bad[i].pat ? 1 : 0, &r,
					      &err);

		cr_assert_eq(rc, bad[i].rc, "case %zu: %d %s", i, rc, err.msg);
		cr_assert_eq(r, (struct ug_rollout *)0x1, "ret untouched");
		cr_assert_not_null(strstr(err.msg, bad[i].msg), "case %zu: '%s' lacks '%s'", i,
				   err.msg, bad[i].msg);
	}
	for (int i = 0; i < 65; i++)
		at += (size_t)snprintf(many + at, sizeof(many) - at, "%sg%d", i ? "," : "", i);
	{
		struct ug_error err = { "" };
		struct ug_rollout *r = NULL;

		cr_assert_eq(ug_rollout_from_args("10", many, NULL, 0, &r, &err), -E2BIG, "%s", err.msg);
	}
}

Test(rollout, groups_must_be_in_the_chain_list)
{
	static const char text[] = "[group east]\nserver = e1 10.0.0.1 /r\n"
				   "[group west]\nserver = w1 10.0.0.2 /r\n";
	struct ug_cluster *c = NULL;
	struct ug_rollout *r = NULL;
	struct ug_error err = { "" };

	cr_assert_eq(ug_cluster_parse(text, strlen(text), &c, &err), 0, "%s", err.msg);
	cr_assert_eq(ug_rollout_from_args("10", "west", NULL, 0, &r, &err), 0);
	cr_assert_eq(ug_rollout_check_groups(r, c, &err), 0, "%s", err.msg);
	cr_assert_eq(ug_rollout_check_groups(NULL, NULL, &err), 0, "no rollout: nothing to check");
	ug_rollout_free(r);
	cr_assert_eq(ug_rollout_from_args("10", "east,north", NULL, 0, &r, &err), 0);
	cr_assert_eq(ug_rollout_check_groups(r, c, &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "rollout group 'north' is not in the chain list (groups: east, west)"),
			   "%s", err.msg);
	cr_assert_eq(ug_rollout_check_groups(r, NULL, &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "no cluster file"), "%s", err.msg);
	ug_rollout_free(r);
	ug_cluster_free(c);
}

/* ---- rollout documents --------------------------------------------------- */

struct keys {
	struct ug_seckey master, other;
};

static void make_keys(struct keys *k)
{
	cr_assert_eq(ug_key_generate(&k->master), 0);
	cr_assert_eq(ug_key_generate(&k->other), 0);
}

static struct ug_rollout *args(const char *pct, const char *groups)
{
	struct ug_rollout *r = NULL;
	struct ug_error err = { "" };

	cr_assert_eq(ug_rollout_from_args(pct, groups, NULL, 0, &r, &err), 0, "%s", err.msg);
	return r;
}

/* A document for channel/version, written and signed with key k. */
static void make_doc(const struct ug_seckey *k, const char *context, const char *channel,
		     uint64_t version, uint64_t serial, struct ug_rollout *r, char **ret_doc,
		     size_t *ret_len, char **ret_sig, size_t *ret_sig_len)
{
	struct ug_rollout_doc d = { .format = UG_ROLLOUT_DOC_FORMAT, .channel = (char *)channel,
				    .version = version, .serial = serial,
				    .created = 1767225600, .rollout = r };
	struct ug_error err = { "" };

	cr_assert_eq(ug_rollout_doc_write(&d, ret_doc, ret_len, &err), 0, "%s", err.msg);
	cr_assert_eq(ug_sign(k, context, *ret_doc, *ret_len, ret_sig, ret_sig_len), 0);
}

static struct ug_manifest *manifest_of(const char *channel, uint64_t version,
				       struct ug_rollout *r)
{
	struct ug_manifest *m = ug_manifest_new();

	cr_assert_not_null(m);
	m->channel = strdup(channel);
	cr_assert_not_null(m->channel);
	m->version = version;
	m->rollout = r;
	return m;
}

Test(rollout, document_layout_and_round_trip)
{
	struct ug_rollout *r = args("50%", "g1");
	struct ug_rollout_doc d = { .format = 1, .channel = "stable", .version = 42, .serial = 2,
				    .created = 1767225600, .rollout = r };
	struct ug_rollout_doc *p = NULL;
	struct ug_error err = { "" };
	char *doc = NULL;
	size_t len = 0;

	cr_assert_eq(ug_rollout_doc_write(&d, &doc, &len, &err), 0, "%s", err.msg);
	cr_assert_str_eq(doc, "{\"channel\":\"stable\",\"created\":1767225600,\"format\":1,"
			      "\"rollout\":{\"groups\":[\"g1\"],\"permille\":500},\"serial\":2,"
			      "\"version\":42}\n");
	cr_assert_eq(len, strlen(doc));
	cr_assert_eq(ug_rollout_doc_parse(doc, len, "stable", 42, &p, &err), 0, "%s", err.msg);
	cr_assert_str_eq(p->channel, "stable");
	cr_assert_eq(p->version, 42);
	cr_assert_eq(p->serial, 2);
	cr_assert_eq(p->created, 1767225600);
	cr_assert(ug_rollout_equal(p->rollout, r));
	ug_rollout_doc_free(p);
	ug_rollout_doc_free(NULL);
	free(doc);

	/* the writer refuses what the parser would */
	d.serial = 0;
	cr_assert_eq(ug_rollout_doc_write(&d, &doc, &len, &err), -EINVAL);
	d.serial = 1;
	d.channel = "-bad";
	cr_assert_eq(ug_rollout_doc_write(&d, &doc, &len, &err), -EINVAL);
	d.channel = "stable";
	d.rollout = NULL;
	cr_assert_eq(ug_rollout_doc_write(&d, &doc, &len, &err), -EINVAL);
	ug_rollout_free(r);
}

static void expect_doc_fail(const char *doc, int rc, const char *want)
{
	struct ug_rollout_doc *p = (struct ug_rollout_doc *)0x1;
	struct ug_error err = { "" };
	int r = ug_rollout_doc_parse(doc, strlen(doc), "stable", 42, &p, &err);

	cr_assert_eq(r, rc, "'%s': %d %s", doc, r, err.msg);
	cr_assert_eq(p, (struct ug_rollout_doc *)0x1, "ret untouched");
	cr_assert_not_null(strstr(err.msg, want), "'%s': '%s' lacks '%s'", doc, err.msg, want);
}

#define DOC_HEAD "{\"channel\":\"stable\",\"created\":1,\"format\":1,"
Test(rollout, document_parse_is_strict)
{
	expect_doc_fail("", -EBADMSG, "not valid JSON");
	expect_doc_fail("[1]", -EBADMSG, "not a JSON object");
	expect_doc_fail("{\"format\":2}", -EBADMSG, "unsupported format");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":1,\"version\":42,\"x\":0}",
			-EBADMSG, "unknown key 'x'");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":1,\"version\":42,"
			"\"serial\":2}", -EBADMSG, "duplicate");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":1}", -EBADMSG,
			"'version' is missing");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"version\":42}", -EBADMSG,
			"'serial' is missing");
	expect_doc_fail(DOC_HEAD "\"serial\":1,\"version\":42}", -EBADMSG, "'rollout' is missing");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":0,\"version\":42}",
			-EBADMSG, "'serial' 0 is not between 1");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":\"1\",\"version\":42}",
			-EBADMSG, "'serial' is not an integer");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":-5,\"version\":42}",
			-EBADMSG, "'serial' -5");
	expect_doc_fail("{\"channel\":\"stable\",\"created\":-1,\"format\":1,\"rollout\":"
			"{\"permille\":1},\"serial\":1,\"version\":42}", -EBADMSG, "'created'");
	expect_doc_fail("{\"channel\":\"../x\",\"created\":1,\"format\":1,\"rollout\":"
			"{\"permille\":1},\"serial\":1,\"version\":42}", -EBADMSG, "not a channel name");
	/* about another version or channel: a server must not swap them */
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1},\"serial\":1,\"version\":41}",
			-EBADMSG, "is for version 41 of 'stable', not 42 of 'stable'");
	expect_doc_fail("{\"channel\":\"beta\",\"created\":1,\"format\":1,\"rollout\":"
			"{\"permille\":1},\"serial\":1,\"version\":42}", -EBADMSG, "of 'beta'");
	/* the rollout object is checked as in a manifest */
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1,\"waves\":1},\"serial\":1,\"version\":42}",
			-EBADMSG, "unknown key 'waves'");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":2000},\"serial\":1,\"version\":42}",
			-EBADMSG, "not between 0 and 1000");
	expect_doc_fail(DOC_HEAD "\"rollout\":{\"permille\":1,\"groups\":[\"a/b\"]},\"serial\":1,"
			"\"version\":42}", -EBADMSG, "groups[0]");
}

Test(rollout, document_too_large_is_refused_before_parsing)
{
	size_t n = UG_ROLLOUT_DOC_MAX + 1;
	char *big = malloc(n + 1);
	struct ug_rollout_doc *p = NULL;
	struct ug_error err = { "" };
	struct keys k;
	char *sig = NULL;
	size_t sig_len = 0;

	cr_assert_not_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	cr_assert_eq(ug_rollout_doc_parse(big, n, "stable", 42, &p, &err), -E2BIG);
	cr_assert_not_null(strstr(err.msg, "more than the limit of 65536"), "%s", err.msg);
	/* and before the signature is even checked */
	make_keys(&k);
	cr_assert_eq(ug_sign(&k.master, UG_SIGN_CONTEXT_ROLLOUT, big, n, &sig, &sig_len), 0);
	cr_assert_eq(ug_rollout_doc_verify(&k.master.pub, "stable", 42, big, n, sig, sig_len, &p,
					   &err), -E2BIG);
	free(sig);
	free(big);
}

Test(rollout, in_force_prefers_a_valid_document)
{
	struct keys k;
	struct ug_manifest *m;
	struct ug_rollout_doc *d = (struct ug_rollout_doc *)0x1;
	const struct ug_rollout *r = (const struct ug_rollout *)0x1;
	struct ug_error err = { "" };
	struct ug_rollout *doc_r = args("50%", NULL);
	char *doc, *sig;
	size_t len, sig_len;

	make_keys(&k);
	m = manifest_of("stable", 42, args("10%", "g1"));
	/* no document: the manifest's */
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, NULL, 0, NULL, 0, &d, &r, &err), 0);
	cr_assert_null(d);
	cr_assert_eq(r, m->rollout);
	/* a valid document: its own */
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 42, 3, doc_r, &doc, &len, &sig,
		 &sig_len);
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, doc, len, sig, sig_len, &d, &r, &err), 0,
		     "%s", err.msg);
	cr_assert_not_null(d);
	cr_assert_eq(d->serial, 3);
	cr_assert_eq(r, d->rollout);
	cr_assert_eq(r->permille, 500);
	cr_assert_eq(r->ngroups, 0);
	ug_rollout_doc_free(d);
	free(doc);
	free(sig);

	/* a document of 100% lets everyone in even when the manifest did not */
	ug_rollout_free(doc_r);
	doc_r = args("100%", NULL);
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 42, 4, doc_r, &doc, &len, &sig,
		 &sig_len);
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, doc, len, sig, sig_len, &d, &r, &err), 0);
	cr_assert(ug_rollout_includes(r, "anyone", 42, NULL));
	ug_rollout_doc_free(d);
	free(doc);
	free(sig);
	ug_rollout_free(doc_r);

	/* a manifest without a rollout and no document: NULL, everyone */
	ug_rollout_free(m->rollout);
	m->rollout = NULL;
	r = (const struct ug_rollout *)0x1;
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, NULL, 0, NULL, 0, &d, &r, &err), 0);
	cr_assert_null(r);
	cr_assert_null(d);
	/* nowhere to put a document it would parse */
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, "{}", 2, "x", 1, NULL, &r, &err), -EINVAL);
	ug_manifest_free(m);
}

/* Each bad document is an error; the outputs stay untouched, and the
 * caller falls back to the manifest's rollout. */
static void expect_in_force_fail(const struct ug_manifest *m, const struct ug_pubkey *pk,
				 const char *doc, size_t len, const char *sig, size_t sig_len,
				 int rc, const char *want)
{
	struct ug_rollout_doc *d = (struct ug_rollout_doc *)0x1;
	const struct ug_rollout *r = (const struct ug_rollout *)0x1;
	struct ug_error err = { "" };
	int got = ug_rollout_in_force(m, pk, doc, len, sig, sig_len, &d, &r, &err);

	cr_assert_eq(got, rc, "%d %s (want %d)", got, err.msg, rc);
	cr_assert_eq(d, (struct ug_rollout_doc *)0x1);
	cr_assert_eq(r, (const struct ug_rollout *)0x1);
	cr_assert_not_null(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
}

Test(rollout, in_force_refuses_bad_documents)
{
	struct keys k;
	struct ug_manifest *m;
	struct ug_rollout *doc_r = args("50%", NULL);
	char *doc, *sig, *bad;
	size_t len, sig_len;

	make_keys(&k);
	m = manifest_of("stable", 42, args("10%", NULL));
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 42, 1, doc_r, &doc, &len, &sig,
		 &sig_len);

	/* tampered: one byte of the document */
	bad = strdup(doc);
	cr_assert_not_null(bad);
	*strstr(bad, "500") = '9';
	expect_in_force_fail(m, &k.master.pub, bad, len, sig, sig_len, -EKEYREJECTED,
			     "bad signature");
	free(bad);
	/* another key */
	expect_in_force_fail(m, &k.other.pub, doc, len, sig, sig_len, -EKEYREJECTED,
			     "expected key");
	/* no signature */
	expect_in_force_fail(m, &k.master.pub, doc, len, NULL, 0, -EKEYREJECTED, "no signature");
	/* a signature line that is not one */
	expect_in_force_fail(m, &k.master.pub, doc, len, "garbage\n", 8, -EBADMSG, "malformed");
	/* a document signed for another version of the same channel */
	free(doc);
	free(sig);
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 41, 1, doc_r, &doc, &len, &sig,
		 &sig_len);
	expect_in_force_fail(m, &k.master.pub, doc, len, sig, sig_len, -EBADMSG,
			     "is for version 41 of 'stable', not 42");
	free(doc);
	free(sig);
	/* signed by the master, but as a manifest: contexts keep them apart */
	make_doc(&k.master, UG_SIGN_CONTEXT_MANIFEST, "stable", 42, 1, doc_r, &doc, &len, &sig,
		 &sig_len);
	expect_in_force_fail(m, &k.master.pub, doc, len, sig, sig_len, -EKEYREJECTED,
			     "bad signature");
	free(doc);
	free(sig);
	/* signed, but not a valid document (an unknown key) */
	doc = strdup("{\"channel\":\"stable\",\"created\":1,\"format\":1,\"rollout\":{\"permille\":1},"
		     "\"serial\":1,\"version\":42,\"expires\":5}");
	cr_assert_not_null(doc);
	len = strlen(doc);
	cr_assert_eq(ug_sign(&k.master, UG_SIGN_CONTEXT_ROLLOUT, doc, len, &sig, &sig_len), 0);
	expect_in_force_fail(m, &k.master.pub, doc, len, sig, sig_len, -EBADMSG,
			     "unknown key 'expires'");
	free(doc);
	free(sig);
	ug_rollout_free(doc_r);
	ug_manifest_free(m);
}

/* Serials order documents but in_force sees one at a time: an older
 * document still verifies, and its serial is what the caller compares. */
Test(rollout, serials_are_for_the_caller_to_compare)
{
	struct keys k;
	struct ug_manifest *m;
	struct ug_rollout *r1 = args("10%", NULL), *r2 = args("60%", NULL);
	struct ug_rollout_doc *d1 = NULL, *d2 = NULL;
	const struct ug_rollout *r = NULL;
	struct ug_error err = { "" };
	char *doc1, *sig1, *doc2, *sig2;
	size_t l1, s1, l2, s2;

	make_keys(&k);
	m = manifest_of("stable", 42, NULL);
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 42, 1, r1, &doc1, &l1, &sig1, &s1);
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 42, 2, r2, &doc2, &l2, &sig2, &s2);
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, doc2, l2, sig2, s2, &d2, &r, &err), 0);
	cr_assert_eq(ug_rollout_in_force(m, &k.master.pub, doc1, l1, sig1, s1, &d1, &r, &err), 0);
	cr_assert_eq(r->permille, 100, "the older one verifies too");
	cr_assert_gt(d2->serial, d1->serial, "the caller keeps serial 2 and refuses serial 1");
	ug_rollout_doc_free(d1);
	ug_rollout_doc_free(d2);
	free(doc1);
	free(sig1);
	free(doc2);
	free(sig2);
	ug_rollout_free(r1);
	ug_rollout_free(r2);
	ug_manifest_free(m);
}

/* Random damage to a signed document: refused, never a crash. */
Test(rollout, document_survives_random_corruption)
{
	struct keys k;
	struct ug_rollout *ro = NULL;
	struct ug_error err = { "" };
	char *pats[] = { "meter-00*" };
	char *doc, *sig;
	size_t len, sig_len;
	uint32_t seed = 7;

	make_keys(&k);
	cr_assert_eq(ug_rollout_from_args("25%", "g1,g2", pats, 1, &ro, &err), 0);
	make_doc(&k.master, UG_SIGN_CONTEXT_ROLLOUT, "stable", 42, 9, ro, &doc, &len, &sig,
		 &sig_len);
	for (int iter = 0; iter < 2000; iter++) {
		static const char set[] = "[]{}\",:0123456789x\\\x01 ";
		struct ug_rollout_doc *d = NULL;
		char *copy = malloc(len);
		int r;

		cr_assert_not_null(copy);
		memcpy(copy, doc, len);
		for (int j = 0; j < 1 + iter % 3; j++) {
			seed = seed * 1103515245u + 12345u;
			copy[(seed >> 8) % len] = set[(seed >> 24) % (sizeof(set) - 1)];
		}
		/* unsigned: the parser alone must hold */
		r = ug_rollout_doc_parse(copy, len, "stable", 42, &d, &err);
		cr_assert(r == 0 || r == -EBADMSG || r == -E2BIG, "%d %s", r, err.msg);
		ug_rollout_doc_free(d);
		d = NULL;
		r = ug_rollout_doc_verify(&k.master.pub, "stable", 42, copy, len, sig, sig_len, &d,
					  &err);
		cr_assert(r == 0 ? memcmp(copy, doc, len) == 0 : r == -EKEYREJECTED,
			  "only the signed bytes verify (%d %s)", r, err.msg);
		ug_rollout_doc_free(d);
		free(copy);
	}
	free(doc);
	free(sig);
	ug_rollout_free(ro);
}

/* ---- the store's copy ------------------------------------------------------ */

static void store_init(void)
{
	ug_test_tmp_make("rollout");
}

static void store_fini(void)
{
	ug_test_tmp_remove();
}

Test(rollout, store_put_get, .init = store_init, .fini = store_fini)
{
	struct ug_store *s = NULL;
	struct ug_error e = { "" };
	char repo[128], path[192], *doc = NULL, *sig = NULL, *big;
	size_t len = 0, sig_len = 0;

	snprintf(repo, sizeof(repo), "%s/repo", tmpdir);
	cr_assert_eq(ug_store_create(repo, &e), 0, "%s", e.msg);
	cr_assert_eq(ug_store_open(repo, &s, &e), 0, "%s", e.msg);
	/* no channel yet: nothing to attach a document to */
	cr_assert_eq(ug_store_rollout_put(s, "stable", 3, "d\n", 2, "s\n", 2), -ENOENT);
	cr_assert_eq(ug_store_rollout_get(s, "stable", 3, &doc, &len, &sig, &sig_len), -ENOENT);
	cr_assert_eq(ug_store_manifest_put(s, "stable", 3, "{}", 2, "sig", 3), 0);
	cr_assert_eq(ug_store_rollout_get(s, "stable", 3, &doc, &len, &sig, &sig_len), -ENOENT,
		     "a version without a document");
	cr_assert_eq(ug_store_rollout_put(s, "stable", 0, "d\n", 2, "s\n", 2), -EINVAL);
	cr_assert_eq(ug_store_rollout_put(s, "../x", 3, "d\n", 2, "s\n", 2), -EINVAL);

	cr_assert_eq(ug_store_rollout_put(s, "stable", 3, "doc 1\n", 6, "sig 1\n", 6), 0);
	cr_assert_eq(ug_store_rollout_put(s, "stable", 3, "doc 2\n", 6, "sig 2\n", 6), 0,
		     "a newer document replaces the old");
	cr_assert_eq(ug_store_rollout_get(s, "stable", 3, &doc, &len, &sig, &sig_len), 0);
	cr_assert_str_eq(doc, "doc 2\n");
	cr_assert_eq(len, 6);
	cr_assert_str_eq(sig, "sig 2\n");
	cr_assert_eq(sig_len, 6);
	free(doc);
	free(sig);
	doc = NULL;
	/* the signature may be left out */
	cr_assert_eq(ug_store_rollout_get(s, "stable", 3, &doc, &len, NULL, NULL), 0);
	free(doc);
	/* the versions listed are still the manifests' */
	{
		uint64_t *v = NULL;
		size_t n = 0;

		cr_assert_eq(ug_store_versions(s, "stable", &v, &n), 0);
		cr_assert_eq(n, 1);
		cr_assert_eq(v[0], 3);
		free(v);
	}
	/* a document without its signature file */
	snprintf(path, sizeof(path), "%s/manifests/stable/3.rollout.sig", repo);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(ug_store_rollout_get(s, "stable", 3, &doc, &len, &sig, &sig_len), -EKEYREJECTED);
	/* a document over the limit is not read */
	big = calloc(1, UG_ROLLOUT_DOC_MAX + 2);
	cr_assert_not_null(big);
	memset(big, 'x', UG_ROLLOUT_DOC_MAX + 1);
	cr_assert_eq(ug_store_rollout_put(s, "stable", 3, big, UG_ROLLOUT_DOC_MAX + 1, "s", 1), 0);
	cr_assert_eq(ug_store_rollout_get(s, "stable", 3, &doc, &len, &sig, &sig_len), -E2BIG);
	free(big);
	ug_store_free(s);
}
