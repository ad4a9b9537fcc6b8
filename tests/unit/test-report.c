/* test-report.c - unit tests for src/report.c: the checks a report must
 * pass, the stored form a server makes of it, and the bounded line reader
 * of the reports file. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "rendezvous.h"
#include "report.h"
#include "tmpdir.h"

#define GOOD "{\"terminal\":\"t-0042\",\"channel\":\"stable\",\"installed\":43,\"target\":43," \
	"\"result\":\"ok\",\"bytes\":12345,\"full_bytes\":456789,\"duration_ms\":812," \
	"\"time\":1764740000,\"server\":\"g1-s2\",\"message\":\"fine\"}"

static void setup(void)
{
	ug_test_tmp_make("report");
}

static void teardown(void)
{
	ug_test_tmp_remove();
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 30);

static json_t *load(const char *text)
{
	json_error_t jerr;
	/* NUL allowed here, so that report.c's own check of it is tested */
	json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);

	cr_assert_not_null(doc, "test JSON does not parse: %s: %s", jerr.text, text);
	return doc;
}

/* Parse text; the return value, and the message in *msg. */
static int parse(const char *text, struct ug_report *rep, char msg[512])
{
	struct ug_error e = { "" };
	json_t *doc = load(text);
	int r = ug_report_parse(doc, rep, &e);

	snprintf(msg, 512, "%s", e.msg);
	json_decref(doc);
	return r;
}

Test(report, the_contract_example_parses)
{
	struct ug_error e = { "" };
	json_t *doc = load(GOOD);
	struct ug_report rep;

	cr_assert_eq(ug_report_parse(doc, &rep, &e), 0, "%s", e.msg);
	cr_assert_str_eq(rep.terminal, "t-0042");
	cr_assert_str_eq(rep.channel, "stable");
	cr_assert_eq(rep.installed, 43);
	cr_assert(rep.has_target);
	cr_assert_eq(rep.target, 43);
	cr_assert_eq(rep.result, UG_REPORT_OK);
	cr_assert_eq(rep.bytes, 12345);
	cr_assert_eq(rep.full_bytes, 456789);
	cr_assert_eq(rep.duration_ms, 812);
	cr_assert_eq(rep.time, 1764740000);
	cr_assert_eq(rep.received, -1);
	cr_assert_str_eq(rep.server, "g1-s2");
	cr_assert_str_eq(rep.message, "fine");
	cr_assert_eq(rep.nvia, 0);
	json_decref(doc);
}

Test(report, the_smallest_report_and_every_result)
{
	static const char *const names[] = { "ok", "failed", "rolled-back", "current" };
	struct ug_report rep;
	char text[256], msg[512];

	for (int i = 0; i < 4; i++) {
		snprintf(text, sizeof(text), "{\"terminal\":\"a\",\"result\":\"%s\",\"installed\":0}",
			 names[i]);
		cr_assert_eq(parse(text, &rep, msg), 0, "%s: %s", text, msg);
		cr_assert_eq(rep.result, (enum ug_report_result)(UG_REPORT_OK + i));
		cr_assert_str_eq(ug_report_result_name(rep.result), names[i]);
		cr_assert_null(rep.channel);
		cr_assert_not(rep.has_target);
		cr_assert_eq(rep.time, -1);
	}
	/* fields the contract does not name are kept, not refused */
	cr_assert_eq(parse("{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,"
			   "\"conflicts\":[\"etc/app.ini\"]}", &rep, msg), 0, "%s", msg);
	cr_assert_str_eq(ug_report_result_name(0), "unknown");
	/* a terminal that reached no server for its attempt says "" */
	cr_assert_eq(parse("{\"terminal\":\"a\",\"result\":\"failed\",\"installed\":1,"
			   "\"server\":\"\"}", &rep, msg), 0, "%s", msg);
	cr_assert_null(rep.server);
}

Test(report, hostile_reports_are_refused_with_the_reason)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "[1,2]", "not a JSON object" },
		{ "{\"result\":\"ok\",\"installed\":1}", "no 'terminal'" },
		{ "{\"terminal\":\"\",\"result\":\"ok\",\"installed\":1}", "terminal id is empty" },
		{ "{\"terminal\":\"t 1\",\"result\":\"ok\",\"installed\":1}", "not printable ASCII" },
		{ "{\"terminal\":\"t\\u0000x\",\"result\":\"ok\",\"installed\":1}", "without NUL" },
		{ "{\"terminal\":\"t\\u001b[2J\",\"result\":\"ok\",\"installed\":1}", "not printable" },
		{ "{\"terminal\":42,\"result\":\"ok\",\"installed\":1}", "'terminal' must be a string" },
		{ "{\"terminal\":\"a\",\"installed\":1}", "no 'result'" },
		{ "{\"terminal\":\"a\",\"result\":\"OK\",\"installed\":1}", "one of ok, failed" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\"}", "no 'installed'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":\"43\"}", "'installed' must be an integer" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":-1}", "'installed' must be an integer" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":4.5}", "'installed' must be an integer" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"target\":null}", "'target'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"bytes\":true}", "'bytes'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"full_bytes\":-5}", "'full_bytes'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"duration_ms\":[]}", "'duration_ms'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"time\":253402300800}", "'time'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"received\":\"now\"}", "'received'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"channel\":\"../x\"}", "'channel'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"channel\":7}", "'channel'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"server\":\"a\\nb\"}", "'server'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"server\":\"a\\u009bb\"}", "'server'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"message\":{}}", "'message'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"via\":\"s1\"}", "'via'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"via\":[]}", "'via'" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"via\":[\"s1\",3]}", "'via' entry 2" },
		{ "{\"terminal\":\"a\",\"result\":\"ok\",\"installed\":1,\"relay\":[]}", "cannot hold 'relay'" },
	};
	struct ug_report rep;
	char msg[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&rep, 0x5a, sizeof(rep));
		cr_assert_eq(parse(bad[i].text, &rep, msg), -EINVAL, "accepted: %s", bad[i].text);
		cr_assert_not_null(strstr(msg, bad[i].want), "%s: message '%s' does not say '%s'",
				   bad[i].text, msg, bad[i].want);
		/* the client's bytes are never echoed */
		cr_assert_null(strstr(msg, "\x1b"), "%s", msg);
	}
}

Test(report, limits_of_terminal_id_message_and_via)
{
	struct ug_report rep;
	char id[UG_TERMINAL_ID_MAX + 2], msg[512];
	char *text = malloc(UG_REPORT_MESSAGE_MAX + 256);
	size_t n;

	cr_assert_not_null(text);
	memset(id, 'x', sizeof(id) - 1);
	id[UG_TERMINAL_ID_MAX] = '\0';
	snprintf(text, 512, "{\"terminal\":\"%s\",\"result\":\"ok\",\"installed\":1}", id);
	cr_assert_eq(parse(text, &rep, msg), 0, "%s", msg);
	id[UG_TERMINAL_ID_MAX] = 'x';
	id[UG_TERMINAL_ID_MAX + 1] = '\0';
	snprintf(text, 512, "{\"terminal\":\"%s\",\"result\":\"ok\",\"installed\":1}", id);
	cr_assert_eq(parse(text, &rep, msg), -EINVAL);

	n = (size_t)snprintf(text, 512, "{\"terminal\":\"a\",\"result\":\"failed\",\"installed\":1,"
			     "\"message\":\"");
	memset(text + n, 'm', UG_REPORT_MESSAGE_MAX);
	memcpy(text + n + UG_REPORT_MESSAGE_MAX, "\"}", 3);
	cr_assert_eq(parse(text, &rep, msg), 0, "%s", msg);
	memset(text + n, 'm', UG_REPORT_MESSAGE_MAX + 1);
	memcpy(text + n + UG_REPORT_MESSAGE_MAX + 1, "\"}", 3);
	cr_assert_eq(parse(text, &rep, msg), -EINVAL);
	cr_assert_not_null(strstr(msg, "longer than 4096"), "%s", msg);
	free(text);
}

/* Stamp text as `server`; the line (caller frees) or NULL with the error. */
static char *stamp(const char *text, const char *server, bool relayed, int *rc, char msg[512])
{
	struct ug_error e = { "" };
	json_t *doc = load(text);
	char *line = NULL;
	size_t len = 0;

	*rc = ug_report_stamp(doc, server, 1764740999, relayed, &line, &len, &e);
	snprintf(msg, 512, "%s", e.msg);
	json_decref(doc);
	if (*rc == 0)
		cr_assert_eq(strlen(line), len);
	return line;
}

Test(report, a_terminals_report_gets_received_and_via_from_the_server)
{
	char msg[512];
	int rc;
	char *line = stamp("{\"terminal\":\"t1\",\n \"result\":\"ok\", \"installed\":3,"
			   "\"received\":1,\"via\":[\"forged\"]}", "g1-s2", false, &rc, msg);

	cr_assert_eq(rc, 0, "%s", msg);
	cr_assert_str_eq(line, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3,"
			 "\"received\":1764740999,\"via\":[\"g1-s2\"]}");
	free(line);
}

Test(report, a_relayed_report_keeps_received_and_appends_to_via)
{
	char msg[512];
	int rc;
	char *line = stamp("{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3,"
			   "\"received\":1000,\"via\":[\"g1-s3\"]}", "g1-s2", true, &rc, msg);

	cr_assert_eq(rc, 0, "%s", msg);
	cr_assert_str_eq(line, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3,"
			 "\"received\":1000,\"via\":[\"g1-s3\",\"g1-s2\"]}");
	free(line);
	/* one without either (an older server below): both added */
	line = stamp("{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3}", "m", true, &rc, msg);
	cr_assert_eq(rc, 0, "%s", msg);
	cr_assert_str_eq(line, "{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3,"
			 "\"received\":1764740999,\"via\":[\"m\"]}");
	free(line);
}

Test(report, stamping_checks_first_and_bounds_via_and_size)
{
	char text[UG_REPORT_DIRECT_MAX + 64], msg[512], *line;
	size_t n;
	int rc;

	line = stamp("{\"terminal\":\"t 1\",\"result\":\"ok\",\"installed\":3}", "s", false, &rc, msg);
	cr_assert_null(line);
	cr_assert_eq(rc, -EINVAL);
	line = stamp("{\"terminal\":\"t1\",\"result\":\"ok\",\"installed\":3,\"via\":[1]}", "s", true,
		     &rc, msg);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_not_null(strstr(msg, "'via' entry 1"), "%s", msg);

	/* a report that has passed UG_REPORT_VIA_MAX servers goes no further */
	n = (size_t)snprintf(text, sizeof(text), "{\"terminal\":\"t1\",\"result\":\"ok\","
			     "\"installed\":3,\"via\":[");
	for (unsigned i = 0; i < UG_REPORT_VIA_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"s%u\"", i ? "," : "", i);
	snprintf(text + n, sizeof(text) - n, "]}");
	line = stamp(text, "s", true, &rc, msg);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_not_null(strstr(msg, "already names 32 servers"), "%s", msg);

	/* a terminal's report over UG_REPORT_DIRECT_MAX stored: too big, but
	 * the same relayed (up to UG_REPORT_LINE_MAX) is fine */
	n = (size_t)snprintf(text, sizeof(text), "{\"terminal\":\"t1\",\"result\":\"ok\","
			     "\"installed\":3,\"pad\":\"");
	memset(text + n, 'p', UG_REPORT_DIRECT_MAX - n);
	snprintf(text + UG_REPORT_DIRECT_MAX, sizeof(text) - UG_REPORT_DIRECT_MAX, "\"}");
	line = stamp(text, "s", false, &rc, msg);
	cr_assert_eq(rc, -E2BIG);
	cr_assert_not_null(strstr(msg, "more than the 16384"), "%s", msg);
	line = stamp(text, "s", true, &rc, msg);
	cr_assert_eq(rc, 0, "%s", msg);
	free(line);
}

Test(report, a_maximal_report_still_fits_a_batch_after_every_hop)
{
	/* the limits hold together: UG_REPORT_DIRECT_MAX + UG_REPORT_VIA_MAX
	 * hops of the longest, most escaped names fits UG_REPORT_LINE_MAX, and
	 * that line fits a relay batch */
	size_t hop = 2 * UG_PROTO_NAME_MAX + 3;

	cr_assert_leq(UG_REPORT_DIRECT_MAX + (UG_REPORT_VIA_MAX - 1) * hop, UG_REPORT_LINE_MAX);
	cr_assert_leq(UG_REPORT_LINE_MAX + sizeof("{\"relay\":[]}"), UG_PROTO_TEXT_MAX);
}

/* ---------------------------------------------------------------- reader */

static int file_with(const char *data, size_t len)
{
	int fd = openat(tmpfd, "r.jsonl", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ug_write_all(fd, data, len), 0);
	return fd;
}

Test(report, reader_gives_lines_and_their_end_offsets)
{
	int fd = file_with("a\n\nbcd\ntail", 11);
	struct ug_report_reader rd;
	char *line;
	size_t len;
	uint64_t end;

	cr_assert_eq(ug_report_reader_init(&rd, fd, 0, false), 0);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_str_eq(line, "a");
	cr_assert_eq(end, 2);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_eq(len, 0);
	cr_assert_eq(end, 3);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_str_eq(line, "bcd");
	cr_assert_eq(end, 7);
	/* "tail" may be a write in progress: left for later */
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 0);
	cr_assert_eq(end, 7);
	ug_report_reader_release(&rd);

	/* from an offset, and taking the partial last line */
	cr_assert_eq(ug_report_reader_init(&rd, fd, 3, true), 0);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_str_eq(line, "bcd");
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_str_eq(line, "tail");
	cr_assert_eq(end, 11);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 0);
	ug_report_reader_release(&rd);
	close(fd);
}

Test(report, reader_skips_an_overlong_line_and_goes_on)
{
	size_t big = 3 * UG_REPORT_LINE_MAX, total = big + 1 + 3 + UG_REPORT_LINE_MAX + 1;
	char *data = malloc(total + UG_REPORT_LINE_MAX + 2);
	struct ug_report_reader rd;
	char *line;
	size_t len;
	uint64_t end;
	int fd;

	cr_assert_not_null(data);
	memset(data, 'x', big);
	data[big] = '\n';
	memcpy(data + big + 1, "ok\n", 3);
	/* exactly UG_REPORT_LINE_MAX is still a line */
	memset(data + big + 4, 'y', UG_REPORT_LINE_MAX);
	data[total - 1] = '\n';
	/* and an overlong last line without newline */
	memset(data + total, 'z', UG_REPORT_LINE_MAX + 2);
	fd = file_with(data, total + UG_REPORT_LINE_MAX + 2);

	cr_assert_eq(ug_report_reader_init(&rd, fd, 0, false), 0);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), UG_REPORT_LINE_LONG);
	cr_assert_eq(end, big + 1);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_str_eq(line, "ok");
	cr_assert_eq(end, big + 4);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 1);
	cr_assert_eq(len, UG_REPORT_LINE_MAX);
	cr_assert_eq(end, total);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), UG_REPORT_LINE_LONG);
	cr_assert_eq(end, total + UG_REPORT_LINE_MAX + 2);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 0);
	ug_report_reader_release(&rd);
	close(fd);
	free(data);
}

Test(report, reader_of_an_empty_file)
{
	int fd = file_with("", 0);
	struct ug_report_reader rd;
	char *line;
	size_t len;
	uint64_t end = 99;

	cr_assert_eq(ug_report_reader_init(&rd, fd, 0, true), 0);
	cr_assert_eq(ug_report_reader_next(&rd, &line, &len, &end), 0);
	cr_assert_eq(end, 0);
	ug_report_reader_release(&rd);
	close(fd);
}
