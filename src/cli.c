/* cli.c - messages, exit codes and repo/manifest loading for commands. */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "manifest.h"
#include "sign.h"

struct ug_cli ug_cli = { .prog = "upgrid", .verbosity = 1 };

static void vmsg(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
	fprintf(f, "%s: %s", ug_cli.prog, prefix);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
}

void ug_cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(stderr, "", fmt, ap);
	va_end(ap);
}

void ug_cli_warn(const char *fmt, ...)
{
	va_list ap;
	if (ug_cli.verbosity < 1)
		return;
	va_start(ap, fmt);
	vmsg(stderr, "warning: ", fmt, ap);
	va_end(ap);
}

void ug_cli_info(const char *fmt, ...)
{
	va_list ap;
	if (ug_cli.verbosity < 1)
		return;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

void ug_cli_verbose(const char *fmt, ...)
{
	va_list ap;
	if (ug_cli.verbosity < 2)
		return;
	va_start(ap, fmt);
	vmsg(stderr, "", fmt, ap);
	va_end(ap);
}

int ug_cli_exit_code(int rc)
{
	return ug_exit_code(rc);
}

const char *ug_cli_repo_path(void)
{
	const char *env = getenv("UPGRID_REPO");

	if (ug_cli.repo)
		return ug_cli.repo;
	if (env && *env)
		return env;
	return UG_DEFAULT_REPO;
}

int ug_cli_open_repo(struct ug_store **ret)
{
	struct ug_error e = { "" };
	int r = ug_store_open(ug_cli_repo_path(), ret, &e);

	if (r < 0)
		ug_cli_err("%s", e.msg);
	return r;
}

int ug_cli_repo_pubkey(struct ug_store *s, const char *override, struct ug_pubkey *ret)
{
	struct ug_error e = { "" };
	char *text = NULL;
	size_t len;
	int r;

	if (override) {
		r = ug_pubkey_load(override, ret, &e);
		if (r < 0)
			ug_cli_err("cannot load public key '%s': %s", override, e.msg);
		return r;
	}
	r = ug_file_read(s->dirfd, "master.pub", 4096, &text, &len);
	if (r == -ENOENT) {
		ug_cli_err("repo '%s' has no 'master.pub' yet (nothing was published); pass --pubkey FILE",
			   s->path);
		return r;
	}
	if (r < 0) {
		ug_cli_err("cannot read '%s/master.pub': %s", s->path, strerror(-r));
		return r;
	}
	r = ug_pubkey_parse(text, len, ret, &e);
	free(text);
	if (r < 0)
		ug_cli_err("'%s/master.pub': %s", s->path, e.msg);
	return r;
}

int ug_cli_resolve_version(struct ug_store *s, const char *channel, const char *spec, uint64_t *ret)
{
	uint64_t v, latest;
	int r;

	if (!spec || strcmp(spec, "latest") == 0) {
		r = ug_store_ref_read(s, channel, &v);
		if (r == -ENOENT)
			ug_cli_err("channel '%s' has no versions yet in '%s'; publish one with 'upgrid publish'",
				   channel, s->path);
		else if (r < 0)
			ug_cli_err("cannot read ref '%s': %s", channel, strerror(-r));
		if (r < 0)
			return r;
		*ret = v;
		return 0;
	}
	r = ug_parse_u64(spec, UINT64_MAX, &v);
	if (r < 0 || v == 0) {
		ug_cli_err("'%s' is not a version: expected a number or 'latest'", spec);
		return -EINVAL;
	}
	/* a manifest above the ref is left from an interrupted publish: it
	 * was never published */
	if (ug_store_ref_read(s, channel, &latest) == 0 && v > latest) {
		ug_cli_err("version %" PRIu64 " does not exist in channel '%s' of '%s' (latest is %" PRIu64 ")",
			   v, channel, s->path, latest);
		return -ENOENT;
	}
	*ret = v;
	return 0;
}

int ug_cli_load_manifest(struct ug_store *s, const struct ug_pubkey *pk, const char *channel,
			 uint64_t version, struct ug_manifest **ret_m, char **ret_json,
			 size_t *ret_len)
{
	struct ug_error e = { "" };
	char *json = NULL, *sig = NULL;
	size_t jl, sl;
	int r;

	r = ug_store_manifest_get(s, channel, version, &json, &jl, &sig, &sl);
	if (r == -ENOENT) {
		ug_cli_err("version %" PRIu64 " does not exist in channel '%s' of '%s' (see 'upgrid log')",
			   version, channel, s->path);
		return r;
	}
	if (r < 0) {
		ug_cli_err("cannot read manifest %s/%" PRIu64 ": %s", channel, version,
			   r == -EKEYREJECTED ? "its signature file is missing" : strerror(-r));
		return r;
	}
	r = ug_sign_verify(pk, UG_SIGN_CONTEXT_MANIFEST, json, jl, sig, sl, &e);
	free(sig);
	if (r < 0) {
		ug_cli_err("manifest %s/%" PRIu64 " failed signature check: %s; run 'upgrid verify'",
			   channel, version, e.msg);
		free(json);
		return -EKEYREJECTED; /* malformed or wrong: either way, not trusted */
	}
	r = ug_manifest_parse(json, jl, ret_m, &e);
	if (r < 0) {
		ug_cli_err("manifest %s/%" PRIu64 ": %s", channel, version, e.msg);
		free(json);
		return r;
	}
	if (ret_json) {
		*ret_json = json;
		*ret_len = jl;
	} else {
		free(json);
	}
	return 0;
}

bool ug_cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int ug_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fprintf(stderr, "%s %s: ", ug_cli.prog, cmd);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try '%s %s --help'.\n", ug_cli.prog, cmd);
	return UG_EXIT_USAGE;
}

void ug_cli_read_init(struct ug_cli_read *ro)
{
	memset(ro, 0, sizeof(*ro));
	ro->channel = UG_DEFAULT_CHANNEL;
}

bool ug_cli_read_opt(struct ug_cli_read *ro, int c, const char *arg)
{
	switch (c) {
	case 'c':
		ro->channel = arg;
		return true;
	case 'P':
		ro->pubfile = arg;
		return true;
	case 'J':
		ro->json = true;
		return true;
	default:
		return false;
	}
}

int ug_cli_read_open(struct ug_cli_read *ro, const char *cmd)
{
	int r;

	if (ug_channel_check(ro->channel, NULL) < 0)
		return ug_cli_usage_error(cmd, "bad channel name '%s'", ro->channel);
	r = ug_cli_open_repo(&ro->s);
	if (r < 0)
		return ug_cli_exit_code(r);
	ro->pk = malloc(sizeof(*ro->pk));
	if (!ro->pk) {
		ug_cli_err("out of memory");
		return UG_EXIT_FAILURE;
	}
	r = ug_cli_repo_pubkey(ro->s, ro->pubfile, ro->pk);
	return r < 0 ? ug_cli_exit_code(r) : UG_EXIT_OK;
}

void ug_cli_read_release(struct ug_cli_read *ro)
{
	ug_store_free(ro->s);
	free(ro->pk);
	ro->s = NULL;
	ro->pk = NULL;
}
