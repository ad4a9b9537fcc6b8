/* rendezvous.c - highest-random-weight order of a cluster's servers for
 * one terminal (rendezvous.h has the contract and the weight formulas). */
#include "config.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "rendezvous.h"
#include "util.h"

int ug_rendezvous_id_check(const char *terminal_id, struct ug_error *err)
{
	size_t n;

	if (!terminal_id || !*terminal_id)
		return ug_error_set(err, -EINVAL, "terminal id is empty");
	n = strnlen(terminal_id, UG_TERMINAL_ID_MAX + 1);
	/* bytes first, so the length message below echoes only printable ones */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)terminal_id[i];
		if (ch < 0x21 || ch > 0x7e)
			return ug_error_set(err, -EINVAL,
					    "terminal id: byte %zu (0x%02x) is not printable ASCII "
					    "without space", i, ch);
	}
	if (n > UG_TERMINAL_ID_MAX)
		return ug_error_set(err, -EINVAL, "terminal id '%.16s...' is longer than %u bytes",
				    terminal_id, UG_TERMINAL_ID_MAX);
	return 0;
}

/* The hash state after "id || 0x00": every weight of one terminal starts
 * with it, so it is computed once and copied. */
static void state_for_id(crypto_generichash_state *st, const char *id)
{
	static const unsigned char zero = 0;

	crypto_generichash_init(st, NULL, 0, UG_HASH_LEN);
	crypto_generichash_update(st, (const unsigned char *)id, strlen(id));
	crypto_generichash_update(st, &zero, 1);
}

static uint64_t weight_final(crypto_generichash_state *st)
{
	unsigned char d[UG_HASH_LEN];
	uint64_t w = 0;

	crypto_generichash_final(st, d, sizeof(d));
	for (size_t i = 0; i < 8; i++)
		w = (w << 8) | d[i];
	return w;
}

static uint64_t group_weight(const crypto_generichash_state *id_st, const char *group)
{
	crypto_generichash_state st = *id_st;

	crypto_generichash_update(&st, (const unsigned char *)group, strlen(group));
	return weight_final(&st);
}

static uint64_t server_weight(const crypto_generichash_state *id_st, const char *group,
			      const char *server)
{
	static const unsigned char zero = 0;
	crypto_generichash_state st = *id_st;

	crypto_generichash_update(&st, (const unsigned char *)group, strlen(group));
	crypto_generichash_update(&st, &zero, 1);
	crypto_generichash_update(&st, (const unsigned char *)server, strlen(server));
	return weight_final(&st);
}

uint64_t ug_rendezvous_group_weight(const char *terminal_id, const char *group)
{
	crypto_generichash_state st;

	state_for_id(&st, terminal_id);
	return group_weight(&st, group);
}

uint64_t ug_rendezvous_server_weight(const char *terminal_id, const char *group,
				     const char *server)
{
	crypto_generichash_state st;

	state_for_id(&st, terminal_id);
	return server_weight(&st, group, server);
}

/* Does (wa, na) come before (wb, nb): higher weight first, equal weights
 * by name so the result does not depend on list order. */
static bool ranks_before(uint64_t wa, const char *na, uint64_t wb, const char *nb)
{
	if (wa != wb)
		return wa > wb;
	return strcmp(na, nb) < 0;
}

struct ranked_group {
	uint64_t w;
	const char *name;
	size_t idx;
};

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked_group *x = a, *y = b;

	if (x->w == y->w && x->idx == y->idx)
		return 0;
	return ranks_before(x->w, x->name, y->w, y->name) ? -1 : 1;
}

/* What the order relies on; the count of servers in *ret_total. */
static int cluster_shape_check(const struct ug_cluster *c, size_t *ret_total)
{
	size_t total = 0;

	if (!c || c->ngroups == 0 || !c->groups)
		return -EINVAL;
	if (c->ngroups > UG_GROUPS_MAX)
		return -E2BIG;
	for (size_t g = 0; g < c->ngroups; g++) {
		const struct ug_group *grp = &c->groups[g];

		if (!grp->name || grp->nservers == 0 || !grp->servers)
			return -EINVAL;
		if (grp->nservers > UG_GROUP_SERVERS_MAX)
			return -E2BIG;
		for (size_t s = 0; s < grp->nservers; s++)
			if (!grp->servers[s].name)
				return -EINVAL;
		/* cannot overflow under the limits above; checked all the same */
		if (ug_size_add(total, grp->nservers, &total) < 0)
			return -E2BIG;
	}
	*ret_total = total;
	return 0;
}

int ug_rendezvous_order(const struct ug_cluster *c, const char *terminal_id,
			struct ug_rdv_pick **ret, size_t *ret_n)
{
	crypto_generichash_state id_st;
	struct ranked_group *rank = NULL;
	struct ug_rdv_pick *picks = NULL;
	size_t total = 0, n = 0;
	int r;

	if ((r = ug_rendezvous_id_check(terminal_id, NULL)) < 0)
		return r;
	if ((r = cluster_shape_check(c, &total)) < 0)
		return r;

	rank = calloc(c->ngroups, sizeof(*rank));
	picks = calloc(total, sizeof(*picks));
	if (!rank || !picks) {
		r = -ENOMEM;
		goto out;
	}

	state_for_id(&id_st, terminal_id);
	for (size_t g = 0; g < c->ngroups; g++) {
		rank[g].w = group_weight(&id_st, c->groups[g].name);
		rank[g].name = c->groups[g].name;
		rank[g].idx = g;
	}
	qsort(rank, c->ngroups, sizeof(*rank), ranked_cmp);

	for (size_t i = 0; i < c->ngroups; i++) {
		const struct ug_group *grp = &c->groups[rank[i].idx];
		size_t start = 0;
		uint64_t best = 0;

		for (size_t s = 0; s < grp->nservers; s++) {
			uint64_t w = server_weight(&id_st, grp->name, grp->servers[s].name);
			if (s == 0 || ranks_before(w, grp->servers[s].name, best,
						   grp->servers[start].name)) {
				best = w;
				start = s;
			}
		}
		for (size_t k = 0; k < grp->nservers; k++) {
			picks[n].group = rank[i].idx;
			picks[n].pos = (start + k) % grp->nservers;
			n++;
		}
	}

	*ret = picks;
	*ret_n = n;
	picks = NULL;
	r = 0;
out:
	free(rank);
	free(picks);
	return r;
}
