/* test-serve.c - unit tests for syncd/serve.c: the server side of the
 * replication protocol, driven over a socketpair with the real codec.
 *
 * Each test builds a small repo with the real library (two published
 * versions of a tree, so objects, deltas, manifests and a manifest delta
 * exist), runs ug_serve() in a thread on one end of a socketpair and talks
 * to it with ug_proto_send / ug_proto_recv on the other. */
#include "config.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "delta.h"
#include "hash.h"
#include "proto.h"
#include "publish.h"
#include "report.h"
#include "serve.h"
#include "sign.h"
#include "store.h"

/* Each Criterion test runs in its own forked process, so this per-test
 * state is private to the test using it. */
#include "tmpdir.h"

#define CHANNEL "stable"
#define APP_SIZE (600u << 10)   /* > 2 DATA frames, random: stored as is */

static char repo[128], tree[128];
static struct ug_hash app1, app2;       /* object ids of bin/app in v1, v2 */
static uint8_t *app2_data;              /* bin/app in v2 */
static struct ug_buf F;                 /* the client's frame buffer */

/* ---------------------------------------------------------------- repo */

static void path_in(char *out, size_t n, const char *base, const char *rel)
{
	int k = snprintf(out, n, "%s/%s", base, rel);
	cr_assert(k > 0 && (size_t)k < n);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "open '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, p, n), 0);
	close(fd);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
}

static uint8_t *read_all(const char *path, size_t *ret_len)
{
	char *data;
	size_t len;
	int r = ug_file_read(AT_FDCWD, path, 1u << 30, &data, &len);

	cr_assert_eq(r, 0, "read '%s': %s", path, strerror(-r));
	*ret_len = len;
	return (uint8_t *)data;
}

static void object_path(char *out, size_t n, const char *kind, const struct ug_hash *h)
{
	char hex[UG_HASH_HEX_LEN + 1];

	ug_hash_hex(h, hex);
	snprintf(out, n, "%s/%s/%.2s/%s", repo, kind, hex, hex + 2);
}

static void publish(struct ug_store *s, const struct ug_seckey *key, uint64_t want)
{
	struct ug_publish_opts o = { .tree = tree, .channel = CHANNEL, .key = key };
	struct ug_publish_result res;
	struct ug_error e = { "" };

	memset(&res, 0, sizeof(res));
	cr_assert_eq(ug_publish(s, &o, &res, &e), 0, "publish: %s", e.msg);
	cr_assert_eq(res.version, want);
}

static void setup(void)
{
	struct ug_error e = { "" };
	struct ug_seckey key;
	struct ug_store *s;
	char p[256];

	/* a server writing to a client that went away must see EPIPE */
	signal(SIGPIPE, SIG_IGN);
	ug_test_tmp_make("serve");
	ug_buf_init(&F, UG_PROTO_FRAME_MAX);
	path_in(repo, sizeof(repo), tmpdir, "repo");
	path_in(tree, sizeof(tree), tmpdir, "tree");
	cr_assert_eq(ug_store_create(repo, &e), 0, "create: %s", e.msg);
	cr_assert_eq(ug_store_open(repo, &s, &e), 0, "open: %s", e.msg);
	/* level 19 costs ~0.1 s per context; the format does not care */
	s->cfg.level = 1;
	s->cfg.fallback_level = 1;
	s->cfg.threads = 1;
	cr_assert_eq(ug_key_generate(&key), 0);

	cr_assert_eq(mkdir(tree, 0755), 0);
	path_in(p, sizeof(p), tree, "bin");
	cr_assert_eq(mkdir(p, 0755), 0);
	path_in(p, sizeof(p), tree, "etc");
	cr_assert_eq(mkdir(p, 0755), 0);
	app2_data = malloc(APP_SIZE);
	cr_assert_not_null(app2_data);
	fill_random(app2_data, APP_SIZE, 1);
	path_in(p, sizeof(p), tree, "bin/app");
	write_file(p, app2_data, APP_SIZE);
	ug_hash_buf(app2_data, APP_SIZE, &app1, NULL);
	path_in(p, sizeof(p), tree, "etc/app.ini");
	write_file(p, "[main]\nkey = 1\n", 15);
	path_in(p, sizeof(p), tree, "README");
	write_file(p, "hello\n", 6);
	publish(s, &key, 1);

	/* v2: an edit in the middle of the binary, a changed config */
	memcpy(app2_data + APP_SIZE / 2, "PATCHED-BYTES", 13);
	path_in(p, sizeof(p), tree, "bin/app");
	write_file(p, app2_data, APP_SIZE);
	ug_hash_buf(app2_data, APP_SIZE, &app2, NULL);
	path_in(p, sizeof(p), tree, "etc/app.ini");
	write_file(p, "[main]\nkey = 2\n", 15);
	publish(s, &key, 2);
	ug_store_free(s);
	sodium_memzero(&key, sizeof(key));
}

static void teardown(void)
{
	free(app2_data);
	app2_data = NULL;
	ug_buf_release(&F);
	ug_test_tmp_remove();
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 30);

/* ---------------------------------------------------------------- server */

struct server {
	pthread_t th;
	int fd;                 /* the server's end */
	int cfd;                /* the client's end */
	struct ug_serve_opts o;
	int rc;
	struct ug_error err;
	char log[16384];
	size_t loglen;
};

static void log_cb(void *ctx, int level, const char *line)
{
	struct server *srv = ctx;
	int n;

	(void)level;
	n = snprintf(srv->log + srv->loglen, sizeof(srv->log) - srv->loglen, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(srv->log) - srv->loglen)
		srv->loglen += (size_t)n;
}

static void *server_main(void *arg)
{
	struct server *srv = arg;

	srv->rc = ug_serve(&srv->o, srv->fd, srv->fd, &srv->err);
	close(srv->fd);
	return NULL;
}

static struct ug_conn *start_opts(struct server *srv, bool read_only, unsigned max, int idle)
{
	struct ug_conn *c;
	int sv[2];

	memset(srv, 0, sizeof(*srv));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	srv->fd = sv[1];
	srv->cfd = sv[0];
	srv->o.repo = repo;
	srv->o.name = "test-server";
	srv->o.read_only = read_only;
	srv->o.max_sessions = max;
	srv->o.retry_after = 7;
	srv->o.idle_timeout_s = idle;
	srv->o.log = log_cb;
	srv->o.log_ctx = srv;
	cr_assert_eq(pthread_create(&srv->th, NULL, server_main, srv), 0);
	/* not owned: the conn would close the one fd twice (as rfd and wfd),
	 * and the second close could hit a descriptor the server just got */
	cr_assert_eq(ug_conn_fd_new(sv[0], sv[0], false, &c), 0);
	c->timeout_ms = 10000; /* a broken server fails the test, never hangs it */
	return c;
}

static struct ug_conn *start(struct server *srv)
{
	return start_opts(srv, false, 0, 10);
}

/* Close the client's end and wait for the server; its return value. */
static int finish(struct server *srv, struct ug_conn *c)
{
	ug_conn_close(c);
	close(srv->cfd);
	cr_assert_eq(pthread_join(srv->th, NULL), 0);
	return srv->rc;
}

/* ---------------------------------------------------------------- client */

static void csend(struct ug_conn *c, const struct ug_msg *m)
{
	int r = ug_proto_send(c, m);

	cr_assert_eq(r, 0, "send %s: %s", ug_msg_type_name(m->type), strerror(-r));
}

static struct ug_msg crecv(struct ug_conn *c)
{
	struct ug_error e = { "" };
	struct ug_msg m;
	int r = ug_proto_recv(c, &F, &m, &e);

	cr_assert_eq(r, 0, "recv: %s (%s)", strerror(-r), e.msg);
	return m;
}

static void hello(struct ug_conn *c)
{
	struct ug_msg m = { .type = UG_MSG_HELLO, .min_version = 1, .max_version = 1 };

	snprintf(m.name, sizeof(m.name), "test-client");
	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_WELCOME, "got %s", ug_msg_type_name(m.type));
	cr_assert_eq(m.version, 1);
	cr_assert_str_eq(m.name, "test-server");
}

static void bye(struct ug_conn *c)
{
	struct ug_msg m = { .type = UG_MSG_BYE };

	csend(c, &m);
}

/* The next message is ERROR code; its text (copied) must contain want. */
static void expect_error(struct ug_conn *c, uint32_t code, const char *want)
{
	struct ug_msg m = crecv(c);
	char text[2048];

	cr_assert_eq(m.type, UG_MSG_ERROR, "got %s, expected ERROR", ug_msg_type_name(m.type));
	snprintf(text, sizeof(text), "%.*s", (int)m.text_len, m.text);
	cr_assert_eq(m.code, code, "error code %u (%s), expected %u", m.code, text, code);
	cr_assert_not_null(strstr(text, want), "error '%s' does not say '%s'", text, want);
}

static uint64_t get_ref(struct ug_conn *c, const char *channel)
{
	struct ug_msg m = { .type = UG_MSG_GET_REF };

	snprintf(m.channel, sizeof(m.channel), "%s", channel);
	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_REF, "got %s", ug_msg_type_name(m.type));
	cr_assert_str_eq(m.channel, channel);
	return m.ver;
}

/* Read BLOB + DATA frames after a request; the bytes (malloc'ed). */
static uint8_t *read_blob(struct ug_conn *c, uint64_t *ret_total, uint64_t *ret_offset,
			  size_t *ret_len, unsigned *ret_frames)
{
	struct ug_msg m = crecv(c);
	uint64_t total, got = 0;
	unsigned frames = 0;
	uint8_t *out;

	cr_assert_eq(m.type, UG_MSG_BLOB, "got %s, expected BLOB%s%.*s", ug_msg_type_name(m.type),
		     m.type == UG_MSG_ERROR ? ": " : "", m.type == UG_MSG_ERROR ? (int)m.text_len : 0,
		     m.type == UG_MSG_ERROR ? m.text : "");
	total = m.total;
	*ret_offset = m.offset;
	cr_assert_leq(m.offset, total);
	out = malloc(total - m.offset + 1);
	cr_assert_not_null(out);
	while (got < total - *ret_offset) {
		m = crecv(c);
		cr_assert_eq(m.type, UG_MSG_DATA, "got %s in a blob", ug_msg_type_name(m.type));
		cr_assert_leq(m.data_len, UG_PROTO_CHUNK);
		cr_assert_leq(m.data_len, total - *ret_offset - got, "DATA past the blob's end");
		memcpy(out + got, m.data, m.data_len);
		got += m.data_len;
		frames++;
	}
	*ret_total = total;
	*ret_len = (size_t)got;
	if (ret_frames)
		*ret_frames = frames;
	return out;
}

static uint8_t *get_blob(struct ug_conn *c, const struct ug_msg *req, uint64_t *ret_total,
			 size_t *ret_len, unsigned *ret_frames)
{
	uint64_t off;
	uint8_t *p;

	csend(c, req);
	p = read_blob(c, ret_total, &off, ret_len, ret_frames);
	cr_assert_eq(off, req->offset);
	return p;
}

static void assert_same_as_file(const uint8_t *p, size_t n, const char *path, uint64_t offset)
{
	size_t flen;
	uint8_t *f = read_all(path, &flen);

	cr_assert_eq(n + offset, flen, "'%s': got %zu bytes from %" PRIu64 ", file has %zu",
		     path, n, offset, flen);
	cr_assert(memcmp(p, f + offset, n) == 0, "'%s': bytes differ", path);
	free(f);
}

static json_t *stats_doc(void)
{
	struct ug_error e = { "" };
	json_t *doc;
	char *text;

	cr_assert_eq(ug_serve_stats_read(repo, &text, &e), 0, "stats: %s", e.msg);
	doc = json_loads(text, 0, NULL);
	free(text);
	cr_assert(json_is_object(doc));
	return doc;
}

static json_int_t stat_of(json_t *doc, const char *key, const char *sub)
{
	json_t *v = json_object_get(doc, key);

	if (sub)
		v = json_object_get(json_object_get(json_object_get(doc, "sent"), key), sub);
	cr_assert(json_is_integer(v), "stats: no %s%s%s", key, sub ? "." : "", sub ? sub : "");
	return json_integer_value(v);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- session */

Test(serve, hello_welcome_bye)
{
	struct server srv;
	struct ug_conn *c = start(&srv);

	hello(c);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0, "%s", srv.err.msg);
	cr_assert_not_null(strstr(srv.log, "session from 'test-client' ended: 0 requests,"),
			   "log: %s", srv.log);
	cr_assert_not_null(strstr(srv.log, "bytes out"), "log: %s", srv.log);
}

Test(serve, eof_before_hello_is_a_normal_end)
{
	struct server srv;
	struct ug_conn *c = start(&srv);

	cr_assert_eq(finish(&srv, c), 0, "%s", srv.err.msg);
}

Test(serve, version_mismatch)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_HELLO, .min_version = 2, .max_version = 3 };

	snprintf(m.name, sizeof(m.name), "future-client");
	csend(c, &m);
	expect_error(c, UG_PERR_VERSION,
		     "no common protocol version: server speaks 1..1, client 2..3");
	cr_assert_eq(finish(&srv, c), -EPROTO);
	cr_assert_not_null(strstr(srv.err.msg, "no common protocol version"), "%s", srv.err.msg);
}

Test(serve, welcome_says_read_only)
{
	struct server srv;
	struct ug_conn *c = start_opts(&srv, true, 0, 10);
	struct ug_msg m = { .type = UG_MSG_HELLO, .min_version = 1, .max_version = 5 };

	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_WELCOME);
	cr_assert_eq(m.version, 1, "highest common version");
	cr_assert_eq(m.flags, UG_WELCOME_READ_ONLY);
	cr_assert_eq(finish(&srv, c), 0);
}

/* ---------------------------------------------------------------- refs */

Test(serve, get_ref_and_list)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_LIST };

	hello(c);
	cr_assert_eq(get_ref(c, CHANNEL), 2);
	cr_assert_eq(get_ref(c, "nothing-here"), 0, "no ref is version 0");

	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_VERSIONS);
	cr_assert_eq(m.nversions, 2);
	cr_assert_eq(ug_msg_version_at(&m, 0), 1);
	cr_assert_eq(ug_msg_version_at(&m, 1), 2);

	m = (struct ug_msg){ .type = UG_MSG_LIST };
	snprintf(m.channel, sizeof(m.channel), "nothing-here");
	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_VERSIONS);
	cr_assert_eq(m.nversions, 0);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	cr_assert_not_null(strstr(srv.log, "ended: 4 requests"), "log: %s", srv.log);
}

Test(serve, wait_times_out_with_current_ref)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_WAIT, .after = 2, .timeout = 1 };
	double t0, dt;

	hello(c);
	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	t0 = now_s();
	csend(c, &m);
	m = crecv(c);
	dt = now_s() - t0;
	cr_assert_eq(m.type, UG_MSG_REF);
	cr_assert_eq(m.ver, 2);
	cr_assert_geq(dt, 0.9, "WAIT returned after %.2f s", dt);
	cr_assert_lt(dt, 4.0, "WAIT returned after %.2f s", dt);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, wait_woken_by_ref_move)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_WAIT, .after = 2, .timeout = 20 };
	struct ug_error e = { "" };
	struct ug_store *s;
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	double t0, dt;

	hello(c);
	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	t0 = now_s();
	csend(c, &m);
	nanosleep(&ts, NULL);
	cr_assert_eq(ug_store_open(repo, &s, &e), 0, "%s", e.msg);
	cr_assert_eq(ug_store_ref_write(s, CHANNEL, 3), 0);
	ug_store_free(s);
	m = crecv(c);
	dt = now_s() - t0;
	cr_assert_eq(m.type, UG_MSG_REF);
	cr_assert_eq(m.ver, 3);
	cr_assert_lt(dt, 3.0, "woken after %.2f s", dt);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, wait_ends_when_the_client_goes_away)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_WAIT, .after = 2, .timeout = 600 };
	double t0, dt;

	hello(c);
	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	csend(c, &m);
	t0 = now_s();
	/* the session slot must not stay taken for the WAIT's 10 minutes */
	cr_assert_eq(finish(&srv, c), 0, "%s", srv.err.msg);
	dt = now_s() - t0;
	cr_assert_lt(dt, 4.0, "server noticed after %.2f s", dt);
	cr_assert_not_null(strstr(srv.log, "went away during WAIT"), "log: %s", srv.log);
}

/* ---------------------------------------------------------------- GET */

Test(serve, get_each_kind_byte_exact)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_error e = { "" };
	struct ug_store *s;
	struct ug_hash *deltas;
	size_t ndeltas, n;
	uint64_t total;
	unsigned frames;
	uint8_t *p;
	char path[512];
	struct ug_msg m;

	cr_assert_eq(ug_store_open(repo, &s, &e), 0, "%s", e.msg);
	cr_assert_eq(ug_store_list(s, UG_STORE_DELTAS, &deltas, &ndeltas), 0);
	ug_store_free(s);
	cr_assert_geq(ndeltas, 1, "publish made no delta");
	hello(c);

	/* an object: its stored bytes, in several DATA frames */
	m = (struct ug_msg){ .type = UG_MSG_GET, .kind = UG_BLOB_OBJECT, .id = app2 };
	p = get_blob(c, &m, &total, &n, &frames);
	object_path(path, sizeof(path), "objects", &app2);
	assert_same_as_file(p, n, path, 0);
	cr_assert_gt(total, 2 * UG_PROTO_CHUNK);
	cr_assert_geq(frames, 3, "%u DATA frames for %" PRIu64 " bytes", frames, total);
	free(p);

	for (size_t i = 0; i < ndeltas; i++) {
		m = (struct ug_msg){ .type = UG_MSG_GET, .kind = UG_BLOB_DELTA, .id = deltas[i] };
		p = get_blob(c, &m, &total, &n, NULL);
		object_path(path, sizeof(path), "deltas", &deltas[i]);
		assert_same_as_file(p, n, path, 0);
		free(p);
	}
	free(deltas);

	m = (struct ug_msg){ .type = UG_MSG_GET, .kind = UG_BLOB_MANIFEST, .ver = 2 };
	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	p = get_blob(c, &m, &total, &n, NULL);
	snprintf(path, sizeof(path), "%s/manifests/" CHANNEL "/2.json", repo);
	assert_same_as_file(p, n, path, 0);
	free(p);

	m.kind = UG_BLOB_SIG;
	p = get_blob(c, &m, &total, &n, NULL);
	snprintf(path, sizeof(path), "%s/manifests/" CHANNEL "/2.json.sig", repo);
	assert_same_as_file(p, n, path, 0);
	free(p);

	m.kind = UG_BLOB_MDELTA;
	m.from = 1;
	p = get_blob(c, &m, &total, &n, NULL);
	snprintf(path, sizeof(path), "%s/manifests/" CHANNEL "/2.from-1.zst", repo);
	assert_same_as_file(p, n, path, 0);
	free(p);

	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, get_resumes_at_offset)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_GET, .kind = UG_BLOB_OBJECT, .id = app2 };
	char path[512];
	uint64_t total, full;
	size_t n;
	uint8_t *p;

	hello(c);
	object_path(path, sizeof(path), "objects", &app2);
	p = get_blob(c, &m, &full, &n, NULL);
	free(p);

	m.offset = full / 2 + 3;
	p = get_blob(c, &m, &total, &n, NULL);
	cr_assert_eq(total, full);
	cr_assert_eq(n, full - m.offset);
	assert_same_as_file(p, n, path, m.offset);
	free(p);

	/* at the very end: a BLOB without DATA, and the session goes on */
	m.offset = full;
	p = get_blob(c, &m, &total, &n, NULL);
	cr_assert_eq(n, 0);
	free(p);
	cr_assert_eq(get_ref(c, CHANNEL), 2);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, offset_past_end_is_badreq_and_session_continues)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_GET, .kind = UG_BLOB_MANIFEST, .ver = 1 };
	char path[512], want[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/manifests/" CHANNEL "/1.json", repo);
	cr_assert_eq(stat(path, &st), 0);
	hello(c);
	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	m.offset = (uint64_t)st.st_size + 1;
	csend(c, &m);
	snprintf(want, sizeof(want), "offset %" PRIu64 " is past the end of manifest '" CHANNEL
		 "' version 1 (%" PRIu64 " bytes)", m.offset, (uint64_t)st.st_size);
	expect_error(c, UG_PERR_BADREQ, want);
	cr_assert_eq(get_ref(c, CHANNEL), 2);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, unknown_things_are_notfound)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_GET, .kind = UG_BLOB_OBJECT };
	char hex[UG_HASH_HEX_LEN + 1], want[128];

	memset(m.id.b, 0x3f, sizeof(m.id.b));
	ug_hash_hex(&m.id, hex);
	hello(c);
	csend(c, &m);
	snprintf(want, sizeof(want), "object %s not found", hex);
	expect_error(c, UG_PERR_NOTFOUND, want);

	m.kind = UG_BLOB_DELTA;
	csend(c, &m);
	snprintf(want, sizeof(want), "delta %s not found", hex);
	expect_error(c, UG_PERR_NOTFOUND, want);

	m = (struct ug_msg){ .type = UG_MSG_GET, .kind = UG_BLOB_MANIFEST, .ver = 9 };
	snprintf(m.channel, sizeof(m.channel), CHANNEL);
	csend(c, &m);
	expect_error(c, UG_PERR_NOTFOUND, "manifest '" CHANNEL "' version 9 not found");

	m.kind = UG_BLOB_MDELTA;
	m.from = 1;
	m.ver = 3;
	csend(c, &m);
	expect_error(c, UG_PERR_NOTFOUND, "manifest delta '" CHANNEL "' 1 -> 3 not found");

	cr_assert_eq(get_ref(c, CHANNEL), 2);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, corrupt_object_header_is_corrupt)
{
	struct server srv;
	struct ug_conn *c;
	struct ug_msg m = { .type = UG_MSG_GET, .kind = UG_BLOB_OBJECT, .id = app1 };
	char path[512];
	int fd;

	object_path(path, sizeof(path), "objects", &app1);
	chmod(path, 0644);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "XXXX", 4, 0), 4);
	close(fd);
	c = start(&srv);
	hello(c);
	csend(c, &m);
	expect_error(c, UG_PERR_CORRUPT, "is corrupt");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	cr_assert_not_null(strstr(srv.log, "corrupt"), "log: %s", srv.log);
}

/* ---------------------------------------------------------------- SIGDELTA */

/* Send SIGDELTA + the signature in DATA frames of at most chunk bytes. */
static void send_sigdelta(struct ug_conn *c, const struct ug_hash *id, uint8_t form,
			  const uint8_t *sig, size_t sig_len, uint64_t offset, size_t chunk)
{
	struct ug_msg m = { .type = UG_MSG_SIGDELTA, .id = *id, .form = form,
			    .sig_len = sig_len, .offset = offset };

	csend(c, &m);
	for (size_t off = 0; off < sig_len; off += chunk) {
		size_t n = sig_len - off < chunk ? sig_len - off : chunk;
		cr_assert_eq(ug_proto_send_data(c, sig + off, n), 0);
	}
}

/* The librsync signature of path's content (malloc'ed). */
static uint8_t *signature_of(const char *path, size_t *ret_len)
{
	char sp[512];
	int in, out;
	uint8_t *sig;

	snprintf(sp, sizeof(sp), "%s.sig", path);
	in = open(path, O_RDONLY | O_CLOEXEC);
	out = open(sp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(in >= 0 && out >= 0);
	cr_assert_eq(ug_delta_rsync_signature(in, out, NULL), 0);
	close(in);
	close(out);
	sig = read_all(sp, ret_len);
	return sig;
}

/* Apply an rsync delta to base_path; the result (malloc'ed). */
static uint8_t *apply_delta(const char *base_path, const uint8_t *delta, size_t dlen,
			    uint64_t expect)
{
	char dp[512], op[512];
	int base, dfd, ofd;
	size_t n;
	uint8_t *out;

	snprintf(dp, sizeof(dp), "%s/delta", tmpdir);
	snprintf(op, sizeof(op), "%s/out", tmpdir);
	write_file(dp, delta, dlen);
	base = open(base_path, O_RDONLY | O_CLOEXEC);
	dfd = open(dp, O_RDONLY | O_CLOEXEC);
	ofd = open(op, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(base >= 0 && dfd >= 0 && ofd >= 0);
	cr_assert_eq(ug_delta_rsync_apply(base, dfd, ofd, expect), 0);
	close(base);
	close(dfd);
	close(ofd);
	out = read_all(op, &n);
	cr_assert_eq(n, expect);
	return out;
}

Test(serve, sigdelta_content_round_trip_and_cache)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	char drifted[512];
	uint8_t *copy, *sig, *delta, *delta2, *out;
	size_t sig_len, dlen, dlen2;
	uint64_t total, total2, off;
	json_t *st;

	/* a terminal's copy of v2 that drifted: a few bytes changed */
	copy = malloc(APP_SIZE);
	cr_assert_not_null(copy);
	memcpy(copy, app2_data, APP_SIZE);
	memcpy(copy + 1000, "drift", 5);
	memcpy(copy + APP_SIZE - 7000, "more drift", 10);
	snprintf(drifted, sizeof(drifted), "%s/drifted", tmpdir);
	write_file(drifted, copy, APP_SIZE);
	free(copy);
	sig = signature_of(drifted, &sig_len);

	hello(c);
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, sig_len, 0, 1000);
	delta = read_blob(c, &total, &off, &dlen, NULL);
	cr_assert_eq(off, 0);
	cr_assert_eq(dlen, total);
	cr_assert_lt(dlen, APP_SIZE / 4, "a %zu-byte delta for a few changed bytes", dlen);
	out = apply_delta(drifted, delta, dlen, APP_SIZE);
	cr_assert(memcmp(out, app2_data, APP_SIZE) == 0, "patched copy differs from v2");
	free(out);

	/* the same signature again, resuming half-way: served from the cache */
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, sig_len, total / 2, UG_PROTO_CHUNK);
	delta2 = read_blob(c, &total2, &off, &dlen2, NULL);
	cr_assert_eq(total2, total);
	cr_assert_eq(off, total / 2);
	cr_assert(memcmp(delta2, delta + total / 2, dlen2) == 0);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0, "%s", srv.err.msg);

	st = stats_doc();
	cr_assert_eq(stat_of(st, "sigdelta_cache_hits", NULL), 1);
	cr_assert_eq(stat_of(st, "sigdelta", "count"), 2);
	cr_assert_eq(stat_of(st, "sigdelta", "bytes"), (json_int_t)(dlen + dlen2));
	json_decref(st);
	free(delta);
	free(delta2);
	free(sig);
}

Test(serve, sigdelta_stored_form)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	char base[512], target[512];
	uint8_t *sig, *delta, *out, *want;
	size_t sig_len, dlen, wlen;
	uint64_t total, off;

	/* a server repairing its copy of app2's object from app1's */
	object_path(base, sizeof(base), "objects", &app1);
	object_path(target, sizeof(target), "objects", &app2);
	want = read_all(target, &wlen);
	sig = signature_of(base, &sig_len);
	hello(c);
	send_sigdelta(c, &app2, UG_SIG_STORED, sig, sig_len, 0, UG_PROTO_CHUNK);
	delta = read_blob(c, &total, &off, &dlen, NULL);
	out = apply_delta(base, delta, dlen, wlen);
	cr_assert(memcmp(out, want, wlen) == 0, "rebuilt stored object differs");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	free(out);
	free(want);
	free(delta);
	free(sig);
}

static void sig_header(uint8_t *p, uint32_t magic, uint32_t block, uint32_t strong)
{
	uint32_t v[3] = { magic, block, strong };

	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 4; k++)
			p[4 * i + k] = (uint8_t)(v[i] >> (24 - 8 * k));
}

Test(serve, sigdelta_refuses_bad_signatures)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	uint8_t sig[64];
	struct ug_hash unknown;

	memset(sig, 0, sizeof(sig));
	hello(c);
	/* MD4 (CVE-2014-8242) */
	sig_header(sig, 0x72730136u, 2048, 8);
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, sizeof(sig), 0, 16);
	expect_error(c, UG_PERR_BADREQ, "magic 0x72730136");
	/* tiny blocks */
	sig_header(sig, 0x72730147u, 128, 8);
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, sizeof(sig), 0, 64);
	expect_error(c, UG_PERR_BADREQ, "block length 128 is below the minimum of 256");
	/* shorter than the header */
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, 5, 0, 64);
	expect_error(c, UG_PERR_BADREQ, "shorter than its 12-byte header");
	/* an unknown object: the signature is still taken off the wire */
	memset(unknown.b, 0x42, sizeof(unknown.b));
	sig_header(sig, 0x72730147u, 2048, 8);
	send_sigdelta(c, &unknown, UG_SIG_CONTENT, sig, sizeof(sig), 0, 10);
	expect_error(c, UG_PERR_NOTFOUND, "not found");
	/* a good header with a body that is not a whole number of blocks */
	sig_header(sig, 0x72730147u, 2048, 8);
	memset(sig + 12, 0xab, 7);
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, 19, 0, 64);
	expect_error(c, UG_PERR_BADREQ, "garbled");
	/* still in step */
	cr_assert_eq(get_ref(c, CHANNEL), 2);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0, "%s", srv.err.msg);
}

Test(serve, sigdelta_with_too_much_data_is_a_protocol_error)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_SIGDELTA, .id = app2, .form = UG_SIG_CONTENT,
			    .sig_len = 100 };
	uint8_t data[200];

	memset(data, 0, sizeof(data));
	hello(c);
	csend(c, &m);
	cr_assert_eq(ug_proto_send_data(c, data, sizeof(data)), 0);
	expect_error(c, UG_PERR_PROTO, "more than the announced 100 signature bytes");
	cr_assert_eq(finish(&srv, c), -EPROTO);
	cr_assert_not_null(strstr(srv.err.msg, "more than the announced"), "%s", srv.err.msg);
}

Test(serve, sigdelta_interrupted_by_another_message_is_a_protocol_error)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_SIGDELTA, .id = app2, .form = UG_SIG_CONTENT,
			    .sig_len = 100 };
	uint8_t data[40];

	memset(data, 0, sizeof(data));
	hello(c);
	csend(c, &m);
	cr_assert_eq(ug_proto_send_data(c, data, sizeof(data)), 0);
	m = (struct ug_msg){ .type = UG_MSG_STATS };
	csend(c, &m);
	expect_error(c, UG_PERR_PROTO, "expected DATA after 40 of 100 signature bytes, got STATS");
	cr_assert_eq(finish(&srv, c), -EPROTO);
}

/* ---------------------------------------------------------------- fleet */

static void report(struct ug_conn *c, const char *text)
{
	struct ug_msg m = { .type = UG_MSG_REPORT, .text = text, .text_len = strlen(text) };

	csend(c, &m);
}

/* The reports file's lines, parsed; *ret_n of them (the array and its
 * documents are the caller's to free with free_lines). */
static json_t **report_lines(size_t *ret_n)
{
	char path[512];
	uint8_t *f;
	size_t n, count = 0;
	json_t **docs;
	char *p, *nl;

	snprintf(path, sizeof(path), "%s/reports/reports.jsonl", repo);
	f = read_all(path, &n);
	docs = calloc(n + 1, sizeof(*docs));
	cr_assert_not_null(docs);
	for (p = (char *)f; (nl = strchr(p, '\n')); p = nl + 1) {
		json_error_t jerr;
		docs[count] = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
		cr_assert_not_null(docs[count], "stored line %zu is not JSON: %s", count + 1, jerr.text);
		*nl = '\0';
		cr_assert(!strstr(p, "\": ") && !strstr(p, ", \""), "stored line %zu is not compact: %s",
			  count + 1, p);
		count++;
	}
	cr_assert_eq(*p, '\0', "the file does not end with a newline");
	free(f);
	*ret_n = count;
	return docs;
}

static void free_lines(json_t **docs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(docs[i]);
	free(docs);
}

static const char *str_of(json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

static json_int_t int_of(json_t *doc, const char *key)
{
	json_t *v = json_object_get(doc, key);

	cr_assert(json_is_integer(v), "no integer '%s'", key);
	return json_integer_value(v);
}

/* Send text as a REPORT; expect OK. */
static void report_ok(struct ug_conn *c, const char *text)
{
	struct ug_msg m;

	report(c, text);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_OK, "REPORT %s: got %s%s%.*s", text, ug_msg_type_name(m.type),
		     m.type == UG_MSG_ERROR ? ": " : "", m.type == UG_MSG_ERROR ? (int)m.text_len : 0,
		     m.type == UG_MSG_ERROR ? m.text : "");
}

Test(serve, report_appends_one_line)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	int64_t before = ug_now();
	json_t **docs, *via;
	size_t n;

	hello(c);
	report_ok(c, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":2,\"target\":2}");
	/* spread over lines by the client: still one line in the file; what
	 * a terminal says of "received" and "via" is replaced */
	report_ok(c, "{\n  \"terminal\": \"t2\",\n  \"result\": \"failed\", \"installed\": 1,\n"
		  "  \"message\": \"hash mismatch\", \"received\": 5, \"via\": [\"forged\"]\n}\n");
	report(c, "this is not json");
	expect_error(c, UG_PERR_BADREQ, "report is not JSON");
	report(c, "[1, 2]");
	expect_error(c, UG_PERR_BADREQ, "not a JSON object");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);

	docs = report_lines(&n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(str_of(docs[0], "terminal"), "t1");
	cr_assert_eq(int_of(docs[0], "target"), 2);
	cr_assert_str_eq(str_of(docs[1], "terminal"), "t2");
	cr_assert_str_eq(str_of(docs[1], "message"), "hash mismatch");
	for (size_t i = 0; i < n; i++) {
		cr_assert_geq(int_of(docs[i], "received"), before);
		cr_assert_leq(int_of(docs[i], "received"), ug_now());
		via = json_object_get(docs[i], "via");
		cr_assert_eq(json_array_size(via), 1);
		cr_assert_str_eq(json_string_value(json_array_get(via, 0)), "test-server");
	}
	free_lines(docs, n);
}

Test(serve, hostile_reports_are_refused_and_the_session_goes_on)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "{\"result\":\"ok\",\"installed\":1}", "no 'terminal'" },
		{ "{\"terminal\":\"t 1\",\"result\":\"ok\",\"installed\":1}", "not printable ASCII" },
		{ "{\"terminal\":\"t\\u0000\",\"result\":\"ok\",\"installed\":1}", "not JSON" },
		{ "{\"terminal\":[\"t1\"],\"result\":\"ok\",\"installed\":1}", "'terminal' must be a string" },
		{ "{\"terminal\":\"t1\",\"result\":\"exploded\",\"installed\":1}", "'result' must be one of" },
		{ "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":\"43\"}", "'installed' must be an integer" },
		{ "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":99999999999999999999}", "not JSON" },
		{ "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1,\"time\":-3}", "'time'" },
		{ "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1,\"channel\":\"../../etc\"}", "'channel'" },
		{ "{\"terminal\":\"t1\",\"result\":\"ok\",\"terminal\":\"t2\",\"installed\":1}", "not JSON" },
		{ "{\"relay\":[{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1}],\"x\":1}",
		  "'relay' and nothing else" },
		{ "{\"relay\":[]}", "1 to 1024 reports" },
		{ "{\"relay\":{}}", "1 to 1024 reports" },
	};
	struct server srv;
	struct ug_conn *c = start(&srv);
	char *huge = malloc(UG_PROTO_TEXT_MAX + 1);
	size_t n;
	json_t **docs;

	cr_assert_not_null(huge);
	hello(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		report(c, bad[i].text);
		expect_error(c, UG_PERR_BADREQ, bad[i].want);
	}
	/* within the frame's limit, over what a terminal may send */
	n = (size_t)snprintf(huge, 200, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1,"
			     "\"pad\":\"");
	memset(huge + n, 'p', UG_PROTO_TEXT_MAX - n - 2);
	memcpy(huge + UG_PROTO_TEXT_MAX - 2, "\"}", 3);
	report(c, huge);
	expect_error(c, UG_PERR_BADREQ, "more than the 16384 a terminal's report may have");
	free(huge);
	report_ok(c, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1}");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	docs = report_lines(&n);
	cr_assert_eq(n, 1, "a refused report was stored");
	free_lines(docs, n);
}

Test(serve, relay_batch_appends_each_report_with_its_path)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	int64_t before = ug_now();
	json_t **docs, *via, *st;
	size_t n;

	hello(c);
	report_ok(c, "{\"relay\":["
		  "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3,\"received\":1000,\"via\":[\"g1-s3\",\"g1-s2\"]},"
		  "{\"terminal\":\"t2\",\"result\":\"rolled-back\",\"installed\":2,\"target\":3,\"received\":2000,\"via\":[\"g1-s2\"]},"
		  "{\"terminal\":\"t3\",\"result\":\"current\",\"installed\":3}]}");
	/* one bad report refuses the whole batch: nothing of it is stored */
	report(c, "{\"relay\":[{\"terminal\":\"t4\",\"result\":\"ok\",\"installed\":3},"
	       "{\"terminal\":\"t5\",\"result\":\"ok\",\"installed\":\"x\"}]}");
	expect_error(c, UG_PERR_BADREQ, "relay batch, report 2: report: 'installed'");
	/* a server may relay more than once per session, and send its own */
	report_ok(c, "{\"relay\":[{\"terminal\":\"t6\",\"result\":\"ok\",\"installed\":3}]}");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);

	docs = report_lines(&n);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(str_of(docs[0], "terminal"), "t1");
	cr_assert_eq(int_of(docs[0], "received"), 1000, "a relayed report keeps its received");
	via = json_object_get(docs[0], "via");
	cr_assert_eq(json_array_size(via), 3);
	cr_assert_str_eq(json_string_value(json_array_get(via, 0)), "g1-s3");
	cr_assert_str_eq(json_string_value(json_array_get(via, 2)), "test-server");
	cr_assert_str_eq(str_of(docs[1], "result"), "rolled-back");
	cr_assert_eq(int_of(docs[1], "received"), 2000);
	cr_assert_str_eq(str_of(docs[2], "terminal"), "t3");
	cr_assert_geq(int_of(docs[2], "received"), before, "a missing received is added");
	cr_assert_str_eq(str_of(docs[3], "terminal"), "t6");
	free_lines(docs, n);
	st = stats_doc();
	cr_assert_eq(stat_of(st, "reports", NULL), 4, "every report of a batch counts");
	json_decref(st);
}

Test(serve, a_full_relay_batch_is_taken)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	char *text = malloc(UG_PROTO_TEXT_MAX + 1);
	size_t n = 0, lines;
	json_t **docs;

	cr_assert_not_null(text);
	n += (size_t)snprintf(text, 64, "{\"relay\":[");
	for (unsigned i = 0; i < UG_REPORT_BATCH_MAX; i++)
		n += (size_t)snprintf(text + n, UG_PROTO_TEXT_MAX - n, "%s{\"terminal\":\"%x\","
				      "\"result\":\"ok\",\"installed\":1}", i ? "," : "", i);
	n += (size_t)snprintf(text + n, UG_PROTO_TEXT_MAX - n, "]}");
	cr_assert_lt(n, UG_PROTO_TEXT_MAX);
	hello(c);
	report_ok(c, text);
	free(text);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	docs = report_lines(&lines);
	cr_assert_eq(lines, UG_REPORT_BATCH_MAX);
	free_lines(docs, lines);
}

Test(serve, read_only_denies_stats_relay_and_a_second_report)
{
	struct server srv;
	struct ug_conn *c = start_opts(&srv, true, 0, 10);
	struct ug_msg m = { .type = UG_MSG_HELLO, .min_version = 1, .max_version = 1 };
	json_t *st;

	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_WELCOME);
	m = (struct ug_msg){ .type = UG_MSG_STATS };
	csend(c, &m);
	expect_error(c, UG_PERR_DENIED, "STATS is not allowed on a read-only key");
	report(c, "{\"relay\":[{\"terminal\":\"t9\",\"result\":\"ok\",\"installed\":1}]}");
	expect_error(c, UG_PERR_DENIED, "a read-only key cannot relay reports");
	report_ok(c, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1}");
	report(c, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1,\"again\":true}");
	expect_error(c, UG_PERR_DENIED, "only one REPORT");
	cr_assert_eq(get_ref(c, CHANNEL), 2, "the session goes on");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	st = stats_doc();
	cr_assert_eq(stat_of(st, "reports", NULL), 1);
	json_decref(st);
}

Test(serve, reports_rotate_past_their_limit)
{
	struct server srv;
	struct ug_conn *c;
	char path[512];
	struct stat st;
	int fd;

	/* a file just under the limit: the next report rotates it */
	snprintf(path, sizeof(path), "%s/reports", repo);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/reports/reports.jsonl", repo);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, UG_REPORTS_ROTATE - 10), 0);
	close(fd);
	c = start(&srv);
	hello(c);
	report_ok(c, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":1}");
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
	cr_assert_eq(stat(path, &st), -1, "reports.jsonl was not rotated");
	snprintf(path, sizeof(path), "%s/reports/reports.jsonl.1", repo);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_gt((uint64_t)st.st_size, UG_REPORTS_ROTATE);
}

Test(serve, stats_reply_is_the_counters)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m;
	json_t *doc;

	/* one finished session first, so the counters are not all zero */
	hello(c);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);

	c = start(&srv);
	hello(c);
	m = (struct ug_msg){ .type = UG_MSG_STATS };
	csend(c, &m);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_STATS_REPLY);
	doc = json_loadb(m.text, m.text_len, 0, NULL);
	cr_assert(json_is_object(doc));
	cr_assert_eq(stat_of(doc, "sessions", NULL), 1, "stats: %.*s", (int)m.text_len, m.text);
	cr_assert_eq(stat_of(doc, "mdelta", "count"), 0);
	json_decref(doc);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);
}

Test(serve, busy_when_all_slots_are_taken)
{
	struct server a, b, d;
	struct ug_conn *ca = start_opts(&a, false, 1, 10), *cb, *cd;
	struct ug_msg m = { .type = UG_MSG_HELLO, .min_version = 1, .max_version = 1 };
	json_t *st;

	hello(ca);
	cb = start_opts(&b, false, 1, 10);
	snprintf(m.name, sizeof(m.name), "second");
	csend(cb, &m);
	m = crecv(cb);
	cr_assert_eq(m.type, UG_MSG_BUSY, "got %s", ug_msg_type_name(m.type));
	cr_assert_eq(m.retry_after, 7);
	cr_assert_eq(m.text_len, strlen("server 'test-server' is at its limit of 1 sessions"));
	cr_assert(memcmp(m.text, "server 'test-server' is at its limit of 1 sessions", m.text_len) == 0);
	cr_assert_eq(finish(&b, cb), 0, "a BUSY session ends normally");

	/* the slot comes back when the first session ends */
	bye(ca);
	cr_assert_eq(finish(&a, ca), 0);
	cd = start_opts(&d, false, 1, 10);
	hello(cd);
	bye(cd);
	cr_assert_eq(finish(&d, cd), 0);

	st = stats_doc();
	cr_assert_eq(stat_of(st, "busy", NULL), 1);
	cr_assert_eq(stat_of(st, "sessions", NULL), 2);
	json_decref(st);
}

Test(serve, counters_after_a_session)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m = { .type = UG_MSG_GET, .kind = UG_BLOB_OBJECT, .id = app2 };
	uint64_t total;
	size_t n;
	uint8_t *p;
	json_t *st;

	st = stats_doc();
	cr_assert_eq(stat_of(st, "sessions", NULL), 0, "a fresh repo counts zero");
	cr_assert_eq(stat_of(st, "object", "bytes"), 0);
	json_decref(st);

	hello(c);
	p = get_blob(c, &m, &total, &n, NULL);
	free(p);
	/* a resumed blob counts too, with the bytes actually sent */
	m.offset = total - 100;
	p = get_blob(c, &m, &total, &n, NULL);
	free(p);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0);

	st = stats_doc();
	cr_assert_eq(stat_of(st, "sessions", NULL), 1);
	cr_assert_eq(stat_of(st, "object", "count"), 2);
	cr_assert_eq(stat_of(st, "object", "bytes"), (json_int_t)(total + 100));
	cr_assert_eq(stat_of(st, "delta", "count"), 0);
	cr_assert_gt(stat_of(st, "bytes_out", NULL), (json_int_t)(total + 100));
	cr_assert_gt(stat_of(st, "bytes_in", NULL), 0);
	cr_assert_eq(stat_of(st, "errors", NULL), 0);
	json_decref(st);
}

Test(serve, stats_read_refuses_a_garbled_file)
{
	struct ug_error e = { "" };
	char path[512], *text = NULL;

	snprintf(path, sizeof(path), "%s/cache", repo);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/cache/serve-stats.json", repo);
	write_file(path, "{not json", 9);
	cr_assert_eq(ug_serve_stats_read(repo, &text, &e), -EBADMSG);
	cr_assert_null(text);
	cr_assert_not_null(strstr(e.msg, "serve-stats.json"), "%s", e.msg);
}

Test(serve, idle_client_is_closed)
{
	struct server srv;
	struct ug_conn *c = start_opts(&srv, false, 0, 1);

	hello(c);
	cr_assert_eq(pthread_join(srv.th, NULL), 0);
	cr_assert_eq(srv.rc, -ETIMEDOUT);
	cr_assert_not_null(strstr(srv.log, "idle for 1 s, closing"), "log: %s", srv.log);
	ug_conn_close(c);
	close(srv.cfd);
}

Test(serve, trickling_client_cannot_hold_a_frame_open)
{
	struct server srv;
	struct ug_conn *c = start_opts(&srv, false, 0, 1);
	/* the start of a GET_REF frame, one byte every 0.3 s: each byte comes
	 * well inside the 1 s idle limit, the frame never completes */
	static const uint8_t part[] = { 0, 0, 0, 12, UG_MSG_GET_REF, 0, 0, 0, 6, 's', 't' };
	double t0;

	hello(c);
	t0 = now_s();
	for (size_t i = 0; i < sizeof(part); i++) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		if (write(srv.cfd, &part[i], 1) != 1)
			break;
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(pthread_join(srv.th, NULL), 0);
	cr_assert_eq(srv.rc, -ETIMEDOUT, "rc %d", srv.rc);
	cr_assert_lt(now_s() - t0, 3.0, "the frame was held open %.1f s", now_s() - t0);
	ug_conn_close(c);
	close(srv.cfd);
}

Test(serve, sigdelta_cache_is_bounded)
{
	struct server srv;
	struct ug_conn *c;
	char dir[512], path[600], drifted[512];
	uint8_t *sig, *delta, *copy;
	size_t sig_len, dlen, n = 0;
	uint64_t total, off;
	DIR *d;
	struct dirent *de;

	/* a full cache of old entries */
	snprintf(dir, sizeof(dir), "%s/cache/sigdelta", repo);
	cr_assert_eq(ug_mkdir_p(AT_FDCWD, dir, 0755), 0);
	for (unsigned i = 0; i < 4096; i++) {
		struct timespec old[2] = { { 1000 + i, 0 }, { 1000 + i, 0 } };
		snprintf(path, sizeof(path), "%s/%064x", dir, i);
		write_file(path, "x", 1);
		cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	}
	copy = malloc(APP_SIZE);
	cr_assert_not_null(copy);
	memcpy(copy, app2_data, APP_SIZE);
	memcpy(copy + 100, "drift", 5);
	snprintf(drifted, sizeof(drifted), "%s/drifted", tmpdir);
	write_file(drifted, copy, APP_SIZE);
	free(copy);
	sig = signature_of(drifted, &sig_len);

	c = start(&srv);
	hello(c);
	send_sigdelta(c, &app2, UG_SIG_CONTENT, sig, sig_len, 0, 1000);
	delta = read_blob(c, &total, &off, &dlen, NULL);
	cr_assert_eq(dlen, total);
	bye(c);
	cr_assert_eq(finish(&srv, c), 0, "%s", srv.err.msg);

	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	cr_assert_eq(n, 4096 - 1024 + 1, "%zu entries in the cache", n);
	/* the oldest went, the new one is there */
	snprintf(path, sizeof(path), "%s/%064x", dir, 0u);
	cr_assert_neq(access(path, F_OK), 0, "the oldest entry is still there");
	snprintf(path, sizeof(path), "%s/%064x", dir, 4095u);
	cr_assert_eq(access(path, F_OK), 0, "the newest old entry was removed");
	free(delta);
	free(sig);
}

/* ---------------------------------------------------------------- hostile */

/* Write raw bytes, end the stream, and expect ERROR PROTO back and
 * -EPROTO from the server. */
static void hostile(const void *bytes, size_t n, bool say_hello, const char *want)
{
	struct server srv;
	struct ug_conn *c = start(&srv);
	struct ug_msg m;
	char text[1024];

	if (say_hello)
		hello(c);
	cr_assert_eq(ug_write_all(srv.cfd, bytes, n), 0);
	shutdown(srv.cfd, SHUT_WR);
	m = crecv(c);
	cr_assert_eq(m.type, UG_MSG_ERROR, "got %s", ug_msg_type_name(m.type));
	cr_assert_eq(m.code, UG_PERR_PROTO);
	snprintf(text, sizeof(text), "%.*s", (int)m.text_len, m.text);
	if (want)
		cr_assert_not_null(strstr(text, want), "error '%s' does not say '%s'", text, want);
	cr_assert_eq(finish(&srv, c), -EPROTO, "%s", srv.err.msg);
	cr_assert_str_eq(srv.err.msg, text, "err and the ERROR frame agree");
	cr_assert_not_null(strstr(srv.log, "protocol error"), "log: %s", srv.log);
}

Test(serve, hostile_huge_length)
{
	hostile("\x00\x10\x00\x01\x01", 5, false, "exceeds the 1048576-byte limit");
	hostile("\xff\xff\xff\xff", 4, true, "exceeds");
}

Test(serve, hostile_truncated_frame)
{
	hostile("\x00\x00\x00\x20\x01UGRD", 9, false, "truncated");
	hostile("\x00\x00", 2, false, "truncated");
}

Test(serve, hostile_unknown_type)
{
	hostile("\x00\x00\x00\x01\x7f", 5, false, "unknown");
	hostile("\x00\x00\x00\x01\xee", 5, true, "unknown");
}

Test(serve, hostile_empty_frame)
{
	hostile("\x00\x00\x00\x00", 4, false, "empty frame");
}

Test(serve, hostile_data_before_hello)
{
	hostile("\x00\x00\x00\x04\x22" "abc", 8, false, "expected HELLO, got DATA");
}

Test(serve, hostile_bad_magic)
{
	static const uint8_t f[] = { 0, 0, 0, 17, 0x01, 'X', 'G', 'R', 'D', 0, 0, 0, 1, 0, 0, 0, 1,
				     0, 0, 0, 0 };

	hostile(f, sizeof(f), false, "magic");
}

Test(serve, hostile_messages_out_of_place)
{
	struct ug_buf b;
	struct ug_msg m = { .type = UG_MSG_HELLO, .min_version = 1, .max_version = 1 };

	ug_buf_init(&b, UG_PROTO_FRAME_MAX + 4);
	cr_assert_eq(ug_msg_encode(&m, &b), 0);
	hostile(b.data, b.len, true, "a second HELLO");
	ug_buf_reset(&b);
	m = (struct ug_msg){ .type = UG_MSG_WELCOME, .version = 1 };
	cr_assert_eq(ug_msg_encode(&m, &b), 0);
	hostile(b.data, b.len, true, "unexpected WELCOME");
	ug_buf_reset(&b);
	m = (struct ug_msg){ .type = UG_MSG_DATA, .data = (const uint8_t *)"x", .data_len = 1 };
	cr_assert_eq(ug_msg_encode(&m, &b), 0);
	hostile(b.data, b.len, true, "unexpected DATA");
	ug_buf_release(&b);
}

Test(serve, hostile_garbage)
{
	uint8_t g[300];
	json_t *st;

	for (uint64_t seed = 1; seed <= 40; seed++) {
		fill_random(g, sizeof(g), seed);
		/* some with a plausible length, so the decoder sees garbage */
		if (seed % 2 == 0) {
			g[0] = 0;
			g[1] = 0;
			g[2] = 0;
			g[3] = (uint8_t)(seed * 5);
		}
		hostile(g, sizeof(g), seed % 3 == 0, NULL);
	}
	st = stats_doc();
	cr_assert_eq(stat_of(st, "errors", NULL), 40);
	json_decref(st);
}
