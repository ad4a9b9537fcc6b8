/* test-tconf.c - unit tests for src/tconf.c: the terminal's settings file,
 * every setting read and printed back, and every mistake refused with the
 * file, the line and the setting named. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tconf.h"
#include "util.h"

#include "tmpdir.h"

static void tmp_setup(void)
{
	ug_test_tmp_make("tconf");
}

static void tmp_teardown(void)
{
	ug_test_tmp_remove();
}

TestSuite(tconf, .init = tmp_setup, .fini = tmp_teardown);

/* The settings every file needs; tests add theirs. */
#define REQUIRED_ID   "id = kiosk-1\n"
#define REQUIRED_SEED "seed = s1.example /srv/upgrid\n"
#define REQUIRED_KEY  "master-key = /etc/upgrid/master.pub\n"
#define REQUIRED_ROOT "root = /opt/app/current\n"
#define MINIMAL "[terminal]\n" REQUIRED_ID REQUIRED_SEED REQUIRED_KEY REQUIRED_ROOT

static const char *write_conf_len(const char *name, const char *text, size_t len)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open '%s': %s", path, strerror(errno));
	cr_assert_eq(ug_write_all(fd, text, len), 0);
	close(fd);
	return path;
}

static const char *write_conf(const char *text)
{
	return write_conf_len("terminal.conf", text, strlen(text));
}

static void load_ok(struct ug_tconf *c, const char *text)
{
	struct ug_error err = { "" };
	const char *path = write_conf(text);
	int r;

	ug_tconf_init(c);
	r = ug_tconf_load(c, path, &err);
	cr_assert_eq(r, 0, "load: %d %s\n--- file:\n%s", r, err.msg, text);
}

/* The load fails with rc, and the message holds "'PATH': line N: " (line
 * 0: no line) and want. */
static void expect_fail_len(const char *text, size_t len, int rc, int line, const char *want)
{
	struct ug_error err = { "" };
	struct ug_tconf c;
	const char *path = write_conf_len("terminal.conf", text, len);
	char where[256];
	int r;

	ug_tconf_init(&c);
	r = ug_tconf_load(&c, path, &err);
	cr_assert_eq(r, rc, "load gave %d (%s), want %d\n--- file:\n%s", r, err.msg, rc, text);
	cr_assert_null(c.id, "c is untouched on failure");
	if (line > 0) {
		snprintf(where, sizeof(where), "'%s': line %d: ", path, line);
		cr_assert(strncmp(err.msg, where, strlen(where)) == 0,
			  "message '%s' does not start with '%s'\n--- file:\n%s", err.msg, where, text);
	} else {
		cr_assert_not_null(strstr(err.msg, path), "message '%s' lacks the path", err.msg);
	}
	cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'\n--- file:\n%s",
			   err.msg, want, text);
	ug_tconf_release(&c);
}

static void expect_fail(const char *text, int line, const char *want)
{
	expect_fail_len(text, strlen(text), -EINVAL, line, want);
}

static void assert_seed(const struct ug_server *s, const char *name, const char *user,
			const char *host, unsigned port, const char *repo)
{
	cr_assert_str_eq(s->name, name);
	if (user)
		cr_assert_str_eq(s->user, user);
	else
		cr_assert_null(s->user, "seed %s: no user", name);
	cr_assert_str_eq(s->host, host);
	cr_assert_eq(s->port, port, "seed %s: port %u, want %u", name, s->port, port);
	cr_assert_str_eq(s->repo, repo);
}

static void assert_argv(const struct ug_tconf_hook *h, const char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	cr_assert_not_null(h->argv);
	cr_assert_eq(h->argc, n, "argc %zu, want %zu", h->argc, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(h->argv[i], want[i]);
	cr_assert_null(h->argv[n], "argv ends with NULL");
}

static const char full[] =
	"; settings of kiosk-0042\n"
	"[terminal]\n"
	"id = kiosk-0042\n"
	"seed = upgrid@s1.example:2222 /srv/upgrid\n"
	"seed = 10.0.0.2 /var/lib/upgrid\n"
	"  seed=ops@[2001:db8::1]   /srv/u\n"
	"master-key = /etc/upgrid/master.pub\n"
	"identity = /etc/upgrid/terminal_ed25519\n"
	"known-hosts = /etc/upgrid/kh\n"
	"channel = testing\n"
	"root = /opt/app/current\n"
	"state = /var/lib/upgrid-terminal\n"
	"poll = 600\n"
	"splay = 0\n"
	"stall-timeout: 120\n"
	"bwlimit = 512K\n"
	"policy = manual\n"
	"deny = 3, 7 12\n"
	"deny = 40\n"
	"pin = 41\n"
	"keep = 5\n"
	"on-conflict = upstream\n"
	"pre-switch = /usr/lib/app/drain --wait 30\n"
	"pre-switch-timeout = 120\n"
	"restart = /bin/systemctl restart app.service\n"
	"restart-timeout = 90\n"
	"health-check = /usr/lib/app/check   --quick\t-v   ; a comment\n"
	"health-check-timeout = 15\n";

Test(tconf, full_file_sets_every_field)
{
	struct ug_tconf c;
	static const char *const pre[] = { "/usr/lib/app/drain", "--wait", "30", NULL };
	static const char *const restart[] = { "/bin/systemctl", "restart", "app.service", NULL };
	static const char *const check[] = { "/usr/lib/app/check", "--quick", "-v", NULL };

	load_ok(&c, full);
	cr_assert_str_eq(c.id, "kiosk-0042");
	cr_assert_eq(c.nseeds, 3);
	assert_seed(&c.seeds[0], "seed1", "upgrid", "s1.example", 2222, "/srv/upgrid");
	assert_seed(&c.seeds[1], "seed2", NULL, "10.0.0.2", 22, "/var/lib/upgrid");
	assert_seed(&c.seeds[2], "seed3", "ops", "2001:db8::1", 22, "/srv/u");
	cr_assert_str_eq(c.master_key, "/etc/upgrid/master.pub");
	cr_assert_str_eq(c.identity, "/etc/upgrid/terminal_ed25519");
	cr_assert_str_eq(c.known_hosts, "/etc/upgrid/kh");
	cr_assert_str_eq(c.channel, "testing");
	cr_assert_str_eq(c.root, "/opt/app/current");
	cr_assert_str_eq(c.state, "/var/lib/upgrid-terminal");
	cr_assert_eq(c.poll, 600);
	cr_assert_eq(c.splay, 0);
	cr_assert_eq(c.stall_timeout, 120);
	cr_assert_eq(c.bwlimit, 512 * 1024);
	cr_assert_eq(c.policy, UG_TCONF_POLICY_MANUAL);
	cr_assert_eq(c.ndeny, 4);
	cr_assert_eq(c.deny[0], 3);
	cr_assert_eq(c.deny[1], 7);
	cr_assert_eq(c.deny[2], 12);
	cr_assert_eq(c.deny[3], 40);
	cr_assert_eq(c.pin, 41);
	cr_assert_eq(c.keep, 5);
	cr_assert_eq(c.on_conflict, UG_TCONF_CONFLICT_UPSTREAM);
	assert_argv(&c.hooks[UG_TCONF_HOOK_PRE_SWITCH], pre);
	cr_assert_eq(c.hooks[UG_TCONF_HOOK_PRE_SWITCH].timeout, 120);
	assert_argv(&c.hooks[UG_TCONF_HOOK_RESTART], restart);
	cr_assert_eq(c.hooks[UG_TCONF_HOOK_RESTART].timeout, 90);
	assert_argv(&c.hooks[UG_TCONF_HOOK_HEALTH_CHECK], check);
	cr_assert_eq(c.hooks[UG_TCONF_HOOK_HEALTH_CHECK].timeout, 15);
	ug_tconf_release(&c);
	cr_assert_null(c.id, "release leaves c as init does");
	cr_assert_eq(c.nseeds, 0);
	cr_assert_eq(c.poll, 3600);
}

Test(tconf, minimal_file_gets_the_defaults)
{
	struct ug_tconf c;

	load_ok(&c, MINIMAL);
	cr_assert_str_eq(c.id, "kiosk-1");
	cr_assert_eq(c.nseeds, 1);
	assert_seed(&c.seeds[0], "seed1", NULL, "s1.example", 22, "/srv/upgrid");
	cr_assert_null(c.identity);
	cr_assert_str_eq(c.known_hosts, UG_TERMINAL_KNOWN_HOSTS);
	cr_assert_str_eq(c.known_hosts, SYSCONFDIR "/upgrid/known_hosts");
	cr_assert_str_eq(c.channel, "stable");
	cr_assert_str_eq(c.state, LOCALSTATEDIR "/lib/upgrid");
	cr_assert_eq(c.poll, 3600);
	cr_assert_eq(c.splay, 300);
	cr_assert_eq(c.stall_timeout, 60);
	cr_assert_eq(c.bwlimit, 0);
	cr_assert_eq(c.policy, UG_TCONF_POLICY_AUTO);
	cr_assert_eq(c.ndeny, 0);
	cr_assert_eq(c.pin, 0);
	cr_assert_eq(c.keep, 2);
	cr_assert_eq(c.on_conflict, UG_TCONF_CONFLICT_LOCAL);
	for (size_t i = 0; i < UG_TCONF_HOOKS; i++) {
		cr_assert_null(c.hooks[i].argv, "hook %zu not set", i);
		cr_assert_eq(c.hooks[i].argc, 0);
		cr_assert_eq(c.hooks[i].timeout, 60);
	}
	cr_assert_not(ug_tconf_denied(&c, 1));
	ug_tconf_release(&c);
}

Test(tconf, hook_names)
{
	cr_assert_str_eq(ug_tconf_hook_name(UG_TCONF_HOOK_PRE_SWITCH), "pre-switch");
	cr_assert_str_eq(ug_tconf_hook_name(UG_TCONF_HOOK_RESTART), "restart");
	cr_assert_str_eq(ug_tconf_hook_name(UG_TCONF_HOOK_HEALTH_CHECK), "health-check");
	cr_assert_null(ug_tconf_hook_name(UG_TCONF_HOOKS));
}

/* ---- print, then load again ------------------------------------------ */

static void assert_same_str(const char *a, const char *b, const char *what)
{
	if (!a || !b)
		cr_assert(a == b, "%s: '%s' vs '%s'", what, a ? a : "(null)", b ? b : "(null)");
	else
		cr_assert_str_eq(a, b, "%s", what);
}

static void assert_same(const struct ug_tconf *a, const struct ug_tconf *b)
{
	assert_same_str(a->id, b->id, "id");
	cr_assert_eq(a->nseeds, b->nseeds);
	for (size_t i = 0; i < a->nseeds; i++) {
		assert_same_str(a->seeds[i].name, b->seeds[i].name, "seed name");
		assert_same_str(a->seeds[i].user, b->seeds[i].user, "seed user");
		assert_same_str(a->seeds[i].host, b->seeds[i].host, "seed host");
		assert_same_str(a->seeds[i].repo, b->seeds[i].repo, "seed repo");
		cr_assert_eq(a->seeds[i].port, b->seeds[i].port);
	}
	assert_same_str(a->master_key, b->master_key, "master-key");
	assert_same_str(a->identity, b->identity, "identity");
	assert_same_str(a->known_hosts, b->known_hosts, "known-hosts");
	assert_same_str(a->channel, b->channel, "channel");
	assert_same_str(a->root, b->root, "root");
	assert_same_str(a->state, b->state, "state");
	cr_assert_eq(a->poll, b->poll);
	cr_assert_eq(a->splay, b->splay);
	cr_assert_eq(a->stall_timeout, b->stall_timeout);
	cr_assert_eq(a->bwlimit, b->bwlimit, "bwlimit %" PRIu64 " vs %" PRIu64, a->bwlimit,
		     b->bwlimit);
	cr_assert_eq(a->policy, b->policy);
	cr_assert_eq(a->ndeny, b->ndeny);
	cr_assert_eq(memcmp(a->deny, b->deny, a->ndeny * sizeof(a->deny[0])), 0);
	cr_assert_eq(a->pin, b->pin);
	cr_assert_eq(a->keep, b->keep);
	cr_assert_eq(a->on_conflict, b->on_conflict);
	for (size_t i = 0; i < UG_TCONF_HOOKS; i++) {
		cr_assert_eq(a->hooks[i].argc, b->hooks[i].argc);
		cr_assert_eq(!a->hooks[i].argv, !b->hooks[i].argv);
		for (size_t j = 0; j < a->hooks[i].argc; j++)
			cr_assert_str_eq(a->hooks[i].argv[j], b->hooks[i].argv[j]);
		cr_assert_eq(a->hooks[i].timeout, b->hooks[i].timeout);
	}
}

/* print c, load what was printed, compare; returns the printed text */
static char *round_trip(const struct ug_tconf *c)
{
	struct ug_error err = { "" };
	struct ug_tconf back;
	char *text = NULL, *line, *save = NULL, *copy;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	const char *path;
	int r;

	cr_assert_not_null(f);
	cr_assert_eq(ug_tconf_print(c, f), 0);
	cr_assert_eq(fclose(f), 0);
	/* every line fits inih's buffer (200 bytes with the newline and NUL) */
	copy = strdup(text);
	cr_assert_not_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		cr_assert_leq(strlen(line), 198, "printed line too long: %s", line);
	free(copy);
	path = write_conf_len("printed.conf", text, len);
	ug_tconf_init(&back);
	r = ug_tconf_load(&back, path, &err);
	cr_assert_eq(r, 0, "printed settings do not load: %s\n--- printed:\n%s", err.msg, text);
	assert_same(c, &back);
	ug_tconf_release(&back);
	return text;
}

Test(tconf, print_then_load_gives_the_same_settings)
{
	struct ug_tconf c;
	char *text;

	load_ok(&c, full);
	text = round_trip(&c);
	/* the file's syntax, normalised */
	cr_assert_not_null(strstr(text, "[terminal]\n"));
	cr_assert_not_null(strstr(text, "seed = 10.0.0.2:22 /var/lib/upgrid\n"), "%s", text);
	cr_assert_not_null(strstr(text, "seed = ops@[2001:db8::1]:22 /srv/u\n"), "%s", text);
	cr_assert_not_null(strstr(text, "bwlimit = 512K\n"), "%s", text);
	cr_assert_not_null(strstr(text, "deny = 3, 7, 12, 40\n"), "%s", text);
	cr_assert_not_null(strstr(text, "health-check = /usr/lib/app/check --quick -v\n"), "%s", text);
	cr_assert_not_null(strstr(text, "stall-timeout = 120\n"), "%s", text);
	free(text);
	ug_tconf_release(&c);

	load_ok(&c, MINIMAL);
	text = round_trip(&c);
	cr_assert_not_null(strstr(text, "# identity = (not set"), "%s", text);
	cr_assert_not_null(strstr(text, "# restart = (not set)\nrestart-timeout = 60\n"), "%s", text);
	cr_assert_not_null(strstr(text, "pin = none\n"), "%s", text);
	cr_assert_not_null(strstr(text, "bwlimit = 0\n"), "%s", text);
	free(text);
	ug_tconf_release(&c);
}

Test(tconf, print_round_trip_at_the_limits)
{
	char *text = NULL, *printed;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct ug_tconf c;
	char long_repo[UG_TCONF_VALUE_MAX + 1];
	unsigned n = 0;

	cr_assert_not_null(f);
	/* a seed whose written-out port brings it to exactly the limit */
	memset(long_repo, 'r', sizeof(long_repo));
	long_repo[0] = '/';
	long_repo[UG_TCONF_VALUE_MAX - strlen("h:22 ")] = '\0';
	fprintf(f, "[terminal]\n" REQUIRED_ID REQUIRED_KEY REQUIRED_ROOT "seed = h %s\n", long_repo);
	for (unsigned i = 2; i <= UG_TCONF_SEEDS_MAX; i++)
		fprintf(f, "seed = s%u.example /srv\n", i);
	/* the whole deny list, with the biggest version numbers */
	while (n < UG_TCONF_DENY_MAX) {
		fprintf(f, "deny =");
		for (unsigned j = 0; j < 7 && n < UG_TCONF_DENY_MAX; j++, n++)
			fprintf(f, " %" PRIu64, UG_TCONF_VERSION_MAX - n);
		fputc('\n', f);
	}
	fprintf(f, "bwlimit = 1025\npin = 1\n");
	cr_assert_eq(fclose(f), 0);
	load_ok(&c, text);
	cr_assert_eq(c.nseeds, UG_TCONF_SEEDS_MAX);
	cr_assert_eq(c.ndeny, UG_TCONF_DENY_MAX);
	cr_assert(ug_tconf_denied(&c, UG_TCONF_VERSION_MAX));
	cr_assert_eq(c.bwlimit, 1025);
	printed = round_trip(&c);
	cr_assert_not_null(strstr(printed, "bwlimit = 1025\n"), "%s", printed);
	free(printed);
	ug_tconf_release(&c);
	free(text);
}

Test(tconf, print_reports_a_write_error)
{
	struct ug_tconf c;
	FILE *f = fopen("/dev/null", "r");

	cr_assert_not_null(f);
	ug_tconf_init(&c);
	cr_assert_eq(ug_tconf_print(&c, f), -EIO);
	fclose(f);
}

/* ---- every bad value --------------------------------------------------- */

struct bad {
	const char *line;   /* the setting, written on line 2 */
	const char *want;   /* in the message, after "'PATH': line 2: " */
};

static const struct bad bad_values[] = {
	{ "id = kiosk 1", "bad 'id': terminal id: byte 5 (0x20)" },
	{ "id = k\x01", "'id': the value has a control character (byte 2)" },
	{ "id = k\x7f", "'id': the value has a control character (byte 2)" },
	{ "id = kiosk-\xc3\xa9", "bad 'id': terminal id: byte 6 (0xc3)" },
	{ "id = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bad 'id': terminal id 'aaaaaaaaaaaaaaaa...' is longer than 128" },
	{ "id =", "'id' has no value" },
	{ "seed = s1.example", "'seed' must be 'ADDRESS REPO'" },
	{ "seed = s1.example /srv /extra", "'seed' must be 'ADDRESS REPO'" },
	{ "seed = s1.example srv", "'seed': repo 'srv' is not an absolute path" },
	{ "seed = s1.example /srv/../x", "'seed': repo" },
	{ "seed = x@ /srv", "'seed': address 'x@'" },
	{ "seed = host:0 /srv", "'seed': address" },
	{ "seed = host:65536 /srv", "'seed': address" },
	{ "seed = -host /srv", "'seed': address" },
	{ "seed = [::1 /srv", "'seed': address" },
	{ "seed = 10.1 /srv", "'seed': address" },
	{ "seed = h /rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr"
	  "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr",
	  "'seed' is longer than 160 bytes with its port written out" },
	{ "master-key = master.pub", "'master-key' must be an absolute path, not 'master.pub'" },
	{ "identity = ~/.ssh/id_ed25519", "'identity' must be an absolute path" },
	{ "known-hosts = known_hosts", "'known-hosts' must be an absolute path" },
	{ "channel = -beta", "bad 'channel': channel name '-beta' must not start" },
	{ "channel = a/b", "bad 'channel': channel name 'a/b' may only hold" },
	{ "channel = cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
	  "bad 'channel': channel name must be 1 to 64" },
	{ "root = current", "'root' must be an absolute path" },
	{ "root = /", "'root' must name the link that upgrid switches" },
	{ "root = /opt/app/", "'root' must name the link that upgrid switches" },
	{ "root = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  "'root': the value is longer than 160 bytes" },
	{ "state = var/lib/upgrid", "'state' must be an absolute path" },
	{ "poll = 9", "'poll' must be a number of seconds from 10 to 604800, not '9'" },
	{ "poll = 604801", "'poll' must be a number of seconds from 10 to 604800" },
	{ "poll = -60", "'poll' must be" },
	{ "poll = +60", "'poll' must be" },
	{ "poll = 1h", "'poll' must be" },
	{ "poll = 0x10", "'poll' must be" },
	{ "poll = 1e3", "'poll' must be" },
	{ "poll = 99999999999999999999999", "'poll' must be" },
	{ "poll = 6 0", "'poll' must be" },
	{ "poll =", "'poll' has no value" },
	{ "splay = 86401", "'splay' must be a number of seconds from 0 to 86400" },
	{ "splay = x", "'splay' must be" },
	{ "stall-timeout = 4", "'stall-timeout' must be a number of seconds from 5 to 3600" },
	{ "stall-timeout = 3601", "'stall-timeout' must be" },
	{ "bwlimit = 500", "'bwlimit' must be 0 (no limit) or 1K to 16G bytes per second" },
	{ "bwlimit = 1023", "'bwlimit' must be" },
	{ "bwlimit = 17G", "'bwlimit' must be" },
	{ "bwlimit = 1T", "'bwlimit' must be" },
	{ "bwlimit = 1.5M", "'bwlimit' must be" },
	{ "bwlimit = -1", "'bwlimit' must be" },
	{ "bwlimit = K", "'bwlimit' must be" },
	{ "policy = Auto", "'policy' must be 'auto' or 'manual', not 'Auto'" },
	{ "policy = deny", "'policy' must be 'auto' or 'manual'" },
	{ "deny = 0", "'deny': '0' is not a version number" },
	{ "deny = 3,x", "'deny': 'x' is not a version number" },
	{ "deny = -2", "'deny': '-2' is not a version number" },
	{ "deny = 9223372036854775808", "'deny': '9223372036854775808' is not a version number" },
	{ "deny = 1, 2, 1", "'deny': version 1 is listed twice (lines 2 and 2)" },
	{ "deny = ,", "'deny' lists no version" },
	{ "pin = 0", "'pin' must be a version number (1 or more) or 'none', not '0'" },
	{ "pin = latest", "'pin' must be a version number" },
	{ "pin = 9223372036854775808", "'pin' must be a version number" },
	{ "pin = None", "'pin' must be a version number" },
	{ "keep = 0", "'keep' must be a number of versions from 1 to 16, not '0'" },
	{ "keep = 17", "'keep' must be a number of versions from 1 to 16" },
	{ "on-conflict = both", "'on-conflict' must be 'local' or 'upstream', not 'both'" },
	{ "on-conflict = LOCAL", "'on-conflict' must be 'local' or 'upstream'" },
	{ "pre-switch = drain.sh", "'pre-switch' must start with the absolute path of a program" },
	{ "pre-switch = ./drain.sh --now", "'pre-switch' must start with the absolute path" },
	{ "restart = /bin/sh -c 'systemctl restart app'", "'restart': quotes and backslashes are not allowed" },
	{ "restart = /bin/echo \"a b\"", "'restart': quotes and backslashes" },
	{ "health-check = /usr/bin/check a\\ b", "'health-check': quotes and backslashes" },
	{ "health-check = /usr/bin/check `date`", "'health-check': quotes and backslashes" },
	{ "health-check = ~/check", "'health-check' must start with the absolute path" },
	{ "pre-switch-timeout = 0", "'pre-switch-timeout' must be a number of seconds from 1 to 3600" },
	{ "restart-timeout = 3601", "'restart-timeout' must be a number of seconds from 1 to 3600" },
	{ "health-check-timeout = 1m", "'health-check-timeout' must be" },
};

/* The required settings, without the one line sets. */
static void required_without(char *out, size_t size, const char *line)
{
	static const char *const req[] = { REQUIRED_ID, REQUIRED_SEED, REQUIRED_KEY, REQUIRED_ROOT };
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		size_t n = strcspn(req[i], " ");
		if (strncmp(line, req[i], n) == 0 && line[n] == ' ')
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s", req[i]);
	}
}

Test(tconf, every_bad_value_names_the_line_and_the_setting)
{
	char text[1024], others[512];

	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		required_without(others, sizeof(others), bad_values[i].line);
		snprintf(text, sizeof(text), "[terminal]\n%s\n%s", bad_values[i].line, others);
		expect_fail(text, 2, bad_values[i].want);
	}
}

Test(tconf, every_good_value_at_its_bounds)
{
	struct ug_tconf c;

	load_ok(&c, MINIMAL "poll = 10\nsplay = 86400\nstall-timeout = 5\nbwlimit = 1K\n"
		"keep = 16\npre-switch-timeout = 1\nrestart-timeout = 3600\npin = 9223372036854775807\n"
		"deny = 9223372036854775806\n");
	cr_assert_eq(c.poll, 10);
	cr_assert_eq(c.splay, 86400);
	cr_assert_eq(c.stall_timeout, 5);
	cr_assert_eq(c.bwlimit, 1024);
	cr_assert_eq(c.keep, 16);
	cr_assert_eq(c.hooks[UG_TCONF_HOOK_PRE_SWITCH].timeout, 1);
	cr_assert_eq(c.hooks[UG_TCONF_HOOK_RESTART].timeout, 3600);
	cr_assert_eq(c.pin, UG_TCONF_VERSION_MAX);
	ug_tconf_release(&c);
	load_ok(&c, MINIMAL "poll = 604800\nstall-timeout = 3600\nbwlimit = 16G\nkeep = 1\n"
		"splay = 0\npolicy = auto\non-conflict = local\npin = none\n");
	cr_assert_eq(c.poll, 604800);
	cr_assert_eq(c.bwlimit, 16ull << 30);
	cr_assert_eq(c.keep, 1);
	cr_assert_eq(c.pin, 0);
	ug_tconf_release(&c);
}

/* ---- the file's structure ---------------------------------------------- */

Test(tconf, unknown_setting_or_section)
{
	expect_fail(MINIMAL "bogus = 1\n", 6, "unknown setting 'bogus' in [terminal]");
	expect_fail(MINIMAL "Poll = 60\n", 6, "unknown setting 'Poll'");
	expect_fail(MINIMAL "b\x1bgus = 1\n", 6, "unknown setting '(unprintable)'");
	expect_fail(MINIMAL "[syncd]\nrepo = /srv\n", 6,
		    "unknown section [syncd]: the file has one section, [terminal]");
	/* even an empty one: it is a mistake somewhere */
	expect_fail(MINIMAL "[agent]\n", 6, "unknown section [agent]");
	expect_fail("[Terminal]\n" REQUIRED_ID, 1, "unknown section [Terminal]");
	expect_fail("[ terminal ]\n" REQUIRED_ID, 1, "unknown section [ terminal ]");
	expect_fail("id = kiosk-1\n[terminal]\n", 1,
		    "'id' is outside the [terminal] section");
	expect_fail(MINIMAL "[terminal]\npoll = 60\n", 6, "[terminal] again (first on line 1)");
	expect_fail("[terminal] x\n", 1, "text after the ']' of a section header");
}

Test(tconf, syntax_errors)
{
	expect_fail(MINIMAL "poll 60\n", 6, "syntax error");
	expect_fail("[terminal\n" REQUIRED_ID, 1, "syntax error");
	/* the first error in the file is the one reported */
	expect_fail("[terminal]\njunk\npoll = 1\n", 2, "syntax error");
	expect_fail("[terminal]\npoll = 1\njunk\n", 2, "'poll' must be");
}

Test(tconf, comments_blanks_bom_and_crlf)
{
	struct ug_tconf c;

	load_ok(&c, "\xef\xbb\xbf# comment\r\n; comment\r\n\r\n  [terminal]  ; here\r\n"
		"\tid = kiosk-1\r\n" REQUIRED_SEED REQUIRED_KEY REQUIRED_ROOT
		"poll = 60 ; a minute\r\n"
		"channel = beta\t\r\n");
	cr_assert_str_eq(c.id, "kiosk-1");
	cr_assert_eq(c.poll, 60);
	cr_assert_str_eq(c.channel, "beta");
	ug_tconf_release(&c);
}

Test(tconf, an_indented_line_is_not_a_continuation)
{
	/* inih would append "  poll = 60" to 'restart' as a second value */
	expect_fail(MINIMAL "restart = /bin/true\n   poll = 5\n", 7, "'poll' must be");
}

Test(tconf, a_setting_given_twice)
{
	expect_fail("[terminal]\n" REQUIRED_ID REQUIRED_SEED "poll = 60\n" REQUIRED_KEY REQUIRED_ROOT
		    "splay = 1\n" "keep = 3\n" "poll = 120\n", 9, "'poll' is set twice (lines 4 and 9)");
	expect_fail(MINIMAL "id = kiosk-2\n", 6, "'id' is set twice (lines 2 and 6)");
	expect_fail(MINIMAL "restart = /bin/true\nrestart = /bin/false\n", 7,
		    "'restart' is set twice (lines 6 and 7)");
	expect_fail(MINIMAL "pin = none\npin = 3\n", 7, "'pin' is set twice");
}

Test(tconf, seeds)
{
	char text[4096];
	size_t len;

	/* the 17th seed is refused on its line */
	len = (size_t)snprintf(text, sizeof(text), "[terminal]\n" REQUIRED_ID REQUIRED_KEY REQUIRED_ROOT);
	for (unsigned i = 1; i <= UG_TCONF_SEEDS_MAX + 1; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "seed = s%u.example /srv\n", i);
	expect_fail(text, 4 + UG_TCONF_SEEDS_MAX + 1, "more than 16 'seed' settings");
	/* a repeated seed, with the port written or not */
	expect_fail(MINIMAL "seed = s1.example:22 /srv/upgrid\n", 6,
		    "'seed' repeats the one on line 3");
	/* the same host with another repo, port or user is another seed */
	{
		struct ug_tconf c;

		load_ok(&c, MINIMAL "seed = s1.example /srv/other\nseed = s1.example:2222 /srv/upgrid\n"
			"seed = u@s1.example /srv/upgrid\n");
		cr_assert_eq(c.nseeds, 4);
		cr_assert_str_eq(c.seeds[3].name, "seed4");
		ug_tconf_release(&c);
	}
}

Test(tconf, deny_list)
{
	char text[8192];
	size_t len;
	unsigned n = 0;
	struct ug_tconf c;

	/* repeated lines add to the list; a version twice is refused wherever */
	expect_fail(MINIMAL "deny = 3, 4\npin = none\ndeny = 5 4\n", 8,
		    "'deny': version 4 is listed twice (lines 6 and 8)");
	/* 257 versions */
	len = (size_t)snprintf(text, sizeof(text), MINIMAL);
	while (n <= UG_TCONF_DENY_MAX) {
		len += (size_t)snprintf(text + len, sizeof(text) - len, "deny =");
		for (unsigned j = 0; j < 20 && n <= UG_TCONF_DENY_MAX; j++, n++)
			len += (size_t)snprintf(text + len, sizeof(text) - len, " %u", n + 1);
		len += (size_t)snprintf(text + len, sizeof(text) - len, "\n");
	}
	expect_fail(text, 6 + UG_TCONF_DENY_MAX / 20, "'deny': more than 256 versions");
	/* a pinned version may not be denied */
	expect_fail(MINIMAL "deny = 7, 9\npin = 9\n", 7,
		    "'pin' version 9 is on the 'deny' list (line 6)");
	load_ok(&c, MINIMAL "deny = 7,9 11\t13\n");
	cr_assert_eq(c.ndeny, 4);
	cr_assert(ug_tconf_denied(&c, 7));
	cr_assert(ug_tconf_denied(&c, 9));
	cr_assert(ug_tconf_denied(&c, 11));
	cr_assert(ug_tconf_denied(&c, 13));
	cr_assert_not(ug_tconf_denied(&c, 8));
	cr_assert_not(ug_tconf_denied(&c, 0));
	cr_assert_not(ug_tconf_denied(&c, UINT64_MAX));
	ug_tconf_release(&c);
}

Test(tconf, required_settings)
{
	expect_fail("[terminal]\n" REQUIRED_SEED REQUIRED_KEY REQUIRED_ROOT, 0,
		    "no 'id': set 'id = NAME' in [terminal]");
	expect_fail("[terminal]\n" REQUIRED_ID REQUIRED_KEY REQUIRED_ROOT, 0,
		    "no 'seed': set 'seed = ADDRESS REPO' in [terminal]");
	expect_fail("[terminal]\n" REQUIRED_ID REQUIRED_SEED REQUIRED_ROOT, 0,
		    "no 'master-key': set 'master-key = FILE' in [terminal]");
	expect_fail("[terminal]\n" REQUIRED_ID REQUIRED_SEED REQUIRED_KEY, 0,
		    "no 'root': set 'root = PATH' in [terminal]");
	expect_fail("", 0, "no 'id'");
	expect_fail("# nothing\n[terminal]\n", 0, "no 'id'");
}

Test(tconf, relative_paths_and_state_inside_root)
{
	expect_fail(MINIMAL "state = /opt/app/current/state\n", 6,
		    "'state' (/opt/app/current/state) is inside 'root' (/opt/app/current)");
	expect_fail(MINIMAL "state = /opt/app/current\n", 6, "is inside 'root'");
	/* the default state under a root that holds it: the root's line */
	expect_fail("[terminal]\n" REQUIRED_ID REQUIRED_SEED REQUIRED_KEY "root = " LOCALSTATEDIR "\n",
		    5, "is inside 'root'");
	expect_fail(MINIMAL "identity = id_ed25519\n", 6, "'identity' must be an absolute path");
	{
		struct ug_tconf c;

		/* a root beside or inside state is fine; so is a prefix that
		 * is not a parent */
		load_ok(&c, MINIMAL "state = /opt/app/current2\n");
		ug_tconf_release(&c);
		load_ok(&c, "[terminal]\n" REQUIRED_ID REQUIRED_SEED REQUIRED_KEY
			"root = /var/lib/app/current\nstate = /var/lib/app\n");
		ug_tconf_release(&c);
	}
}

/* ---- the file itself ---------------------------------------------------- */

Test(tconf, overlong_line)
{
	char text[1024];
	char comment[400];

	memset(comment, 'x', sizeof(comment) - 1);
	comment[sizeof(comment) - 1] = '\0';
	/* a long comment could hide a setting in its second half */
	snprintf(text, sizeof(text), MINIMAL "# %s poll = 1\n", comment);
	/* 198 with Debian's inih (its 200-byte buffer): the message says */
	expect_fail(text, 6, "longer than ");
	/* a line within the limit is read whole */
	memset(comment, 'x', 196);
	comment[196] = '\0';
	snprintf(text, sizeof(text), MINIMAL "#%s\n", comment);
	{
		struct ug_tconf c;

		load_ok(&c, text);	/* 197 bytes */
		ug_tconf_release(&c);
	}
}

Test(tconf, nul_byte)
{
	static const char text[] = MINIMAL "poll = 60\0\nsplay = 1\n";
	static const char early[] = "[terminal]\nbogus = 1\nx\0y\n";

	expect_fail_len(text, sizeof(text) - 1, -EINVAL, 6, "contains a NUL byte");
	/* an error before the NUL is still the first one */
	expect_fail_len(early, sizeof(early) - 1, -EINVAL, 2, "unknown setting 'bogus'");
}

Test(tconf, missing_unreadable_or_odd_file)
{
	struct ug_error err = { "" };
	struct ug_tconf c;
	char path[128], link[160];
	char *big;
	int r;

	ug_tconf_init(&c);
	snprintf(path, sizeof(path), "%s/none.conf", tmpdir);
	r = ug_tconf_load(&c, path, &err);
	cr_assert_eq(r, -ENOENT, "load gave %d (%s)", r, err.msg);
	cr_assert_not_null(strstr(err.msg, "cannot read settings file"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
	/* a directory */
	r = ug_tconf_load(&c, tmpdir, &err);
	cr_assert_eq(r, -EINVAL, "load gave %d (%s)", r, err.msg);
	cr_assert_not_null(strstr(err.msg, "is not a regular file"), "%s", err.msg);
	/* larger than the limit */
	big = malloc(UG_TCONF_FILE_MAX + 2);
	cr_assert_not_null(big);
	memset(big, '\n', UG_TCONF_FILE_MAX + 1);
	write_conf_len("big.conf", big, UG_TCONF_FILE_MAX + 1);
	free(big);
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	r = ug_tconf_load(&c, path, &err);
	cr_assert_eq(r, -EINVAL, "load gave %d (%s)", r, err.msg);
	cr_assert_not_null(strstr(err.msg, "is larger than 65536 bytes"), "%s", err.msg);
	/* a symlink to a good file is followed (config management links /etc) */
	write_conf_len("real.conf", MINIMAL, strlen(MINIMAL));
	snprintf(link, sizeof(link), "%s/link.conf", tmpdir);
	cr_assert_eq(symlink("real.conf", link), 0);
	r = ug_tconf_load(&c, link, &err);
	cr_assert_eq(r, 0, "load gave %d (%s)", r, err.msg);
	cr_assert_str_eq(c.id, "kiosk-1");
	/* err may be NULL */
	snprintf(path, sizeof(path), "%s/none.conf", tmpdir);
	cr_assert_eq(ug_tconf_load(&c, path, NULL), -ENOENT);
	cr_assert_str_eq(c.id, "kiosk-1", "a failed load keeps the settings in use");
	ug_tconf_release(&c);
}

Test(tconf, a_failed_load_keeps_the_settings)
{
	struct ug_error err = { "" };
	struct ug_tconf c;
	const char *path;

	load_ok(&c, full);
	path = write_conf(MINIMAL "poll = 1\n");
	cr_assert_eq(ug_tconf_load(&c, path, &err), -EINVAL);
	cr_assert_str_eq(c.id, "kiosk-0042");
	cr_assert_eq(c.nseeds, 3);
	cr_assert_eq(c.poll, 600);
	cr_assert_eq(c.ndeny, 4);
	/* a good load replaces everything, defaults included */
	path = write_conf(MINIMAL);
	cr_assert_eq(ug_tconf_load(&c, path, &err), 0, "%s", err.msg);
	cr_assert_str_eq(c.id, "kiosk-1");
	cr_assert_eq(c.nseeds, 1);
	cr_assert_eq(c.poll, 3600);
	cr_assert_eq(c.ndeny, 0);
	cr_assert_null(c.identity);
	cr_assert_null(c.hooks[UG_TCONF_HOOK_RESTART].argv);
	ug_tconf_release(&c);
}
