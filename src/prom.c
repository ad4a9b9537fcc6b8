/* prom.c - Prometheus text exposition format, written atomically (prom.h). */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

void ug_prom_init(struct ug_prom *p)
{
	memset(p, 0, sizeof(*p));
	ug_buf_init(&p->out, UG_PROM_MAX);
}

void ug_prom_release(struct ug_prom *p)
{
	ug_buf_release(&p->out);
	p->family[0] = '\0';
	p->err = 0;
}

static bool name_ok(const char *s, bool metric)
{
	size_t n = strlen(s);

	if (n == 0 || n > UG_PROM_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	/* "__" starts the names Prometheus keeps for itself */
	if (s[0] == '_' && s[1] == '_')
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || (metric && *c == ':')))
			return false;
	return true;
}

static void fail(struct ug_prom *p, int r)
{
	if (r < 0 && p->err == 0)
		p->err = r;
}

int ug_prom_escape_label(struct ug_buf *b, const char *value)
{
	bool utf8 = ug_utf8_valid(value, strlen(value));
	int r = 0;

	for (const unsigned char *c = (const unsigned char *)value; *c && r == 0; c++) {
		if (*c == '\\')
			r = ug_buf_put(b, "\\\\", 2);
		else if (*c == '"')
			r = ug_buf_put(b, "\\\"", 2);
		else if (*c == '\n')
			r = ug_buf_put(b, "\\n", 2);
		else if (*c >= 0x80 && !utf8)
			r = ug_buf_put_u8(b, '?');
		else
			r = ug_buf_put_u8(b, *c);
	}
	return r;
}

/* HELP text: '\' and newline escaped; it is ours, but a line break in it
 * would end the comment early. */
static int escape_help(struct ug_buf *b, const char *text)
{
	int r = 0;

	for (const char *c = text; *c && r == 0; c++) {
		if (*c == '\\')
			r = ug_buf_put(b, "\\\\", 2);
		else if (*c == '\n')
			r = ug_buf_put(b, "\\n", 2);
		else
			r = ug_buf_put_u8(b, (uint8_t)*c);
	}
	return r;
}

void ug_prom_family(struct ug_prom *p, const char *name, enum ug_prom_type type,
		    const char *help)
{
	size_t n;
	int r;

	if (p->err)
		return;
	n = strlen(name);
	if (!name_ok(name, true) ||
	    (type == UG_PROM_COUNTER && (n < 6 || strcmp(name + n - 6, "_total") != 0))) {
		fail(p, -EINVAL);
		return;
	}
	r = ug_buf_putf(&p->out, "# HELP %s ", name);
	if (r == 0)
		r = escape_help(&p->out, help);
	if (r == 0)
		r = ug_buf_putf(&p->out, "\n# TYPE %s %s\n", name,
				type == UG_PROM_COUNTER ? "counter" : "gauge");
	fail(p, r);
	if (r == 0)
		snprintf(p->family, sizeof(p->family), "%s", name);
}

/* name{labels} : the part of a sample line before its value. */
static int sample_start(struct ug_prom *p, const struct ug_prom_label *labels, size_t nlabels)
{
	int r;

	if (p->err)
		return p->err;
	if (!p->family[0] || nlabels > UG_PROM_LABELS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < nlabels; i++)
		if (!labels[i].name || !labels[i].value || !name_ok(labels[i].name, false))
			return -EINVAL;
	r = ug_buf_putf(&p->out, "%s", p->family);
	for (size_t i = 0; r == 0 && i < nlabels; i++) {
		r = ug_buf_putf(&p->out, "%s%s=\"", i ? "," : "{", labels[i].name);
		if (r == 0)
			r = ug_prom_escape_label(&p->out, labels[i].value);
		if (r == 0)
			r = ug_buf_put(&p->out, "\"", 1);
	}
	if (r == 0 && nlabels)
		r = ug_buf_put(&p->out, "}", 1);
	return r;
}

void ug_prom_sample(struct ug_prom *p, const struct ug_prom_label *labels, size_t nlabels,
		    double value)
{
	char num[40];
	int r = sample_start(p, labels, nlabels);

	if (r == 0) {
		if (isnan(value)) {
			snprintf(num, sizeof(num), "NaN");
		} else if (isinf(value)) {
			snprintf(num, sizeof(num), "%s", value > 0 ? "+Inf" : "-Inf");
		} else {
			/* the shortest text that reads back as the same double */
			for (int prec = 15; prec <= 17; prec++) {
				snprintf(num, sizeof(num), "%.*g", prec, value);
				if (strtod(num, NULL) == value)
					break;
			}
		}
		r = ug_buf_putf(&p->out, " %s\n", num);
	}
	fail(p, r);
}

void ug_prom_sample_u64(struct ug_prom *p, const struct ug_prom_label *labels,
			size_t nlabels, uint64_t value)
{
	int r = sample_start(p, labels, nlabels);

	if (r == 0)
		r = ug_buf_putf(&p->out, " %" PRIu64 "\n", value);
	fail(p, r);
}

const char *ug_prom_text(const struct ug_prom *p, size_t *ret_len)
{
	if (p->err)
		return NULL;
	if (ret_len)
		*ret_len = p->out.len;
	if (!p->out.data)
		return "";
	/* ug_buf always keeps a spare byte past len */
	p->out.data[p->out.len] = '\0';
	return (const char *)p->out.data;
}

int ug_prom_write(struct ug_prom *p, const char *path, struct ug_error *err)
{
	const char *text;
	size_t len = 0;
	int r;

	if (p->err == -E2BIG)
		return ug_error_set(err, p->err, "metrics for '%s' are larger than %u bytes: not "
				    "written", path, UG_PROM_MAX);
	if (p->err)
		return ug_error_set(err, p->err, "cannot make the metrics for '%s': %s", path,
				    strerror(-p->err));
	if (!path[0])
		return ug_error_set(err, -EINVAL, "no metrics file named");
	text = ug_prom_text(p, &len);
	r = ug_file_write_atomic(AT_FDCWD, path, text, len, 0644);
	if (r == -ENOENT || r == -ENOTDIR)
		return ug_error_set(err, r, "cannot write metrics file '%s': its directory does "
				    "not exist (create it, or name another file)", path);
	if (r == -EACCES || r == -EPERM || r == -EROFS)
		return ug_error_set(err, r, "cannot write metrics file '%s': %s (the directory "
				    "must be writable: a temporary file is renamed over it)", path,
				    strerror(-r));
	if (r < 0)
		return ug_error_set(err, r, "cannot write metrics file '%s': %s", path, strerror(-r));
	return 0;
}
