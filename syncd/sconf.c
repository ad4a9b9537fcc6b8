/* sconf.c - upgrid-syncd's settings file. */
#include "config.h"

#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sconf.h"

#define SCONF_FILE_MAX (64u << 10)

void ug_sconf_init(struct ug_sconf *c)
{
	memset(c, 0, sizeof(*c));
	c->connect_timeout = 10;
	c->idle_timeout = 60;
	c->keepalive = 15;
	c->wait = 300;
	c->retry = 30;
	c->scrub_hours = 24;
}

static void server_release(struct ug_server *s)
{
	free(s->name);
	free(s->user);
	free(s->host);
	free(s->repo);
	memset(s, 0, sizeof(*s));
}

void ug_sconf_release(struct ug_sconf *c)
{
	free(c->repo);
	free(c->name);
	server_release(&c->master);
	free(c->master_key);
	free(c->identity);
	free(c->known_hosts);
	free(c->serve_command);
	for (unsigned i = 0; i < c->nchannels; i++)
		free(c->channels[i]);
	memset(c, 0, sizeof(*c));
}

struct sparse {
	struct ug_sconf *c;
	struct ug_error *err;
	const struct ug_ini_reader *rd;
	int rc;
	int line;
};

static int set_str(char **dst, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

static int set_uint(unsigned *dst, const char *v, unsigned max, struct ug_error *err,
		    const char *name)
{
	uint64_t x;

	if (ug_parse_u64(v, max, &x) < 0)
		return ug_error_set(err, -EINVAL, "%s must be a number from 0 to %u, not '%s'",
				    name, max, v);
	*dst = (unsigned)x;
	return 0;
}

/* "ADDRESS REPO"; ADDRESS "-" means this machine (spawn upgrid-syncd). */
static int set_master(struct ug_server *m, const char *v, struct ug_error *err)
{
	char addr[512], repo[UG_PATH_MAX + 1], extra[2];
	struct ug_server s = { 0 };
	int r;

	if (strlen(v) >= sizeof(repo) ||
	    sscanf(v, "%511s %4096s %1s", addr, repo, extra) != 2)
		return ug_error_set(err, -EINVAL, "master must be 'ADDRESS REPO' (e.g. "
				    "'upgrid@master.example:22 /srv/upgrid'), not '%s'", v);
	if (repo[0] != '/')
		return ug_error_set(err, -EINVAL, "master repo '%s' must be an absolute path", repo);
	if (strcmp(addr, "-") != 0) {
		r = ug_server_parse_address(addr, &s, err);
		if (r < 0) {
			server_release(&s);
			return r;
		}
	}
	s.name = strdup("master");
	s.repo = strdup(repo);
	if (!s.name || !s.repo) {
		server_release(&s);
		return -ENOMEM;
	}
	server_release(m);
	*m = s;
	return 0;
}

static int set_channels(struct ug_sconf *c, const char *v, struct ug_error *err)
{
	char buf[UG_CONFIG_LINE_MAX + 1];
	char *save = NULL, *tok;
	int r;

	snprintf(buf, sizeof(buf), "%s", v);
	for (unsigned i = 0; i < c->nchannels; i++)
		free(c->channels[i]);
	c->nchannels = 0;
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		r = ug_channel_check(tok, err);
		if (r < 0)
			return r;
		if (c->nchannels == UG_SYNCD_CHANNELS_MAX)
			return ug_error_set(err, -EINVAL, "more than %u channels", UG_SYNCD_CHANNELS_MAX);
		c->channels[c->nchannels] = strdup(tok);
		if (!c->channels[c->nchannels])
			return -ENOMEM;
		c->nchannels++;
	}
	if (c->nchannels == 0)
		return ug_error_set(err, -EINVAL, "channels is empty");
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct sparse *p = user;
	struct ug_sconf *c = p->c;
	struct ug_error *err = p->err;
	int r;

	/* inih stops at a handler returning 0; keep going so the first
	 * error (p->rc) is the one reported, with its line */
	if (p->rc < 0)
		return 1;
	p->line = p->rd->line;
	if (strcmp(section, "syncd") != 0) {
		r = ug_error_set(err, -EINVAL, "'%s' is outside the [syncd] section", name);
		goto out;
	}
	if (!strcmp(name, "repo") || !strcmp(name, "master-key") ||
	    !strcmp(name, "identity") || !strcmp(name, "known-hosts")) {
		char **dst = !strcmp(name, "repo") ? &c->repo :
			     !strcmp(name, "master-key") ? &c->master_key :
			     !strcmp(name, "identity") ? &c->identity : &c->known_hosts;
		if (value[0] != '/')
			r = ug_error_set(err, -EINVAL, "%s must be an absolute path, not '%s'", name, value);
		else
			r = set_str(dst, value);
	} else if (!strcmp(name, "name")) {
		r = ug_cluster_name_check(value, err);
		if (r == 0)
			r = set_str(&c->name, value);
	} else if (!strcmp(name, "serve-command")) {
		r = set_str(&c->serve_command, value);
	} else if (!strcmp(name, "master")) {
		r = set_master(&c->master, value, err);
	} else if (!strcmp(name, "channels")) {
		r = set_channels(c, value, err);
	} else if (!strcmp(name, "connect-timeout")) {
		r = set_uint(&c->connect_timeout, value, 3600, err, name);
	} else if (!strcmp(name, "idle-timeout")) {
		r = set_uint(&c->idle_timeout, value, 86400, err, name);
	} else if (!strcmp(name, "keepalive")) {
		r = set_uint(&c->keepalive, value, 3600, err, name);
	} else if (!strcmp(name, "wait")) {
		r = set_uint(&c->wait, value, 3600, err, name);
	} else if (!strcmp(name, "retry")) {
		r = set_uint(&c->retry, value, 86400, err, name);
	} else if (!strcmp(name, "scrub-hours")) {
		r = set_uint(&c->scrub_hours, value, 24 * 365, err, name);
	} else {
		r = ug_error_set(err, -EINVAL, "unknown setting '%s' (see upgrid.conf(5))", name);
	}
out:
	if (r < 0)
		p->rc = r;
	return 1;
}

int ug_sconf_load(struct ug_sconf *c, const char *path, struct ug_error *err)
{
	struct ug_ini_reader rd = { 0 };
	struct sparse p = { .c = c, .err = err, .rd = &rd };
	char *text = NULL;
	size_t len;
	int r;

	r = ug_file_read(AT_FDCWD, path, SCONF_FILE_MAX, &text, &len);
	if (r < 0)
		return ug_error_set(err, r, "cannot read settings file '%s': %s", path,
				    r == -E2BIG ? "larger than 64 KiB" : strerror(-r));
	if (strlen(text) != len) {
		free(text);
		return ug_error_set(err, -EINVAL, "'%s' contains a NUL byte", path);
	}
	rd.p = text;
	rd.left = len;
	rd.line_max = UG_CONFIG_LINE_MAX;
	r = ini_parse_stream(ug_ini_read_line, &rd, handler, &p);
	free(text);
	if (r < 0)
		return ug_error_set(err, -ENOMEM, "cannot parse '%s': out of memory", path);
	if (p.rc < 0 && (r == 0 || p.line <= r)) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
		return ug_error_set(err, p.rc, "'%s': line %d: %s", path, p.line, msg);
	}
	if (r != 0)
		return ug_error_set(err, -EINVAL, "'%s': line %d: syntax error", path, r);
	if (rd.too_long)
		return ug_error_set(err, -EINVAL, "'%s': line %d: longer than %d bytes", path,
				    rd.line, rd.line_max);
	return 0;
}

int ug_sconf_check(const struct ug_sconf *c, struct ug_error *err)
{
	if (!c->repo)
		return ug_error_set(err, -EINVAL, "no repo: set 'repo = PATH' in [syncd] or use --repo");
	if (!c->master.repo)
		return ug_error_set(err, -EINVAL, "no master: set 'master = ADDRESS REPO' in [syncd]");
	if (!c->master_key)
		return ug_error_set(err, -EINVAL, "no master-key: set 'master-key = FILE' "
				    "(the master's public key, from 'upgrid keygen')");
	return 0;
}
