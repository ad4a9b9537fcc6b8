/* test-relay.c - unit tests for syncd/relay.c: reports passed up the
 * chain in batches, the offset file, rotation, and what happens when the
 * upstream refuses or fails. The upstream is a send function that checks
 * and records each batch. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "relay.h"
#include "report.h"
#include "tmpdir.h"
#include "wlog.h"

static void setup(void)
{
	ug_test_tmp_make("relay");
	ug_wlog_setup("test-relay", 0);
	cr_assert_eq(mkdirat(tmpfd, "reports", 0755), 0);
}

static void teardown(void)
{
	ug_test_tmp_remove();
}

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- upstream */

struct upstream {
	size_t max;                 /* every batch must fit this */
	unsigned batches;           /* acknowledged */
	unsigned calls;
	unsigned fail_at;           /* call number (1-based) that fails with fail_rc */
	int fail_rc;
	const char *refuse;         /* refuse (-EINVAL) a batch holding this terminal */
	char **terminals;           /* acknowledged, in order */
	size_t n, cap;
	size_t largest;             /* reports in the largest batch */
};

static int upstream_send(void *ctx, const char *text, size_t len, struct ug_error *err)
{
	struct upstream *u = ctx;
	json_error_t jerr;
	json_t *doc, *arr, *rep;
	size_t i;

	u->calls++;
	cr_assert_leq(len, u->max, "a batch of %zu bytes, more than %zu", len, u->max);
	cr_assert_leq(len, UG_PROTO_TEXT_MAX);
	cr_assert(ug_utf8_valid(text, len));
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	cr_assert_not_null(doc, "batch is not JSON: %s: %.*s", jerr.text, (int)len, text);
	cr_assert_eq(json_object_size(doc), 1);
	arr = json_object_get(doc, "relay");
	cr_assert(json_is_array(arr) && json_array_size(arr) > 0);
	cr_assert_leq(json_array_size(arr), UG_REPORT_BATCH_MAX);
	if (u->fail_at && u->calls == u->fail_at) {
		json_decref(doc);
		return ug_error_set(err, u->fail_rc, "upstream failure %d", u->fail_rc);
	}
	json_array_foreach(arr, i, rep) {
		const char *t = json_string_value(json_object_get(rep, "terminal"));
		cr_assert(ug_report_parse(rep, NULL, NULL) == 0, "a bad report was relayed");
		if (u->refuse && strcmp(t, u->refuse) == 0) {
			json_decref(doc);
			return ug_error_set(err, -EINVAL, "relay batch, report %zu: refused", i + 1);
		}
	}
	if (json_array_size(arr) > u->largest)
		u->largest = json_array_size(arr);
	json_array_foreach(arr, i, rep) {
		if (u->n == u->cap) {
			u->cap = u->cap ? u->cap * 2 : 64;
			u->terminals = realloc(u->terminals, u->cap * sizeof(char *));
			cr_assert_not_null(u->terminals);
		}
		u->terminals[u->n++] = strdup(json_string_value(json_object_get(rep, "terminal")));
	}
	u->batches++;
	json_decref(doc);
	return 0;
}

static void upstream_init(struct upstream *u, size_t max)
{
	memset(u, 0, sizeof(*u));
	u->max = max ? max : UG_PROTO_TEXT_MAX;
}

static void upstream_release(struct upstream *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->terminals[i]);
	free(u->terminals);
	memset(u, 0, sizeof(*u));
}

/* ---------------------------------------------------------------- files */

static void append_to(const char *file, const char *text)
{
	int fd = openat(tmpfd, file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

/* Append reports for terminals t-FROM .. t-(TO-1). */
static void add_reports(const char *file, unsigned from, unsigned to)
{
	char line[256];

	for (unsigned i = from; i < to; i++) {
		snprintf(line, sizeof(line), "{\"terminal\":\"t-%04u\",\"result\":\"ok\",\"installed\":%u,"
			 "\"received\":1764740000,\"via\":[\"g1-s2\"]}\n", i, i % 3 + 1);
		append_to(file, line);
	}
}

static uint64_t size_of(const char *file)
{
	struct stat st;

	cr_assert_eq(fstatat(tmpfd, file, &st, 0), 0);
	return (uint64_t)st.st_size;
}

static uint64_t inode_of(const char *file)
{
	struct stat st;

	cr_assert_eq(fstatat(tmpfd, file, &st, 0), 0);
	return (uint64_t)st.st_ino;
}

/* The offset file: inode and offset. */
static void offset_file(uint64_t *ino, uint64_t *off)
{
	char *text;
	size_t len;
	json_t *doc;

	cr_assert_eq(ug_file_read(tmpfd, UG_RELAY_OFFSET_FILE, 4096, &text, &len), 0);
	doc = json_loadb(text, len, 0, NULL);
	free(text);
	cr_assert(json_is_object(doc));
	*ino = (uint64_t)json_integer_value(json_object_get(doc, "inode"));
	*off = (uint64_t)json_integer_value(json_object_get(doc, "offset"));
	json_decref(doc);
}

static int run(struct upstream *u, size_t batch_max, struct ug_relay_result *res,
	       struct ug_error *e)
{
	return ug_relay_run(tmpfd, tmpdir, upstream_send, u, batch_max, NULL, res, e);
}

/* Each of t-FROM .. t-(TO-1) was acknowledged once, in order, from *at on. */
static void assert_relayed(const struct upstream *u, size_t *at, unsigned from, unsigned to)
{
	char want[32];

	for (unsigned i = from; i < to; i++, (*at)++) {
		snprintf(want, sizeof(want), "t-%04u", i);
		cr_assert_lt(*at, u->n, "t-%04u was not relayed", i);
		cr_assert_str_eq(u->terminals[*at], want);
	}
}

/* ---------------------------------------------------------------- tests */

Test(relay, nothing_to_relay_is_not_an_error)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };

	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(u.calls, 0);
	cr_assert_eq(res.reports, 0);
	cr_assert_eq(faccessat(tmpfd, UG_RELAY_OFFSET_FILE, F_OK, 0), -1, "an offset with nothing relayed");
	upstream_release(&u);
}

Test(relay, batches_stay_under_the_size_and_the_offset_follows)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off;
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 100);
	upstream_init(&u, 1000);
	cr_assert_eq(run(&u, 1000, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 100);
	cr_assert_eq(res.batches, u.batches);
	cr_assert_gt(u.batches, 5, "only %u batches of at most 1000 bytes", u.batches);
	cr_assert_eq(res.skipped, 0);
	assert_relayed(&u, &at, 0, 100);
	offset_file(&ino, &off);
	cr_assert_eq(ino, inode_of(UG_REPORTS_FILE));
	cr_assert_eq(off, size_of(UG_REPORTS_FILE));

	/* once per hop: a second round sends nothing, a third only what is new */
	cr_assert_eq(run(&u, 1000, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 0);
	add_reports(UG_REPORTS_FILE, 100, 105);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 5);
	cr_assert_eq(res.batches, 1, "5 small reports fit one batch");
	assert_relayed(&u, &at, 100, 105);
	cr_assert_eq(at, u.n);
	upstream_release(&u);
}

Test(relay, a_batch_holds_at_most_batch_max_reports)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	unsigned n = UG_REPORT_BATCH_MAX + 200;
	size_t at = 0;
	char *text = malloc((size_t)n * 64 + 1), *p = text;

	/* tiny reports: 64 KiB would hold more than UG_REPORT_BATCH_MAX */
	cr_assert_not_null(text);
	for (unsigned i = 0; i < n; i++)
		p += snprintf(p, 64, "{\"terminal\":\"t-%04u\",\"result\":\"ok\",\"installed\":1}\n", i);
	append_to(UG_REPORTS_FILE, text);
	free(text);
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, n);
	cr_assert_eq(u.largest, UG_REPORT_BATCH_MAX);
	assert_relayed(&u, &at, 0, n);
	upstream_release(&u);
}

Test(relay, a_line_being_written_waits_for_its_newline)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off, whole;
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 3);
	whole = size_of(UG_REPORTS_FILE);
	append_to(UG_REPORTS_FILE, "{\"terminal\":\"t-0003\",\"result\":\"ok\",");
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 3);
	offset_file(&ino, &off);
	cr_assert_eq(off, whole, "the offset went past a line without its newline");
	append_to(UG_REPORTS_FILE, "\"installed\":1}\n");
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 1);
	assert_relayed(&u, &at, 0, 4);
	offset_file(&ino, &off);
	cr_assert_eq(off, size_of(UG_REPORTS_FILE));
	upstream_release(&u);
}

Test(relay, garbled_lines_are_skipped_and_counted)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off;
	size_t at = 0;
	char *big = malloc(UG_REPORT_LINE_MAX + 10);

	cr_assert_not_null(big);
	add_reports(UG_REPORTS_FILE, 0, 2);
	append_to(UG_REPORTS_FILE, "{\"terminal\":\"t-9\",\"resu\n");           /* torn */
	append_to(UG_REPORTS_FILE, "\x01\x02 binary junk \xff\n");
	append_to(UG_REPORTS_FILE, "{\"terminal\":\"bad id\",\"result\":\"ok\",\"installed\":1}\n");
	memset(big, 'x', UG_REPORT_LINE_MAX + 8);
	big[UG_REPORT_LINE_MAX + 8] = '\n';
	big[UG_REPORT_LINE_MAX + 9] = '\0';
	append_to(UG_REPORTS_FILE, big);
	free(big);
	add_reports(UG_REPORTS_FILE, 2, 4);
	append_to(UG_REPORTS_FILE, "not json either\n");
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 4);
	cr_assert_eq(res.skipped, 5);
	assert_relayed(&u, &at, 0, 4);
	/* the offset is past the garbage at the end too: it is not read again */
	offset_file(&ino, &off);
	cr_assert_eq(off, size_of(UG_REPORTS_FILE));
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.skipped, 0);
	upstream_release(&u);
}

Test(relay, rotation_relays_the_rest_of_the_old_file_then_the_new)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off, old_ino;
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 10);
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	assert_relayed(&u, &at, 0, 10);
	/* more reports, then serve rotates and writes to a new file */
	add_reports(UG_REPORTS_FILE, 10, 15);
	old_ino = inode_of(UG_REPORTS_FILE);
	cr_assert_eq(renameat(tmpfd, UG_REPORTS_FILE, tmpfd, UG_REPORTS_OLD), 0);
	/* a round with the old file only (no report since the rotation) */
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 5);
	assert_relayed(&u, &at, 10, 15);
	offset_file(&ino, &off);
	cr_assert_eq(ino, old_ino);
	add_reports(UG_REPORTS_FILE, 15, 18);
	add_reports(UG_REPORTS_OLD, 18, 19);    /* a session that opened it before the rename */
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 4);
	assert_relayed(&u, &at, 18, 19);
	assert_relayed(&u, &at, 15, 18);
	offset_file(&ino, &off);
	cr_assert_eq(ino, inode_of(UG_REPORTS_FILE));
	cr_assert_eq(off, size_of(UG_REPORTS_FILE));
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 0);
	cr_assert_eq(at, u.n, "a report was relayed twice");
	upstream_release(&u);
}

Test(relay, rotated_twice_relays_everything_held)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off;
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 4);
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	assert_relayed(&u, &at, 0, 4);
	/* the relayed file goes away for good; two unrelayed files follow.
	 * The copy keeps the old inode busy, so no new file reuses its number */
	cr_assert_eq(renameat(tmpfd, UG_REPORTS_FILE, tmpfd, "kept"), 0);
	add_reports(UG_REPORTS_OLD, 4, 6);
	add_reports(UG_REPORTS_FILE, 6, 8);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.restarted, 1);
	cr_assert_eq(res.reports, 4);
	assert_relayed(&u, &at, 4, 8);
	offset_file(&ino, &off);
	cr_assert_eq(ino, inode_of(UG_REPORTS_FILE));
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.restarted, 0);
	cr_assert_eq(res.reports, 0);
	upstream_release(&u);
}

Test(relay, a_truncated_file_is_relayed_from_its_start)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	size_t at = 0;
	int fd;

	add_reports(UG_REPORTS_FILE, 0, 5);
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	fd = openat(tmpfd, UG_REPORTS_FILE, O_WRONLY | O_TRUNC | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	close(fd);
	add_reports(UG_REPORTS_FILE, 5, 6);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 1);
	assert_relayed(&u, &at, 0, 6);
	upstream_release(&u);
}

Test(relay, a_failed_batch_is_sent_again_next_round)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off, first;
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 30);
	upstream_init(&u, 1000);
	u.fail_at = 2;
	u.fail_rc = -EIO;
	cr_assert_eq(run(&u, 1000, &res, &e), -EIO);
	cr_assert_not_null(strstr(e.msg, "upstream failure"), "%s", e.msg);
	cr_assert_eq(res.batches, 1);
	first = res.reports;
	cr_assert_gt(first, 0);
	offset_file(&ino, &off);
	cr_assert_lt(off, size_of(UG_REPORTS_FILE));
	u.fail_at = 0;
	cr_assert_eq(run(&u, 1000, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(first + res.reports, 30);
	assert_relayed(&u, &at, 0, 30);
	upstream_release(&u);
}

Test(relay, a_refused_batch_goes_again_one_by_one_and_only_the_bad_report_is_dropped)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	uint64_t ino, off;
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 6);
	upstream_init(&u, 0);
	u.refuse = "t-0003";     /* valid here, refused there (a newer rule) */
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 5);
	cr_assert_eq(res.skipped, 1);
	assert_relayed(&u, &at, 0, 3);
	assert_relayed(&u, &at, 4, 6);
	offset_file(&ino, &off);
	cr_assert_eq(off, size_of(UG_REPORTS_FILE));
	upstream_release(&u);
}

Test(relay, denied_stops_the_relay_at_the_last_acknowledged_batch)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };

	add_reports(UG_REPORTS_FILE, 0, 3);
	upstream_init(&u, 0);
	u.fail_at = 1;
	u.fail_rc = -EACCES;
	cr_assert_eq(run(&u, 0, &res, &e), -EACCES);
	cr_assert_eq(res.reports, 0);
	cr_assert_eq(faccessat(tmpfd, UG_RELAY_OFFSET_FILE, F_OK, 0), -1);
	upstream_release(&u);
}

Test(relay, a_garbled_offset_file_means_relaying_everything_again)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };

	add_reports(UG_REPORTS_FILE, 0, 3);
	append_to(UG_RELAY_OFFSET_FILE, "{\"inode\":\"x\"");
	upstream_init(&u, 0);
	cr_assert_eq(run(&u, 0, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.reports, 3);
	upstream_release(&u);
}

Test(relay, stop_is_honoured_between_batches)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	volatile sig_atomic_t stop = 1;

	add_reports(UG_REPORTS_FILE, 0, 40);
	upstream_init(&u, 1000);
	cr_assert_eq(ug_relay_run(tmpfd, tmpdir, upstream_send, &u, 1000, &stop, &res, &e), -EINTR);
	cr_assert_eq(u.batches, 1);
	stop = 0;
	cr_assert_eq(ug_relay_run(tmpfd, tmpdir, upstream_send, &u, 1000, &stop, &res, &e), 0);
	cr_assert_eq(u.n, 40);
	upstream_release(&u);
}

Test(relay, a_report_too_big_for_the_batch_size_is_skipped)
{
	struct upstream u;
	struct ug_relay_result res;
	struct ug_error e = { "" };
	size_t at = 0;

	add_reports(UG_REPORTS_FILE, 0, 2);
	upstream_init(&u, 60);
	cr_assert_eq(run(&u, 60, &res, &e), 0, "%s", e.msg);
	cr_assert_eq(res.skipped, 2);
	cr_assert_eq(res.reports, 0);
	(void)at;
	upstream_release(&u);
}
