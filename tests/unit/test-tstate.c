/* test-tstate.c - the terminal's state.json: round trip, damage, lists. */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmpdir.h"
#include "tstate.h"

static void setup(void)
{
	ug_test_tmp_make("tstate");
}

static void teardown(void)
{
	ug_test_tmp_remove();
}

TestSuite(tstate, .init = setup, .fini = teardown);

Test(tstate, missing_file_is_a_fresh_state)
{
	struct ug_tstate st;
	bool warn = true;

	memset(&st, 0xff, sizeof(st));
	cr_assert_eq(ug_tstate_load(tmpfd, &st, &warn, NULL), 0);
	cr_assert(!warn);
	cr_assert_eq(st.last.result, UG_TRESULT_NONE);
	cr_assert_eq(st.nbad + st.naccepted + st.ndenied, 0);
}

Test(tstate, round_trip)
{
	struct ug_tstate st = { 0 }, back;
	bool warn;

	st.last.time = 1700000000;
	st.last.result = UG_TRESULT_ROLLED_BACK;
	st.last.target = 7;
	st.last.installed = 6;
	st.last.bytes = 12345;
	st.last.full_bytes = 999999;
	st.last.duration_ms = 812;
	snprintf(st.last.server, sizeof(st.last.server), "g1-s2");
	snprintf(st.last.message, sizeof(st.last.message), "health-check exited 1");
	st.last_success = 1699999000;
	st.failures = 3;
	st.report_pending = true;
	ug_tstate_add(st.bad, &st.nbad, 7);
	ug_tstate_add(st.accepted, &st.naccepted, 9);
	ug_tstate_add(st.denied, &st.ndenied, 5);
	cr_assert_eq(ug_tstate_save(tmpfd, &st, NULL), 0);
	cr_assert_eq(ug_tstate_load(tmpfd, &back, &warn, NULL), 0);
	cr_assert(!warn);
	cr_assert_eq(back.last.result, UG_TRESULT_ROLLED_BACK);
	cr_assert_eq(back.last.target, 7);
	cr_assert_eq(back.last.installed, 6);
	cr_assert_eq(back.last.bytes, 12345);
	cr_assert_eq(back.last.full_bytes, 999999);
	cr_assert_str_eq(back.last.server, "g1-s2");
	cr_assert_str_eq(back.last.message, "health-check exited 1");
	cr_assert_eq(back.failures, 3);
	cr_assert(back.report_pending);
	cr_assert_eq(back.nbad, 1);
	cr_assert_eq(back.bad[0], 7);
	cr_assert_eq(back.accepted[0], 9);
	cr_assert_eq(back.denied[0], 5);
}

Test(tstate, damaged_file_is_moved_aside)
{
	struct ug_tstate st;
	struct ug_error e = { "" };
	bool warn = false;

	cr_assert_eq(ug_file_write_atomic(tmpfd, UG_TSTATE_FILE, "{\"last\": [1, 2", 14, 0644), 0);
	cr_assert_eq(ug_tstate_load(tmpfd, &st, &warn, &e), 0);
	cr_assert(warn);
	cr_assert(strstr(e.msg, "state.json.bad"), "%s", e.msg);
	cr_assert_eq(faccessat(tmpfd, UG_TSTATE_FILE ".bad", F_OK, 0), 0);
	cr_assert_neq(faccessat(tmpfd, UG_TSTATE_FILE, F_OK, 0), 0);
}

Test(tstate, hostile_values_are_ignored)
{
	static const char doc[] = "{\"last\": {\"result\": \"pwned\", \"target\": -5, "
				  "\"server\": 42}, \"bad\": [\"x\", -1, 3, 3], \"failures\": 1e99}";
	struct ug_tstate st;

	cr_assert_eq(ug_file_write_atomic(tmpfd, UG_TSTATE_FILE, doc, sizeof(doc) - 1, 0644), 0);
	cr_assert_eq(ug_tstate_load(tmpfd, &st, NULL, NULL), 0);
	cr_assert_eq(st.last.result, UG_TRESULT_NONE);
	cr_assert_eq(st.last.target, 0);
	cr_assert_str_eq(st.last.server, "");
	cr_assert_eq(st.nbad, 1);
	cr_assert_eq(st.bad[0], 3);
	cr_assert_eq(st.failures, 0);
}

Test(tstate, lists_stay_sorted_unique_and_bounded)
{
	uint64_t v[UG_TSTATE_LIST_MAX];
	size_t n = 0;

	ug_tstate_add(v, &n, 5);
	ug_tstate_add(v, &n, 2);
	ug_tstate_add(v, &n, 9);
	ug_tstate_add(v, &n, 5);
	cr_assert_eq(n, 3);
	cr_assert(v[0] == 2 && v[1] == 5 && v[2] == 9);
	ug_tstate_del(v, &n, 5);
	cr_assert(n == 2 && v[0] == 2 && v[1] == 9);
	for (uint64_t i = 100; i < 100 + 2 * UG_TSTATE_LIST_MAX; i++)
		ug_tstate_add(v, &n, i);
	cr_assert_eq(n, UG_TSTATE_LIST_MAX);
	/* the oldest went first */
	cr_assert_eq(v[0], 100 + UG_TSTATE_LIST_MAX);
	cr_assert_eq(v[n - 1], 100 + 2 * UG_TSTATE_LIST_MAX - 1);
}

Test(tstate, report_is_the_protocol_object)
{
	struct ug_tattempt a = { 0 };
	json_t *o;
	char *text;

	a.time = 1764740000;
	a.result = UG_TRESULT_OK;
	a.target = 43;
	a.installed = 43;
	a.bytes = 100;
	snprintf(a.server, sizeof(a.server), "g1-s2");
	text = ug_tstate_report(&a, "t-0042", "stable");
	cr_assert_not_null(text);
	o = json_loads(text, 0, NULL);
	cr_assert_not_null(o);
	cr_assert_str_eq(json_string_value(json_object_get(o, "terminal")), "t-0042");
	cr_assert_str_eq(json_string_value(json_object_get(o, "channel")), "stable");
	cr_assert_str_eq(json_string_value(json_object_get(o, "result")), "ok");
	cr_assert_eq(json_integer_value(json_object_get(o, "installed")), 43);
	cr_assert_null(json_object_get(o, "message"), "an empty message is left out");
	json_decref(o);
	free(text);
}

Test(tstate, rollout_serials_only_rise_and_persist)
{
	struct ug_tstate st = { 0 }, back;

	ug_tstate_serial_note(&st, 7, 2);
	ug_tstate_serial_note(&st, 7, 1);
	cr_assert_eq(ug_tstate_serial(&st, 7), 2, "a lower serial does not replace a higher one");
	ug_tstate_serial_note(&st, 7, 3);
	cr_assert_eq(ug_tstate_serial(&st, 7), 3);
	cr_assert_eq(ug_tstate_serial(&st, 8), 0);
	for (uint64_t v = 100; v < 100 + 2 * UG_TSTATE_SERIALS_MAX; v++)
		ug_tstate_serial_note(&st, v, 1);
	cr_assert_eq(st.nserials, UG_TSTATE_SERIALS_MAX);
	cr_assert_eq(ug_tstate_serial(&st, 7), 0, "the oldest version is forgotten first");
	cr_assert_eq(ug_tstate_serial(&st, 100 + 2 * UG_TSTATE_SERIALS_MAX - 1), 1);
	cr_assert_eq(ug_tstate_save(tmpfd, &st, NULL), 0);
	cr_assert_eq(ug_tstate_load(tmpfd, &back, NULL, NULL), 0);
	cr_assert_eq(back.nserials, UG_TSTATE_SERIALS_MAX);
	cr_assert_eq(ug_tstate_serial(&back, 100 + 2 * UG_TSTATE_SERIALS_MAX - 1), 1);
}
