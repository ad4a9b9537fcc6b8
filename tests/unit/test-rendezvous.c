/* test-rendezvous.c - unit tests for src/rendezvous.c: how a fleet of
 * terminals spreads over a cluster, what moves when a server goes, and
 * the order a terminal walks the servers in. */
#include "config.h"

#include <criterion/criterion.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "hash.h"
#include "rendezvous.h"
#include "util.h"

#define FLEET   10000u
#define GROUPS  4u
#define PER     16u

/* A cluster of ngroups groups "g<i>" with per servers "s<i>-<j>" each,
 * leaving out server skip_j of group skip_g (skip_g >= ngroups: none). Built
 * through the real parser, as a terminal would get it. */
static struct ug_cluster *make_cluster(size_t ngroups, size_t per, size_t skip_g, size_t skip_j)
{
	size_t cap = ngroups * (32 + per * 64) + 1, len = 0;
	char *text = malloc(cap);
	struct ug_cluster *c = NULL;
	struct ug_error err = { "" };
	int r;

	cr_assert_not_null(text);
	text[0] = '\0';
	for (size_t g = 0; g < ngroups; g++) {
		len += (size_t)snprintf(text + len, cap - len, "[group g%zu]\n", g);
		for (size_t j = 0; j < per; j++) {
			if (g == skip_g && j == skip_j)
				continue;
			len += (size_t)snprintf(text + len, cap - len,
						"server = s%zu-%zu 10.%zu.0.%zu /srv/upgrid\n", g, j, g,
						j + 1);
		}
		cr_assert_lt(len, cap);
	}
	r = ug_cluster_parse(text, len, &c, &err);
	cr_assert_eq(r, 0, "parse: %d %s", r, err.msg);
	cr_assert_eq(ug_cluster_check(c, "chains", NULL), 0);
	free(text);
	return c;
}

static void fleet_id(size_t i, char out[32])
{
	snprintf(out, 32, "meter-%05zu", i);
}

static struct ug_rdv_pick *order_ok(const struct ug_cluster *c, const char *id, size_t *ret_n)
{
	struct ug_rdv_pick *p = NULL;
	size_t n = 0;
	int r = ug_rendezvous_order(c, id, &p, &n);

	cr_assert_eq(r, 0, "order for '%s': %d", id, r);
	cr_assert_not_null(p);
	*ret_n = n;
	return p;
}

static struct ug_rdv_pick first_pick(const struct ug_cluster *c, const char *id)
{
	size_t n;
	struct ug_rdv_pick *p = order_ok(c, id, &n);
	struct ug_rdv_pick first = p[0];

	free(p);
	return first;
}

static const char *pick_name(const struct ug_cluster *c, struct ug_rdv_pick p)
{
	return c->groups[p.group].servers[p.pos].name;
}

/* Every server exactly once; each group's servers contiguous, starting at
 * the highest-weight server and following the chain. */
static void assert_order_valid(const struct ug_cluster *c, const char *id,
			       const struct ug_rdv_pick *p, size_t n)
{
	size_t total = 0, i = 0;
	bool seen[UG_GROUPS_MAX][UG_GROUP_SERVERS_MAX];
	bool group_seen[UG_GROUPS_MAX];
	uint64_t prev_gw = UINT64_MAX;

	memset(seen, 0, sizeof(seen));
	memset(group_seen, 0, sizeof(group_seen));
	for (size_t g = 0; g < c->ngroups; g++)
		total += c->groups[g].nservers;
	cr_assert_eq(n, total, "'%s': %zu picks for %zu servers", id, n, total);

	while (i < n) {
		size_t g = p[i].group;
		const struct ug_group *grp = &c->groups[g];
		uint64_t gw = ug_rendezvous_group_weight(id, grp->name);
		uint64_t best = 0;
		size_t start = 0;

		cr_assert_lt(g, c->ngroups);
		cr_assert_not(group_seen[g], "'%s': group %zu appears twice", id, g);
		group_seen[g] = true;
		cr_assert_leq(gw, prev_gw, "'%s': groups not by descending weight", id);
		prev_gw = gw;
		for (size_t s = 0; s < grp->nservers; s++) {
			uint64_t w = ug_rendezvous_server_weight(id, grp->name,
								 grp->servers[s].name);
			if (s == 0 || w > best) {
				best = w;
				start = s;
			}
		}
		for (size_t k = 0; k < grp->nservers; k++, i++) {
			cr_assert_lt(i, n);
			cr_assert_eq(p[i].group, g, "'%s': group %zu not contiguous", id, g);
			cr_assert_eq(p[i].pos, (start + k) % grp->nservers,
				     "'%s': group %zu pick %zu not in chain order from %zu", id, g, k,
				     start);
			cr_assert_not(seen[g][p[i].pos]);
			seen[g][p[i].pos] = true;
		}
	}
}

TestSuite(rendezvous);

/* The spec's requirement: 10,000 terminals over 4 x 16 servers, the most
 * loaded server at most 1.25x the mean; and each group about a quarter. */
Test(rendezvous, fleet_spreads_evenly)
{
	struct ug_cluster *c = make_cluster(GROUPS, PER, SIZE_MAX, 0);
	unsigned load[GROUPS][PER], per_group[GROUPS];
	unsigned max = 0, min = UINT32_MAX;
	double mean = (double)FLEET / (GROUPS * PER);

	memset(load, 0, sizeof(load));
	memset(per_group, 0, sizeof(per_group));
	for (size_t i = 0; i < FLEET; i++) {
		char id[32];
		struct ug_rdv_pick p;

		fleet_id(i, id);
		p = first_pick(c, id);
		load[p.group][p.pos]++;
		per_group[p.group]++;
	}
	for (size_t g = 0; g < GROUPS; g++)
		for (size_t j = 0; j < PER; j++) {
			max = load[g][j] > max ? load[g][j] : max;
			min = load[g][j] < min ? load[g][j] : min;
		}
	printf("rendezvous: %u terminals over %u servers: mean %.2f, max %u (%.3fx mean), "
	       "min %u (%.3fx); groups %u %u %u %u\n",
	       FLEET, GROUPS * PER, mean, max, max / mean, min, min / mean, per_group[0],
	       per_group[1], per_group[2], per_group[3]);
	cr_assert_leq((double)max, 1.25 * mean, "most loaded server has %u, %.3fx the mean", max,
		      max / mean);
	cr_assert_gt(min, 0u, "a server got no terminal");
	for (size_t g = 0; g < GROUPS; g++) {
		double share = (double)per_group[g] / FLEET;
		cr_assert(share >= 0.25 * 0.9 && share <= 0.25 * 1.1,
			  "group %zu got %u terminals (%.3f)", g, per_group[g], share);
	}
	ug_cluster_free(c);
}

/* A server leaves its group: only the terminals that started on it move,
 * they stay in their group, and they spread over the rest of it. */
Test(rendezvous, removing_a_server_moves_only_its_terminals)
{
	const size_t gone_g = 2, gone_j = 5;
	struct ug_cluster *full = make_cluster(GROUPS, PER, SIZE_MAX, 0);
	struct ug_cluster *less = make_cluster(GROUPS, PER, gone_g, gone_j);
	unsigned moved = 0, landed[PER];
	size_t distinct = 0;
	char gone[32];

	snprintf(gone, sizeof(gone), "s%zu-%zu", gone_g, gone_j);
	memset(landed, 0, sizeof(landed));
	for (size_t i = 0; i < FLEET; i++) {
		char id[32];
		struct ug_rdv_pick a, b;

		fleet_id(i, id);
		a = first_pick(full, id);
		b = first_pick(less, id);
		if (strcmp(pick_name(full, a), gone) != 0) {
			cr_assert_str_eq(pick_name(less, b), pick_name(full, a),
					 "'%s' moved from %s to %s", id, pick_name(full, a),
					 pick_name(less, b));
			continue;
		}
		moved++;
		cr_assert_eq(b.group, gone_g, "'%s' left its group", id);
		landed[b.pos]++;
	}
	for (size_t j = 0; j < PER; j++)
		distinct += landed[j] > 0;
	printf("rendezvous: removing %s moved %u terminals over %zu servers\n", gone, moved,
	       distinct);
	cr_assert_gt(moved, 0u);
	/* about 156 terminals over 15 servers: they must not pile on one
	 * neighbour (what a plain "next in the chain" start would do) */
	cr_assert_geq(distinct, 12u, "moved terminals went to only %zu servers", distinct);
	for (size_t j = 0; j < PER; j++)
		cr_assert_leq(landed[j], moved / 4, "server %zu took %u of %u moved", j, landed[j],
			      moved);
	ug_cluster_free(full);
	ug_cluster_free(less);
}

/* A group goes: its terminals move to other groups, nobody else moves. */
Test(rendezvous, removing_a_group_moves_only_its_terminals)
{
	struct ug_cluster *full = make_cluster(GROUPS, 4, SIZE_MAX, 0);
	struct ug_cluster *less = make_cluster(GROUPS - 1, 4, SIZE_MAX, 0);
	unsigned moved_to[GROUPS] = { 0 };

	for (size_t i = 0; i < 2000; i++) {
		char id[32];
		struct ug_rdv_pick a, b;

		fleet_id(i, id);
		a = first_pick(full, id);
		b = first_pick(less, id);
		if (a.group != GROUPS - 1)
			cr_assert_str_eq(pick_name(less, b), pick_name(full, a), "'%s' moved", id);
		else
			moved_to[b.group]++;
	}
	for (size_t g = 0; g < GROUPS - 1; g++)
		cr_assert_gt(moved_to[g], 50u, "group %zu took %u of the orphans", g, moved_to[g]);
	ug_cluster_free(full);
	ug_cluster_free(less);
}

Test(rendezvous, order_lists_every_server_once_in_walk_order)
{
	struct ug_cluster *c = make_cluster(GROUPS, PER, 1, 3);

	for (size_t i = 0; i < 200; i++) {
		char id[32];
		size_t n;
		struct ug_rdv_pick *p;

		fleet_id(i * 37, id);
		p = order_ok(c, id, &n);
		assert_order_valid(c, id, p, n);
		free(p);
	}
	ug_cluster_free(c);
}

Test(rendezvous, deterministic)
{
	struct ug_cluster *c = make_cluster(GROUPS, PER, SIZE_MAX, 0);
	struct ug_cluster *d = ug_cluster_dup(c);
	size_t n1, n2, n3;
	struct ug_rdv_pick *a = order_ok(c, "meter-00042", &n1);
	struct ug_rdv_pick *b = order_ok(c, "meter-00042", &n2);
	struct ug_rdv_pick *x = order_ok(d, "meter-00042", &n3);

	cr_assert_not_null(d);
	cr_assert_eq(n1, n2);
	cr_assert_eq(n1, n3);
	cr_assert_eq(memcmp(a, b, n1 * sizeof(*a)), 0);
	cr_assert_eq(memcmp(a, x, n1 * sizeof(*a)), 0, "a copy of the cluster gives the same order");
	free(a);
	free(b);
	free(x);
	ug_cluster_free(c);
	ug_cluster_free(d);
}

/* The order is a function of names, not of list positions: reversing the
 * groups' order in the list gives the same servers in the same order. */
Test(rendezvous, order_ignores_group_list_order)
{
	struct ug_cluster *c = make_cluster(GROUPS, 3, SIZE_MAX, 0);
	struct ug_cluster *rev = ug_cluster_dup(c);

	cr_assert_not_null(rev);
	for (size_t g = 0; g < GROUPS / 2; g++) {
		struct ug_group t = rev->groups[g];
		rev->groups[g] = rev->groups[GROUPS - 1 - g];
		rev->groups[GROUPS - 1 - g] = t;
	}
	for (size_t i = 0; i < 50; i++) {
		char id[32];
		size_t n1, n2;
		struct ug_rdv_pick *a, *b;

		fleet_id(i, id);
		a = order_ok(c, id, &n1);
		b = order_ok(rev, id, &n2);
		cr_assert_eq(n1, n2);
		for (size_t k = 0; k < n1; k++)
			cr_assert_str_eq(pick_name(c, a[k]), pick_name(rev, b[k]));
		free(a);
		free(b);
	}
	ug_cluster_free(c);
	ug_cluster_free(rev);
}

/* The weights are a published formula: pin one so a change shows. */
Test(rendezvous, weights_follow_the_formula)
{
	struct ug_hash h;
	const char in[] = "meter-00001\0east\0e1";
	uint64_t w = 0;

	ug_hash_buf(in, sizeof(in) - 1, &h, NULL);
	for (size_t i = 0; i < 8; i++)
		w = (w << 8) | h.b[i];
	cr_assert_eq(ug_rendezvous_server_weight("meter-00001", "east", "e1"), w);

	ug_hash_buf(in, strlen("meter-00001") + 1 + strlen("east"), &h, NULL);
	w = 0;
	for (size_t i = 0; i < 8; i++)
		w = (w << 8) | h.b[i];
	cr_assert_eq(ug_rendezvous_group_weight("meter-00001", "east"), w);
	cr_assert_neq(ug_rendezvous_group_weight("meter-00001", "east"),
		      ug_rendezvous_group_weight("meter-00002", "east"));
}

Test(rendezvous, one_group_one_server)
{
	struct ug_cluster *c = make_cluster(1, 1, SIZE_MAX, 0);
	struct ug_rdv_pick *p = (struct ug_rdv_pick *)0x1;
	size_t n = 99;

	cr_assert_eq(ug_rendezvous_order(c, "x", &p, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(p[0].group, 0);
	cr_assert_eq(p[0].pos, 0);
	free(p);
	ug_cluster_free(c);
}

static void expect_einval(const struct ug_cluster *c, const char *id)
{
	struct ug_rdv_pick *p = (struct ug_rdv_pick *)0x1;
	size_t n = 99;

	cr_assert_eq(ug_rendezvous_order(c, id, &p, &n), -EINVAL, "id '%s'", id ? id : "(null)");
	cr_assert_eq(p, (struct ug_rdv_pick *)0x1, "ret untouched on failure");
	cr_assert_eq(n, 99);
}

Test(rendezvous, bad_ids)
{
	struct ug_cluster *c = make_cluster(2, 2, SIZE_MAX, 0);
	char longest[UG_TERMINAL_ID_MAX + 2];
	struct ug_error err = { "" };
	size_t n;

	expect_einval(c, NULL);
	expect_einval(c, "");
	expect_einval(c, "meter 1");
	expect_einval(c, "meter\t1");
	expect_einval(c, "meter\n");
	expect_einval(c, "m\x7f");
	expect_einval(c, "m\xc3\xa9");
	cr_assert_eq(ug_rendezvous_id_check("m\x1b[2J", &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "0x1b"), "message: %s", err.msg);
	cr_assert_null(strchr(err.msg, '\x1b'), "the message must not echo a control byte");

	memset(longest, 'a', sizeof(longest));
	longest[UG_TERMINAL_ID_MAX] = '\0';
	free(order_ok(c, longest, &n));
	cr_assert_eq(ug_rendezvous_id_check("!~", NULL), 0, "printable edges are allowed");
	longest[UG_TERMINAL_ID_MAX] = 'a';
	longest[UG_TERMINAL_ID_MAX + 1] = '\0';
	expect_einval(c, longest);
	cr_assert_eq(ug_rendezvous_id_check(longest, &err), -EINVAL);
	cr_assert_not_null(strstr(err.msg, "longer than 128"), "message: %s", err.msg);
	ug_cluster_free(c);
}

Test(rendezvous, bad_clusters)
{
	struct ug_cluster *empty = ug_cluster_new();
	struct ug_cluster *c = make_cluster(2, 2, SIZE_MAX, 0);
	struct ug_rdv_pick *p = (struct ug_rdv_pick *)0x1;
	size_t n = 99, saved;
	char *name;

	cr_assert_not_null(empty);
	expect_einval(NULL, "meter-1");
	expect_einval(empty, "meter-1");

	saved = c->groups[1].nservers;
	c->groups[1].nservers = 0;
	expect_einval(c, "meter-1");
	c->groups[1].nservers = UG_GROUP_SERVERS_MAX + 1;
	cr_assert_eq(ug_rendezvous_order(c, "meter-1", &p, &n), -E2BIG);
	c->groups[1].nservers = saved;

	name = c->groups[0].servers[1].name;
	c->groups[0].servers[1].name = NULL;
	expect_einval(c, "meter-1");
	c->groups[0].servers[1].name = name;

	saved = c->ngroups;
	c->ngroups = UG_GROUPS_MAX + 1;
	cr_assert_eq(ug_rendezvous_order(c, "meter-1", &p, &n), -E2BIG);
	c->ngroups = saved;
	cr_assert_eq(p, (struct ug_rdv_pick *)0x1);

	free(order_ok(c, "meter-1", &n));
	cr_assert_eq(n, 4);
	ug_cluster_free(empty);
	ug_cluster_free(c);
}
