/* cluster.c - the cluster file (REPO/cluster, upgrid.conf(5)) and the
 * chain list it becomes in every manifest.
 *
 * The file is INI, read by inih through ug_ini_read_line (util.h) so the
 * handler knows its line and an overlong line cannot hide a setting. Our
 * reader wraps it for two more reasons:
 *  - it removes leading blanks, so an indented "server =" line is an
 *    ordinary line and never a continuation of the one above (inih's
 *    multi-line values would hand the whole second line to the handler as
 *    a value of the first);
 *  - it sees every section header, which the handler does not: inih calls
 *    it only for key lines, so an empty group, or one header repeated
 *    right after itself, would be invisible there (and inih cuts section
 *    names to 50 bytes).
 * Every rule lives once, in the check functions below; the manifest
 * reader applies the same ones to the "chains" it parses. */
#include "config.h"

#include <arpa/inet.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define CLUSTER_FILE_MAX (1u << 20)
#define LABEL_MAX 63u
#define PORT_DEFAULT 22u

/* ---- lifecycle ---------------------------------------------------------- */

struct ug_cluster *ug_cluster_new(void)
{
	return calloc(1, sizeof(struct ug_cluster));
}

void ug_server_release(struct ug_server *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->user);
	free(s->host);
	free(s->repo);
	memset(s, 0, sizeof(*s));
}

static void group_release(struct ug_group *g)
{
	for (size_t j = 0; g->servers && j < g->nservers; j++)
		ug_server_release(&g->servers[j]);
	free(g->servers);
	free(g->name);
}

void ug_cluster_free(struct ug_cluster *c)
{
	if (!c)
		return;
	for (size_t i = 0; c->groups && i < c->ngroups; i++)
		group_release(&c->groups[i]);
	free(c->groups);
	free(c);
}

/* strdup of NULL is NULL and not a failure */
static bool dup_opt(const char *s, char **ret)
{
	*ret = s ? strdup(s) : NULL;
	return !s || *ret;
}

struct ug_cluster *ug_cluster_dup(const struct ug_cluster *c)
{
	struct ug_cluster *d;

	if (!c)
		return NULL;
	d = ug_cluster_new();
	if (!d)
		return NULL;
	/* +1: calloc(0) may return NULL */
	d->groups = calloc(c->ngroups + 1, sizeof(*d->groups));
	if (!d->groups)
		goto fail;
	for (size_t i = 0; i < c->ngroups; i++) {
		const struct ug_group *g = &c->groups[i];
		struct ug_group *dg = &d->groups[i];

		d->ngroups++;
		if (!dup_opt(g->name, &dg->name))
			goto fail;
		dg->servers = calloc(g->nservers + 1, sizeof(*dg->servers));
		if (!dg->servers)
			goto fail;
		for (size_t j = 0; j < g->nservers; j++) {
			const struct ug_server *s = &g->servers[j];
			struct ug_server *ds = &dg->servers[j];

			dg->nservers++;
			ds->port = s->port;
			if (!dup_opt(s->name, &ds->name) || !dup_opt(s->user, &ds->user) ||
			    !dup_opt(s->host, &ds->host) || !dup_opt(s->repo, &ds->repo))
				goto fail;
		}
	}
	return d;
fail:
	ug_cluster_free(d);
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool ug_cluster_equal(const struct ug_cluster *a, const struct ug_cluster *b)
{
	if (!a || !b)
		return a == b;
	if (a->ngroups != b->ngroups)
		return false;
	for (size_t i = 0; i < a->ngroups; i++) {
		const struct ug_group *x = &a->groups[i], *y = &b->groups[i];

		if (!str_eq(x->name, y->name) || x->nservers != y->nservers)
			return false;
		for (size_t j = 0; j < x->nservers; j++) {
			const struct ug_server *s = &x->servers[j], *t = &y->servers[j];

			if (!str_eq(s->name, t->name) || !str_eq(s->user, t->user) ||
			    !str_eq(s->host, t->host) || s->port != t->port ||
			    !str_eq(s->repo, t->repo))
				return false;
		}
	}
	return true;
}

int ug_cluster_find(const struct ug_cluster *c, const char *name, size_t *ret_group,
		    size_t *ret_pos)
{
	if (!c || !name)
		return -ENOENT;
	for (size_t i = 0; i < c->ngroups; i++)
		for (size_t j = 0; j < c->groups[i].nservers; j++)
			if (str_eq(c->groups[i].servers[j].name, name)) {
				if (ret_group)
					*ret_group = i;
				if (ret_pos)
					*ret_pos = j;
				return 0;
			}
	return -ENOENT;
}

/* ---- the rules ----------------------------------------------------------- */

/* Text from the file or a manifest is echoed into messages only if it
 * cannot carry terminal escapes. */
static const char *shown(const char *s)
{
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return "(unprintable)";
	return s;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_name_char(char c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* blanks as the C locale's isspace() has them: what inih strips */
static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* [A-Za-z0-9._-]{1,max}: names and user names */
static int word_check(const char *what, const char *s, size_t max, struct ug_error *err)
{
	size_t n;

	if (!s || !*s)
		return ug_error_set(err, -EINVAL, "%s is empty", what);
	n = strnlen(s, max + 1);
	if (n > max)
		return ug_error_set(err, -EINVAL, "%s '%.16s...' is longer than %zu bytes", what,
				    shown(s), max);
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			return ug_error_set(err, -EINVAL,
					    "%s '%s' has a character other than A-Z, a-z, 0-9, '.', '_' and '-'",
					    what, shown(s));
	return 0;
}

int ug_cluster_name_check(const char *name, struct ug_error *err)
{
	return word_check("name", name, UG_SERVER_NAME_MAX, err);
}

static int user_check(const char *user, struct ug_error *err)
{
	int r = word_check("user", user, UG_USER_MAX, err);

	if (r < 0)
		return r;
	/* it ends up on ssh's command line, or in libssh's options */
	if (user[0] == '-')
		return ug_error_set(err, -EINVAL, "user '%s' starts with '-'", user);
	return 0;
}

static bool all_digits_and_dots(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || *s == '.'))
			return false;
	return true;
}

/* A host as stored (an IPv6 address without its brackets). Anything made
 * only of digits and dots is an IPv4 address or nothing: resolvers read
 * "10.1" as 10.0.0.1, which is not what the operator meant. */
static int host_check(const char *host, struct ug_error *err)
{
	size_t n, label = 0;

	if (!host || !*host)
		return ug_error_set(err, -EINVAL, "host is empty");
	n = strnlen(host, UG_HOST_MAX + 1);
	if (n > UG_HOST_MAX)
		return ug_error_set(err, -EINVAL, "host '%.16s...' is longer than %u bytes",
				    shown(host), UG_HOST_MAX);
	if (strchr(host, ':')) {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, host, &a6) != 1)
			return ug_error_set(err, -EINVAL, "host '%s' is not a valid IPv6 address",
					    shown(host));
		return 0;
	}
	if (all_digits_and_dots(host)) {
		struct in_addr a4;

		if (inet_pton(AF_INET, host, &a4) != 1)
			return ug_error_set(err, -EINVAL, "host '%s' is not a valid IPv4 address",
					    shown(host));
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char c = host[i];

		if (!is_alnum(c) && c != '.' && c != '-')
			return ug_error_set(err, -EINVAL,
					    "host '%s' has a character other than A-Z, a-z, 0-9, '.' and '-'",
					    shown(host));
		if (c == '.') {
			if (label == 0)
				break;
			label = 0;
			continue;
		}
		/* a leading '-' would make the host an ssh option */
		if (c == '-' && i == 0)
			return ug_error_set(err, -EINVAL, "host '%s' starts with '-'", shown(host));
		if (c == '-' && label == 0)
			return ug_error_set(err, -EINVAL, "host '%s' has a label that starts with '-'",
					    shown(host));
		if (++label > LABEL_MAX)
			return ug_error_set(err, -EINVAL, "host '%.16s...' has a label longer than %u bytes",
					    shown(host), LABEL_MAX);
	}
	if (label == 0)
		return ug_error_set(err, -EINVAL, "host '%s' has an empty label ('..', or a '.' at its start or end)",
				    shown(host));
	return 0;
}

static int port_check(unsigned port, struct ug_error *err)
{
	if (port < 1 || port > 65535)
		return ug_error_set(err, -EINVAL, "port %u is not between 1 and 65535", port);
	return 0;
}

int ug_server_repo_check(const char *repo, struct ug_error *err)
{
	size_t n;

	if (!repo || !*repo)
		return ug_error_set(err, -EINVAL, "repo is empty");
	n = strnlen(repo, UG_PATH_MAX + 1);
	if (n > UG_PATH_MAX)
		return ug_error_set(err, -EINVAL, "repo '%.16s...' is longer than %u bytes",
				    shown(repo), UG_PATH_MAX);
	if (repo[0] != '/')
		return ug_error_set(err, -EINVAL, "repo '%s' is not an absolute path", shown(repo));
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)repo[i] < 0x20 || repo[i] == 0x7f || repo[i] == ' ')
			return ug_error_set(err, -EINVAL, "repo '%s' contains a blank or a control character",
					    shown(repo));
	/* a manifest is JSON, which carries only UTF-8 */
	if (!ug_utf8_valid(repo, n))
		return ug_error_set(err, -EINVAL, "repo is not valid UTF-8");
	for (const char *c = repo; (c = strstr(c, "..")) != NULL; c += 2)
		if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0'))
			return ug_error_set(err, -EINVAL, "repo '%s' contains '..'", shown(repo));
	return 0;
}

int ug_server_check(const struct ug_server *srv, struct ug_error *err)
{
	int r;

	if ((r = ug_cluster_name_check(srv->name, err)) < 0 ||
	    (srv->user && (r = user_check(srv->user, err)) < 0) ||
	    (r = host_check(srv->host, err)) < 0 ||
	    (r = port_check(srv->port, err)) < 0 ||
	    (r = ug_server_repo_check(srv->repo, err)) < 0)
		return r;
	return 0;
}

/* ---- addresses ----------------------------------------------------------- */

int ug_server_parse_address(const char *address, struct ug_server *srv,
			    struct ug_error *err)
{
	char user[UG_USER_MAX + 2], host[UG_HOST_MAX + 2];
	const char *at, *hp, *h, *hend, *rest, *shown_addr;
	struct ug_error e;
	size_t hn, n;
	uint64_t port = PORT_DEFAULT;
	bool bracketed = false;
	char *du = NULL, *dh;

	if (!address || !*address)
		return ug_error_set(err, -EINVAL, "address is empty");
	n = strnlen(address, UG_ADDRESS_MAX);
	if (n >= UG_ADDRESS_MAX)
		return ug_error_set(err, -EINVAL, "address '%.16s...' is longer than %u bytes",
				    shown(address), UG_ADDRESS_MAX - 1);
	shown_addr = shown(address);
	user[0] = '\0';
	at = strchr(address, '@');
	hp = at ? at + 1 : address;
	if (at) {
		size_t un = (size_t)(at - address);

		if (un > UG_USER_MAX)
			return ug_error_set(err, -EINVAL, "address '%s': user is longer than %u bytes",
					    shown_addr, UG_USER_MAX);
		memcpy(user, address, un);
		user[un] = '\0';
		if (user_check(user, &e) < 0)
			return ug_error_set(err, -EINVAL, "address '%s': %s", shown_addr, e.msg);
	}
	if (*hp == '[') {
		bracketed = true;
		h = hp + 1;
		hend = strchr(h, ']');
		if (!hend)
			return ug_error_set(err, -EINVAL, "address '%s': '[' without ']'", shown_addr);
		rest = hend + 1;
	} else {
		h = hp;
		hend = strchr(h, ':');
		if (hend && strchr(hend + 1, ':'))
			return ug_error_set(err, -EINVAL,
					    "address '%s': an IPv6 address must be in brackets, as in [::1]:22",
					    shown_addr);
		if (!hend)
			hend = h + strlen(h);
		rest = hend;
	}
	hn = (size_t)(hend - h);
	if (hn > UG_HOST_MAX)
		return ug_error_set(err, -EINVAL, "address '%s': host is longer than %u bytes",
				    shown_addr, UG_HOST_MAX);
	memcpy(host, h, hn);
	host[hn] = '\0';
	if (bracketed && !strchr(host, ':'))
		return ug_error_set(err, -EINVAL,
				    "address '%s': only an IPv6 address goes in brackets", shown_addr);
	if (host_check(host, &e) < 0)
		return ug_error_set(err, -EINVAL, "address '%s': %s", shown_addr, e.msg);
	if (*rest == ':') {
		if (ug_parse_u64(rest + 1, 65535, &port) < 0 || port == 0)
			return ug_error_set(err, -EINVAL,
					    "address '%s': port '%s' is not a number from 1 to 65535",
					    shown_addr, shown(rest + 1));
	} else if (*rest) {
		return ug_error_set(err, -EINVAL, "address '%s': expected ':PORT' after the host",
				    shown_addr);
	}
	if ((at && !(du = strdup(user))) || !(dh = strdup(host))) {
		free(du);
		return ug_error_set(err, -ENOMEM, "out of memory");
	}
	srv->user = du;
	srv->host = dh;
	srv->port = (unsigned)port;
	return 0;
}

int ug_server_format_address(const struct ug_server *srv, char *out, size_t out_size)
{
	bool v6;
	int n;

	if (!srv || !out)
		return -EINVAL;
	if (!srv->host) {
		/* this machine: the server is spawned (client.h) */
		n = snprintf(out, out_size, "-");
		return (size_t)n >= out_size ? -ENOSPC : n;
	}
	v6 = strchr(srv->host, ':') != NULL;
	n = snprintf(out, out_size, "%s%s%s%s%s:%u", srv->user ? srv->user : "",
		     srv->user ? "@" : "", v6 ? "[" : "", srv->host, v6 ? "]" : "", srv->port);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= out_size)
		return -ENOSPC;
	return n;
}

/* ---- a whole chain list ------------------------------------------------ */

struct server_ref {
	const char *name;
	size_t group, pos;
};

static int server_ref_cmp(const void *a, const void *b)
{
	const struct server_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	/* equal names: in chain order, so the second one is reported */
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int ug_cluster_check(const struct ug_cluster *c, const char *what, struct ug_error *err)
{
	struct server_ref *refs;
	struct ug_error e;
	size_t n = 0;
	int r = 0;

	if (!c)
		return 0;
	if (c->ngroups > UG_GROUPS_MAX)
		return ug_error_set(err, -E2BIG, "%s: %zu groups, more than the limit of %u", what,
				    c->ngroups, UG_GROUPS_MAX);
	if (c->ngroups > 0 && !c->groups)
		return ug_error_set(err, -EINVAL, "%s: array is missing", what);
	for (size_t i = 0; i < c->ngroups; i++) {
		const struct ug_group *g = &c->groups[i];

		if (ug_cluster_name_check(g->name, &e) < 0)
			return ug_error_set(err, -EBADMSG, "%s[%zu].group: %s", what, i, e.msg);
		/* at most 256 groups: pairwise is cheap */
		for (size_t k = 0; k < i; k++)
			if (strcmp(c->groups[k].name, g->name) == 0)
				return ug_error_set(err, -EBADMSG,
						    "%s[%zu].group: group '%s' is also %s[%zu]", what, i,
						    g->name, what, k);
		if (g->nservers == 0)
			return ug_error_set(err, -EBADMSG, "%s[%zu].servers: group '%s' has no servers",
					    what, i, g->name);
		if (g->nservers > UG_GROUP_SERVERS_MAX)
			return ug_error_set(err, -E2BIG,
					    "%s[%zu].servers: group '%s' has %zu servers, more than the limit of %u",
					    what, i, g->name, g->nservers, UG_GROUP_SERVERS_MAX);
		if (!g->servers)
			return ug_error_set(err, -EINVAL, "%s[%zu].servers: array is missing", what, i);
		for (size_t j = 0; j < g->nservers; j++)
			if (ug_server_check(&g->servers[j], &e) < 0)
				return ug_error_set(err, -EBADMSG, "%s[%zu].servers[%zu]: %s", what, i,
						    j, e.msg);
		n += g->nservers;
	}
	/* server names are unique across the cluster: sort them once */
	refs = malloc((n + 1) * sizeof(*refs));
	if (!refs)
		return ug_error_set(err, -ENOMEM, "out of memory");
	n = 0;
	for (size_t i = 0; i < c->ngroups; i++)
		for (size_t j = 0; j < c->groups[i].nservers; j++)
			refs[n++] = (struct server_ref){ c->groups[i].servers[j].name, i, j };
	qsort(refs, n, sizeof(*refs), server_ref_cmp);
	for (size_t k = 1; k < n; k++)
		if (strcmp(refs[k - 1].name, refs[k].name) == 0) {
			r = ug_error_set(err, -EBADMSG,
					 "%s[%zu].servers[%zu]: server name '%s' is also %s[%zu].servers[%zu]",
					 what, refs[k].group, refs[k].pos, refs[k].name, what,
					 refs[k - 1].group, refs[k - 1].pos);
			break;
		}
	free(refs);
	return r;
}

/* ---- the cluster file ---------------------------------------------------- */

struct cluster_parse {
	struct ug_cluster *c;
	struct ug_ini_reader rd;
	struct ug_error e;      /* the first error, without its line */
	int rc;
	int line;               /* the line the message names */
	int at;                 /* the line where it was found: orders it against inih's */
	bool in_group;          /* c->groups[c->ngroups - 1] takes the servers */
	int group_line[UG_GROUPS_MAX];
};

static void cp_fail(struct cluster_parse *cp, int line, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void cp_fail(struct cluster_parse *cp, int line, int rc, const char *fmt, ...)
{
	va_list ap;

	if (cp->rc < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(cp->e.msg, sizeof(cp->e.msg), fmt, ap);
	va_end(ap);
	cp->rc = rc;
	cp->line = line;
	cp->at = cp->rd.line;
}

/* The current group is complete: it must have a server. */
static void group_end(struct cluster_parse *cp)
{
	struct ug_group *g;

	if (!cp->in_group)
		return;
	g = &cp->c->groups[cp->c->ngroups - 1];
	if (g->nservers == 0)
		cp_fail(cp, cp->group_line[cp->c->ngroups - 1], -EINVAL,
			"group '%s' has no servers", g->name);
	cp->in_group = false;
}

/* s is a line whose first character is '[' (blanks already removed). */
static void section_header(struct cluster_parse *cp, const char *s)
{
	const int line = cp->rd.line;
	char buf[UG_CONFIG_LINE_MAX + 1], orig[64];
	const char *end = strchr(s, ']'), *after;
	char *word[3] = { NULL, NULL, NULL }, *p;
	struct ug_group *groups;
	struct ug_error e;
	size_t nw = 0, len;

	if (!end) {
		cp_fail(cp, line, -EINVAL, "section header without ']'");
		return;
	}
	for (after = end + 1; is_blank(*after); after++)
		;
	/* inih ignores what follows ']': refuse it rather than guess */
	if (*after && *after != ';' && *after != '#') {
		cp_fail(cp, line, -EINVAL, "text after ']' of the section header");
		return;
	}
	len = (size_t)(end - s - 1);
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, s + 1, len);
	buf[len] = '\0';
	snprintf(orig, sizeof(orig), "%.60s", shown(buf));
	for (p = buf; *p && nw < 3;) {
		while (is_blank(*p))
			*p++ = '\0';
		if (!*p)
			break;
		word[nw++] = p;
		while (*p && !is_blank(*p))
			p++;
	}
	if (nw != 2 || strcmp(word[0], "group") != 0) {
		cp_fail(cp, line, -EINVAL, "unknown section [%s]; expected [group NAME]", orig);
		return;
	}
	if (ug_cluster_name_check(word[1], &e) < 0) {
		cp_fail(cp, line, -EINVAL, "group %s", e.msg);
		return;
	}
	group_end(cp);
	if (cp->rc < 0)
		return;
	for (size_t i = 0; i < cp->c->ngroups; i++)
		if (strcmp(cp->c->groups[i].name, word[1]) == 0) {
			cp_fail(cp, line, -EINVAL, "group '%s' is defined twice (first on line %d)",
				word[1], cp->group_line[i]);
			return;
		}
	if (cp->c->ngroups >= UG_GROUPS_MAX) {
		cp_fail(cp, line, -EINVAL, "more than %u groups", UG_GROUPS_MAX);
		return;
	}
	groups = realloc(cp->c->groups, (cp->c->ngroups + 1) * sizeof(*groups));
	if (!groups) {
		cp_fail(cp, line, -ENOMEM, "out of memory");
		return;
	}
	cp->c->groups = groups;
	memset(&groups[cp->c->ngroups], 0, sizeof(*groups));
	groups[cp->c->ngroups].name = strdup(word[1]);
	if (!groups[cp->c->ngroups].name) {
		cp_fail(cp, line, -ENOMEM, "out of memory");
		return;
	}
	cp->group_line[cp->c->ngroups] = line;
	cp->c->ngroups++;
	cp->in_group = true;
}

static char *cluster_read_line(char *str, int num, void *stream)
{
	struct cluster_parse *cp = stream;
	size_t skip = 0;
	char *s;

	if (cp->rc < 0)
		return NULL;	/* stop at the first error */
	s = ug_ini_read_line(str, num, &cp->rd);
	if (!s)
		return NULL;
	if (cp->rd.line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		skip = 3;
	while (is_blank(s[skip]) && s[skip] != '\n')
		skip++;
	if (skip)
		memmove(s, s + skip, strlen(s + skip) + 1);
	if (s[0] == '[')
		section_header(cp, s);
	return cp->rc < 0 ? NULL : s;
}

static int cluster_handler(void *user, const char *section, const char *name,
			   const char *value)
{
	struct cluster_parse *cp = user;
	const int line = cp->rd.line;
	char buf[UG_CONFIG_LINE_MAX + 1], *field[4], *p;
	struct ug_server srv = { 0 }, *servers;
	struct ug_group *g;
	struct ug_error e;
	size_t nf = 0, gi, pos;
	int r;

	/* the group comes from our reader, which saw its header (inih's
	 * section string is cut at 50 bytes) */
	(void)section;
	if (cp->rc < 0)
		return 0;
	if (strcmp(name, "server") != 0) {
		cp_fail(cp, line, -EINVAL, "unknown key '%s'; the only key is 'server'", shown(name));
		return 0;
	}
	if (!cp->in_group) {
		cp_fail(cp, line, -EINVAL, "'server' is outside a [group NAME] section");
		return 0;
	}
	g = &cp->c->groups[cp->c->ngroups - 1];
	if (g->nservers >= UG_GROUP_SERVERS_MAX) {
		cp_fail(cp, line, -EINVAL, "group '%s' has more than %u servers; split it into two groups",
			g->name, UG_GROUP_SERVERS_MAX);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", value);
	for (p = buf; *p && nf < 4;) {
		while (is_blank(*p))
			*p++ = '\0';
		if (!*p)
			break;
		field[nf++] = p;
		while (*p && !is_blank(*p))
			p++;
	}
	if (nf != 3) {
		cp_fail(cp, line, -EINVAL, "'server = %s' has %s%zu field%s; expected NAME ADDRESS REPO",
			nf ? shown(value) : "", nf > 3 ? "more than " : "", nf > 3 ? (size_t)3 : nf,
			nf == 1 ? "" : "s");
		return 0;
	}
	if (ug_cluster_name_check(field[0], &e) < 0) {
		cp_fail(cp, line, -EINVAL, "server %s", e.msg);
		return 0;
	}
	if (ug_cluster_find(cp->c, field[0], &gi, &pos) == 0) {
		cp_fail(cp, line, -EINVAL, "server name '%s' is already used in group '%s'", field[0],
			cp->c->groups[gi].name);
		return 0;
	}
	if (ug_server_repo_check(field[2], &e) < 0) {
		cp_fail(cp, line, -EINVAL, "server '%s': %s", field[0], e.msg);
		return 0;
	}
	r = ug_server_parse_address(field[1], &srv, &e);
	if (r < 0) {
		cp_fail(cp, line, r, "server '%s': %s", field[0], e.msg);
		return 0;
	}
	srv.name = strdup(field[0]);
	srv.repo = strdup(field[2]);
	servers = realloc(g->servers, (g->nservers + 1) * sizeof(*servers));
	if (!srv.name || !srv.repo || !servers) {
		if (servers)
			g->servers = servers;
		ug_server_release(&srv);
		cp_fail(cp, line, -ENOMEM, "out of memory");
		return 0;
	}
	g->servers = servers;
	servers[g->nservers++] = srv;
	return 1;
}

int ug_cluster_parse(const char *text, size_t len, struct ug_cluster **ret,
		     struct ug_error *err)
{
	struct cluster_parse *cp;
	const char *nul;
	int r;

	if (!text && len)
		return ug_error_set(err, -EINVAL, "no text");
	if (len > CLUSTER_FILE_MAX)
		return ug_error_set(err, -EINVAL, "larger than %u bytes", CLUSTER_FILE_MAX);
	/* inih reads C strings: a NUL would silently end its line */
	nul = len ? memchr(text, '\0', len) : NULL;
	if (nul) {
		int line = 1;

		for (const char *c = text; c < nul; c++)
			line += *c == '\n';
		return ug_error_set(err, -EINVAL, "line %d: contains a NUL byte", line);
	}
	cp = calloc(1, sizeof(*cp));
	if (!cp)
		return ug_error_set(err, -ENOMEM, "out of memory");
	cp->c = ug_cluster_new();
	if (!cp->c) {
		free(cp);
		return ug_error_set(err, -ENOMEM, "out of memory");
	}
	cp->rd.p = text;
	cp->rd.left = len;
	r = ini_parse_stream(cluster_read_line, cp, cluster_handler, cp);
	if (r < 0) {
		r = ug_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* the first error in the file wins: ours, or inih's syntax error */
	if (cp->rc < 0 && (r == 0 || cp->at <= r)) {
		r = ug_error_set(err, cp->rc, "line %d: %s", cp->line, cp->e.msg);
		goto out;
	}
	if (r > 0) {
		r = ug_error_set(err, -EINVAL,
				 "line %d: syntax error; expected [group NAME], 'server = NAME ADDRESS REPO' or a comment",
				 r);
		goto out;
	}
	if (cp->rd.too_long) {
		r = ug_error_set(err, -EINVAL, "line %d: longer than %d bytes", cp->rd.line,
				 cp->rd.line_max);
		goto out;
	}
	group_end(cp);
	if (cp->rc < 0) {
		r = ug_error_set(err, cp->rc, "line %d: %s", cp->line, cp->e.msg);
		goto out;
	}
	/* the parser applied these rules line by line; this keeps the two
	 * from drifting apart (a file publish accepts is a manifest that
	 * terminals accept) */
	r = ug_cluster_check(cp->c, "groups", err);
	if (r < 0)
		goto out;
	*ret = cp->c;
	cp->c = NULL;
out:
	ug_cluster_free(cp->c);
	free(cp);
	return r;
}

int ug_cluster_load(int dirfd, const char *path, struct ug_cluster **ret,
		    struct ug_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	r = ug_file_read(dirfd, path, CLUSTER_FILE_MAX, &text, &len);
	switch (r) {
	case 0:
		break;
	case -ENOENT:
		return ug_error_set(err, r, "does not exist");
	case -E2BIG:
		return ug_error_set(err, -EINVAL, "larger than %u bytes", CLUSTER_FILE_MAX);
	case -ELOOP:
		return ug_error_set(err, -EINVAL, "is a symbolic link; it must be a regular file");
	case -EINVAL:
		return ug_error_set(err, -EINVAL, "is not a regular file");
	default:
		return ug_error_set(err, r, "cannot read: %s", strerror(-r));
	}
	r = ug_cluster_parse(text, len, ret, err);
	free(text);
	return r;
}
