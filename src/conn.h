/* conn.h - a byte stream to a peer: the transports the protocol runs over.
 *
 *   fd     a pair of file descriptors (the server's stdin/stdout)
 *   spawn  a local child process over pipes ("upgrid-syncd --serve --repo
 *          PATH" on the same machine: tests and single-machine use)
 *   ssh    an exec channel of a libssh client session (ssh.c)
 *
 * Writes to a peer that went away fail with -EPIPE only if the program
 * ignores SIGPIPE, which every upgrid program does.
 *
 * Every read takes a timeout; transports count the bytes they move so the
 * programs can report what went over the wire. */
#ifndef UG_CONN_H
#define UG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct ug_conn;

struct ug_conn_ops {
	/* Read up to n bytes, waiting at most timeout_ms (negative: forever).
	 * Returns bytes read (> 0), 0 at end of stream, -ETIMEDOUT, -errno. */
	ssize_t (*read)(struct ug_conn *c, void *buf, size_t n, int timeout_ms);
	/* Write all n bytes. */
	int (*write)(struct ug_conn *c, const void *buf, size_t n);
	/* Close the sending direction (the peer reads end of stream; an fd
	 * transport closes its write fd even when it does not own it). */
	int (*shutdown)(struct ug_conn *c);
	/* Close and free everything; for a child process, reap it. Returns
	 * the child's exit status (>= 0) when the transport has one, else 0. */
	int (*close)(struct ug_conn *c);
};

struct ug_conn {
	const struct ug_conn_ops *ops;
	void *priv;
	uint64_t bytes_in, bytes_out;   /* payload bytes moved (counted here) */
	int timeout_ms;                 /* default for reads; -1: none */
	/* ug_conn_read_exact: timeout_ms bounds the whole call, not each
	 * read, so a peer trickling a byte at a time cannot hold a frame open
	 * (servers); otherwise it bounds silence between bytes (clients on
	 * slow links) */
	bool timeout_whole;
	char peer[128];                 /* for messages: "g1s2 (127.0.0.1:2201)" */
	/* Bytes/s the reads may average; 0: no limit. Set it with
	 * ug_conn_set_bwlimit (a plain assignment also works: a changed
	 * value restarts the accounting at the next read). */
	uint64_t bwlimit;
	/* private to conn.c: the bwlimit accounting */
	uint64_t bw_rate;               /* the limit bw_debt is counted for */
	double bw_debt;                 /* bytes read and not yet paid for in time */
	int64_t bw_since_ns;            /* when bw_debt was last brought up to date */
};

/* Transport-independent wrappers: count bytes, apply c->timeout_ms.
 * ug_conn_read_exact returns -EPROTO when the stream ends early.
 *
 * Every read goes through ug_conn_read, which also applies c->bwlimit
 * (as rsync's --bwlimit does, on the reading side): after a read, when
 * the bytes read so far are ahead of what the limit allows for the time
 * gone by, it sleeps the difference. One sleep lasts at most 1 s (so a
 * caller's keepalives and deadlines still get their turn); what is left
 * over is carried to the next reads, so the average holds. Time spent
 * idle earns no credit: a read after a long pause does not get a burst.
 * The sleeps count against a timeout_whole deadline of
 * ug_conn_read_exact. */
ssize_t ug_conn_read(struct ug_conn *c, void *buf, size_t n, int timeout_ms);
int ug_conn_read_exact(struct ug_conn *c, void *buf, size_t n);
int ug_conn_write(struct ug_conn *c, const void *buf, size_t n);
int ug_conn_shutdown(struct ug_conn *c);
/* Limit reads to an average of bytes_per_s (0: no limit), counted from
 * now: the accounting of an earlier limit is dropped. */
void ug_conn_set_bwlimit(struct ug_conn *c, uint64_t bytes_per_s);
/* Closes and frees c (NULL is a no-op); see ops->close. */
int ug_conn_close(struct ug_conn *c);

/* Use rfd/wfd (not closed by ug_conn_close unless own_fds). */
int ug_conn_fd_new(int rfd, int wfd, bool own_fds, struct ug_conn **ret);

/* Run argv[0] (searched in PATH if it has no '/') with argv, its stdin and
 * stdout connected to the returned conn; its stderr is inherited. -ENOENT
 * or -EACCES when it cannot be run. close waits for the child (sending
 * SIGTERM after 5 s, SIGKILL after 10 s) and returns its exit status, or
 * 128 + N for a child killed by signal N. */
int ug_conn_spawn(char *const argv[], struct ug_conn **ret, struct ug_error *err);
/* The same with the child's stderr sent to /dev/null when quiet (a local
 * server's session log is noise in a terminal's cron mail). */
int ug_conn_spawn_quiet(char *const argv[], bool quiet, struct ug_conn **ret,
			struct ug_error *err);

#endif
