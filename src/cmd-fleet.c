/* cmd-fleet.c - upgrid fleet: what the terminals reported, on the master.
 *
 * Streams REPO/reports/reports.jsonl.1 and then reports.jsonl (the
 * reports this server received or had relayed to it, report.h) through a
 * one-line buffer, keeps the newest report of each terminal in a hash
 * table, and summarises those. Memory is one entry per terminal, whatever
 * the files' size. */
#include "config.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "prom.h"
#include "report.h"

/* Not heard from for longer than this: stale. A terminal sends a "current"
 * heartbeat at least once a day, so this is two missed days. */
#define FLEET_STALE_S (2 * 86400)
/* Terminals one summary holds: far above any fleet, and far below what
 * would exhaust memory (an entry is about 100 bytes). */
#define FLEET_TERMINALS_MAX 10000000u
/* Malformed lines described one by one with -v; the rest are counted. */
#define FLEET_SKIP_SHOWN 20u

static const char usage_text[] =
	"usage: upgrid fleet [-c CHANNEL] [--failed] [--json] [--prometheus FILE]\n"
	"\n"
	"Summarise the status reports of the terminals: the newest report of\n"
	"each terminal (from REPO/reports/reports.jsonl.1, then reports.jsonl;\n"
	"group servers relay their terminals' reports to the master), how many\n"
	"terminals run each version, which ones failed or rolled back in their\n"
	"last attempt, and how many have not reported for more than 2 days.\n"
	"\n"
	"  -c, --channel CHANNEL  only terminals whose newest report names CHANNEL\n"
	"      --failed           list only the failed and rolled-back terminals\n"
	"      --json             print JSON (with --failed: an array)\n"
	"      --prometheus FILE  also write the summary as Prometheus metrics to\n"
	"                         FILE (node_exporter textfile collector),\n"
	"                         atomically; with -q nothing else is printed\n"
	"  -h, --help             show this help\n";

struct term {
	char *id;                   /* NULL: a free slot */
	char *channel, *server;     /* NULL when the report had none */
	char *message;              /* kept for failed and rolled-back only */
	int64_t time;               /* of the newest report: "time", else "received" */
	int64_t seen;               /* newest "received" over all its reports */
	uint64_t installed, target;
	bool has_target;
	enum ug_report_result result;
};

struct fleet {
	struct term *slots;
	size_t cap, n;              /* cap: a power of two */
	uint64_t skipped;
	const char *channel;
};

static uint64_t id_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;    /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static struct term *slot_for(struct term *slots, size_t cap, const char *id)
{
	size_t i = (size_t)id_hash(id) & (cap - 1);

	while (slots[i].id && strcmp(slots[i].id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(struct fleet *f)
{
	size_t cap = f->cap ? f->cap * 2 : 1024;
	struct term *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < f->cap; i++)
		if (f->slots[i].id)
			*slot_for(slots, cap, f->slots[i].id) = f->slots[i];
	free(f->slots);
	f->slots = slots;
	f->cap = cap;
	return 0;
}

/* The entry of terminal id, made (zeroed, id set) if new. */
static int lookup(struct fleet *f, const char *id, struct term **ret, bool *ret_new)
{
	struct term *t;
	int r;

	if (f->n + 1 > f->cap / 10 * 7) {
		if (f->n >= FLEET_TERMINALS_MAX)
			return -E2BIG;
		r = grow(f);
		if (r < 0)
			return r;
	}
	t = slot_for(f->slots, f->cap, id);
	*ret_new = !t->id;
	if (!t->id) {
		t->id = strdup(id);
		if (!t->id)
			return -ENOMEM;
		f->n++;
	}
	*ret = t;
	return 0;
}

static void term_release(struct term *t)
{
	free(t->id);
	free(t->channel);
	free(t->server);
	free(t->message);
}

static void fleet_release(struct fleet *f)
{
	for (size_t i = 0; i < f->cap; i++)
		if (f->slots[i].id)
			term_release(&f->slots[i]);
	free(f->slots);
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* Take one report. */
static int take(struct fleet *f, const struct ug_report *rep)
{
	int64_t when = rep->time >= 0 ? rep->time : rep->received >= 0 ? rep->received : 0;
	int64_t seen = rep->received >= 0 ? rep->received : when;
	struct term *t;
	bool fresh;
	int r = lookup(f, rep->terminal, &t, &fresh);

	if (r < 0)
		return r;
	if (fresh || seen > t->seen)
		t->seen = seen;
	/* newest by the terminal's clock; of equal times the later line */
	if (!fresh && when < t->time)
		return 0;
	free(t->channel);
	free(t->server);
	free(t->message);
	t->time = when;
	t->installed = rep->installed;
	t->target = rep->target;
	t->has_target = rep->has_target;
	t->result = rep->result;
	r = dup_opt(rep->channel, &t->channel);
	if (r == 0)
		r = dup_opt(rep->server, &t->server);
	if (r == 0)
		r = dup_opt(rep->result == UG_REPORT_FAILED || rep->result == UG_REPORT_ROLLED_BACK ?
			    rep->message : NULL, &t->message);
	return r;
}

static void skip(struct fleet *f, const char *file, uint64_t line, const char *why)
{
	if (f->skipped++ < FLEET_SKIP_SHOWN)
		ug_cli_verbose("'%s': line %" PRIu64 ": %s: skipped", file, line, why);
}

/* Stream one reports file. */
static int read_file(struct fleet *f, int fd, const char *file)
{
	struct ug_report_reader rd;
	uint64_t lineno = 0;
	int r = ug_report_reader_init(&rd, fd, 0, true);

	while (r >= 0) {
		struct ug_error e = { "" };
		struct ug_report rep;
		json_error_t jerr;
		json_t *doc;
		char *line;
		size_t len;
		uint64_t end;

		r = ug_report_reader_next(&rd, &line, &len, &end);
		if (r <= 0)
			break;
		lineno++;
		if (r == UG_REPORT_LINE_LONG) {
			skip(f, file, lineno, "longer than the longest report");
			continue;
		}
		doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc) {
			skip(f, file, lineno, "not JSON");
			continue;
		}
		if (ug_report_parse(doc, &rep, &e) < 0)
			skip(f, file, lineno, e.msg);
		else
			r = take(f, &rep);
		json_decref(doc);
	}
	ug_report_reader_release(&rd);
	if (r == -E2BIG)
		ug_cli_err("'%s' names more than %u terminals; not summarised", file,
			   FLEET_TERMINALS_MAX);
	else if (r < 0)
		ug_cli_err("cannot read '%s': %s", file, strerror(-r));
	return r < 0 ? r : 0;
}

/* ---------------------------------------------------------------- output */

static bool selected(const struct fleet *f, const struct term *t)
{
	return !f->channel || (t->channel && strcmp(t->channel, f->channel) == 0);
}

static bool failed(const struct term *t)
{
	return t->result == UG_REPORT_FAILED || t->result == UG_REPORT_ROLLED_BACK;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Newest first, then by id. */
static int cmp_failed(const void *a, const void *b)
{
	const struct term *x = *(const struct term *const *)a, *y = *(const struct term *const *)b;

	if (x->time != y->time)
		return x->time < y->time ? 1 : -1;
	return strcmp(x->id, y->id);
}

/* A message as one line of text: control characters (C0, DEL, C1) would
 * let a terminal's words steer the operator's terminal. */
static void print_clean(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			putchar('?');
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			putchar('?');
			p++;
		} else {
			putchar(*p);
		}
	}
}

struct summary {
	size_t n;                       /* terminals selected */
	uint64_t *versions;             /* installed, descending */
	struct term **failed;
	size_t nfailed;
	uint64_t results[UG_REPORT_CURRENT + 1];
	uint64_t stale;
	int64_t now;
};

static int summarise(const struct fleet *f, struct summary *s)
{
	size_t k = 0;

	memset(s, 0, sizeof(*s));
	s->now = ug_now();
	for (size_t i = 0; i < f->cap; i++)
		if (f->slots[i].id && selected(f, &f->slots[i]))
			s->n++;
	s->versions = calloc(s->n ? s->n : 1, sizeof(*s->versions));
	s->failed = calloc(s->n ? s->n : 1, sizeof(*s->failed));
	if (!s->versions || !s->failed)
		return -ENOMEM;
	for (size_t i = 0; i < f->cap; i++) {
		struct term *t = &f->slots[i];
		if (!t->id || !selected(f, t))
			continue;
		s->versions[k++] = t->installed;
		s->results[t->result]++;
		if (failed(t))
			s->failed[s->nfailed++] = t;
		if (s->now - t->seen > FLEET_STALE_S)
			s->stale++;
	}
	qsort(s->versions, s->n, sizeof(*s->versions), cmp_u64_desc);
	qsort(s->failed, s->nfailed, sizeof(*s->failed), cmp_failed);
	return 0;
}

static json_t *failed_json(const struct summary *s)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < s->nfailed; i++) {
		const struct term *t = s->failed[i];
		json_t *o = json_pack("{s:s, s:s, s:I, s:o, s:o, s:I, s:o, s:o}",
				      "terminal", t->id,
				      "result", ug_report_result_name((int)t->result),
				      "installed", (json_int_t)t->installed,
				      "target", t->has_target ? json_integer((json_int_t)t->target)
							      : json_null(),
				      "channel", t->channel ? json_string(t->channel) : json_null(),
				      "time", (json_int_t)t->time,
				      "server", t->server ? json_string(t->server) : json_null(),
				      "message", t->message ? json_string(t->message) : json_null());
		if (!o || json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *summary_json(const struct fleet *f, const struct summary *s)
{
	json_t *versions = json_array(), *results = json_object(), *failed_arr = failed_json(s);
	json_t *doc = NULL;
	bool bad = !versions || !results || !failed_arr;

	for (size_t i = 0; !bad && i < s->n;) {
		size_t j = i;
		while (j < s->n && s->versions[j] == s->versions[i])
			j++;
		bad = json_array_append_new(versions, json_pack("{s:I, s:I, s:f}",
			"version", (json_int_t)s->versions[i], "terminals", (json_int_t)(j - i),
			"share", (double)(j - i) / (double)s->n)) < 0;
		i = j;
	}
	for (int r = UG_REPORT_OK; !bad && r <= UG_REPORT_CURRENT; r++)
		bad = json_object_set_new(results, ug_report_result_name(r),
					  json_integer((json_int_t)s->results[r])) < 0;
	if (!bad)
		doc = json_pack("{s:I, s:o, s:O, s:O, s:O, s:I, s:I, s:I, s:I}",
				"terminals", (json_int_t)s->n,
				"channel", f->channel ? json_string(f->channel) : json_null(),
				"versions", versions, "results", results, "failed", failed_arr,
				"stale", (json_int_t)s->stale, "stale_after", (json_int_t)FLEET_STALE_S,
				"skipped", (json_int_t)f->skipped, "now", (json_int_t)s->now);
	json_decref(versions);
	json_decref(results);
	json_decref(failed_arr);
	return doc;
}

static int print_json(json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
				      JSON_REAL_PRECISION(4)) : NULL;

	json_decref(doc);
	if (!text) {
		ug_cli_err("out of memory");
		return UG_EXIT_FAILURE;
	}
	puts(text);
	free(text);
	return UG_EXIT_OK;
}

static void print_failed(const struct summary *s)
{
	int w = (int)strlen("terminal"), sw = (int)strlen("server");

	for (size_t i = 0; i < s->nfailed; i++) {
		const struct term *t = s->failed[i];
		if ((int)strlen(t->id) > w)
			w = (int)strlen(t->id);
		if (t->server && (int)strlen(t->server) > sw)
			sw = (int)strlen(t->server);
	}
	if (s->nfailed)
		printf("%-*s  %-11s  %9s  %6s  %-20s  %-*s  %s\n", w, "terminal", "result",
		       "installed", "target", "time", sw, "server", "message");
	for (size_t i = 0; i < s->nfailed; i++) {
		const struct term *t = s->failed[i];
		char when[32], target[24] = "-";

		ug_time_format(t->time, when);
		if (t->has_target)
			snprintf(target, sizeof(target), "%" PRIu64, t->target);
		printf("%-*s  %-11s  %9" PRIu64 "  %6s  %-20s  %-*s  ", w, t->id,
		       ug_report_result_name((int)t->result), t->installed, target, when, sw,
		       t->server ? t->server : "-");
		print_clean(t->message ? t->message : "-");
		putchar('\n');
	}
}

static void print_text(const struct fleet *f, const struct summary *s)
{
	printf("%zu terminal%s", s->n, s->n == 1 ? "" : "s");
	if (f->channel)
		printf(" on channel '%s'", f->channel);
	printf(": %" PRIu64 " ok, %" PRIu64 " current, %" PRIu64 " failed, %" PRIu64
	       " rolled back\n", s->results[UG_REPORT_OK], s->results[UG_REPORT_CURRENT],
	       s->results[UG_REPORT_FAILED], s->results[UG_REPORT_ROLLED_BACK]);
	if (s->n) {
		printf("\n%-9s  %9s  %6s\n", "installed", "terminals", "share");
		for (size_t i = 0; i < s->n;) {
			size_t j = i;
			while (j < s->n && s->versions[j] == s->versions[i])
				j++;
			printf("%-9" PRIu64 "  %9zu  %5.1f%%\n", s->versions[i], j - i,
			       100.0 * (double)(j - i) / (double)s->n);
			i = j;
		}
	}
	if (s->nfailed) {
		printf("\n%zu failed or rolled back in their last attempt:\n", s->nfailed);
		print_failed(s);
	}
	if (s->stale)
		printf("\n%" PRIu64 " terminal%s not reported for more than %d days\n", s->stale,
		       s->stale == 1 ? " has" : "s have", FLEET_STALE_S / 86400);
}

/* The summary as node_exporter textfile metrics (upgrid(1), fleet). With
 * -c every sample has a channel label; without, none (all channels). */
static int write_metrics(const struct fleet *f, const struct summary *s, const char *path)
{
	struct ug_prom_label l[2] = { { "channel", f->channel } };
	size_t nl = f->channel ? 1 : 0;
	struct ug_error e = { "" };
	struct ug_prom p;
	int64_t newest = 0;
	char v[24];
	int r;

	for (size_t i = 0; i < f->cap; i++)
		if (f->slots[i].id && selected(f, &f->slots[i]) && f->slots[i].seen > newest)
			newest = f->slots[i].seen;
	ug_prom_init(&p);
	ug_prom_family(&p, "upgrid_fleet_terminals", UG_PROM_GAUGE,
		       "Terminals that have reported (their newest report counts).");
	ug_prom_sample_u64(&p, l, nl, s->n);
	ug_prom_family(&p, "upgrid_fleet_terminals_by_version", UG_PROM_GAUGE,
		       "Terminals per installed version.");
	for (size_t i = 0; i < s->n;) {
		size_t j = i;
		while (j < s->n && s->versions[j] == s->versions[i])
			j++;
		snprintf(v, sizeof(v), "%" PRIu64, s->versions[i]);
		l[nl] = (struct ug_prom_label){ "version", v };
		ug_prom_sample_u64(&p, l, nl + 1, j - i);
		i = j;
	}
	ug_prom_family(&p, "upgrid_fleet_terminals_by_result", UG_PROM_GAUGE,
		       "Terminals per result of their last attempt.");
	for (int k = UG_REPORT_OK; k <= UG_REPORT_CURRENT; k++) {
		l[nl] = (struct ug_prom_label){ "result", ug_report_result_name(k) };
		ug_prom_sample_u64(&p, l, nl + 1, s->results[k]);
	}
	ug_prom_family(&p, "upgrid_fleet_stale_terminals", UG_PROM_GAUGE,
		       "Terminals not heard from for more than 2 days.");
	ug_prom_sample_u64(&p, l, nl, s->stale);
	ug_prom_family(&p, "upgrid_fleet_last_report_timestamp_seconds", UG_PROM_GAUGE,
		       "When the newest report was received, UNIX time (0: none).");
	ug_prom_sample_u64(&p, l, nl, newest > 0 ? (uint64_t)newest : 0);
	ug_prom_family(&p, "upgrid_fleet_malformed_report_lines", UG_PROM_GAUGE,
		       "Lines of the reports files skipped as malformed.");
	ug_prom_sample_u64(&p, l, nl, f->skipped);
	r = ug_prom_write(&p, path, &e);
	ug_prom_release(&p);
	if (r < 0) {
		ug_cli_err("%s", e.msg);
		return UG_EXIT_FAILURE;
	}
	return UG_EXIT_OK;
}

/* ---------------------------------------------------------------- command */

static int open_reports(struct ug_store *st, const char *file, int *ret_fd)
{
	struct stat sb;
	int fd = ug_open_beneath(st->dirfd, file, O_RDONLY | O_NONBLOCK, 0);

	*ret_fd = -1;
	if (fd == -ENOENT)
		return 0;
	if (fd < 0) {
		ug_cli_err("cannot open '%s/%s': %s", st->path, file, strerror(-fd));
		return fd;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		ug_cli_err("'%s/%s' is not a regular file", st->path, file);
		close(fd);
		return -EINVAL;
	}
	*ret_fd = fd;
	return 0;
}

int cmd_fleet(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "channel", required_argument, NULL, 'c' },
		{ "failed", no_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'J' },
		{ "prometheus", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const files[] = { UG_REPORTS_OLD, UG_REPORTS_FILE };
	const char *prom = NULL;
	struct fleet f = { 0 };
	struct summary s = { 0 };
	struct ug_store *st = NULL;
	bool json = false, only_failed = false, any = false;
	int c, r, rc = UG_EXIT_OK;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			f.channel = optarg;
			break;
		case 'F':
			only_failed = true;
			break;
		case 'J':
			json = true;
			break;
		case 'M':
			if (!*optarg)
				return ug_cli_usage_error("fleet", "--prometheus needs a file name");
			prom = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("fleet", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("fleet", "unexpected argument '%s'", argv[optind]);
	if (f.channel && ug_channel_check(f.channel, NULL) < 0)
		return ug_cli_usage_error("fleet", "bad channel name '%s'", f.channel);
	r = ug_cli_open_repo(&st);
	if (r < 0)
		return ug_cli_exit_code(r);

	/* the rotated file first: its reports are the older ones */
	for (size_t i = 0; i < 2 && rc == UG_EXIT_OK; i++) {
		char name[UG_PATH_MAX + 32];
		int fd;

		r = open_reports(st, files[i], &fd);
		if (r < 0) {
			rc = ug_cli_exit_code(r);
			break;
		}
		if (fd < 0)
			continue;
		any = true;
		snprintf(name, sizeof(name), "%s/%s", st->path, files[i]);
		r = read_file(&f, fd, name);
		close(fd);
		if (r < 0)
			rc = r == -E2BIG ? UG_EXIT_CORRUPT : ug_cli_exit_code(r);
	}
	if (rc != UG_EXIT_OK)
		goto out;
	if (!any) {
		ug_cli_err("no terminal has reported yet: '%s/" UG_REPORTS_FILE "' does not exist "
			   "(terminals report to their servers, which relay to this repo)", st->path);
		rc = UG_EXIT_NOTFOUND;
		goto out;
	}
	if (f.skipped)
		ug_cli_verbose("skipped %" PRIu64 " malformed line%s", f.skipped,
			       f.skipped == 1 ? "" : "s");
	if (summarise(&f, &s) < 0) {
		ug_cli_err("out of memory");
		rc = UG_EXIT_FAILURE;
		goto out;
	}
	if (prom && ug_cli.verbosity == 0)
		;	/* cron writing metrics: only errors */
	else if (json && only_failed)
		rc = print_json(failed_json(&s));
	else if (json)
		rc = print_json(summary_json(&f, &s));
	else if (only_failed)
		print_failed(&s);
	else
		print_text(&f, &s);
	if (prom && rc == UG_EXIT_OK)
		rc = write_metrics(&f, &s, prom);
out:
	free(s.versions);
	free(s.failed);
	fleet_release(&f);
	ug_store_free(st);
	return rc;
}
