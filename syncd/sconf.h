/* sconf.h - upgrid-syncd's settings (/etc/upgrid/syncd.conf, INI, section
 * [syncd]; documented in upgrid.conf(5) and upgrid-syncd(8)). */
#ifndef UG_SCONF_H
#define UG_SCONF_H

#include <stdbool.h>

#include "cluster.h"
#include "util.h"

#define UG_SYNCD_CONFIG SYSCONFDIR "/upgrid/syncd.conf"
#define UG_SYNCD_KNOWN_HOSTS SYSCONFDIR "/upgrid/known_hosts"
#define UG_SYNCD_CHANNELS_MAX 64u

struct ug_sconf {
	char *repo;              /* this server's repo (required) */
	char *name;              /* this server's name in the cluster file */
	struct ug_server master; /* master = ADDRESS REPO ("-" address: local) */
	char *master_key;        /* the master's public key file (required) */
	char *identity;          /* ssh private key; NULL: agent + defaults */
	char *known_hosts;       /* NULL: UG_SYNCD_KNOWN_HOSTS */
	char *serve_command;     /* remote command (upgrid-syncd) */
	char *channels[UG_SYNCD_CHANNELS_MAX];
	unsigned nchannels;      /* default: one, "stable" */
	unsigned connect_timeout;/* s (10) */
	unsigned idle_timeout;   /* s (60) */
	unsigned keepalive;      /* s (15) */
	unsigned wait;           /* long-poll seconds (300) */
	unsigned retry;          /* seconds between rounds after a failure (30) */
	unsigned scrub_hours;    /* full hash check every N hours (24; 0: never) */
};

void ug_sconf_init(struct ug_sconf *c);
void ug_sconf_release(struct ug_sconf *c);
/* Read path; every bad line is an error with "'PATH': line N: ...". */
int ug_sconf_load(struct ug_sconf *c, const char *path, struct ug_error *err);
/* The settings every mode needs are present (repo, master, master-key). */
int ug_sconf_check(const struct ug_sconf *c, struct ug_error *err);

#endif
