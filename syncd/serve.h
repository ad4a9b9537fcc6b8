/* serve.h - `upgrid-syncd --serve`: one protocol session on stdin/stdout.
 *
 * Runs as the forced command of a restricted key under OpenSSH sshd (one
 * process per connection). It only reads the repo's objects, deltas,
 * manifests and refs; what it writes lives under REPO/cache (counters,
 * session slots, the signature-delta cache) and REPO/reports.
 *
 * Admission control: at most max_sessions sessions run at once per repo
 * (a slot is an flock()ed file REPO/cache/slots/N, freed by the kernel when
 * the process dies); the next client gets BUSY with retry_after instead of
 * a blocked channel.
 *
 * Counters (REPO/cache/serve-stats.json, updated under a lock when a
 * session ends; upgrid-syncd --stats prints them; the STATS message returns
 * them): sessions, busy, protocol errors, bytes in/out, and per blob kind
 * how many were sent and how many bytes:
 *   {"sessions":N,"busy":N,"errors":N,"bytes_in":N,"bytes_out":N,
 *    "sigdelta_cache_hits":N,"reports":N,"sent":{"object":{"count":N,
 *    "bytes":N},"delta":{..},"manifest":{..},"sig":{..},"mdelta":{..},
 *    "sigdelta":{..}}}
 * "sessions" counts sessions that got WELCOME, "errors" sessions ended by a
 * protocol error (including no common version), "count" blobs sent to
 * their end, "bytes" DATA payload bytes, bytes_in/out everything on the
 * wire.
 *
 * Signature deltas are cached in REPO/cache/sigdelta/HEX, HEX being the
 * BLAKE2b of (form, object id, signature bytes); nothing expires them yet.
 * REPORTs are checked (src/report.h), stamped with "received" and this
 * server's name in "via", and appended, one compact JSON object per line,
 * to REPO/reports/reports.jsonl; a REPORT may also be a relay batch,
 * {"relay":[...]}, from a server below (syncd/relay.c), appended whole
 * or refused whole.
 *
 * Read-only sessions (--read-only, for the keys terminals use) may not ask
 * for STATS or relay, and each may send at most one REPORT. */
#ifndef UG_SERVE_H
#define UG_SERVE_H

#include <stdbool.h>

#include "util.h"

struct ug_serve_opts {
	const char *repo;
	const char *name;          /* server name in WELCOME; NULL: hostname */
	bool read_only;
	unsigned max_sessions;     /* 0: 64 */
	unsigned retry_after;      /* seconds, in BUSY (0: 10) */
	int idle_timeout_s;        /* no frame from the client this long: close
				    * (0: 300; a WAIT extends it by its timeout) */
	/* one line per notable event (session end with its counters, each
	 * protocol error with its reason), for the program's log; level is a
	 * syslog priority: LOG_ERR (server-side failures, corrupt files),
	 * LOG_WARNING (protocol errors, refused requests), LOG_INFO (session
	 * ends, BUSY, idle clients, NOTFOUND) */
	void (*log)(void *ctx, int level, const char *line);
	void *log_ctx;
};

/* Serve one session reading frames from in_fd and writing to out_fd, until
 * BYE, end of input, or a protocol error. Returns 0 for a session that
 * ended normally (BYE / EOF, including one answered BUSY), -EPROTO after a
 * protocol error (an ERROR frame has been sent when the output still
 * worked, reason in err), other -errno when the repo cannot be used. */
int ug_serve(const struct ug_serve_opts *o, int in_fd, int out_fd, struct ug_error *err);

/* Print REPO's counters as JSON (the file's contents, or zeros). */
int ug_serve_stats_read(const char *repo, char **ret_json, struct ug_error *err);

#endif
