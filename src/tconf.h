/* tconf.h - a terminal's settings: /etc/upgrid/terminal.conf, read by
 * `upgrid pull` and `upgrid agent` (documented in upgrid.conf(5),
 * TERMINAL SETTINGS).
 *
 * The file is INI with one section, [terminal]:
 *
 *   [terminal]
 *   id = kiosk-0042
 *   seed = upgrid@s1.example:22 /srv/upgrid
 *   seed = upgrid@s2.example /srv/upgrid
 *   master-key = /etc/upgrid/master.pub
 *   root = /opt/app/current
 *   health-check = /usr/lib/app/check --quick
 *
 * Every value is checked as it is read, and any mistake stops the load
 * with -EINVAL and "'PATH': line N: ..." naming the setting and saying
 * what is allowed: an unknown section or setting, a setting given twice
 * (seed and deny may be repeated, each line adding to the list), a value
 * out of range, a relative path, a missing required setting. Nothing is
 * guessed, so a terminal never runs on half of what its operator wrote.
 *
 * Usage:
 *
 *   struct ug_tconf c;
 *   struct ug_error e;
 *   ug_tconf_init(&c);
 *   r = ug_tconf_load(&c, UG_TERMINAL_CONFIG, &e);   (e.msg on failure)
 *   ...
 *   ug_tconf_release(&c);
 */
#ifndef UG_TCONF_H
#define UG_TCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cluster.h"
#include "util.h"

#define UG_TERMINAL_CONFIG      SYSCONFDIR "/upgrid/terminal.conf"
#define UG_TERMINAL_KNOWN_HOSTS SYSCONFDIR "/upgrid/known_hosts"
#define UG_TERMINAL_STATE       LOCALSTATEDIR "/lib/upgrid"
#define UG_TERMINAL_CHANNEL     "stable"

#define UG_TCONF_FILE_MAX    (64u << 10)  /* bytes in the file */
/* Bytes in one value as ug_tconf_print writes it (a seed with its port
 * written out, a command with single blanks): every printed line then
 * stays within inih's line buffer (198 bytes), so what print writes
 * loads again. */
#define UG_TCONF_VALUE_MAX   160u
#define UG_TCONF_SEEDS_MAX   16u          /* seed lines */
#define UG_TCONF_DENY_MAX    256u         /* versions on the deny list */
#define UG_TCONF_KEEP_MAX    16u          /* versions kept for rollback */
/* Version numbers are JSON integers in the manifest (upgrid-manifest(5)). */
#define UG_TCONF_VERSION_MAX ((uint64_t)INT64_MAX)
#define UG_TCONF_BWLIMIT_MIN 1024u        /* bytes/s, when not 0 */
#define UG_TCONF_BWLIMIT_MAX (16ull << 30)

/* When a new version is installed. */
enum ug_tconf_policy {
	UG_TCONF_POLICY_AUTO,    /* as soon as it is found (default) */
	UG_TCONF_POLICY_MANUAL,  /* only when the operator asks */
};

/* Which side wins when the 3-way merge of a config file finds the same
 * key changed both on the terminal and upstream. */
enum ug_tconf_conflict {
	UG_TCONF_CONFLICT_LOCAL,     /* the terminal's edit (default) */
	UG_TCONF_CONFLICT_UPSTREAM,  /* the new version's value */
};

/* The programs run around a switch, indexes of ug_tconf.hooks. */
enum ug_tconf_hook_id {
	UG_TCONF_HOOK_PRE_SWITCH,    /* before root is switched; failure: no switch */
	UG_TCONF_HOOK_RESTART,       /* after the switch, to restart the service */
	UG_TCONF_HOOK_HEALTH_CHECK,  /* after the restart; failure: roll back */
	UG_TCONF_HOOKS
};

/* A command, run without a shell: argv[0] is the absolute path of the
 * program (whether it exists is checked when it is run, not here), the
 * rest its arguments as the file has them split on blanks. */
struct ug_tconf_hook {
	char **argv;       /* argc words and a NULL; NULL: no hook */
	size_t argc;
	unsigned timeout;  /* seconds, 1..3600 (60) */
};

struct ug_tconf {
	char *id;                 /* the terminal id (ug_rendezvous_id_check); required */
	/* Where to ask for versions until a signed chain list is known:
	 * named "seed1", "seed2"... in file order; port 22 if not given. */
	struct ug_server seeds[UG_TCONF_SEEDS_MAX];
	size_t nseeds;            /* 1..UG_TCONF_SEEDS_MAX; required */
	char *master_key;         /* the master's public key file; required */
	char *identity;           /* ssh private key; NULL: ssh-agent, ~/.ssh/id_* */
	char *known_hosts;        /* (UG_TERMINAL_KNOWN_HOSTS) */
	char *channel;            /* (UG_TERMINAL_CHANNEL) */
	/* The path the installed version is used by: a symbolic link that
	 * is switched atomically to each new version. Required; not "/",
	 * no trailing '/'. */
	char *root;
	char *state;              /* the terminal's own data (UG_TERMINAL_STATE); not under root */
	unsigned poll;            /* seconds between polls, 10..604800 (3600) */
	unsigned splay;           /* a random 0..splay seconds more, 0..86400 (300) */
	unsigned stall_timeout;   /* a transfer with no byte for this long fails, 5..3600 (60) */
	uint64_t bwlimit;         /* bytes/s; 0: no limit (0) */
	enum ug_tconf_policy policy;  /* (auto) */
	uint64_t deny[UG_TCONF_DENY_MAX]; /* versions never installed, file order */
	size_t ndeny;
	uint64_t pin;             /* stay on or go to this version; 0: none (0) */
	unsigned keep;            /* versions kept for rollback, 1..16 (2) */
	enum ug_tconf_conflict on_conflict; /* (local) */
	struct ug_tconf_hook hooks[UG_TCONF_HOOKS];
};

/* Every setting at its default: numbers and choices as listed above,
 * strings NULL (ug_tconf_load fills in channel, known_hosts and state),
 * no seed, no deny list, no hook. */
void ug_tconf_init(struct ug_tconf *c);

/* Free what c holds and leave it as ug_tconf_init does. */
void ug_tconf_release(struct ug_tconf *c);

/* Read the settings file at path (a final symlink is followed; at most
 * UG_TCONF_FILE_MAX bytes). Defaults come from ug_tconf_init, not from c:
 * on success what c held is released and replaced by the file's settings,
 * with channel, known_hosts and state never NULL; on failure c is left as
 * it was (a reload that fails keeps the settings in use). Returns 0;
 * -ENOENT when the file does not exist (or another -errno when it cannot
 * be read); -EINVAL for any mistake in it, with "'PATH': line N: ..." in
 * err, or "'PATH': no 'id': set 'id = NAME' in [terminal] ..." for a
 * missing required setting; -ENOMEM. */
int ug_tconf_load(struct ug_tconf *c, const char *path, struct ug_error *err);

/* Write every setting with its value to out, in the file's syntax and
 * order of upgrid.conf(5), so that loading the output gives the same
 * settings (a setting that is not set is written as a comment). For a
 * --test-config option. Returns 0, or -EIO if out reports an error. */
int ug_tconf_print(const struct ug_tconf *c, FILE *out);

/* Whether version is on the deny list. (The pin and the policy are the
 * caller's to apply.) */
bool ug_tconf_denied(const struct ug_tconf *c, uint64_t version);

/* The setting name of a hook: "pre-switch", "restart", "health-check";
 * NULL for an id out of range. */
const char *ug_tconf_hook_name(enum ug_tconf_hook_id id);

#endif
