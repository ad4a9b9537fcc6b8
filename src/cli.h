/* cli.h - shared pieces of the upgrid command-line front end. */
#ifndef UG_CLI_H
#define UG_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "store.h"
#include "util.h"

/* Exit codes (documented in upgrid(1), EXIT STATUS). */
#define UG_EXIT_OK        0
#define UG_EXIT_FAILURE   1  /* operation failed (I/O, internal error) */
#define UG_EXIT_USAGE     2  /* bad command line or configuration */
#define UG_EXIT_CORRUPT   3  /* verify found problems / corrupt input */
#define UG_EXIT_SIGNATURE 4  /* bad or missing signature, wrong key */
#define UG_EXIT_NOTFOUND  5  /* repo, version or channel does not exist */
#define UG_EXIT_LOCKED    6  /* another writer holds the repo lock */
#define UG_EXIT_UNCHANGED 0  /* publish: tree identical (reported, not an error) */

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
/* Resolve "latest", "N" or "@" in channel to a version number. */
int ug_cli_resolve_version(struct ug_store *s, const char *channel,
			   const char *spec, uint64_t *ret);

int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_verify(int argc, char **argv);

#endif
