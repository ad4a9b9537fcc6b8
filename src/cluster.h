/* cluster.h - the cluster file and the chain list it becomes.
 *
 * The cluster file lives on the master (REPO/cluster, upgrid.conf(5)):
 *
 *   # groups of at most 16 servers; order within a group is the chain
 *   [group east]
 *   server = e1 upgrid@10.0.1.1:22 /srv/upgrid
 *   server = e2 upgrid@10.0.1.2 /srv/upgrid
 *   [group west]
 *   server = w1 10.0.2.1:2222 /var/lib/upgrid
 *
 * Each "server" line is NAME ADDRESS REPO: NAME is [A-Za-z0-9._-]{1,64},
 * unique in the cluster; ADDRESS is [USER@]HOST[:PORT] (HOST a name, an
 * IPv4 address or a bracketed IPv6 address); REPO an absolute path. Group
 * names follow the same rule as server names. Publish copies the parsed
 * list into every manifest ("chains", upgrid-manifest(5)), so a new
 * cluster file takes effect everywhere with the next version. */
#ifndef UG_CLUSTER_H
#define UG_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define UG_GROUP_SERVERS_MAX 16u
#define UG_GROUPS_MAX        256u
#define UG_SERVER_NAME_MAX   64u
#define UG_HOST_MAX          255u
#define UG_USER_MAX          64u

struct ug_server {
	char *name;
	char *user;      /* NULL: the connecting user's own name */
	char *host;
	unsigned port;   /* 22 when not given */
	char *repo;      /* absolute path */
};

struct ug_group {
	char *name;
	struct ug_server *servers;  /* the chain, in order */
	size_t nservers;            /* 1..UG_GROUP_SERVERS_MAX */
};

struct ug_cluster {
	struct ug_group *groups;
	size_t ngroups;
};

struct ug_cluster *ug_cluster_new(void);
void ug_cluster_free(struct ug_cluster *c);
struct ug_cluster *ug_cluster_dup(const struct ug_cluster *c);
bool ug_cluster_equal(const struct ug_cluster *a, const struct ug_cluster *b);

/* Parse a cluster file's text; -EINVAL with "line N: ..." in err. A file
 * with no group is valid (an empty cluster: terminals use the master). */
int ug_cluster_parse(const char *text, size_t len, struct ug_cluster **ret,
		     struct ug_error *err);
/* Load REPO/cluster (dirfd-relative path); -ENOENT when it does not exist. */
int ug_cluster_load(int dirfd, const char *path, struct ug_cluster **ret,
		    struct ug_error *err);

/* Parse "[USER@]HOST[:PORT]" into a server's user/host/port (strings
 * allocated, owned by srv). */
int ug_server_parse_address(const char *address, struct ug_server *srv,
			    struct ug_error *err);
/* "user@host:port" or "host:port" as written in the cluster file. */
int ug_server_format_address(const struct ug_server *srv, char *out, size_t out_size);
int ug_cluster_name_check(const char *name, struct ug_error *err);

/* Where is the server called name: its group and position in the chain.
 * -ENOENT if the cluster does not name it. */
int ug_cluster_find(const struct ug_cluster *c, const char *name,
		    size_t *ret_group, size_t *ret_pos);

#endif
