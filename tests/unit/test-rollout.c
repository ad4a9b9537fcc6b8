/* test-rollout.c - unit tests for src/rollout.c: percentages as written,
 * buckets that only add terminals as a rollout grows, group and pattern
 * restrictions, and the checks a manifest's rollout must pass. */
#include "config.h"

#include <criterion/criterion.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "rollout.h"
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
