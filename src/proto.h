/* proto.h - the upgrid wire protocol: framed messages (docs/protocol.md).
 *
 * Every message is one frame:
 *   u32  length      bytes that follow (type + payload), 1..UG_PROTO_FRAME_MAX
 *   u8   type        enum ug_msg_type
 *   ...  payload     fields in the order listed below, big-endian integers;
 *                    str = u32 length + bytes (no NUL), hash = 32 raw bytes
 * A frame longer than UG_PROTO_FRAME_MAX, a truncated frame, an unknown
 * type, a field that runs past the end of the frame, bytes left over after
 * the last field, or a field out of its range is a protocol error
 * (-EPROTO with the reason in err): the peer closes the connection.
 *
 * This module is the codec and nothing else: ug_msg_encode/ug_msg_decode
 * are pure (unit-testable), ug_proto_send/ug_proto_recv move whole frames
 * over a struct ug_conn (conn.h). The decoder is a trust boundary on both
 * sides: it never allocates more than one frame (bounded by the caller's
 * ug_buf) and never reads past the frame. */
#ifndef UG_PROTO_H
#define UG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hash.h"
#include "util.h"

struct ug_conn;

#define UG_PROTO_VERSION     1u
#define UG_PROTO_MAGIC       0x55475244u     /* "UGRD", first field of HELLO */
#define UG_PROTO_FRAME_MAX   (1u << 20)      /* bytes after the length field */
#define UG_PROTO_CHUNK       (256u << 10)    /* bytes of data in one DATA frame */
#define UG_PROTO_NAME_MAX    255u            /* client/server names */
#define UG_PROTO_TEXT_MAX    (64u << 10)     /* error messages, reports, stats */
#define UG_PROTO_VERSIONS_MAX 4096u          /* versions in one VERSIONS reply */
#define UG_PROTO_WAIT_MAX    3600u           /* seconds a WAIT may last */
#define UG_PROTO_RETRY_MAX   86400u          /* seconds in a BUSY retry-after */

enum ug_msg_type {
	/* session */
	UG_MSG_HELLO = 0x01,     /* c->s: magic, min_version, max_version, name */
	UG_MSG_WELCOME = 0x02,   /* s->c: version, flags, name */
	UG_MSG_BUSY = 0x03,      /* s->c: retry_after, text (instead of WELCOME) */
	UG_MSG_ERROR = 0x04,     /* s->c: code, text */
	UG_MSG_OK = 0x05,        /* s->c: (empty) */
	UG_MSG_BYE = 0x06,       /* c->s: (empty); the server exits */
	/* versions */
	UG_MSG_GET_REF = 0x10,   /* c->s: channel */
	UG_MSG_REF = 0x11,       /* s->c: channel, version (0: none yet) */
	UG_MSG_WAIT = 0x12,      /* c->s: channel, after, timeout; answered by REF */
	UG_MSG_LIST = 0x13,      /* c->s: channel */
	UG_MSG_VERSIONS = 0x14,  /* s->c: u32 n, u64 version[n] ascending */
	/* content */
	UG_MSG_GET = 0x20,       /* c->s: kind, channel, version, from, id, offset */
	UG_MSG_BLOB = 0x21,      /* s->c: total, offset; then DATA frames */
	UG_MSG_DATA = 0x22,      /* both: raw bytes, 1..UG_PROTO_CHUNK */
	UG_MSG_SIGDELTA = 0x23,  /* c->s: id, form, sig_len, offset; then DATA */
	/* fleet */
	UG_MSG_REPORT = 0x30,    /* c->s: text (JSON); answered by OK */
	UG_MSG_STATS = 0x31,     /* c->s: (empty); answered by STATS_REPLY */
	UG_MSG_STATS_REPLY = 0x32, /* s->c: text (JSON counters) */
};

/* What a GET names. */
enum ug_blob_kind {
	UG_BLOB_OBJECT = 1,    /* id: stored object (header + zstd frame) */
	UG_BLOB_DELTA = 2,     /* id: delta bytes */
	UG_BLOB_MANIFEST = 3,  /* channel, version: N.json */
	UG_BLOB_SIG = 4,       /* channel, version: N.json.sig */
	UG_BLOB_MDELTA = 5,    /* channel, from, version: N.from-M.zst; from 0:
				* N.json compressed without a prefix */
	UG_BLOB_ROLLOUT = 6,   /* channel, version: N.rollout (rollout.h) */
	UG_BLOB_ROLLOUT_SIG = 7, /* channel, version: N.rollout.sig */
};
#define UG_BLOB_KIND_MAX 7

/* What a SIGDELTA's output reproduces. */
enum ug_sig_form {
	UG_SIG_CONTENT = 0,    /* the file's content (terminals) */
	UG_SIG_STORED = 1,     /* the stored object bytes (server repair) */
};

/* ERROR codes. */
enum ug_proto_err {
	UG_PERR_NOTFOUND = 1,  /* no such ref, version, object or delta */
	UG_PERR_BADREQ = 2,    /* well-formed but invalid (offset past end) */
	UG_PERR_PROTO = 3,     /* malformed frame: the server closes */
	UG_PERR_DENIED = 4,    /* not allowed on this key (--read-only) */
	UG_PERR_INTERNAL = 5,  /* server-side failure (I/O) */
	UG_PERR_CORRUPT = 6,   /* the server's own copy failed its hash */
	UG_PERR_TOOBIG = 7,    /* over a limit (signature too large) */
	UG_PERR_VERSION = 8,   /* no common protocol version */
};
#define UG_PERR_MAX 8

/* WELCOME flags. */
#define UG_WELCOME_READ_ONLY 0x1u

/* One decoded message. Only the fields of msg.type are meaningful. text
 * and data point into the frame buffer passed to ug_msg_decode /
 * ug_proto_recv and are valid until it is reused; name and channel are
 * copied, NUL-terminated and validated (channel: ug_channel_check, or
 * empty where the message does not name one; name: printable UTF-8). */
struct ug_msg {
	enum ug_msg_type type;
	uint32_t min_version, max_version;     /* HELLO */
	uint32_t version;                      /* WELCOME: chosen version */
	uint32_t flags;                        /* WELCOME */
	uint32_t retry_after;                  /* BUSY, seconds */
	uint32_t code;                         /* ERROR: enum ug_proto_err */
	char name[UG_PROTO_NAME_MAX + 1];      /* HELLO, WELCOME */
	char channel[UG_CHANNEL_MAX + 1];      /* GET_REF, REF, WAIT, LIST, GET */
	uint64_t ver;                          /* REF, GET: version */
	uint64_t after;                        /* WAIT */
	uint32_t timeout;                      /* WAIT: seconds, <= UG_PROTO_WAIT_MAX */
	uint8_t kind;                          /* GET: enum ug_blob_kind */
	uint64_t from;                         /* GET (MDELTA) */
	struct ug_hash id;                     /* GET (OBJECT, DELTA), SIGDELTA */
	uint64_t offset;                       /* GET, BLOB, SIGDELTA */
	uint64_t total;                        /* BLOB */
	uint8_t form;                          /* SIGDELTA: enum ug_sig_form */
	uint64_t sig_len;                      /* SIGDELTA: <= UG_RSYNC_SIG_MAX */
	const uint64_t *versions_be;           /* VERSIONS: n big-endian u64s */
	uint32_t nversions;                    /* VERSIONS */
	const char *text;                      /* BUSY, ERROR, REPORT, STATS_REPLY */
	size_t text_len;                       /*   (not NUL-terminated) */
	const uint8_t *data;                   /* DATA */
	size_t data_len;
};

/* Encode m as one whole frame (length, type, payload) appended to out.
 * -EINVAL for a field out of range (the same rules decode enforces), so a
 * bug cannot put a frame on the wire that the peer would refuse. */
int ug_msg_encode(const struct ug_msg *m, struct ug_buf *out);

/* Decode one frame's type + payload (p, n: the bytes after the length
 * field). -EPROTO with the reason in err for anything malformed. */
int ug_msg_decode(const uint8_t *p, size_t n, struct ug_msg *ret, struct ug_error *err);

/* Version i (0-based) of a decoded VERSIONS message. */
uint64_t ug_msg_version_at(const struct ug_msg *m, uint32_t i);

/* Name of a message type / error code for logs ("GET", "notfound");
 * "unknown" for anything else. */
const char *ug_msg_type_name(unsigned type);
const char *ug_proto_err_name(unsigned code);

/* Send one message / one DATA frame (n <= UG_PROTO_CHUNK). */
int ug_proto_send(struct ug_conn *c, const struct ug_msg *m);
int ug_proto_send_data(struct ug_conn *c, const void *p, size_t n);

/* Read one frame into frame (reset first; its max must be at least
 * UG_PROTO_FRAME_MAX) and decode it into ret. Returns 0, -EPIPE on a clean
 * end of stream before the first byte of a frame, -EPROTO for a malformed or
 * truncated frame (reason in err), -ETIMEDOUT, or the transport's -errno. */
int ug_proto_recv(struct ug_conn *c, struct ug_buf *frame, struct ug_msg *ret,
		  struct ug_error *err);

#endif
