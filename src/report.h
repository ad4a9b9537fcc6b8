/* report.h - terminal status reports: what a report holds, how a server
 * stores it, and reading the reports file back (docs/protocol.md, REPORT;
 * upgrid(1), fleet; upgrid-syncd(8), "Relaying reports").
 *
 * A terminal sends one report per attempt (and a heartbeat at most once a
 * day) to the server it used, as a JSON object:
 *
 *   {"terminal":"t-0042","channel":"stable","installed":43,"target":43,
 *    "result":"ok","bytes":12345,"full_bytes":456789,"duration_ms":812,
 *    "time":1764740000,"server":"g1-s2","message":"..."}
 *
 * terminal, result and installed are required; the other fields are
 * optional but checked when present; fields this list does not name are
 * kept as they are (a later terminal may say more). The server that takes
 * a report adds "received" (its clock, unix seconds) and "via" (an array
 * of server names, its own appended) and appends it, as one compact line,
 * to REPO/reports/reports.jsonl. Group servers pass the lines of that file
 * up the chain in relay batches, {"relay":[REPORT, ...]}; each hop keeps
 * "received" and appends its name to "via". The master keeps them, and
 * `upgrid fleet` reads them.
 *
 * This module is a trust boundary: everything in a report came from a
 * terminal. It checks types and ranges, never echoes the client's bytes in
 * its messages, and bounds every size. */
#ifndef UG_REPORT_H
#define UG_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Where the reports live in a repo (relative to its root). The file is
 * renamed to reports.jsonl.1 (replacing it) once it grows past
 * UG_REPORTS_ROTATE bytes. */
#define UG_REPORTS_DIR       "reports"
#define UG_REPORTS_FILE      "reports/reports.jsonl"
#define UG_REPORTS_OLD       "reports/reports.jsonl.1"
#define UG_REPORTS_ROTATE    (64u << 20)

/* Limits. A terminal's report is stored in at most UG_REPORT_DIRECT_MAX
 * bytes; every hop up adds at most 2 * UG_PROTO_NAME_MAX + 3 bytes to
 * "via", so after UG_REPORT_VIA_MAX hops a report still fits
 * UG_REPORT_LINE_MAX, and a batch holding one report of that size fits
 * one REPORT text (UG_PROTO_TEXT_MAX). */
#define UG_REPORT_DIRECT_MAX  (16u << 10)   /* bytes of a terminal's report as stored */
#define UG_REPORT_LINE_MAX    (32u << 10)   /* bytes of any stored report (newline excluded) */
#define UG_REPORT_MESSAGE_MAX 4096u         /* bytes of "message" */
#define UG_REPORT_VIA_MAX     32u           /* servers in "via" */
#define UG_REPORT_BATCH_MAX   1024u         /* reports in one relay batch */
#define UG_REPORT_TIME_MAX    253402300799  /* 9999-12-31T23:59:59Z */

enum ug_report_result {
	UG_REPORT_OK = 1,          /* "ok": the target is installed */
	UG_REPORT_FAILED,          /* "failed": the attempt failed, installed unchanged */
	UG_REPORT_ROLLED_BACK,     /* "rolled-back": the health check failed, switched back */
	UG_REPORT_CURRENT,         /* "current": nothing to do (a heartbeat) */
};

/* "ok", "failed", "rolled-back", "current"; "unknown" otherwise. */
const char *ug_report_result_name(int result);

/* The fields of a checked report. Strings point into the JSON document
 * it was read from and live as long as it does. */
struct ug_report {
	const char *terminal;             /* ug_rendezvous_id_check */
	enum ug_report_result result;
	uint64_t installed;               /* the version running after the attempt (0: none) */
	const char *channel;              /* NULL when absent */
	bool has_target;
	uint64_t target;
	uint64_t bytes, full_bytes, duration_ms;   /* 0 when absent */
	int64_t time;                     /* the terminal's clock; -1 when absent */
	int64_t received;                 /* the first server's clock; -1 when absent */
	const char *server;               /* NULL when absent or "" */
	const char *message;              /* NULL when absent */
	size_t nvia;                      /* servers in "via" (0: absent) */
};

/* Check a report and fill ret (which may be NULL). The rules: an object;
 * "terminal" a terminal id; "result" one of the four names; "installed",
 * "target", "bytes", "full_bytes", "duration_ms" integers >= 0; "time" and
 * "received" integers from 0 to UG_REPORT_TIME_MAX; "channel" a channel
 * name; "server" a server name (at most UG_PROTO_NAME_MAX bytes, no
 * control characters; "" for none); "message" a string of at most UG_REPORT_MESSAGE_MAX bytes
 * without NUL; "via" an array of 1..UG_REPORT_VIA_MAX server names; no
 * "relay" key. Returns 0, or -EINVAL with the reason in err ("report:
 * 'installed' must be an integer >= 0"), never quoting the client's
 * values. */
int ug_report_parse(json_t *doc, struct ug_report *ret, struct ug_error *err);

/* Make the stored form of a report that server `server` received at
 * `now`: a report straight from a terminal (relayed false) gets
 * "received" = now and "via" = [server], replacing any the terminal sent
 * (its word on the path is no evidence); a relayed report keeps its
 * "received" (adding now if absent) and gets server appended to its
 * "via". doc is changed in place, then checked (ug_report_parse) and
 * written as compact JSON: *ret_line (malloc'ed, NUL-terminated, no
 * newline) of *ret_len bytes, at most UG_REPORT_DIRECT_MAX bytes for a
 * terminal's report and UG_REPORT_LINE_MAX for a relayed one. Returns 0,
 * -EINVAL (a bad report), -E2BIG (too large), -ENOMEM; the reason in err. */
int ug_report_stamp(json_t *doc, const char *server, int64_t now, bool relayed,
		    char **ret_line, size_t *ret_len, struct ug_error *err);

/* Reads a reports file line by line through one buffer of
 * UG_REPORT_LINE_MAX + 1 bytes, whatever the file's size: the reader
 * never holds more than one line. */
struct ug_report_reader {
	int fd;                 /* not owned */
	bool take_partial;      /* return a last line that has no newline */
	uint64_t pos;           /* file offset of buf[0] */
	char *buf;
	size_t len, off;        /* bytes held in buf; start of the next line */
	bool eof;
};

/* Start reading fd at byte offset (it is lseek()ed there). take_partial:
 * also return a last line without newline (a reader of a file nobody is
 * writing); otherwise such a line is left for later (it may be a write in
 * progress). -ENOMEM, or -errno from lseek. */
int ug_report_reader_init(struct ug_report_reader *r, int fd, uint64_t offset,
			  bool take_partial);
void ug_report_reader_release(struct ug_report_reader *r);

#define UG_REPORT_LINE_LONG 2

/* The next line: 1 with *ret_line (NUL-terminated in the reader's buffer,
 * valid until the next call, newline removed) of *ret_len bytes;
 * UG_REPORT_LINE_LONG for a line longer than UG_REPORT_LINE_MAX, which has
 * been skipped (no line returned); 0 at the end. *ret_end is the file
 * offset just past the line and its newline, in all three cases: where
 * the next read starts. -errno for a read error. */
int ug_report_reader_next(struct ug_report_reader *r, char **ret_line, size_t *ret_len,
			  uint64_t *ret_end);

#endif
