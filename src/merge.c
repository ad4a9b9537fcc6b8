/* merge.c - the terminal's side of the actions "merge" and "migrate":
 * a 3-way merge of config files and the migration of table rows onto a
 * new header. The rules are in merge.h.
 *
 * The merge edits the new file's text rather than writing a new file
 * from the parsed keys: the parser (structure.c) gives every entry's
 * line and value span, so comments, blank lines, quoting and line ends
 * of the new version survive byte for byte, and only the bytes that the
 * merge decides on change. The edits are a list of events sorted by
 * offset into next (drop a line, replace a value, insert lines), applied
 * in one pass. The result is parsed again and checked key by key, so a
 * bug or an input at the limits can fail an install but never install a
 * file that reads differently from what the report says. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

static const char *const side_base = "pristine copy";
static const char *const side_local = "local copy";
static const char *const side_next = "new version";

/* ---- reports ----------------------------------------------------------- */

static void conflict_free(struct ug_merge_conflict *c)
{
	free(c->section);
	free(c->key);
	free(c->local_value);
	free(c->upstream_value);
}

void ug_merge_report_release(struct ug_merge_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->nconflicts; i++)
		conflict_free(&rep->conflicts[i]);
	free(rep->conflicts);
	memset(rep, 0, sizeof(*rep));
}

static char *strdup_or_null(const char *s, bool *fail)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

static int conflict_add(struct ug_merge_report *rep, size_t *alloc, const char *section,
			const char *key, const char *lv, const char *uv, enum ug_merge_side winner)
{
	struct ug_merge_conflict *c;
	bool fail = false;

	if (rep->nconflicts == *alloc) {
		size_t na = *alloc ? *alloc * 2 : 8;
		struct ug_merge_conflict *nc;

		/* bounded by the keys of two parsed files: never near SIZE_MAX */
		nc = realloc(rep->conflicts, na * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		rep->conflicts = nc;
		*alloc = na;
	}
	c = &rep->conflicts[rep->nconflicts];
	c->section = strdup_or_null(section, &fail);
	c->key = strdup_or_null(key, &fail);
	c->local_value = strdup_or_null(lv, &fail);
	c->upstream_value = strdup_or_null(uv, &fail);
	c->winner = winner;
	if (fail) {
		conflict_free(c);
		return -ENOMEM;
	}
	rep->nconflicts++;
	return 0;
}

/* ---- conflict log lines ------------------------------------------------ */

struct text {
	char *p;
	size_t n, cap; /* cap excludes the NUL */
};

static void text_put(struct text *t, const char *s, size_t n)
{
	if (n > t->cap - t->n)
		n = t->cap - t->n;
	memcpy(t->p + t->n, s, n);
	t->n += n;
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* At most 64 bytes of s, cut at a character boundary, quoted safe for a
 * log line: printable ASCII as is, valid UTF-8 as is unless a C1
 * control, anything else (and ' and \) as \xNN or \' \\. */
static void text_shown(struct text *t, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, lim = n > 64 ? 64 : n;
	char hex[8];

	while (i < lim) {
		unsigned char c = u[i];
		size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;

		if (c == '\'' || c == '\\') {
			hex[0] = '\\';
			hex[1] = (char)c;
			text_put(t, hex, 2);
			i++;
		} else if (c >= 0x20 && c < 0x7f) {
			text_put(t, s + i, 1);
			i++;
		} else if (k > 1 && i + k <= n && ug_utf8_valid(s + i, k) &&
			   !(c == 0xc2 && u[i + 1] < 0xa0)) {
			if (i + k > lim)
				break;
			text_put(t, s + i, k);
			i += k;
		} else {
			snprintf(hex, sizeof(hex), "\\x%02x", c);
			text_put(t, hex, 4);
			i++;
		}
	}
	if (i < n)
		text_str(t, "...");
}

size_t ug_merge_conflict_format(const struct ug_merge_conflict *c, char *out, size_t size)
{
	char line[UG_MERGE_CONFLICT_LINE_MAX];
	struct text t = { line, 0, sizeof(line) - 1 };
	size_t n;

	if (!out || size == 0)
		return 0;
	text_str(&t, "merge conflict: ");
	if (c->section && c->section[0]) {
		text_str(&t, "[");
		text_shown(&t, c->section);
		text_str(&t, "] ");
	}
	text_shown(&t, c->key ? c->key : "");
	if (c->local_value) {
		text_str(&t, ": local '");
		text_shown(&t, c->local_value);
		text_str(&t, "'");
	} else {
		text_str(&t, ": local deleted the key");
	}
	if (c->upstream_value) {
		text_str(&t, ", upstream '");
		text_shown(&t, c->upstream_value);
		text_str(&t, "'");
	} else {
		text_str(&t, ", upstream removed the key");
	}
	if (c->winner == UG_MERGE_LOCAL)
		text_str(&t, c->local_value ? ": kept the local value" : ": left it deleted");
	else
		text_str(&t, c->upstream_value ? ": took the upstream value" : ": removed it");
	n = t.n < size - 1 ? t.n : size - 1;
	memcpy(out, line, n);
	out[n] = '\0';
	return n;
}

/* ---- merge ------------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

static bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* What becomes of one entry of next. */
enum act {
	ACT_KEEP = 0, /* next's line as it is */
	ACT_LOCAL,    /* next's line with the local value */
	ACT_DROP,     /* left out: the terminal deleted the key */
};

enum ev_kind {
	EV_INSERT = 0, /* before anything else at the same offset */
	EV_DROP,
	EV_VALUE,
};

struct ev {
	size_t off;    /* in next */
	size_t idx;    /* EV_INSERT: local entry; else next entry */
	size_t anchor; /* EV_INSERT: next entry whose indentation to take, or SIZE_MAX */
	enum ev_kind kind;
};

static int ev_cmp(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;

	if (a->off != b->off)
		return a->off < b->off ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

struct merge {
	const char *l, *n;          /* the texts of local and next */
	size_t nlen;
	struct ug_conf *B, *L, *N;
	struct ug_buf *out;
	size_t start;               /* out->len on entry */
	size_t bom;                 /* bytes of next's BOM, copied first */
	const char *eol;
	enum act *act;              /* per next entry */
	const struct ug_conf_entry **src; /* per next entry: local's, for ACT_LOCAL */
	bool *ladded;               /* per local entry: kept as added on the terminal */
	size_t nladded;
	struct ev *ev;
	size_t nev;
	struct ug_merge_report rep;
	size_t conflicts_alloc;
};

static int parse_side(const char *side, const void *data, size_t len, struct ug_conf **ret,
		      struct ug_error *err)
{
	struct ug_error e = { "" };
	int r = ug_conf_parse(data, len, ret, &e);

	if (r < 0)
		return ug_error_set(err, r, "%s: %s", side, e.msg[0] ? e.msg : strerror(-r));
	return 0;
}

/* Decide every key: fills act/src, the counts and the conflicts. */
static int decide(struct merge *m, enum ug_merge_prefer prefer)
{
	const struct ug_conf *B = m->B, *L = m->L, *N = m->N;
	const bool local_wins = prefer != UG_MERGE_PREFER_UPSTREAM;
	const enum ug_merge_side winner = local_wins ? UG_MERGE_LOCAL : UG_MERGE_UPSTREAM;
	struct ug_merge_report *rep = &m->rep;
	int r;

	for (size_t i = 0; i < N->nentries; i++) {
		const struct ug_conf_entry *n = &N->entries[i];
		const char *sec = N->sections[n->section].name;
		const struct ug_conf_entry *b = ug_conf_get(B, sec, n->key);
		const struct ug_conf_entry *l = ug_conf_get(L, sec, n->key);
		bool conflict = false;

		m->act[i] = ACT_KEEP;
		m->src[i] = l;
		if (!b) {
			if (!l || streq(l->value, n->value))
				rep->added++;
			else
				conflict = true;
		} else if (!l) {
			if (streq(b->value, n->value)) {
				rep->kept_local++;
				m->act[i] = ACT_DROP;
			} else {
				conflict = true;
			}
		} else if (streq(l->value, b->value)) {
			if (!streq(n->value, b->value))
				rep->updated++;
		} else if (streq(n->value, b->value)) {
			rep->kept_local++;
			m->act[i] = ACT_LOCAL;
		} else if (streq(n->value, l->value)) {
			rep->updated++;
		} else {
			conflict = true;
		}
		if (!conflict)
			continue;
		if ((r = conflict_add(rep, &m->conflicts_alloc, sec, n->key, l ? l->value : NULL,
				      n->value, winner)) < 0)
			return r;
		if (local_wins)
			m->act[i] = l ? ACT_LOCAL : ACT_DROP;
	}
	/* removed upstream: gone, whatever prefer says (see merge.h) */
	for (size_t i = 0; i < B->nentries; i++) {
		const struct ug_conf_entry *b = &B->entries[i];
		const char *sec = B->sections[b->section].name;
		const struct ug_conf_entry *l;

		if (ug_conf_get(N, sec, b->key) || !(l = ug_conf_get(L, sec, b->key)))
			continue;
		if (streq(l->value, b->value))
			rep->removed++;
		else if ((r = conflict_add(rep, &m->conflicts_alloc, sec, b->key, l->value, NULL,
					   UG_MERGE_UPSTREAM)) < 0)
			return r;
	}
	for (size_t j = 0; j < L->nentries; j++) {
		const struct ug_conf_entry *l = &L->entries[j];
		const char *sec = L->sections[l->section].name;

		if (!ug_conf_get(B, sec, l->key) && !ug_conf_get(N, sec, l->key)) {
			m->ladded[j] = true;
			m->nladded++;
			rep->local_added++;
		}
	}
	return 0;
}

/* Where in next each section's added lines go: after its last entry;
 * else after its (first) header; for "" before the first header, or at
 * the end of a file without one. */
static int plan_inserts(struct merge *m)
{
	const struct ug_conf *L = m->L, *N = m->N;
	size_t *last = NULL, *hdr_start = NULL, *hdr_end = NULL;
	int r = -ENOMEM;

	last = malloc(N->nsections * sizeof(*last));
	hdr_start = calloc(N->nsections, sizeof(*hdr_start));
	hdr_end = calloc(N->nsections, sizeof(*hdr_end));
	if (!last || !hdr_start || !hdr_end)
		goto out;
	for (size_t s = 0; s < N->nsections; s++)
		last[s] = SIZE_MAX;
	for (size_t i = 0; i < N->nentries; i++)
		last[N->entries[i].section] = i;
	/* sections are in order of first appearance, so their first header
	 * lines rise: one pass over the lines finds them all */
	{
		size_t off = m->bom, line = 0, k = 1;

		while (off < m->nlen && k < N->nsections) {
			const char *nl = memchr(m->n + off, '\n', m->nlen - off);
			size_t end = nl ? (size_t)(nl - m->n) + 1 : m->nlen;

			line++;
			while (k < N->nsections && N->sections[k].line == line) {
				hdr_start[k] = off;
				hdr_end[k] = end;
				k++;
			}
			off = end;
		}
	}
	for (size_t j = 0; j < L->nentries; j++) {
		const struct ug_conf_entry *l = &L->entries[j];
		ssize_t s;
		struct ev *e;

		if (!m->ladded[j])
			continue;
		s = ug_conf_section_find(N, L->sections[l->section].name);
		if (s < 0)
			continue; /* a section appended at the end */
		e = &m->ev[m->nev++];
		e->kind = EV_INSERT;
		e->idx = j;
		e->anchor = last[s];
		if (last[s] != SIZE_MAX)
			e->off = N->entries[last[s]].off + N->entries[last[s]].len;
		else if (s > 0)
			e->off = hdr_end[s];
		else if (N->nsections > 1)
			e->off = hdr_start[1];
		else
			e->off = m->nlen;
	}
	r = 0;
out:
	free(last);
	free(hdr_start);
	free(hdr_end);
	return r;
}

static int put(struct merge *m, const void *p, size_t n)
{
	return ug_buf_put(m->out, p, n);
}

static int put_str(struct merge *m, const char *s)
{
	return put(m, s, strlen(s));
}

/* Before an inserted line: end the line the output stopped in (only the
 * last line of next can lack its newline). */
static int line_start(struct merge *m)
{
	const struct ug_buf *o = m->out;

	if (o->len > m->start + m->bom && o->data[o->len - 1] != '\n')
		return put_str(m, m->eol);
	return 0;
}

/* A local line, without its indentation and line end, after indent. */
static int put_local_line(struct merge *m, const struct ug_conf_entry *l, const char *indent,
			  size_t ilen)
{
	const char *s = m->l + l->off;
	size_t n = l->len;
	int r;

	/* as the parser reads it: the '\r' before the end of a line (or of
	 * the file) is not part of the line */
	if (n > 0 && s[n - 1] == '\n')
		n--;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	while (n > 0 && is_blank(s[0])) {
		s++;
		n--;
	}
	if ((r = line_start(m)) < 0 || (r = put(m, indent, ilen)) < 0 || (r = put(m, s, n)) < 0)
		return r;
	return put_str(m, m->eol);
}

/* Can the local value v, which the terminal wrote unquoted, stand
 * unquoted where next's unquoted value was? It parsed on the terminal's
 * line, so it starts with no quote or blank, ends with no blank and
 * with no odd run of '\'; only what follows it changes: a final '\r'
 * would be taken for part of a CRLF line end. */
static bool plain_ok(const char *v)
{
	size_t n = strlen(v);

	return n == 0 || v[n - 1] != '\r';
}

static int put_dquoted(struct merge *m, const char *v)
{
	int r = put_str(m, "\"");

	for (const char *p = v; r == 0 && *p; p++) {
		if (*p == '"' || *p == '\\')
			r = put_str(m, "\\");
		if (r == 0)
			r = put(m, p, 1);
	}
	return r < 0 ? r : put_str(m, "\"");
}

/* The local value in place of next's, in a form that reads back as it. */
static int put_value(struct merge *m, const struct ug_conf_entry *l, const struct ug_conf_entry *n)
{
	int r;

	if (l->quote)
		return put(m, m->l + l->value_off, l->value_len);
	if (n->quote == '\'' && !strchr(l->value, '\'')) {
		if ((r = put_str(m, "'")) < 0 || (r = put_str(m, l->value)) < 0)
			return r;
		return put_str(m, "'");
	}
	if (n->quote == 0 && plain_ok(l->value))
		return put_str(m, l->value);
	return put_dquoted(m, l->value);
}

/* Sections next lacks, with the keys the terminal added to them. */
static int append_sections(struct merge *m)
{
	const struct ug_conf *B = m->B, *L = m->L, *N = m->N;
	size_t *first = NULL, *order = NULL;
	int r = -ENOMEM;

	/* the added keys grouped by section, each group in file order */
	first = calloc(L->nsections + 1, sizeof(*first));
	order = calloc(m->nladded + 1, sizeof(*order));
	if (!first || !order)
		goto out;
	for (size_t j = 0; j < L->nentries; j++)
		if (m->ladded[j])
			first[L->entries[j].section + 1]++;
	for (size_t s = 0; s < L->nsections; s++)
		first[s + 1] += first[s];
	{
		size_t *fill = calloc(L->nsections + 1, sizeof(*fill));

		if (!fill)
			goto out;
		for (size_t j = 0; j < L->nentries; j++) {
			size_t s = L->entries[j].section;

			if (m->ladded[j])
				order[first[s] + fill[s]++] = j;
		}
		free(fill);
	}
	r = 0;
	for (size_t s = 1; s < L->nsections && r == 0; s++) {
		const char *name = L->sections[s].name;
		bool has_keys = first[s + 1] > first[s];

		if (ug_conf_section_find(N, name) >= 0)
			continue;
		if (!has_keys && ug_conf_section_find(B, name) >= 0)
			continue;
		if ((r = line_start(m)) < 0)
			break;
		if (m->out->len > m->start + m->bom && (r = put_str(m, m->eol)) < 0)
			break;
		if ((r = put_str(m, "[")) < 0 || (r = put_str(m, name)) < 0 ||
		    (r = put_str(m, "]")) < 0 || (r = put_str(m, m->eol)) < 0)
			break;
		for (size_t k = first[s]; k < first[s + 1] && r == 0; k++)
			r = put_local_line(m, &L->entries[order[k]], "", 0);
	}
out:
	free(first);
	free(order);
	return r;
}

static int build(struct merge *m)
{
	const struct ug_conf *N = m->N;
	size_t pos = 0;
	int r;

	for (size_t i = 0; i < N->nentries; i++) {
		struct ev *e;

		if (m->act[i] == ACT_KEEP)
			continue;
		e = &m->ev[m->nev++];
		e->idx = i;
		e->anchor = SIZE_MAX;
		if (m->act[i] == ACT_DROP) {
			e->kind = EV_DROP;
			e->off = N->entries[i].off;
		} else {
			e->kind = EV_VALUE;
			e->off = N->entries[i].value_off;
		}
	}
	if (m->nladded > 0 && (r = plan_inserts(m)) < 0)
		return r;
	qsort(m->ev, m->nev, sizeof(*m->ev), ev_cmp);

	for (size_t k = 0; k < m->nev; k++) {
		const struct ev *e = &m->ev[k];

		if ((r = put(m, m->n + pos, e->off - pos)) < 0)
			return r;
		pos = e->off;
		switch (e->kind) {
		case EV_INSERT: {
			const char *ind = "";
			size_t ilen = 0;

			/* the indentation of the key above, never deeper: the
			 * parser refuses a key indented deeper than the one
			 * before it */
			if (e->anchor != SIZE_MAX) {
				ind = m->n + N->entries[e->anchor].off;
				while (ilen < N->entries[e->anchor].len && is_blank(ind[ilen]))
					ilen++;
			}
			r = put_local_line(m, &m->L->entries[e->idx], ind, ilen);
			break;
		}
		case EV_DROP:
			pos += N->entries[e->idx].len;
			r = 0;
			break;
		case EV_VALUE:
			r = put_value(m, m->src[e->idx], &N->entries[e->idx]);
			pos += N->entries[e->idx].value_len;
			break;
		}
		if (r < 0)
			return r;
	}
	if ((r = put(m, m->n + pos, m->nlen - pos)) < 0)
		return r;
	return append_sections(m);
}

/* The result read back: every key the merge chose with the value it
 * chose, and no other. */
static int check(struct merge *m, struct ug_error *err)
{
	const struct ug_conf *L = m->L, *N = m->N;
	struct ug_conf *O = NULL;
	size_t want = m->nladded;
	int r;

	const void *p = m->out->len > m->start ? (const void *)(m->out->data + m->start) : "";
	struct ug_error e = { "" };

	if ((r = ug_conf_parse(p, m->out->len - m->start, &O, &e)) < 0)
		return ug_error_set(err, r, "merged result: %s; the local copy is kept",
				    e.msg[0] ? e.msg : strerror(-r));
	for (size_t i = 0; i < N->nentries && r == 0; i++) {
		const struct ug_conf_entry *n = &N->entries[i], *o;
		const char *v = m->act[i] == ACT_LOCAL ? m->src[i]->value : n->value;

		if (m->act[i] == ACT_DROP)
			continue;
		want++;
		o = ug_conf_get(O, N->sections[n->section].name, n->key);
		if (!o || !streq(o->value, v))
			r = ug_error_set(err, -EBADMSG, "merged result: key '%.64s' does not read back as merged; the local copy is kept",
					 n->key);
	}
	for (size_t j = 0; j < L->nentries && r == 0; j++) {
		const struct ug_conf_entry *l = &L->entries[j], *o;

		if (!m->ladded[j])
			continue;
		o = ug_conf_get(O, L->sections[l->section].name, l->key);
		if (!o || !streq(o->value, l->value))
			r = ug_error_set(err, -EBADMSG, "merged result: key '%.64s' does not read back as merged; the local copy is kept",
					 l->key);
	}
	if (r == 0 && O->nentries != want)
		r = ug_error_set(err, -EBADMSG, "merged result: %zu keys, but the merge chose %zu; the local copy is kept",
				 O->nentries, want);
	ug_conf_free(O);
	return r;
}

int ug_merge_config(const void *base, size_t base_len,
		    const void *local, size_t local_len,
		    const void *next, size_t next_len,
		    enum ug_merge_prefer prefer,
		    struct ug_buf *out, struct ug_merge_report *rep,
		    struct ug_error *err)
{
	struct merge m = { .nlen = next_len, .out = out };
	size_t nev;
	int r;

	if (!out || (base_len && !base) || (local_len && !local) || (next_len && !next))
		return -EINVAL;
	/* no arithmetic on a null pointer, even with an offset of 0 */
	m.l = local ? local : "";
	m.n = next ? next : "";
	m.start = out->len;
	/* the sizes first: nothing is parsed when any side is over */
	if (base_len > UG_STRUCT_FILE_MAX || local_len > UG_STRUCT_FILE_MAX ||
	    next_len > UG_STRUCT_FILE_MAX)
		return ug_error_set(err, -E2BIG, "%s: larger than %u bytes",
				    base_len > UG_STRUCT_FILE_MAX ? side_base :
				    local_len > UG_STRUCT_FILE_MAX ? side_local : side_next,
				    UG_STRUCT_FILE_MAX);
	if ((r = parse_side(side_base, base, base_len, &m.B, err)) < 0 ||
	    (r = parse_side(side_local, local, local_len, &m.L, err)) < 0 ||
	    (r = parse_side(side_next, next, next_len, &m.N, err)) < 0)
		goto out;

	r = -ENOMEM;
	m.act = calloc(m.N->nentries + 1, sizeof(*m.act));
	m.src = calloc(m.N->nentries + 1, sizeof(*m.src));
	m.ladded = calloc(m.L->nentries + 1, sizeof(*m.ladded));
	/* at most one event per entry of next and per entry of local */
	nev = m.N->nentries + m.L->nentries + 1;
	m.ev = calloc(nev, sizeof(*m.ev));
	if (!m.act || !m.src || !m.ladded || !m.ev)
		goto out;
	m.bom = m.N->bom ? 3 : 0;
	/* inserted lines end as next's do; an empty next borrows local's */
	m.eol = (m.N->nlines > 0 ? m.N->crlf : m.L->crlf) ? "\r\n" : "\n";

	if ((r = decide(&m, prefer)) < 0)
		goto out;
	if ((r = build(&m)) < 0) {
		if (r == -E2BIG)
			ug_error_set(err, r, "merged result: larger than the output buffer allows");
		goto out;
	}
	if ((r = check(&m, err)) < 0)
		goto out;
	if (rep) {
		*rep = m.rep;
		memset(&m.rep, 0, sizeof(m.rep));
	}
	r = 0;
out:
	if (r == -ENOMEM)
		ug_error_set(err, r, "out of memory");
	if (r < 0)
		out->len = m.start;
	ug_merge_report_release(&m.rep);
	ug_conf_free(m.B);
	ug_conf_free(m.L);
	ug_conf_free(m.N);
	free(m.act);
	free(m.src);
	free(m.ladded);
	free(m.ev);
	return r;
}

/* ---- migrate ----------------------------------------------------------- */

static int parse_table_side(const char *side, enum ug_struct_format fmt, const void *data,
			    size_t len, struct ug_table **ret, struct ug_error *err)
{
	struct ug_error e = { "" };
	int r = ug_table_parse(fmt, data, len, ret, &e);

	if (r < 0)
		return ug_error_set(err, r, "%s: %s", side, e.msg[0] ? e.msg : strerror(-r));
	return 0;
}

/* One field: CSV quoted when RFC 4180 needs it (or when it is the only,
 * empty field of a row, which would be an empty line); TSV as is, or
 * -EBADMSG for what TSV cannot hold. */
static int put_field(struct ug_buf *out, enum ug_struct_format fmt, const char *f, size_t n,
		     bool only, bool last, bool crlf, size_t line, const char *column,
		     struct ug_error *err)
{
	int r;

	if (fmt == UG_STRUCT_TSV) {
		if (memchr(f, '\t', n) || memchr(f, '\n', n))
			return ug_error_set(err, -EBADMSG,
					    "local copy: line %zu: the field of column '%.64s' holds a tab or line feed, which TSV cannot hold",
					    line, column);
		if (n == 0 && only)
			return ug_error_set(err, -EBADMSG,
					    "local copy: line %zu: the row would be an empty line in a one-column TSV file (and no row)",
					    line);
		if (last && !crlf && n > 0 && f[n - 1] == '\r')
			return ug_error_set(err, -EBADMSG,
					    "local copy: line %zu: the field of column '%.64s' ends in a carriage return, which would end the line",
					    line, column);
		return ug_buf_put(out, f, n);
	}
	if (!(n == 0 && only) && !memchr(f, ',', n) && !memchr(f, '"', n) && !memchr(f, '\r', n) &&
	    !memchr(f, '\n', n))
		return ug_buf_put(out, f, n);
	if ((r = ug_buf_put_u8(out, '"')) < 0)
		return r;
	for (;;) {
		const char *q = memchr(f, '"', n);
		size_t k = q ? (size_t)(q - f) + 1 : n;

		if ((r = ug_buf_put(out, f, k)) < 0)
			return r;
		if (!q)
			break;
		if ((r = ug_buf_put_u8(out, '"')) < 0)
			return r;
		f += k;
		n -= k;
	}
	return ug_buf_put_u8(out, '"');
}

/* A put into the result failed: say why (the cap is the caller's). */
static int out_fail(int r, struct ug_error *err)
{
	if (r == -E2BIG)
		return ug_error_set(err, r, "migrated result: larger than the output buffer allows");
	return ug_error_set(err, r, "out of memory");
}

/* Every row of local after the header, onto next's columns. */
static int migrate_rows(const struct ug_table *LT, const struct ug_table *NT, const size_t *map,
			const void *local, size_t local_len, struct ug_buf *out,
			struct ug_error *err)
{
	const char *eol = NT->crlf ? "\r\n" : "\n";
	const uint8_t delim = NT->format == UG_STRUCT_CSV ? ',' : '\t';
	struct ug_table_reader rd;
	struct ug_table_record rec;
	struct ug_error e = { "" };
	bool header = true;
	int r;

	ug_table_reader_init(&rd, LT->format, local, local_len);
	while ((r = ug_table_reader_next(&rd, &rec, &e)) > 0) {
		if (header) {
			header = false;
			continue;
		}
		if (rec.nfields != LT->ncolumns) {
			r = ug_error_set(err, -EBADMSG, "local copy: line %zu: the table changed while being read",
					 rec.line);
			goto out;
		}
		for (size_t j = 0; j < NT->ncolumns; j++) {
			size_t i = map[j];

			if (j > 0 && (r = ug_buf_put_u8(out, delim)) < 0)
				goto put_failed;
			r = put_field(out, NT->format, i == SIZE_MAX ? "" : rec.fields[i],
				      i == SIZE_MAX ? 0 : rec.lens[i], NT->ncolumns == 1,
				      j + 1 == NT->ncolumns, NT->crlf, rec.line, NT->columns[j], err);
			if (r == -EBADMSG)
				goto out;
			if (r < 0)
				goto put_failed;
		}
		if ((r = ug_buf_put(out, eol, strlen(eol))) < 0)
			goto put_failed;
	}
	if (r < 0)
		r = ug_error_set(err, r, "local copy: %s", e.msg[0] ? e.msg : strerror(-r));
	goto out;
put_failed:
	r = out_fail(r, err);
out:
	ug_table_reader_release(&rd);
	return r < 0 ? r : 0;
}

int ug_merge_table_renames(const void *local, size_t local_len,
			   const void *next, size_t next_len,
			   enum ug_struct_format fmt,
			   const struct ug_column_rename *renames, size_t nrenames,
			   struct ug_buf *out, struct ug_merge_table_report *rep,
			   struct ug_error *err)
{
	struct ug_merge_table_report rp = { 0 };
	struct ug_table *LT = NULL, *NT = NULL, *OT = NULL;
	struct ug_error e = { "" };
	size_t *map = NULL, start;
	bool *used = NULL;
	const void *res;
	int r;

	if (fmt != UG_STRUCT_CSV && fmt != UG_STRUCT_TSV)
		return ug_error_set(err, -EINVAL, "format '%s' is not a table",
				    ug_struct_format_name(fmt));
	if (!out || (local_len && !local) || (next_len && !next) || (nrenames && !renames))
		return -EINVAL;
	if (!local)
		local = "";
	if (!next)
		next = "";
	start = out->len;
	if (local_len > UG_STRUCT_FILE_MAX || next_len > UG_STRUCT_FILE_MAX)
		return ug_error_set(err, -E2BIG, "%s: larger than %u bytes",
				    local_len > UG_STRUCT_FILE_MAX ? side_local : side_next,
				    UG_STRUCT_FILE_MAX);
	if ((r = parse_table_side(side_local, fmt, local, local_len, &LT, err)) < 0 ||
	    (r = parse_table_side(side_next, fmt, next, next_len, &NT, err)) < 0)
		goto out;

	if (NT->ncolumns == 0) {
		/* nowhere to put a row: refuse rather than lose the terminal's data */
		if (LT->nrows > 0) {
			r = ug_error_set(err, -EBADMSG,
					 "new version: no header row, so the local copy's %zu row%s would have no columns to go to",
					 LT->nrows, LT->nrows == 1 ? "" : "s");
			goto out;
		}
		rp.columns_dropped = LT->ncolumns;
		if ((r = ug_buf_put(out, next, next_len)) < 0) {
			r = out_fail(r, err);
			goto out;
		}
		goto check;
	}

	map = calloc(NT->ncolumns, sizeof(*map));
	used = calloc(LT->ncolumns + 1, sizeof(*used));
	if (!map || !used) {
		r = ug_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t j = 0; j < NT->ncolumns; j++) {
		ssize_t i = ug_table_column(LT, NT->columns[j]);

		map[j] = i < 0 ? SIZE_MAX : (size_t)i;
		if (i >= 0)
			used[i] = true;
	}
	/* as ug_table_diff pairs them: an old column next lacks with a new
	 * column local lacks, each in one rename at most */
	for (size_t k = 0; k < nrenames; k++) {
		ssize_t i = ug_table_column(LT, renames[k].from);
		ssize_t j = ug_table_column(NT, renames[k].to);

		if (i < 0 || j < 0 || used[i] || map[j] != SIZE_MAX)
			continue;
		map[j] = (size_t)i;
		used[i] = true;
		rp.columns_renamed++;
	}
	for (size_t j = 0; j < NT->ncolumns; j++) {
		if (map[j] == SIZE_MAX)
			rp.columns_added++;
		else
			rp.columns_kept++;
	}
	for (size_t i = 0; i < LT->ncolumns; i++)
		if (!used[i])
			rp.columns_dropped++;

	/* next's header as next writes it (its BOM, quoting and line end) */
	if ((r = ug_buf_put(out, next, NT->body_off)) < 0) {
		r = out_fail(r, err);
		goto out;
	}
	if (LT->nrows > 0) {
		if (NT->body_off > 0 && ((const char *)next)[NT->body_off - 1] != '\n' &&
		    (r = ug_buf_put(out, NT->crlf ? "\r\n" : "\n", NT->crlf ? 2 : 1)) < 0) {
			r = out_fail(r, err);
			goto out;
		}
		if ((r = migrate_rows(LT, NT, map, local, local_len, out, err)) < 0)
			goto out;
	}
	rp.rows = LT->nrows;

check:
	/* read back: next's columns, every local row */
	res = out->len > start ? (const void *)(out->data + start) : "";
	if ((r = ug_table_parse(fmt, res, out->len - start, &OT, &e)) < 0) {
		r = ug_error_set(err, r, "migrated result: %s; the local copy is kept",
				 e.msg[0] ? e.msg : strerror(-r));
		goto out;
	}
	if (OT->ncolumns != NT->ncolumns || OT->nrows != LT->nrows) {
		r = ug_error_set(err, -EBADMSG,
				 "migrated result: %zu columns and %zu rows read back, want %zu and %zu; the local copy is kept",
				 OT->ncolumns, OT->nrows, NT->ncolumns, LT->nrows);
		goto out;
	}
	if (rep)
		*rep = rp;
	r = 0;
out:
	if (r < 0)
		out->len = start;
	ug_table_free(LT);
	ug_table_free(NT);
	ug_table_free(OT);
	free(map);
	free(used);
	return r;
}

int ug_merge_table(const void *local, size_t local_len,
		   const void *next, size_t next_len,
		   enum ug_struct_format fmt, struct ug_buf *out,
		   struct ug_merge_table_report *rep, struct ug_error *err)
{
	return ug_merge_table_renames(local, local_len, next, next_len, fmt, NULL, 0, out, rep, err);
}
