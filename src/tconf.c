/* tconf.c - a terminal's settings file (tconf.h, upgrid.conf(5)).
 *
 * ug_ini_parse_file (util.h) hands us each section header and setting
 * with its line; every rule is applied there, one setting at a time, and
 * the rules that join two settings (the required ones, pin against deny,
 * state against root) once the file is read. The settings are built in
 * a private struct and replace the caller's only when all of it is
 * good. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rendezvous.h"
#include "tconf.h"

enum key {
	K_ID,
	K_SEED,
	K_MASTER_KEY,
	K_IDENTITY,
	K_KNOWN_HOSTS,
	K_CHANNEL,
	K_ROOT,
	K_STATE,
	K_POLL,
	K_SPLAY,
	K_STALL_TIMEOUT,
	K_BWLIMIT,
	K_POLICY,
	K_DENY,
	K_PIN,
	K_KEEP,
	K_ON_CONFLICT,
	K_PRE_SWITCH,
	K_PRE_SWITCH_TIMEOUT,
	K_RESTART,
	K_RESTART_TIMEOUT,
	K_HEALTH_CHECK,
	K_HEALTH_CHECK_TIMEOUT,
	K_COUNT
};

/* In the order of upgrid.conf(5) and of ug_tconf_print. */
static const char *const key_names[K_COUNT] = {
	[K_ID] = "id",
	[K_SEED] = "seed",
	[K_MASTER_KEY] = "master-key",
	[K_IDENTITY] = "identity",
	[K_KNOWN_HOSTS] = "known-hosts",
	[K_CHANNEL] = "channel",
	[K_ROOT] = "root",
	[K_STATE] = "state",
	[K_POLL] = "poll",
	[K_SPLAY] = "splay",
	[K_STALL_TIMEOUT] = "stall-timeout",
	[K_BWLIMIT] = "bwlimit",
	[K_POLICY] = "policy",
	[K_DENY] = "deny",
	[K_PIN] = "pin",
	[K_KEEP] = "keep",
	[K_ON_CONFLICT] = "on-conflict",
	[K_PRE_SWITCH] = "pre-switch",
	[K_PRE_SWITCH_TIMEOUT] = "pre-switch-timeout",
	[K_RESTART] = "restart",
	[K_RESTART_TIMEOUT] = "restart-timeout",
	[K_HEALTH_CHECK] = "health-check",
	[K_HEALTH_CHECK_TIMEOUT] = "health-check-timeout",
};

#define POLL_MIN 10u
#define POLL_MAX 604800u
#define SPLAY_MAX 86400u
#define STALL_MIN 5u
#define STALL_MAX 3600u
#define HOOK_TIMEOUT_MAX 3600u

struct tparse {
	struct ug_tconf c;
	int section_line;
	int line_of[K_COUNT];                /* where each setting was (last) set */
	int seed_line[UG_TCONF_SEEDS_MAX];
	int deny_line[UG_TCONF_DENY_MAX];
};

/* ---- lifecycle ------------------------------------------------------------ */

void ug_tconf_init(struct ug_tconf *c)
{
	memset(c, 0, sizeof(*c));
	c->poll = 3600;
	c->splay = 300;
	c->stall_timeout = 60;
	c->policy = UG_TCONF_POLICY_AUTO;
	c->keep = 2;
	c->on_conflict = UG_TCONF_CONFLICT_LOCAL;
	for (size_t i = 0; i < UG_TCONF_HOOKS; i++)
		c->hooks[i].timeout = 60;
}

static void hook_release(struct ug_tconf_hook *h)
{
	if (h->argv)
		for (size_t i = 0; i < h->argc; i++)
			free(h->argv[i]);
	free(h->argv);
	h->argv = NULL;
	h->argc = 0;
}

void ug_tconf_release(struct ug_tconf *c)
{
	free(c->id);
	for (size_t i = 0; i < c->nseeds; i++)
		ug_server_release(&c->seeds[i]);
	free(c->master_key);
	free(c->identity);
	free(c->known_hosts);
	free(c->channel);
	free(c->root);
	free(c->state);
	for (size_t i = 0; i < UG_TCONF_HOOKS; i++)
		hook_release(&c->hooks[i]);
	ug_tconf_init(c);
}

const char *ug_tconf_hook_name(enum ug_tconf_hook_id id)
{
	static const enum key keys[UG_TCONF_HOOKS] = { K_PRE_SWITCH, K_RESTART, K_HEALTH_CHECK };

	if ((unsigned)id >= UG_TCONF_HOOKS)
		return NULL;
	return key_names[keys[id]];
}

bool ug_tconf_denied(const struct ug_tconf *c, uint64_t version)
{
	for (size_t i = 0; i < c->ndeny; i++)
		if (c->deny[i] == version)
			return true;
	return false;
}

/* ---- one setting ------------------------------------------------------ */

/* Text from the file is echoed into messages only if it cannot carry
 * terminal escapes. */
static const char *shown(const char *s)
{
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return "(unprintable)";
	return s;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int set_path(char **dst, const char *name, const char *v, struct ug_error *err)
{
	if (v[0] != '/')
		return ug_error_set(err, -EINVAL, "'%s' must be an absolute path, not '%s'", name,
				    shown(v));
	return ug_str_set(dst, v);
}

static int set_root(struct ug_tconf *c, const char *v, struct ug_error *err)
{
	size_t n = strlen(v);

	if (v[0] == '/' && v[n - 1] == '/')
		return ug_error_set(err, -EINVAL,
				    "'root' must name the link that upgrid switches to each new "
				    "version (e.g. /opt/app/current), not '%s'", shown(v));
	return set_path(&c->root, "root", v, err);
}

/* min..max, in the unit what names ("a number of seconds") */
static int set_uint(unsigned *dst, const char *name, const char *v, unsigned min,
		    unsigned max, const char *what, struct ug_error *err)
{
	uint64_t x;

	if (ug_parse_u64(v, max, &x) < 0 || x < min)
		return ug_error_set(err, -EINVAL, "'%s' must be %s from %u to %u, not '%s'", name,
				    what, min, max, shown(v));
	*dst = (unsigned)x;
	return 0;
}

static int set_bwlimit(struct ug_tconf *c, const char *v, struct ug_error *err)
{
	uint64_t x;

	/* rsync's --bwlimit counts KiB: "bwlimit = 500" is most likely
	 * meant as 500K, so a value under 1K is refused, not taken */
	if (ug_parse_size(v, UG_TCONF_BWLIMIT_MAX, &x) < 0 || (x != 0 && x < UG_TCONF_BWLIMIT_MIN))
		return ug_error_set(err, -EINVAL,
				    "'bwlimit' must be 0 (no limit) or 1K to 16G bytes per second, "
				    "with a suffix K, M or G (e.g. 500K), not '%s'", shown(v));
	c->bwlimit = x;
	return 0;
}

static int parse_version(const char *s, uint64_t *ret)
{
	uint64_t v;

	if (ug_parse_u64(s, UG_TCONF_VERSION_MAX, &v) < 0 || v == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int add_deny(struct tparse *p, int line, const char *v, struct ug_error *err)
{
	struct ug_tconf *c = &p->c;
	char buf[UG_TCONF_VALUE_MAX + 1], *save = NULL, *tok;
	size_t added = 0;
	uint64_t x;

	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (parse_version(tok, &x) < 0)
			return ug_error_set(err, -EINVAL,
					    "'deny': '%s' is not a version number (1 or more)",
					    shown(tok));
		for (size_t i = 0; i < c->ndeny; i++)
			if (c->deny[i] == x)
				return ug_error_set(err, -EINVAL,
						    "'deny': version %" PRIu64 " is listed twice (lines %d and %d)",
						    x, p->deny_line[i], line);
		if (c->ndeny == UG_TCONF_DENY_MAX)
			return ug_error_set(err, -EINVAL, "'deny': more than %u versions",
					    UG_TCONF_DENY_MAX);
		p->deny_line[c->ndeny] = line;
		c->deny[c->ndeny++] = x;
		added++;
	}
	if (added == 0)
		return ug_error_set(err, -EINVAL,
				    "'deny' lists no version: give version numbers separated by commas or blanks");
	return 0;
}

static bool same_server(const struct ug_server *a, const struct ug_server *b)
{
	return a->port == b->port && strcmp(a->host ? a->host : "-", b->host ? b->host : "-") == 0 &&
	       strcmp(a->repo, b->repo) == 0 &&
	       (a->user ? b->user && strcmp(a->user, b->user) == 0 : !b->user);
}

static int add_seed(struct tparse *p, int line, const char *v, struct ug_error *err)
{
	struct ug_tconf *c = &p->c;
	char buf[UG_TCONF_VALUE_MAX + 1], addr[UG_ADDRESS_MAX], *field[3], *save = NULL;
	struct ug_server s = { 0 };
	struct ug_error e;
	size_t nf = 0;
	int r, n;

	snprintf(buf, sizeof(buf), "%s", v);
	for (char *tok = strtok_r(buf, " \t", &save); tok && nf < 3;
	     tok = strtok_r(NULL, " \t", &save))
		field[nf++] = tok;
	if (nf != 2)
		return ug_error_set(err, -EINVAL,
				    "'seed' must be 'ADDRESS REPO' (e.g. 'upgrid@s1.example:22 /srv/upgrid'), not '%s'",
				    shown(v));
	if (c->nseeds == UG_TCONF_SEEDS_MAX)
		return ug_error_set(err, -EINVAL,
				    "more than %u 'seed' settings (a few are enough: the terminal "
				    "learns the others from the signed chain list)", UG_TCONF_SEEDS_MAX);
	r = ug_server_repo_check(field[1], &e);
	if (r < 0)
		return ug_error_set(err, -EINVAL, "'seed': %s", e.msg);
	/* "-": a server on this machine, spawned (tests, a terminal beside
	 * its group server) */
	r = strcmp(field[0], "-") == 0 ? 0 : ug_server_parse_address(field[0], &s, &e);
	if (r < 0)
		return ug_error_set(err, r, "'seed': %s", e.msg);
	s.repo = strdup(field[1]);
	if (!s.repo) {
		ug_server_release(&s);
		return ug_error_set(err, -ENOMEM, "out of memory");
	}
	n = ug_server_format_address(&s, addr, sizeof(addr));
	if (n < 0 || (size_t)n + 1 + strlen(s.repo) > UG_TCONF_VALUE_MAX) {
		ug_server_release(&s);
		return ug_error_set(err, -EINVAL,
				    "'seed' is longer than %u bytes with its port written out",
				    UG_TCONF_VALUE_MAX);
	}
	for (size_t i = 0; i < c->nseeds; i++)
		if (same_server(&c->seeds[i], &s)) {
			ug_server_release(&s);
			return ug_error_set(err, -EINVAL, "'seed' repeats the one on line %d",
					    p->seed_line[i]);
		}
	n = snprintf(addr, sizeof(addr), "seed%zu", c->nseeds + 1);
	s.name = strdup(addr);
	if (!s.name) {
		ug_server_release(&s);
		return ug_error_set(err, -ENOMEM, "out of memory");
	}
	p->seed_line[c->nseeds] = line;
	c->seeds[c->nseeds++] = s;
	return 0;
}

/* The program's absolute path, then its arguments, split on blanks. */
static int set_hook(struct ug_tconf_hook *h, const char *name, const char *v,
		    struct ug_error *err)
{
	char buf[UG_TCONF_VALUE_MAX + 1], *save = NULL, **argv;
	size_t argc = 0, n = 0;

	if (v[0] != '/')
		return ug_error_set(err, -EINVAL,
				    "'%s' must start with the absolute path of a program, not '%s'",
				    name, shown(v));
	/* a user who quotes expects a shell to remove the quotes; none does */
	if (strpbrk(v, "'\"`\\"))
		return ug_error_set(err, -EINVAL,
				    "'%s': quotes and backslashes are not allowed: the command is "
				    "not run by a shell; put it in a script", name);
	for (const char *s = v; *s; s++)
		if (!is_blank(*s) && (s == v || is_blank(s[-1])))
			argc++;
	argv = calloc(argc + 1, sizeof(*argv));
	if (!argv)
		return ug_error_set(err, -ENOMEM, "out of memory");
	snprintf(buf, sizeof(buf), "%s", v);
	for (char *tok = strtok_r(buf, " \t", &save); tok && n < argc;
	     tok = strtok_r(NULL, " \t", &save)) {
		argv[n] = strdup(tok);
		if (!argv[n]) {
			while (n > 0)
				free(argv[--n]);
			free(argv);
			return ug_error_set(err, -ENOMEM, "out of memory");
		}
		n++;
	}
	hook_release(h);
	h->argv = argv;
	h->argc = n;
	return 0;
}

static int set_choice(int *dst, const char *name, const char *v, const char *a,
		      const char *b, struct ug_error *err)
{
	if (strcmp(v, a) == 0)
		*dst = 0;
	else if (strcmp(v, b) == 0)
		*dst = 1;
	else
		return ug_error_set(err, -EINVAL, "'%s' must be '%s' or '%s', not '%s'", name, a, b,
				    shown(v));
	return 0;
}

static int set_value(struct tparse *p, enum key k, int line, const char *v,
		     struct ug_error *err)
{
	struct ug_tconf *c = &p->c;
	const char *name = key_names[k];
	struct ug_error e;
	int choice, r;

	switch (k) {
	case K_ID:
		if (ug_rendezvous_id_check(v, &e) < 0)
			return ug_error_set(err, -EINVAL, "bad 'id': %s", e.msg);
		return ug_str_set(&c->id, v);
	case K_SEED:
		return add_seed(p, line, v, err);
	case K_MASTER_KEY:
		return set_path(&c->master_key, name, v, err);
	case K_IDENTITY:
		return set_path(&c->identity, name, v, err);
	case K_KNOWN_HOSTS:
		return set_path(&c->known_hosts, name, v, err);
	case K_CHANNEL:
		if (ug_channel_check(v, &e) < 0)
			return ug_error_set(err, -EINVAL, "bad 'channel': %s", e.msg);
		return ug_str_set(&c->channel, v);
	case K_ROOT:
		return set_root(c, v, err);
	case K_STATE:
		return set_path(&c->state, name, v, err);
	case K_POLL:
		return set_uint(&c->poll, name, v, POLL_MIN, POLL_MAX, "a number of seconds", err);
	case K_SPLAY:
		return set_uint(&c->splay, name, v, 0, SPLAY_MAX, "a number of seconds", err);
	case K_STALL_TIMEOUT:
		return set_uint(&c->stall_timeout, name, v, STALL_MIN, STALL_MAX,
				"a number of seconds", err);
	case K_BWLIMIT:
		return set_bwlimit(c, v, err);
	case K_POLICY:
		r = set_choice(&choice, name, v, "auto", "manual", err);
		if (r == 0)
			c->policy = choice ? UG_TCONF_POLICY_MANUAL : UG_TCONF_POLICY_AUTO;
		return r;
	case K_DENY:
		return add_deny(p, line, v, err);
	case K_PIN:
		if (strcmp(v, "none") == 0) {
			c->pin = 0;
			return 0;
		}
		if (parse_version(v, &c->pin) < 0)
			return ug_error_set(err, -EINVAL,
					    "'pin' must be a version number (1 or more) or 'none', not '%s'",
					    shown(v));
		return 0;
	case K_KEEP:
		return set_uint(&c->keep, name, v, 1, UG_TCONF_KEEP_MAX, "a number of versions", err);
	case K_ON_CONFLICT:
		r = set_choice(&choice, name, v, "local", "upstream", err);
		if (r == 0)
			c->on_conflict = choice ? UG_TCONF_CONFLICT_UPSTREAM : UG_TCONF_CONFLICT_LOCAL;
		return r;
	case K_PRE_SWITCH:
		return set_hook(&c->hooks[UG_TCONF_HOOK_PRE_SWITCH], name, v, err);
	case K_RESTART:
		return set_hook(&c->hooks[UG_TCONF_HOOK_RESTART], name, v, err);
	case K_HEALTH_CHECK:
		return set_hook(&c->hooks[UG_TCONF_HOOK_HEALTH_CHECK], name, v, err);
	case K_PRE_SWITCH_TIMEOUT:
		return set_uint(&c->hooks[UG_TCONF_HOOK_PRE_SWITCH].timeout, name, v, 1,
				HOOK_TIMEOUT_MAX, "a number of seconds", err);
	case K_RESTART_TIMEOUT:
		return set_uint(&c->hooks[UG_TCONF_HOOK_RESTART].timeout, name, v, 1,
				HOOK_TIMEOUT_MAX, "a number of seconds", err);
	case K_HEALTH_CHECK_TIMEOUT:
		return set_uint(&c->hooks[UG_TCONF_HOOK_HEALTH_CHECK].timeout, name, v, 1,
				HOOK_TIMEOUT_MAX, "a number of seconds", err);
	case K_COUNT:
		break;
	}
	return ug_error_set(err, -EINVAL, "unknown setting '%s'", name);
}

static int handler(void *ctx, int line, const char *section, const char *name,
		   const char *value, struct ug_error *err)
{
	struct tparse *p = ctx;
	size_t k, n;
	int r;

	if (!name) {
		if (strcmp(section, "terminal") != 0)
			return ug_error_set(err, -EINVAL,
					    "unknown section [%s]: the file has one section, [terminal]",
					    shown(section));
		if (p->section_line)
			return ug_error_set(err, -EINVAL,
					    "[terminal] again (first on line %d): keep every setting in one section",
					    p->section_line);
		p->section_line = line;
		return 0;
	}
	/* a header other than [terminal] stopped the parse: this is before any */
	if (strcmp(section, "terminal") != 0)
		return ug_error_set(err, -EINVAL,
				    "'%s' is outside the [terminal] section: put [terminal] above it",
				    shown(name));
	for (k = 0; k < K_COUNT; k++)
		if (strcmp(name, key_names[k]) == 0)
			break;
	if (k == K_COUNT)
		return ug_error_set(err, -EINVAL,
				    "unknown setting '%s' in [terminal] (see upgrid.conf(5), TERMINAL SETTINGS)",
				    shown(name));
	if (p->line_of[k] && k != K_SEED && k != K_DENY)
		return ug_error_set(err, -EINVAL, "'%s' is set twice (lines %d and %d)", name,
				    p->line_of[k], line);
	if (!value[0])
		return ug_error_set(err, -EINVAL, "'%s' has no value: give one or leave the setting out",
				    name);
	n = strlen(value);
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
			return ug_error_set(err, -EINVAL,
					    "'%s': the value has a control character (byte %zu)", name,
					    i + 1);
	if (n > UG_TCONF_VALUE_MAX)
		return ug_error_set(err, -EINVAL, "'%s': the value is longer than %u bytes", name,
				    UG_TCONF_VALUE_MAX);
	r = set_value(p, (enum key)k, line, value, err);
	if (r == -ENOMEM)
		return ug_error_set(err, r, "out of memory");
	if (r < 0)
		return r;
	p->line_of[k] = line;
	return 0;
}

/* ---- the whole file ----------------------------------------------------- */

static bool is_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int finish(struct tparse *p, const char *path, struct ug_error *err)
{
	struct ug_tconf *c = &p->c;

	if (!c->id)
		return ug_error_set(err, -EINVAL,
				    "'%s': no 'id': set 'id = NAME' in [terminal] (this terminal's "
				    "name, unique in the fleet: printable ASCII without blanks)", path);
	if (c->nseeds == 0)
		return ug_error_set(err, -EINVAL,
				    "'%s': no 'seed': set 'seed = ADDRESS REPO' in [terminal] (an upgrade "
				    "server to ask first, e.g. 'seed = upgrid@s1.example /srv/upgrid')", path);
	if (!c->master_key)
		return ug_error_set(err, -EINVAL,
				    "'%s': no 'master-key': set 'master-key = FILE' in [terminal] (the "
				    "master's public key, from 'upgrid keygen')", path);
	if (!c->root)
		return ug_error_set(err, -EINVAL,
				    "'%s': no 'root': set 'root = PATH' in [terminal] (the link through "
				    "which the installed version is used, e.g. /opt/app/current)", path);
	if (!c->channel && ug_str_set(&c->channel, UG_TERMINAL_CHANNEL) < 0)
		return ug_error_set(err, -ENOMEM, "out of memory");
	if (!c->known_hosts && ug_str_set(&c->known_hosts, UG_TERMINAL_KNOWN_HOSTS) < 0)
		return ug_error_set(err, -ENOMEM, "out of memory");
	if (!c->state && ug_str_set(&c->state, UG_TERMINAL_STATE) < 0)
		return ug_error_set(err, -ENOMEM, "out of memory");
	if (c->pin) {
		for (size_t i = 0; i < c->ndeny; i++)
			if (c->deny[i] == c->pin)
				return ug_error_set(err, -EINVAL,
						    "'%s': line %d: 'pin' version %" PRIu64
						    " is on the 'deny' list (line %d): remove one of them",
						    path, p->line_of[K_PIN], c->pin, p->deny_line[i]);
	}
	if (is_within(c->state, c->root))
		return ug_error_set(err, -EINVAL,
				    "'%s': line %d: 'state' (%s) is inside 'root' (%s), which is "
				    "switched with every version: keep the state elsewhere", path,
				    p->line_of[K_STATE] ? p->line_of[K_STATE] : p->line_of[K_ROOT],
				    shown(c->state), shown(c->root));
	return 0;
}

int ug_tconf_load(struct ug_tconf *c, const char *path, struct ug_error *err)
{
	struct tparse *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return ug_error_set(err, -ENOMEM, "out of memory");
	ug_tconf_init(&p->c);
	r = ug_ini_parse_file(path, UG_TCONF_FILE_MAX, handler, p, err);
	if (r == 0)
		r = finish(p, path, err);
	if (r < 0) {
		ug_tconf_release(&p->c);
		free(p);
		return r;
	}
	ug_tconf_release(c);
	*c = p->c;
	free(p);
	return 0;
}

/* ---- printing ------------------------------------------------------------- */

static void print_str(FILE *out, const char *name, const char *v, const char *unset)
{
	if (v)
		fprintf(out, "%s = %s\n", name, v);
	else
		fprintf(out, "# %s = (%s)\n", name, unset);
}

/* the largest suffix that writes the number exactly */
static void print_size(FILE *out, const char *name, uint64_t v)
{
	static const char suffix[] = "GMK";

	for (unsigned i = 0; i < 3; i++) {
		unsigned shift = 30 - 10 * i;
		if (v && v % (1ull << shift) == 0) {
			fprintf(out, "%s = %" PRIu64 "%c\n", name, v >> shift, suffix[i]);
			return;
		}
	}
	fprintf(out, "%s = %" PRIu64 "\n", name, v);
}

static void print_deny(FILE *out, const struct ug_tconf *c)
{
	char line[UG_TCONF_VALUE_MAX + 1];
	size_t len = 0;

	if (c->ndeny == 0) {
		fprintf(out, "# deny = (none)\n");
		return;
	}
	/* a line per UG_TCONF_VALUE_MAX bytes: deny may be repeated */
	for (size_t i = 0; i < c->ndeny; i++) {
		char num[24];
		int n = snprintf(num, sizeof(num), "%" PRIu64, c->deny[i]);

		if (len && len + 2 + (size_t)n > UG_TCONF_VALUE_MAX) {
			fprintf(out, "deny = %s\n", line);
			len = 0;
		}
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? ", " : "", num);
	}
	fprintf(out, "deny = %s\n", line);
}

int ug_tconf_print(const struct ug_tconf *c, FILE *out)
{
	fprintf(out, "[terminal]\n");
	print_str(out, "id", c->id, "not set");
	for (size_t i = 0; i < c->nseeds; i++) {
		char addr[UG_ADDRESS_MAX] = "";

		ug_server_format_address(&c->seeds[i], addr, sizeof(addr));
		fprintf(out, "seed = %s %s\n", addr, c->seeds[i].repo);
	}
	if (c->nseeds == 0)
		fprintf(out, "# seed = (none)\n");
	print_str(out, "master-key", c->master_key, "not set");
	print_str(out, "identity", c->identity, "not set: ssh-agent, then ~/.ssh/id_*");
	print_str(out, "known-hosts", c->known_hosts ? c->known_hosts : UG_TERMINAL_KNOWN_HOSTS, "");
	print_str(out, "channel", c->channel ? c->channel : UG_TERMINAL_CHANNEL, "");
	print_str(out, "root", c->root, "not set");
	print_str(out, "state", c->state ? c->state : UG_TERMINAL_STATE, "");
	fprintf(out, "poll = %u\nsplay = %u\nstall-timeout = %u\n", c->poll, c->splay,
		c->stall_timeout);
	print_size(out, "bwlimit", c->bwlimit);
	fprintf(out, "policy = %s\n", c->policy == UG_TCONF_POLICY_MANUAL ? "manual" : "auto");
	print_deny(out, c);
	if (c->pin)
		fprintf(out, "pin = %" PRIu64 "\n", c->pin);
	else
		fprintf(out, "pin = none\n");
	fprintf(out, "keep = %u\n", c->keep);
	fprintf(out, "on-conflict = %s\n",
		c->on_conflict == UG_TCONF_CONFLICT_UPSTREAM ? "upstream" : "local");
	for (size_t i = 0; i < UG_TCONF_HOOKS; i++) {
		const struct ug_tconf_hook *h = &c->hooks[i];
		const char *name = ug_tconf_hook_name((enum ug_tconf_hook_id)i);

		if (h->argv && h->argc) {
			fprintf(out, "%s =", name);
			for (size_t j = 0; j < h->argc; j++)
				fprintf(out, " %s", h->argv[j]);
			fputc('\n', out);
		} else {
			fprintf(out, "# %s = (not set)\n", name);
		}
		fprintf(out, "%s-timeout = %u\n", name, h->timeout);
	}
	return ferror(out) ? -EIO : 0;
}
