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
/* Bytes of a buffer that holds any formatted address, with its NUL:
 * user '@' '[' host ']' ':' port. */
#define UG_ADDRESS_MAX       (UG_USER_MAX + UG_HOST_MAX + 10u)

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

/* Free a server's strings and zero it (NULL is a no-op). */
void ug_server_release(struct ug_server *s);

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
 * allocated, owned by srv). On success srv->user, host and port are
 * overwritten (not freed: pass a zeroed srv); on failure srv is untouched.
 * -EINVAL with "address 'x@': host is empty" and the like in err. */
int ug_server_parse_address(const char *address, struct ug_server *srv,
			    struct ug_error *err);
/* "user@host:port" or "host:port" as written in the cluster file, the
 * port always written, an IPv6 host in brackets. Returns the length, or
 * -ENOSPC if out is too small (UG_ADDRESS_MAX always fits). A server
 * without a host (this machine: client.h spawns it) is written "-". */
int ug_server_format_address(const struct ug_server *srv, char *out, size_t out_size);
/* A group or server name: [A-Za-z0-9._-]{1,64}. -EINVAL with the reason. */
int ug_cluster_name_check(const char *name, struct ug_error *err);

/* The rules the cluster file parser applies, on values already in memory
 * (the manifest reader uses them too, upgrid-manifest(5)). Each returns 0
 * or -EINVAL with the reason in err ("user '-x' starts with '-'").
 * repo: absolute, at most UG_PATH_MAX bytes, valid UTF-8, no blank or
 * control character, no ".." component. */
int ug_server_repo_check(const char *repo, struct ug_error *err);
/* name, user (NULL allowed), host, port 1..65535 and repo of one server. */
int ug_server_check(const struct ug_server *srv, struct ug_error *err);
/* A whole chain list: the limits, at least one server per group, unique
 * group names, server names unique across the cluster, and every server.
 * Errors name the place as what[i].servers[j] ("chains[1].servers[3]:
 * ..."): -EBADMSG for a bad value, -E2BIG for a count over a limit,
 * -EINVAL for a missing array. NULL (no chain list) is valid. */
int ug_cluster_check(const struct ug_cluster *c, const char *what, struct ug_error *err);

/* Where is the server called name: its group and position in the chain.
 * -ENOENT if the cluster does not name it. */
int ug_cluster_find(const struct ug_cluster *c, const char *name,
		    size_t *ret_group, size_t *ret_pos);

#endif
