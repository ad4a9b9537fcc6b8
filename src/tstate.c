/* tstate.c - the terminal's state.json (see tstate.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tstate.h"

static const char *const result_names[UG_TRESULT__COUNT] = {
	"none", "ok", "current", "failed", "rolled-back",
};

const char *ug_tresult_name(enum ug_tresult r)
{
	return (unsigned)r < UG_TRESULT__COUNT ? result_names[r] : "none";
}

static enum ug_tresult result_from(const char *s)
{
	for (unsigned i = 0; s && i < UG_TRESULT__COUNT; i++)
		if (strcmp(s, result_names[i]) == 0)
			return (enum ug_tresult)i;
	return UG_TRESULT_NONE;
}

bool ug_tstate_has(const uint64_t *list, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

void ug_tstate_add(uint64_t *list, size_t *n, uint64_t v)
{
	size_t i;

	if (ug_tstate_has(list, *n, v))
		return;
	if (*n == UG_TSTATE_LIST_MAX) {
		memmove(list, list + 1, (*n - 1) * sizeof(*list));
		(*n)--;
	}
	for (i = *n; i > 0 && list[i - 1] > v; i--)
		list[i] = list[i - 1];
	list[i] = v;
	(*n)++;
}

void ug_tstate_del(uint64_t *list, size_t *n, uint64_t v)
{
	for (size_t i = 0; i < *n; i++)
		if (list[i] == v) {
			memmove(list + i, list + i + 1, (*n - i - 1) * sizeof(*list));
			(*n)--;
			return;
		}
}

uint64_t ug_tstate_serial(const struct ug_tstate *st, uint64_t version)
{
	for (size_t i = 0; i < st->nserials; i++)
		if (st->serials[i].version == version)
			return st->serials[i].serial;
	return 0;
}

void ug_tstate_serial_note(struct ug_tstate *st, uint64_t version, uint64_t serial)
{
	size_t i, low = 0;

	for (i = 0; i < st->nserials; i++)
		if (st->serials[i].version == version) {
			if (serial > st->serials[i].serial)
				st->serials[i].serial = serial;
			return;
		}
	if (st->nserials < UG_TSTATE_SERIALS_MAX) {
		i = st->nserials++;
	} else {
		/* forget the oldest version's */
		for (i = 1; i < st->nserials; i++)
			if (st->serials[i].version < st->serials[low].version)
				low = i;
		if (st->serials[low].version > version)
			return;
		i = low;
	}
	st->serials[i].version = version;
	st->serials[i].serial = serial;
}

static uint64_t get_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void get_str(json_t *o, const char *key, char *out, size_t n)
{
	json_t *v = json_object_get(o, key);
	snprintf(out, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static void get_list(json_t *o, const char *key, uint64_t *list, size_t *n)
{
	json_t *a = json_object_get(o, key), *v;
	size_t i;

	*n = 0;
	json_array_foreach(a, i, v)
		if (json_is_integer(v) && json_integer_value(v) > 0)
			ug_tstate_add(list, n, (uint64_t)json_integer_value(v));
}

static void attempt_from(json_t *o, struct ug_tattempt *a)
{
	json_t *r = json_object_get(o, "result");

	a->time = (int64_t)get_u64(o, "time");
	a->result = result_from(json_is_string(r) ? json_string_value(r) : NULL);
	a->target = get_u64(o, "target");
	a->installed = get_u64(o, "installed");
	a->newest = get_u64(o, "newest");
	a->bytes = get_u64(o, "bytes");
	a->full_bytes = get_u64(o, "full_bytes");
	a->duration_ms = get_u64(o, "duration_ms");
	get_str(o, "server", a->server, sizeof(a->server));
	get_str(o, "message", a->message, sizeof(a->message));
}

int ug_tstate_load(int dirfd, struct ug_tstate *st, bool *ret_warning, struct ug_error *err)
{
	json_error_t jerr;
	json_t *doc;
	char *data;
	size_t len;
	int r;

	memset(st, 0, sizeof(*st));
	if (ret_warning)
		*ret_warning = false;
	r = ug_file_read(dirfd, UG_TSTATE_FILE, UG_TSTATE_MAX, &data, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0 && r != -E2BIG)
		return ug_error_set(err, r, "cannot read '" UG_TSTATE_FILE "': %s", strerror(-r));
	doc = r < 0 ? NULL : json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (r == 0)
		free(data);
	if (!json_is_object(doc)) {
		json_decref(doc);
		/* keep the evidence, start afresh: see the header */
		renameat(dirfd, UG_TSTATE_FILE, dirfd, UG_TSTATE_FILE ".bad");
		if (ret_warning)
			*ret_warning = true;
		ug_error_set(err, 0, "'" UG_TSTATE_FILE "' was damaged: moved to '"
			     UG_TSTATE_FILE ".bad', starting with a fresh state");
		return 0;
	}
	attempt_from(json_object_get(doc, "last"), &st->last);
	st->last_success = (int64_t)get_u64(doc, "last_success");
	st->last_report = (int64_t)get_u64(doc, "last_report");
	st->failures = get_u64(doc, "failures");
	st->bytes_total = get_u64(doc, "bytes_total");
	st->report_pending = json_is_true(json_object_get(doc, "report_pending"));
	get_list(doc, "bad", st->bad, &st->nbad);
	get_list(doc, "accepted", st->accepted, &st->naccepted);
	get_list(doc, "denied", st->denied, &st->ndenied);
	{
		json_t *o = json_object_get(doc, "rollout_serials"), *v;
		const char *k;
		uint64_t ver;

		json_object_foreach(o, k, v)
			if (ug_parse_u64(k, INT64_MAX, &ver) == 0 && json_is_integer(v) &&
			    json_integer_value(v) > 0)
				ug_tstate_serial_note(st, ver, (uint64_t)json_integer_value(v));
	}
	json_decref(doc);
	return 0;
}

static json_t *list_json(const uint64_t *list, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)list[i]));
	return a;
}

json_t *ug_tattempt_json(const struct ug_tattempt *a)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "time", json_integer(a->time));
	json_object_set_new(o, "result", json_string(ug_tresult_name(a->result)));
	json_object_set_new(o, "target", json_integer((json_int_t)a->target));
	json_object_set_new(o, "installed", json_integer((json_int_t)a->installed));
	json_object_set_new(o, "newest", json_integer((json_int_t)a->newest));
	json_object_set_new(o, "server", json_string(a->server));
	json_object_set_new(o, "bytes", json_integer((json_int_t)a->bytes));
	json_object_set_new(o, "full_bytes", json_integer((json_int_t)a->full_bytes));
	json_object_set_new(o, "duration_ms", json_integer((json_int_t)a->duration_ms));
	/* messages may hold bytes from a file name: jansson wants UTF-8 */
	json_object_set_new(o, "message", ug_utf8_valid(a->message, strlen(a->message))
			    ? json_string(a->message) : json_string("(message not UTF-8)"));
	return o;
}

json_t *ug_tstate_json(const struct ug_tstate *st)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "last", ug_tattempt_json(&st->last));
	json_object_set_new(o, "last_success", json_integer(st->last_success));
	json_object_set_new(o, "last_report", json_integer(st->last_report));
	json_object_set_new(o, "failures", json_integer((json_int_t)st->failures));
	json_object_set_new(o, "bytes_total", json_integer((json_int_t)st->bytes_total));
	json_object_set_new(o, "report_pending", json_boolean(st->report_pending));
	json_object_set_new(o, "bad", list_json(st->bad, st->nbad));
	json_object_set_new(o, "accepted", list_json(st->accepted, st->naccepted));
	json_object_set_new(o, "denied", list_json(st->denied, st->ndenied));
	{
		json_t *m = json_object();
		char k[24];

		for (size_t i = 0; m && i < st->nserials; i++) {
			snprintf(k, sizeof(k), "%" PRIu64, st->serials[i].version);
			json_object_set_new(m, k, json_integer((json_int_t)st->serials[i].serial));
		}
		json_object_set_new(o, "rollout_serials", m);
	}
	return o;
}

int ug_tstate_save(int dirfd, const struct ug_tstate *st, struct ug_error *err)
{
	json_t *doc = ug_tstate_json(st);
	char *text;
	int r;

	if (!doc)
		return ug_error_set(err, -ENOMEM, "out of memory");
	text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return ug_error_set(err, -ENOMEM, "out of memory");
	r = ug_file_write_atomic(dirfd, UG_TSTATE_FILE, text, strlen(text), 0644);
	free(text);
	if (r < 0)
		return ug_error_set(err, r, "cannot write '" UG_TSTATE_FILE "': %s", strerror(-r));
	return 0;
}

char *ug_tstate_report(const struct ug_tattempt *a, const char *terminal_id, const char *channel)
{
	json_t *o = ug_tattempt_json(a);
	char *text;

	if (!o)
		return NULL;
	json_object_set_new(o, "terminal", json_string(terminal_id));
	json_object_set_new(o, "channel", json_string(channel));
	if (!a->message[0])
		json_object_del(o, "message");
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}
