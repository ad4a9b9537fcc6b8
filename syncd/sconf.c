/* sconf.c - upgrid-syncd's settings file. */
#include "config.h"

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

void ug_sconf_release(struct ug_sconf *c)
{
	free(c->repo);
	free(c->name);
	ug_server_release(&c->master);
	free(c->master_key);
	free(c->identity);
	free(c->known_hosts);
	free(c->serve_command);
	for (unsigned i = 0; i < c->nchannels; i++)
		free(c->channels[i]);
	memset(c, 0, sizeof(*c));
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
			ug_server_release(&s);
			return r;
		}
	}
	s.name = strdup("master");
	s.repo = strdup(repo);
	if (!s.name || !s.repo) {
		ug_server_release(&s);
		return -ENOMEM;
	}
	ug_server_release(m);
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

static int handler(void *ctx, int line, const char *section, const char *name,
		   const char *value, struct ug_error *err)
{
	struct ug_sconf *c = ctx;

	(void)line;
	/* an empty section of another name is harmless: its settings are
	 * refused below */
	if (!name)
		return 0;
	if (strcmp(section, "syncd") != 0)
		return ug_error_set(err, -EINVAL, "'%s' is outside the [syncd] section", name);
	if (!strcmp(name, "repo") || !strcmp(name, "master-key") ||
	    !strcmp(name, "identity") || !strcmp(name, "known-hosts")) {
		char **dst = !strcmp(name, "repo") ? &c->repo :
			     !strcmp(name, "master-key") ? &c->master_key :
			     !strcmp(name, "identity") ? &c->identity : &c->known_hosts;
		if (value[0] != '/')
			return ug_error_set(err, -EINVAL, "%s must be an absolute path, not '%s'",
					    name, value);
		return ug_str_set(dst, value);
	} else if (!strcmp(name, "name")) {
		int r = ug_cluster_name_check(value, err);
		return r < 0 ? r : ug_str_set(&c->name, value);
	} else if (!strcmp(name, "serve-command")) {
		return ug_str_set(&c->serve_command, value);
	} else if (!strcmp(name, "master")) {
		return set_master(&c->master, value, err);
	} else if (!strcmp(name, "channels")) {
		return set_channels(c, value, err);
	} else if (!strcmp(name, "connect-timeout")) {
		return set_uint(&c->connect_timeout, value, 3600, err, name);
	} else if (!strcmp(name, "idle-timeout")) {
		return set_uint(&c->idle_timeout, value, 86400, err, name);
	} else if (!strcmp(name, "keepalive")) {
		return set_uint(&c->keepalive, value, 3600, err, name);
	} else if (!strcmp(name, "wait")) {
		return set_uint(&c->wait, value, 3600, err, name);
	} else if (!strcmp(name, "retry")) {
		return set_uint(&c->retry, value, 86400, err, name);
	} else if (!strcmp(name, "scrub-hours")) {
		return set_uint(&c->scrub_hours, value, 24 * 365, err, name);
	}
	return ug_error_set(err, -EINVAL, "unknown setting '%s' (see upgrid.conf(5))", name);
}

int ug_sconf_load(struct ug_sconf *c, const char *path, struct ug_error *err)
{
	return ug_ini_parse_file(path, SCONF_FILE_MAX, handler, c, err);
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
