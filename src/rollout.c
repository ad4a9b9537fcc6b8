/* rollout.c - staged rollout: percentage parsing, buckets, membership
 * (rollout.h). */
#include "config.h"

#include <fnmatch.h>
#include <sodium.h>
#include <string.h>

#include "cluster.h"
#include "hash.h"
#include "rollout.h"
#include "util.h"

#define ROLLOUT_DOMAIN "upgrid-rollout"

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* The input as it may appear in a message: a message ends up in a log or
 * on a terminal, so bytes that could garble either are not echoed. */
static const char *shown(const char *s)
{
	return printable(s, strlen(s)) ? s : "(unprintable)";
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int ug_rollout_parse_percent(const char *s, unsigned *ret_permille, struct ug_error *err)
{
	const char *p = s;
	unsigned whole = 0, tenths = 0, permille;

	if (!s || !*s)
		return ug_error_set(err, -EINVAL, "rollout percentage is empty");
	if (!is_digit(*p))
		return ug_error_set(err, -EINVAL,
				    "rollout '%.32s' is not a percentage like '10%%' or '12.5%%'",
				    shown(s));
	for (; is_digit(*p); p++) {
		whole = whole * 10 + (unsigned)(*p - '0');
		/* stop before it can overflow; leading zeros never get here */
		if (whole > 100)
			return ug_error_set(err, -EINVAL, "rollout '%.32s' is above 100%%",
					    shown(s));
	}
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return ug_error_set(err, -EINVAL,
					    "rollout '%.32s': a digit must follow the '.'", shown(s));
		tenths = (unsigned)(*p - '0');
		p++;
		if (is_digit(*p))
			return ug_error_set(err, -EINVAL,
					    "rollout '%.32s' has more than one decimal", shown(s));
	}
	if (*p == '%')
		p++;
	if (*p)
		return ug_error_set(err, -EINVAL,
				    "rollout '%.32s' is not a percentage like '10%%' or '12.5%%'",
				    shown(s));
	permille = whole * 10 + tenths;
	if (permille > UG_ROLLOUT_PERMILLE_ALL)
		return ug_error_set(err, -EINVAL, "rollout '%.32s' is above 100%%", shown(s));
	*ret_permille = permille;
	return 0;
}

unsigned ug_rollout_bucket(const char *terminal_id, uint64_t version)
{
	static const unsigned char zero = 0;
	crypto_generichash_state st;
	unsigned char v[8], d[UG_HASH_LEN];
	uint64_t w = 0;

	for (size_t i = 0; i < 8; i++)
		v[i] = (unsigned char)(version >> (56 - 8 * i));
	crypto_generichash_init(&st, NULL, 0, UG_HASH_LEN);
	crypto_generichash_update(&st, (const unsigned char *)ROLLOUT_DOMAIN,
				  sizeof(ROLLOUT_DOMAIN) - 1);
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)terminal_id, strlen(terminal_id));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, v, sizeof(v));
	crypto_generichash_final(&st, d, sizeof(d));
	for (size_t i = 0; i < 8; i++)
		w = (w << 8) | d[i];
	return (unsigned)(w % UG_ROLLOUT_PERMILLE_ALL);
}

static bool in_groups(const struct ug_rollout *r, const char *group)
{
	if (r->ngroups == 0 || !r->groups)
		return true;
	if (!group)
		return false;
	for (size_t i = 0; i < r->ngroups; i++)
		if (r->groups[i] && strcmp(r->groups[i], group) == 0)
			return true;
	return false;
}

static bool matches_patterns(const struct ug_rollout *r, const char *id)
{
	if (r->npatterns == 0 || !r->patterns)
		return true;
	for (size_t i = 0; i < r->npatterns; i++)
		if (r->patterns[i] && fnmatch(r->patterns[i], id, 0) == 0)
			return true;
	return false;
}

bool ug_rollout_includes(const struct ug_rollout *r, const char *terminal_id,
			 uint64_t version, const char *group)
{
	if (!r || !terminal_id)
		return false;
	if (!in_groups(r, group) || !matches_patterns(r, terminal_id))
		return false;
	/* buckets are below 1000, so permille >= 1000 needs no hash */
	if (r->permille >= UG_ROLLOUT_PERMILLE_ALL)
		return true;
	return ug_rollout_bucket(terminal_id, version) < r->permille;
}

int ug_rollout_check(const struct ug_rollout *r, struct ug_error *err)
{
	struct ug_error sub;
	int ret;

	if (!r)
		return ug_error_set(err, -EINVAL, "rollout is missing");
	if (r->permille > UG_ROLLOUT_PERMILLE_ALL)
		return ug_error_set(err, -EINVAL, "rollout: %u per mille is above 1000 (100%%)",
				    r->permille);

	if (r->ngroups > UG_ROLLOUT_GROUPS_MAX)
		return ug_error_set(err, -E2BIG, "rollout: %zu groups, more than %u", r->ngroups,
				    UG_ROLLOUT_GROUPS_MAX);
	if (r->ngroups && !r->groups)
		return ug_error_set(err, -EINVAL, "rollout: %zu groups but no list", r->ngroups);
	for (size_t i = 0; i < r->ngroups; i++)
		if ((ret = ug_cluster_name_check(r->groups[i], &sub)) < 0)
			return ug_error_set(err, ret, "rollout groups[%zu]: %s", i, sub.msg);

	if (r->npatterns > UG_ROLLOUT_PATTERNS_MAX)
		return ug_error_set(err, -E2BIG, "rollout: %zu patterns, more than %u",
				    r->npatterns, UG_ROLLOUT_PATTERNS_MAX);
	if (r->npatterns && !r->patterns)
		return ug_error_set(err, -EINVAL, "rollout: %zu patterns but no list",
				    r->npatterns);
	for (size_t i = 0; i < r->npatterns; i++) {
		const char *p = r->patterns[i];
		size_t n;

		if (!p || !*p)
			return ug_error_set(err, -EINVAL, "rollout patterns[%zu] is empty", i);
		n = strnlen(p, UG_ROLLOUT_PATTERN_MAX + 1);
		if (n > UG_ROLLOUT_PATTERN_MAX)
			return ug_error_set(err, -EINVAL,
					    "rollout patterns[%zu] '%.16s...' is longer than %u bytes",
					    i, shown(p), UG_ROLLOUT_PATTERN_MAX);
		if (!printable(p, n))
			return ug_error_set(err, -EINVAL,
					    "rollout patterns[%zu] has a byte other than printable ASCII",
					    i);
	}
	return 0;
}
