/* cli.h - shared pieces of the upgrid command-line front end. */
#ifndef UG_CLI_H
#define UG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "store.h"
#include "util.h"

struct ug_cli {
	const char *prog;
	const char *repo;     /* -R / $UPGRID_REPO */
	int verbosity;        /* 0 quiet, 1 normal, 2 verbose */
};

extern struct ug_cli ug_cli;

void ug_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ug_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ug_cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ug_cli_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Map an -errno from the library to an exit code. */
int ug_cli_exit_code(int rc);
/* Open the repo named by -R/$UPGRID_REPO, printing an actionable error. */
int ug_cli_open_repo(struct ug_store **ret);
#define UG_DEFAULT_REPO LOCALSTATEDIR "/lib/upgrid/repo"
#define UG_DEFAULT_KEY SYSCONFDIR "/upgrid/master.key"
#define UG_DEFAULT_CHANNEL "stable"

struct ug_manifest;
struct ug_pubkey;

const char *ug_cli_repo_path(void);
/* The repo's trusted key: --pubkey FILE if given, else REPO/master.pub. */
int ug_cli_repo_pubkey(struct ug_store *s, const char *override, struct ug_pubkey *ret);
/* Read, verify and parse a manifest, printing an actionable error. */
int ug_cli_load_manifest(struct ug_store *s, const struct ug_pubkey *pk, const char *channel,
			 uint64_t version, struct ug_manifest **ret_m, char **ret_json,
			 size_t *ret_len);
bool ug_cli_is_help(const char *arg);
/* Print "upgrid CMD: message / Try 'upgrid CMD --help'." and return 2. */
int ug_cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* fmt may be NULL when getopt already printed the problem. */

/* What the commands that read versions (log, show, diff) share: the
 * -c/--pubkey/--json options and an open repo with its trusted key. */
struct ug_cli_read {
	const char *channel;
	const char *pubfile;
	bool json;
	struct ug_store *s;
	struct ug_pubkey *pk;
};
#define UG_CLI_READ_OPTIONS \
	{ "channel", required_argument, NULL, 'c' }, \
	{ "pubkey", required_argument, NULL, 'P' }, \
	{ "json", no_argument, NULL, 'J' }
void ug_cli_read_init(struct ug_cli_read *ro);
/* Take getopt's c if it is a shared option; false if it is not. */
bool ug_cli_read_opt(struct ug_cli_read *ro, int c, const char *arg);
/* Check the channel, open the repo, load the key; errors are printed.
 * Returns an exit code (UG_EXIT_OK on success). */
int ug_cli_read_open(struct ug_cli_read *ro, const char *cmd);
void ug_cli_read_release(struct ug_cli_read *ro);

/* Resolve "latest" or "N" in channel to a published version number. */
int ug_cli_resolve_version(struct ug_store *s, const char *channel,
			   const char *spec, uint64_t *ret);

int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_rollout(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_fleet(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_accept(int argc, char **argv);
int cmd_deny(int argc, char **argv);
int cmd_rollback(int argc, char **argv);

#endif
