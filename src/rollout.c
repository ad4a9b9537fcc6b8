/* rollout.c - staged rollout: percentage parsing, buckets, membership,
 * the rollout object's JSON and the signed rollout document (rollout.h). */
#include "config.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "hash.h"
#include "manifest.h"
#include "rollout.h"
#include "sign.h"
#include "util.h"

/* Largest value a JSON integer (json_int_t, int64) can carry. */
#define JSON_INT_MAX ((uint64_t)INT64_MAX)
/* 9999-12-31T23:59:59Z, as manifest.c bounds its times: ug_time_format
 * spells anything up to it. */
#define CREATED_MAX INT64_C(253402300799)

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

/* ---- owned rollouts ------------------------------------------------------ */

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void ug_rollout_free(struct ug_rollout *r)
{
	if (!r)
		return;
	strv_free(r->groups, r->ngroups);
	strv_free(r->patterns, r->npatterns);
	free(r);
}

/* A copy of n strings (NULL for n == 0). */
static int strv_dup(char *const *v, size_t n, char ***ret)
{
	char **d;

	*ret = NULL;
	if (n == 0)
		return 0;
	d = calloc(n, sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		d[i] = strdup(v[i] ? v[i] : "");
		if (!d[i]) {
			strv_free(d, i);
			return -ENOMEM;
		}
	}
	*ret = d;
	return 0;
}

struct ug_rollout *ug_rollout_dup(const struct ug_rollout *r)
{
	struct ug_rollout *d;

	if (!r || !(d = calloc(1, sizeof(*d))))
		return NULL;
	d->permille = r->permille;
	if (strv_dup(r->groups, r->groups ? r->ngroups : 0, &d->groups) < 0) {
		free(d);
		return NULL;
	}
	d->ngroups = d->groups ? r->ngroups : 0;
	if (strv_dup(r->patterns, r->patterns ? r->npatterns : 0, &d->patterns) < 0) {
		ug_rollout_free(d);
		return NULL;
	}
	d->npatterns = d->patterns ? r->npatterns : 0;
	return d;
}

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i] ? a[i] : "", b[i] ? b[i] : "") != 0)
			return false;
	return true;
}

bool ug_rollout_equal(const struct ug_rollout *a, const struct ug_rollout *b)
{
	if (!a || !b)
		return a == b;
	return a->permille == b->permille &&
	       strv_equal(a->groups, a->groups ? a->ngroups : 0, b->groups,
			  b->groups ? b->ngroups : 0) &&
	       strv_equal(a->patterns, a->patterns ? a->npatterns : 0, b->patterns,
			  b->patterns ? b->npatterns : 0);
}

bool ug_rollout_is_everyone(const struct ug_rollout *r)
{
	return !r || (r->permille >= UG_ROLLOUT_PERMILLE_ALL && (r->ngroups == 0 || !r->groups) &&
		      (r->npatterns == 0 || !r->patterns));
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append a copy of s to v unless it is there already. */
static int strv_add_unique(char ***v, size_t *n, const char *s, size_t len)
{
	char *d;

	for (size_t i = 0; i < *n; i++)
		if (strlen((*v)[i]) == len && memcmp((*v)[i], s, len) == 0)
			return 0;
	d = strndup(s, len);
	if (!d)
		return -ENOMEM;
	(*v)[(*n)++] = d;
	return 0;
}

int ug_rollout_from_args(const char *percent, const char *groups, char *const *patterns,
			 size_t npatterns, struct ug_rollout **ret, struct ug_error *err)
{
	struct ug_rollout *r;
	struct ug_error e = { "" };
	unsigned pm = UG_ROLLOUT_PERMILLE_ALL;
	size_t ng = 0;
	int rc;

	if (percent && (rc = ug_rollout_parse_percent(percent, &pm, err)) < 0)
		return rc;
	if (npatterns > UG_ROLLOUT_PATTERNS_MAX)
		return ug_error_set(err, -E2BIG, "--terminals: %zu patterns, more than %u", npatterns,
				    UG_ROLLOUT_PATTERNS_MAX);
	if (groups && *groups) {
		ng = 1;
		for (const char *c = groups; *c; c++)
			ng += *c == ',';
		if (ng > UG_ROLLOUT_GROUPS_MAX)
			return ug_error_set(err, -E2BIG, "--groups: %zu groups, more than %u", ng,
					    UG_ROLLOUT_GROUPS_MAX);
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->permille = pm;
	/* +1: calloc(0) may return NULL */
	r->groups = calloc(ng + 1, sizeof(*r->groups));
	r->patterns = calloc(npatterns + 1, sizeof(*r->patterns));
	if (!r->groups || !r->patterns) {
		rc = -ENOMEM;
		goto fail;
	}
	for (const char *c = groups; ng && c;) {
		const char *comma = strchr(c, ',');
		size_t len = comma ? (size_t)(comma - c) : strlen(c);
		char name[UG_SERVER_NAME_MAX + 1];

		if (len == 0) {
			rc = ug_error_set(err, -EINVAL, "--groups '%.64s': a group name is empty%s",
					  shown(groups), comma ? " (two commas in a row?)" : "");
			goto fail;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) ? len : sizeof(name) - 1),
			 c);
		if (len >= sizeof(name) || ug_cluster_name_check(name, &e) < 0) {
			rc = ug_error_set(err, -EINVAL, "--groups: %s",
					  len >= sizeof(name) ? "a group name is longer than 64 bytes" : e.msg);
			goto fail;
		}
		if ((rc = strv_add_unique(&r->groups, &r->ngroups, c, len)) < 0)
			goto fail;
		c = comma ? comma + 1 : NULL;
	}
	qsort(r->groups, r->ngroups, sizeof(*r->groups), strp_cmp);
	for (size_t i = 0; i < npatterns; i++) {
		if (!patterns[i] || !*patterns[i]) {
			rc = ug_error_set(err, -EINVAL, "--terminals: a pattern is empty");
			goto fail;
		}
		if ((rc = strv_add_unique(&r->patterns, &r->npatterns, patterns[i],
					  strlen(patterns[i]))) < 0)
			goto fail;
	}
	if ((rc = ug_rollout_check(r, &e)) < 0) {
		rc = ug_error_set(err, rc, "%s", e.msg);
		goto fail;
	}
	*ret = r;
	return 0;
fail:
	if (rc == -ENOMEM)
		ug_error_set(err, rc, "out of memory");
	ug_rollout_free(r);
	return rc;
}

int ug_rollout_check_groups(const struct ug_rollout *r, const struct ug_cluster *chains,
			    struct ug_error *err)
{
	for (size_t i = 0; r && r->groups && i < r->ngroups; i++) {
		char known[256] = "";
		size_t g, at = 0;

		if (!chains)
			return ug_error_set(err, -EINVAL,
					    "rollout group '%s' cannot be used: the repo has no "
					    "cluster file, so versions carry no chain list and no "
					    "terminal belongs to a group (see upgrid.conf(5), CLUSTER "
					    "FILE)", shown(r->groups[i]));
		for (g = 0; g < chains->ngroups; g++)
			if (strcmp(chains->groups[g].name, r->groups[i]) == 0)
				break;
		if (g < chains->ngroups)
			continue;
		for (g = 0; g < chains->ngroups && at < sizeof(known); g++) {
			int n = snprintf(known + at, sizeof(known) - at, "%s%s", g ? ", " : "",
					 chains->groups[g].name);
			at += n > 0 ? (size_t)n : 0;
		}
		if (at >= sizeof(known))
			memcpy(known + sizeof(known) - 4, "...", 4);
		return ug_error_set(err, -EINVAL,
				    "rollout group '%s' is not in the chain list (groups: %s); "
				    "name groups of the repo's cluster file",
				    shown(r->groups[i]), chains->ngroups ? known : "none");
	}
	return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

static json_t *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

struct json_t *ug_rollout_json(const struct ug_rollout *r)
{
	json_t *o;

	if (!r)
		return NULL;
	/* keys in sorted order even for a dump that keeps insertion order */
	o = json_object();
	if (o && r->groups && r->ngroups &&
	    json_object_set_new(o, "groups", strv_json(r->groups, r->ngroups)) < 0)
		goto fail;
	if (o && json_object_set_new(o, "permille", json_integer((json_int_t)r->permille)) < 0)
		goto fail;
	if (o && r->patterns && r->npatterns &&
	    json_object_set_new(o, "terminals", strv_json(r->patterns, r->npatterns)) < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* An array of at most max strings of at most len_max bytes each, copied. */
static int get_strv(json_t *o, const char *where, const char *key, size_t max, size_t len_max,
		    char ***ret, size_t *ret_n, struct ug_error *err)
{
	json_t *a = json_object_get(o, key);
	char **v;
	size_t n;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return ug_error_set(err, -EBADMSG, "%s.%s: expected an array", where, key);
	n = json_array_size(a);
	if (n > max)
		return ug_error_set(err, -E2BIG, "%s.%s: %zu entries, more than the limit of %zu",
				    where, key, n, max);
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*ret = v;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);

		if (!json_is_string(e))
			return ug_error_set(err, -EBADMSG, "%s.%s[%zu]: expected a string", where, key, i);
		/* bounded before it is copied */
		if (json_string_length(e) > len_max)
			return ug_error_set(err, -EBADMSG, "%s.%s[%zu]: longer than %zu bytes", where,
					    key, i, len_max);
		if (strlen(json_string_value(e)) != json_string_length(e))
			return ug_error_set(err, -EBADMSG, "%s.%s[%zu]: contains a NUL byte", where, key, i);
		if (!(v[i] = strdup(json_string_value(e))))
			return -ENOMEM;
		(*ret_n)++;
	}
	return 0;
}

int ug_rollout_from_json(struct json_t *o, const char *where, struct ug_rollout **ret,
			 struct ug_error *err)
{
	struct ug_rollout *r;
	struct ug_error e = { "" };
	const char *key;
	json_t *v;
	json_int_t pm;
	int rc;

	if (!where)
		where = "rollout";
	if (!json_is_object(o))
		return ug_error_set(err, -EBADMSG, "%s: expected an object", where);
	json_object_foreach(o, key, v) {
		if (strcmp(key, "permille") != 0 && strcmp(key, "groups") != 0 &&
		    strcmp(key, "terminals") != 0)
			return ug_error_set(err, -EBADMSG,
					    "%s: unknown key '%.32s' (a restriction this upgrid does "
					    "not know; upgrade it)", where, shown(key));
	}
	v = json_object_get(o, "permille");
	if (!v)
		return ug_error_set(err, -EBADMSG, "%s.permille: missing", where);
	if (!json_is_integer(v))
		return ug_error_set(err, -EBADMSG, "%s.permille: expected an integer", where);
	pm = json_integer_value(v);
	if (pm < 0 || pm > UG_ROLLOUT_PERMILLE_ALL)
		return ug_error_set(err, -EBADMSG, "%s.permille: %" JSON_INTEGER_FORMAT
				    " is not between 0 and 1000", where, pm);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->permille = (unsigned)pm;
	/* groups are checked by ug_rollout_check; the length bound here only
	 * keeps a hostile string from being copied */
	rc = get_strv(o, where, "groups", UG_ROLLOUT_GROUPS_MAX, UG_SERVER_NAME_MAX, &r->groups,
		      &r->ngroups, err);
	if (rc == 0)
		rc = get_strv(o, where, "terminals", UG_ROLLOUT_PATTERNS_MAX, UG_ROLLOUT_PATTERN_MAX,
			      &r->patterns, &r->npatterns, err);
	if (rc == 0 && (rc = ug_rollout_check(r, &e)) < 0)
		/* the message names the field already ("rollout groups[2]: ...") */
		rc = ug_error_set(err, rc == -E2BIG ? rc : -EBADMSG, "%s", e.msg);
	if (rc < 0) {
		if (rc == -ENOMEM)
			ug_error_set(err, rc, "out of memory reading %s", where);
		ug_rollout_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

/* ---- for people ----------------------------------------------------------- */

static void percent_format(unsigned pm, char out[16])
{
	if (pm % 10)
		snprintf(out, 16, "%u.%u%%", pm / 10, pm % 10);
	else
		snprintf(out, 16, "%u%%", pm / 10);
}

void ug_rollout_format(const struct ug_rollout *r, char *out, size_t out_size)
{
	char pct[16];
	size_t at = 0;
	int n;

	if (!out || out_size == 0)
		return;
	out[0] = '\0';
	if (!r || ug_rollout_is_everyone(r)) {
		snprintf(out, out_size, "everyone");
		return;
	}
	percent_format(r->permille > UG_ROLLOUT_PERMILLE_ALL ? UG_ROLLOUT_PERMILLE_ALL : r->permille,
		       pct);
	n = snprintf(out, out_size, "%s", pct);
	at = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; r->groups && i < r->ngroups && at < out_size; i++) {
		n = snprintf(out + at, out_size - at, "%s%s", i ? "," : " of groups ",
			     shown(r->groups[i]));
		at += n > 0 ? (size_t)n : 0;
	}
	for (size_t i = 0; r->patterns && i < r->npatterns && at < out_size; i++) {
		const char *lead = i ? "," : r->groups && r->ngroups ? " and terminals " :
			" of terminals ";

		n = snprintf(out + at, out_size - at, "%s'%s'", lead, shown(r->patterns[i]));
		at += n > 0 ? (size_t)n : 0;
	}
	if (at >= out_size && out_size >= 4)
		memcpy(out + out_size - 4, "...", 4);
}

/* ---- rollout documents ---------------------------------------------------- */

void ug_rollout_doc_free(struct ug_rollout_doc *d)
{
	if (!d)
		return;
	free(d->channel);
	ug_rollout_free(d->rollout);
	free(d);
}

static int doc_check(const struct ug_rollout_doc *d, struct ug_error *err)
{
	struct ug_error e = { "" };
	int r;

	if (!d)
		return ug_error_set(err, -EINVAL, "no rollout document");
	if (d->format != UG_ROLLOUT_DOC_FORMAT)
		return ug_error_set(err, -EINVAL, "rollout document format %u is not %u", d->format,
				    UG_ROLLOUT_DOC_FORMAT);
	if (ug_channel_check(d->channel, &e) < 0)
		return ug_error_set(err, -EINVAL, "rollout document channel: %s", e.msg);
	if (d->version < 1 || d->version > JSON_INT_MAX)
		return ug_error_set(err, -EINVAL, "rollout document version %" PRIu64 " is out of range",
				    d->version);
	if (d->serial < 1 || d->serial > JSON_INT_MAX)
		return ug_error_set(err, -EINVAL, "rollout document serial %" PRIu64 " is out of range",
				    d->serial);
	if (d->created < 0 || d->created > CREATED_MAX)
		return ug_error_set(err, -EINVAL, "rollout document time %" PRId64 " is out of range",
				    d->created);
	if ((r = ug_rollout_check(d->rollout, &e)) < 0)
		return ug_error_set(err, r, "%s", e.msg);
	return 0;
}

int ug_rollout_doc_write(const struct ug_rollout_doc *d, char **ret, size_t *ret_len,
			 struct ug_error *err)
{
	json_t *o;
	char *s, *line;
	size_t n;
	int r = doc_check(d, err);

	if (r < 0)
		return r;
	o = json_pack("{s:s, s:I, s:i, s:o, s:I, s:I}",
		      "channel", d->channel,
		      "created", (json_int_t)d->created,
		      "format", (int)d->format,
		      "rollout", ug_rollout_json(d->rollout),
		      "serial", (json_int_t)d->serial,
		      "version", (json_int_t)d->version);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (!s)
		return ug_error_set(err, -ENOMEM, "out of memory writing the rollout document");
	n = strlen(s);
	if (n + 1 > UG_ROLLOUT_DOC_MAX) {
		free(s);
		return ug_error_set(err, -E2BIG, "rollout document is larger than %u bytes",
				    UG_ROLLOUT_DOC_MAX);
	}
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return ug_error_set(err, -ENOMEM, "out of memory writing the rollout document");
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*ret = line;
	if (ret_len)
		*ret_len = n + 1;
	return 0;
}

static int doc_u64(json_t *root, const char *key, uint64_t min, uint64_t max, uint64_t *ret,
		   struct ug_error *err)
{
	json_t *v = json_object_get(root, key);
	json_int_t i;

	if (!v)
		return ug_error_set(err, -EBADMSG, "rollout document: '%s' is missing", key);
	if (!json_is_integer(v))
		return ug_error_set(err, -EBADMSG, "rollout document: '%s' is not an integer", key);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return ug_error_set(err, -EBADMSG, "rollout document: '%s' %" JSON_INTEGER_FORMAT
				    " is not between %" PRIu64 " and %" PRIu64, key, i, min, max);
	*ret = (uint64_t)i;
	return 0;
}

static int doc_decode(json_t *root, const char *channel, uint64_t version,
		      struct ug_rollout_doc *d, struct ug_error *err)
{
	static const char *const keys[] = { "channel", "created", "format", "rollout", "serial",
					    "version" };
	const char *key, *ch;
	json_t *v;
	uint64_t u;
	int r;

	if (!json_is_object(root))
		return ug_error_set(err, -EBADMSG, "rollout document is not a JSON object");
	/* the format first: a newer document may differ in any other way */
	v = json_object_get(root, "format");
	if (!json_is_integer(v) || json_integer_value(v) != UG_ROLLOUT_DOC_FORMAT)
		return ug_error_set(err, -EBADMSG,
				    "rollout document: unsupported format (this upgrid reads format %u)",
				    UG_ROLLOUT_DOC_FORMAT);
	d->format = UG_ROLLOUT_DOC_FORMAT;
	json_object_foreach(root, key, v) {
		size_t i;

		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(key, keys[i]) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0]))
			return ug_error_set(err, -EBADMSG, "rollout document: unknown key '%.32s'",
					    shown(key));
	}
	v = json_object_get(root, "channel");
	if (!v)
		return ug_error_set(err, -EBADMSG, "rollout document: 'channel' is missing");
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    ug_channel_check(json_string_value(v), NULL) < 0)
		return ug_error_set(err, -EBADMSG, "rollout document: 'channel' is not a channel name");
	ch = json_string_value(v);
	if ((r = doc_u64(root, "version", 1, JSON_INT_MAX, &d->version, err)) < 0 ||
	    (r = doc_u64(root, "serial", 1, JSON_INT_MAX, &d->serial, err)) < 0 ||
	    (r = doc_u64(root, "created", 0, (uint64_t)CREATED_MAX, &u, err)) < 0)
		return r;
	d->created = (int64_t)u;
	/* a server must not pass one version's document off as another's */
	if (strcmp(ch, channel) != 0 || d->version != version)
		return ug_error_set(err, -EBADMSG,
				    "rollout document is for version %" PRIu64 " of '%s', not %" PRIu64
				    " of '%s'", d->version, ch, version, channel);
	if (!(d->channel = strdup(ch)))
		return -ENOMEM;
	v = json_object_get(root, "rollout");
	if (!v)
		return ug_error_set(err, -EBADMSG, "rollout document: 'rollout' is missing");
	return ug_rollout_from_json(v, "rollout document: rollout", &d->rollout, err);
}

int ug_rollout_doc_parse(const char *json, size_t len, const char *channel,
			 uint64_t version, struct ug_rollout_doc **ret,
			 struct ug_error *err)
{
	struct ug_rollout_doc *d;
	json_error_t jerr;
	json_t *root;
	int r;

	/* before looking at a single byte */
	if (len > UG_ROLLOUT_DOC_MAX)
		return ug_error_set(err, -E2BIG,
				    "rollout document is %zu bytes, more than the limit of %u", len,
				    UG_ROLLOUT_DOC_MAX);
	if (!json || !channel)
		return ug_error_set(err, -EINVAL, "no rollout document or channel");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return ug_error_set(err, -EBADMSG,
				    "rollout document is not valid JSON: line %d, column %d: %s",
				    jerr.line, jerr.column, jerr.text);
	d = calloc(1, sizeof(*d));
	r = d ? doc_decode(root, channel, version, d, err) : -ENOMEM;
	json_decref(root);
	if (r == -ENOMEM)
		ug_error_set(err, r, "out of memory reading the rollout document");
	if (r < 0) {
		ug_rollout_doc_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

int ug_rollout_doc_verify(const struct ug_pubkey *key, const char *channel, uint64_t version,
			  const char *json, size_t len, const char *sig, size_t sig_len,
			  struct ug_rollout_doc **ret, struct ug_error *err)
{
	struct ug_error e = { "" };
	int r;

	if (!sig)
		return ug_error_set(err, -EKEYREJECTED,
				    "rollout document of version %" PRIu64 " of '%s' has no signature",
				    version, channel ? channel : "");
	if (!json)
		return ug_error_set(err, -EINVAL, "no rollout document");
	if (len > UG_ROLLOUT_DOC_MAX)
		return ug_error_set(err, -E2BIG,
				    "rollout document is %zu bytes, more than the limit of %u", len,
				    UG_ROLLOUT_DOC_MAX);
	/* the signature over the exact bytes first: nothing unsigned is parsed */
	r = ug_sign_verify(key, UG_SIGN_CONTEXT_ROLLOUT, json, len, sig, sig_len, &e);
	if (r == -EINVAL)
		r = -EKEYREJECTED;
	if (r < 0)
		return ug_error_set(err, r, "rollout document of version %" PRIu64 " of '%s': %s",
				    version, channel ? channel : "", e.msg);
	return ug_rollout_doc_parse(json, len, channel, version, ret, err);
}

int ug_rollout_in_force(const struct ug_manifest *m, const struct ug_pubkey *key,
			const char *doc, size_t doc_len, const char *sig, size_t sig_len,
			struct ug_rollout_doc **ret_doc, const struct ug_rollout **ret,
			struct ug_error *err)
{
	struct ug_rollout_doc *d = NULL;
	int r;

	if (!m || !m->channel || !ret || (doc && !ret_doc))
		return ug_error_set(err, -EINVAL, "no manifest, or nowhere to return the rollout");
	if (doc) {
		r = ug_rollout_doc_verify(key, m->channel, m->version, doc, doc_len, sig, sig_len,
					  &d, err);
		if (r < 0)
			return r;
	}
	if (ret_doc)
		*ret_doc = d;
	*ret = d ? d->rollout : m->rollout;
	return 0;
}
