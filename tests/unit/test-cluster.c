/* test-cluster.c - unit tests for src/cluster.c: the cluster file parser,
 * addresses, the chain-list rules, and every rejection a bad file earns. */
#include "config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "util.h"

#include "tmpdir.h"

static void tmp_setup(void)
{
	ug_test_tmp_make("cluster");
}

static void tmp_teardown(void)
{
	ug_test_tmp_remove();
}

static struct ug_cluster *parse_ok(const char *text)
{
	struct ug_error err = { "" };
	struct ug_cluster *c = NULL;
	int r = ug_cluster_parse(text, strlen(text), &c, &err);

	cr_assert_eq(r, 0, "parse: %d %s\n--- text:\n%s", r, err.msg, text);
	cr_assert_not_null(c);
	cr_assert_eq(ug_cluster_check(c, "chains", NULL), 0, "what the parser accepts is valid");
	return c;
}

static void expect_fail_len(const char *text, size_t len, const char *want)
{
	struct ug_error err = { "" };
	struct ug_cluster *c = (struct ug_cluster *)0x1;
	int r = ug_cluster_parse(text, len, &c, &err);

	cr_assert_eq(r, -EINVAL, "parse gave %d (%s), want -EINVAL\n--- text:\n%s", r, err.msg,
		     text);
	cr_assert_eq(c, (struct ug_cluster *)0x1, "ret must be untouched on failure");
	cr_assert_not_null(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
}

static void expect_fail(const char *text, const char *want)
{
	expect_fail_len(text, strlen(text), want);
}

static void assert_server(const struct ug_server *s, const char *name, const char *user,
			  const char *host, unsigned port, const char *repo)
{
	cr_assert_str_eq(s->name, name);
	if (user)
		cr_assert_str_eq(s->user, user, "server %s: user", name);
	else
		cr_assert_null(s->user, "server %s: no user", name);
	cr_assert_str_eq(s->host, host, "server %s: host", name);
	cr_assert_eq(s->port, port, "server %s: port %u", name, s->port);
	cr_assert_str_eq(s->repo, repo, "server %s: repo", name);
}

/* The example of cluster.h and upgrid.conf(5). */
static const char example[] =
	"# groups of at most 16 servers; order within a group is the chain\n"
	"[group east]\n"
	"server = e1 upgrid@10.0.1.1:22 /srv/upgrid\n"
	"server = e2 upgrid@10.0.1.2 /srv/upgrid\n"
	"[group west]\n"
	"server = w1 10.0.2.1:2222 /var/lib/upgrid\n";

/* ---- parsing ------------------------------------------------------------- */

Test(cluster, parses_the_documented_example)
{
	struct ug_cluster *c = parse_ok(example);

	cr_assert_eq(c->ngroups, 2);
	cr_assert_str_eq(c->groups[0].name, "east");
	cr_assert_eq(c->groups[0].nservers, 2);
	assert_server(&c->groups[0].servers[0], "e1", "upgrid", "10.0.1.1", 22, "/srv/upgrid");
	assert_server(&c->groups[0].servers[1], "e2", "upgrid", "10.0.1.2", 22, "/srv/upgrid");
	cr_assert_str_eq(c->groups[1].name, "west");
	cr_assert_eq(c->groups[1].nservers, 1);
	assert_server(&c->groups[1].servers[0], "w1", NULL, "10.0.2.1", 2222, "/var/lib/upgrid");
	ug_cluster_free(c);
}

Test(cluster, empty_file_and_comments_only_are_an_empty_cluster)
{
	static const char *const texts[] = { "", "\n\n", "# nothing\n; still nothing\n   \n" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ug_cluster *c = parse_ok(texts[i]);

		cr_assert_eq(c->ngroups, 0, "text %zu", i);
		ug_cluster_free(c);
	}
}

/* Comments, blanks, indentation, ':' for '=', CRLF, a BOM, no final
 * newline: the same cluster as the example. */
Test(cluster, syntax_variants_give_the_same_cluster)
{
	static const char variant[] =
		"\xef\xbb\xbf; a BOM, then a comment\r\n"
		"\r\n"
		"  [ group   east ]   ; inline comment\r\n"
		"\tserver = e1 upgrid@10.0.1.1:22 /srv/upgrid ; first\r\n"
		"    server:e2\tupgrid@10.0.1.2   /srv/upgrid\r\n"
		"# between groups\n"
		"[group west]\n"
		"server   =   w1 10.0.2.1:2222 /var/lib/upgrid";
	struct ug_cluster *a = parse_ok(example), *b = parse_ok(variant);

	cr_assert(ug_cluster_equal(a, b), "variant parses to the example's cluster");
	ug_cluster_free(a);
	ug_cluster_free(b);
}

/* inih reads an indented line after a key as a continuation of its value
 * (Python configparser style); indented server lines must stay servers. */
Test(cluster, indented_lines_are_not_continuations)
{
	struct ug_cluster *c = parse_ok("[group a]\n"
					"    server = a1 h1 /r\n"
					"    server = a2 h2 /r\n"
					"    server = a3 h3 /r\n");

	cr_assert_eq(c->groups[0].nservers, 3);
	assert_server(&c->groups[0].servers[2], "a3", NULL, "h3", 22, "/r");
	ug_cluster_free(c);
}

Test(cluster, sixteen_servers_and_long_names_are_accepted)
{
	char text[4096], name[UG_SERVER_NAME_MAX + 1];
	size_t n = 0;
	struct ug_cluster *c;

	memset(name, 'g', UG_SERVER_NAME_MAX);
	name[UG_SERVER_NAME_MAX] = '\0';
	n += (size_t)snprintf(text + n, sizeof(text) - n, "[group %s]\n", name);
	for (unsigned i = 0; i < UG_GROUP_SERVERS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "server = s-%u.x_y u_%u@host-%u.example.org:%u /srv/up.grid/r%u\n",
				      i, i, i, 1000 + i, i);
	c = parse_ok(text);
	cr_assert_eq(c->groups[0].nservers, UG_GROUP_SERVERS_MAX);
	cr_assert_str_eq(c->groups[0].name, name);
	assert_server(&c->groups[0].servers[15], "s-15.x_y", "u_15", "host-15.example.org", 1015,
		      "/srv/up.grid/r15");
	ug_cluster_free(c);
}

Test(cluster, many_groups_up_to_the_limit)
{
	size_t cap = UG_GROUPS_MAX * 64 + 64, n = 0;
	char *text = malloc(cap);
	struct ug_cluster *c;

	cr_assert_not_null(text);
	for (unsigned i = 0; i < UG_GROUPS_MAX; i++)
		n += (size_t)snprintf(text + n, cap - n, "[group g%u]\nserver = s%u h%u /r\n", i, i, i);
	c = parse_ok(text);
	cr_assert_eq(c->ngroups, UG_GROUPS_MAX);
	cr_assert_str_eq(c->groups[255].servers[0].name, "s255");
	ug_cluster_free(c);
	/* one more is refused, naming its header */
	snprintf(text + n, cap - n, "[group one-more]\nserver = x h /r\n");
	expect_fail(text, "line 513: more than 256 groups");
	free(text);
}

/* ---- rejections: one defect each, named with its line --------------------- */

Test(cluster, rejects_a_server_line_with_the_wrong_number_of_fields)
{
	expect_fail("[group east]\nserver = e1 upgrid@10.0.1.1:22 /srv\nserver = e2 10.0.0.2\n",
		    "line 3: 'server = e2 10.0.0.2' has 2 fields; expected NAME ADDRESS REPO");
	expect_fail("[group east]\nserver = e1 h /srv extra\n",
		    "line 2: 'server = e1 h /srv extra' has more than 3 fields");
	expect_fail("[group east]\nserver = e1\n", "line 2: 'server = e1' has 1 field;");
	expect_fail("[group east]\nserver =\n", "line 2: 'server = ' has 0 fields");
}

Test(cluster, seventeen_servers_in_a_group_are_refused_with_advice)
{
	char text[4096];
	size_t n = 0;

	/* the 17th server on line 20, as in upgrid.conf(5) */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "# cluster\n\n[group east]\n");
	for (unsigned i = 1; i <= 17; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "server = e%u 10.0.1.%u /srv/upgrid\n",
				      i, i);
	expect_fail(text, "line 20: group 'east' has more than 16 servers; split it into two groups");
}

Test(cluster, rejects_unknown_sections_and_keys)
{
	expect_fail("[repo]\nformat = 1\n", "line 1: unknown section [repo]; expected [group NAME]");
	expect_fail("[group]\nserver = a h /r\n", "line 1: unknown section [group]");
	expect_fail("[group a b]\nserver = a h /r\n", "line 1: unknown section [group a b]");
	expect_fail("[groups east]\nserver = a h /r\n", "line 1: unknown section [groups east]");
	expect_fail("[group east]\nserver = a h /r\nservers = b h /r\n",
		    "line 3: unknown key 'servers'; the only key is 'server'");
	expect_fail("[group east]\nServer = a h /r\n", "line 2: unknown key 'Server'");
	/* a section cut short or followed by text */
	expect_fail("[group east\nserver = a h /r\n", "line 1: section header without ']'");
	expect_fail("[group east] x\nserver = a h /r\n", "line 1: text after ']'");
}

Test(cluster, rejects_a_server_outside_a_group)
{
	expect_fail("# no group yet\nserver = a h /r\n[group east]\nserver = b h /r\n",
		    "line 2: 'server' is outside a [group NAME] section");
}

Test(cluster, rejects_duplicate_names)
{
	expect_fail("[group east]\nserver = a h /r\n[group west]\nserver = b h /r\n"
		    "[group east]\nserver = c h /r\n",
		    "line 5: group 'east' is defined twice (first on line 1)");
	/* a header repeated at once: inih alone could not tell */
	expect_fail("[group east]\nserver = a h /r\n[group east]\nserver = c h /r\n",
		    "line 3: group 'east' is defined twice (first on line 1)");
	expect_fail("[group east]\nserver = a h1 /r\nserver = a h2 /r\n",
		    "line 3: server name 'a' is already used in group 'east'");
	expect_fail("[group east]\nserver = a h1 /r\n[group west]\nserver = a h2 /r\n",
		    "line 4: server name 'a' is already used in group 'east'");
}

Test(cluster, rejects_an_empty_group)
{
	expect_fail("[group east]\n# nobody\n[group west]\nserver = w h /r\n",
		    "line 1: group 'east' has no servers");
	expect_fail("[group east]\nserver = e h /r\n\n[group west]\n\n",
		    "line 4: group 'west' has no servers");
}

Test(cluster, rejects_bad_names)
{
	expect_fail("[group ea/st]\nserver = a h /r\n",
		    "line 1: group name 'ea/st' has a character other than A-Z, a-z, 0-9, '.', '_' and '-'");
	expect_fail("[group east]\nserver = a:b h /r\n", "line 2: server name 'a:b' has a character");
	expect_fail("[group east]\nserver = "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa h /r\n",
		    "line 2: server name 'aaaaaaaaaaaaaaaa...' is longer than 64 bytes");
	expect_fail("[group east]\nserver = a\x1b[31m h /r\n", "line 2: server name '(unprintable)'");
}

Test(cluster, rejects_bad_addresses)
{
	static const struct {
		const char *address;
		const char *msg;
	} cases[] = {
		{ "x@", "address 'x@': host is empty" },
		{ "@h", "address '@h': user is empty" },
		{ "-oProxyCommand=x@h", "address '-oProxyCommand=x@h': user '-oProxyCommand=x' has a character" },
		{ "-u@h", "user '-u' starts with '-'" },
		{ "u:x@h", "user 'u:x' has a character" },
		{ "-h", "address '-h': host '-h' starts with '-'" },
		{ "h:0", "port '0' is not a number from 1 to 65535" },
		{ "h:65536", "port '65536' is not a number from 1 to 65535" },
		{ "h:", "port '' is not a number" },
		{ "h:22x", "port '22x' is not a number" },
		{ "h:+22", "port '+22' is not a number" },
		{ "::1", "an IPv6 address must be in brackets, as in [::1]:22" },
		{ "[::1", "'[' without ']'" },
		{ "[::1]22", "expected ':PORT' after the host" },
		{ "[10.0.0.1]:22", "only an IPv6 address goes in brackets" },
		{ "[fe80::1%eth0]", "host 'fe80::1%eth0' is not a valid IPv6 address" },
		{ "[1:2:3:4:5:6:7:8:9]", "is not a valid IPv6 address" },
		{ "a..b", "host 'a..b' has an empty label" },
		{ ".a", "host '.a' has an empty label" },
		{ "a.", "host 'a.' has an empty label" },
		{ "a.-b", "host 'a.-b' has a label that starts with '-'" },
		{ "h_x", "host 'h_x' has a character other than A-Z, a-z, 0-9, '.' and '-'" },
		{ "300.1.1.1", "host '300.1.1.1' is not a valid IPv4 address" },
		{ "10.1", "host '10.1' is not a valid IPv4 address" },
		{ "1234", "host '1234' is not a valid IPv4 address" },
		{ "u@v@h", "host 'v@h' has a character" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], want[512];

		snprintf(text, sizeof(text), "[group east]\nserver = e1 h /r\nserver = e2 %s /r\n",
			 cases[i].address);
		snprintf(want, sizeof(want), "line 3: server 'e2': ");
		expect_fail(text, want);
		expect_fail(text, cases[i].msg);
	}
}

Test(cluster, rejects_long_users_hosts_and_labels)
{
	char text[1024], user[UG_USER_MAX + 2], label[66];

	memset(user, 'u', UG_USER_MAX + 1);
	user[UG_USER_MAX + 1] = '\0';
	snprintf(text, sizeof(text), "[group g]\nserver = a %s@h /r\n", user);
	expect_fail(text, "user is longer than 64 bytes");
	memset(label, 'l', 64);
	label[64] = '\0';
	snprintf(text, sizeof(text), "[group g]\nserver = a x.%s.org /r\n", label);
	expect_fail(text, "has a label longer than 63 bytes");
	/* exactly 63 is a label */
	label[63] = '\0';
	snprintf(text, sizeof(text), "[group g]\nserver = a x.%s.org /r\n", label);
	ug_cluster_free(parse_ok(text));
}

Test(cluster, rejects_bad_repos)
{
	expect_fail("[group g]\nserver = a h srv/upgrid\n",
		    "line 2: server 'a': repo 'srv/upgrid' is not an absolute path");
	expect_fail("[group g]\nserver = a h /srv/../etc\n", "repo '/srv/../etc' contains '..'");
	expect_fail("[group g]\nserver = a h /srv/..\n", "contains '..'");
	expect_fail("[group g]\nserver = a h /a\x01z\n", "repo '(unprintable)' contains a blank or a control character");
	expect_fail("[group g]\nserver = a h /caf\xe9\n", "repo is not valid UTF-8");
	/* '...' and names with dots are fine */
	ug_cluster_free(parse_ok("[group g]\nserver = a h /srv/.../..x/x../.hidden/caf\xc3\xa9\n"));
}

Test(cluster, rejects_syntax_errors_overlong_lines_and_nul_bytes)
{
	char text[1024];

	expect_fail("[group g]\nserver a h /r\n", "line 2: syntax error; expected [group NAME]");
	/* the first error wins: a syntax error before a bad key */
	expect_fail("[group g]\nserver a h /r\nbogus = 1\n", "line 2: syntax error");
	/* and before an empty group noticed later */
	expect_fail("[group g]\njunk\n[group h]\nserver = a h /r\n", "line 2: syntax error");
	/* a bad key before a syntax error */
	expect_fail("[group g]\nbogus = 1\nserver a h /r\n", "line 2: unknown key 'bogus'");
	/* an overlong line (a comment could otherwise hide a server) */
	memset(text, '#', 600);
	snprintf(text + 600, sizeof(text) - 600, "\n[group g]\nserver = a h /r\n");
	expect_fail(text, "line 1: longer than ");
	expect_fail_len("[group g]\nserver = a h /r\0\n", 27, "line 2: contains a NUL byte");
}

Test(cluster, rejects_a_file_over_one_mebibyte)
{
	size_t len = (1u << 20) + 1;
	char *text = malloc(len + 1);

	cr_assert_not_null(text);
	memset(text, '\n', len);
	text[len] = '\0';
	expect_fail_len(text, len, "larger than 1048576 bytes");
	free(text);
}

/* Random bytes and damaged files: an error or a valid cluster, never a
 * crash. */
Test(cluster, survives_random_input)
{
	static const char set[] = "[]=:;# \n\t@.-/gropusev1[]:\x01\xff";
	uint32_t seed = 4242;
	size_t len = sizeof(example) - 1;
	unsigned rejected = 0;

	for (int iter = 0; iter < 3000; iter++) {
		char copy[sizeof(example)];
		struct ug_cluster *c = NULL;
		struct ug_error err = { "" };
		int r;

		memcpy(copy, example, sizeof(example));
		for (int k = 0; k < 1 + iter % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			copy[(seed >> 8) % len] = set[(seed >> 24) % (sizeof(set) - 1)];
		}
		r = ug_cluster_parse(copy, len, &c, &err);
		cr_assert(r == 0 || r == -EINVAL, "iteration %d: %d %s", iter, r, err.msg);
		if (r == 0) {
			cr_assert_eq(ug_cluster_check(c, "chains", NULL), 0);
			ug_cluster_free(c);
		} else {
			cr_assert(strncmp(err.msg, "line ", 5) == 0, "'%s' names a line", err.msg);
			rejected++;
		}
	}
	cr_assert_gt(rejected, 1000, "most damage must be caught");
}

/* ---- addresses ------------------------------------------------------------ */

Test(cluster, addresses_parse_and_format_canonically)
{
	static const struct {
		const char *in, *user, *host;
		unsigned port;
		const char *out;
	} cases[] = {
		{ "h", NULL, "h", 22, "h:22" },
		{ "upgrid@10.0.1.1", "upgrid", "10.0.1.1", 22, "upgrid@10.0.1.1:22" },
		{ "upgrid@10.0.1.1:22", "upgrid", "10.0.1.1", 22, "upgrid@10.0.1.1:22" },
		{ "Srv-1.example.ORG:65535", NULL, "Srv-1.example.ORG", 65535, "Srv-1.example.ORG:65535" },
		{ "a.b_c@x:1", "a.b_c", "x", 1, "a.b_c@x:1" },
		{ "[::1]", NULL, "::1", 22, "[::1]:22" },
		{ "u@[2001:db8::7]:2222", "u", "2001:db8::7", 2222, "u@[2001:db8::7]:2222" },
		{ "[::ffff:10.0.0.1]:22", NULL, "::ffff:10.0.0.1", 22, "[::ffff:10.0.0.1]:22" },
		{ "h:022", NULL, "h", 22, "h:22" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ug_server s = { 0 };
		struct ug_error err = { "" };
		char out[UG_ADDRESS_MAX];
		int r = ug_server_parse_address(cases[i].in, &s, &err);

		cr_assert_eq(r, 0, "'%s': %s", cases[i].in, err.msg);
		if (cases[i].user)
			cr_assert_str_eq(s.user, cases[i].user, "'%s'", cases[i].in);
		else
			cr_assert_null(s.user, "'%s'", cases[i].in);
		cr_assert_str_eq(s.host, cases[i].host, "'%s'", cases[i].in);
		cr_assert_eq(s.port, cases[i].port, "'%s'", cases[i].in);
		r = ug_server_format_address(&s, out, sizeof(out));
		cr_assert_eq(r, (int)strlen(cases[i].out), "'%s': %d", cases[i].in, r);
		cr_assert_str_eq(out, cases[i].out);
		free(s.user);
		free(s.host);
	}
}

Test(cluster, parse_address_leaves_server_untouched_on_failure)
{
	struct ug_server s = { .user = (char *)"keep", .host = (char *)"keep", .port = 7 };
	struct ug_error err = { "" };

	cr_assert_eq(ug_server_parse_address("u@", &s, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "address 'u@': host is empty");
	cr_assert_eq(ug_server_parse_address("", &s, &err), -EINVAL);
	cr_assert_eq(ug_server_parse_address(NULL, &s, NULL), -EINVAL);
	cr_assert_str_eq(s.user, "keep");
	cr_assert_str_eq(s.host, "keep");
	cr_assert_eq(s.port, 7);
}

Test(cluster, format_address_reports_a_short_buffer)
{
	char user[UG_USER_MAX + 1], host[UG_HOST_MAX + 1], out[UG_ADDRESS_MAX], small[8];
	struct ug_server s = { .user = user, .host = host, .port = 65535 };
	struct ug_server nohost = { .port = 22 };

	memset(user, 'u', UG_USER_MAX);
	user[UG_USER_MAX] = '\0';
	memset(host, 'h', UG_HOST_MAX);
	host[UG_HOST_MAX] = '\0';
	/* the largest address fits UG_ADDRESS_MAX */
	cr_assert_eq(ug_server_format_address(&s, out, sizeof(out)),
		     (int)(UG_USER_MAX + 1 + UG_HOST_MAX + 6));
	cr_assert_eq(ug_server_format_address(&s, small, sizeof(small)), -ENOSPC);
	/* no host: this machine, a spawned server (tconf's "seed = - REPO") */
	cr_assert_eq(ug_server_format_address(&nohost, out, sizeof(out)), 1);
	cr_assert_str_eq(out, "-");
	cr_assert_eq(ug_server_format_address(&nohost, small, 1), -ENOSPC);
	cr_assert_eq(ug_server_format_address(NULL, out, sizeof(out)), -EINVAL);
}

/* ---- the in-memory rules, as the manifest reader applies them ------------ */

Test(cluster, check_names_the_place_of_each_problem)
{
	struct ug_cluster *c;
	struct ug_error err = { "" };
	struct ug_server *s;

	c = parse_ok(example);
	s = &c->groups[1].servers[0];
	free(s->name);
	s->name = strdup("e1");
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -EBADMSG);
	cr_assert_str_eq(err.msg, "chains[1].servers[0]: server name 'e1' is also chains[0].servers[0]");
	ug_cluster_free(c);

	c = parse_ok(example);
	free(c->groups[1].name);
	c->groups[1].name = strdup("east");
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -EBADMSG);
	cr_assert_str_eq(err.msg, "chains[1].group: group 'east' is also chains[0]");
	ug_cluster_free(c);

	c = parse_ok(example);
	c->groups[0].servers[1].port = 0;
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -EBADMSG);
	cr_assert_str_eq(err.msg, "chains[0].servers[1]: port 0 is not between 1 and 65535");
	c->groups[0].servers[1].port = 70000;
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -EBADMSG);
	ug_cluster_free(c);

	c = parse_ok(example);
	free(c->groups[0].servers[0].host);
	c->groups[0].servers[0].host = strdup("-oProxyCommand=sh");
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -EBADMSG);
	cr_assert_not_null(strstr(err.msg, "chains[0].servers[0]: host '-oProxyCommand=sh'"), "%s",
			   err.msg);
	ug_cluster_free(c);

	c = parse_ok(example);
	c->groups[1].nservers = 0;	/* w1 is freed by hand: the count no longer covers it */
	free(c->groups[1].servers[0].name);
	free(c->groups[1].servers[0].user);
	free(c->groups[1].servers[0].host);
	free(c->groups[1].servers[0].repo);
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -EBADMSG);
	cr_assert_str_eq(err.msg, "chains[1].servers: group 'west' has no servers");
	c->groups[1].nservers = UG_GROUP_SERVERS_MAX + 1;
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -E2BIG);
	cr_assert_not_null(strstr(err.msg, "more than the limit of 16"));
	c->groups[1].nservers = 0;
	c->ngroups = UG_GROUPS_MAX + 1;
	cr_assert_eq(ug_cluster_check(c, "chains", &err), -E2BIG);
	cr_assert_str_eq(err.msg, "chains: 257 groups, more than the limit of 256");
	c->ngroups = 2;
	ug_cluster_free(c);

	cr_assert_eq(ug_cluster_check(NULL, "chains", &err), 0, "no chain list is valid");
}

Test(cluster, server_check_applies_every_field_rule)
{
	struct ug_server s = {
		.name = (char *)"a", .user = NULL, .host = (char *)"fe80::1", .port = 22,
		.repo = (char *)"/r",
	};
	struct ug_error err = { "" };

	cr_assert_eq(ug_server_check(&s, &err), 0, "%s", err.msg);
	s.user = (char *)"-x";
	cr_assert_eq(ug_server_check(&s, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "user '-x' starts with '-'");
	s.user = (char *)"";
	cr_assert_eq(ug_server_check(&s, &err), -EINVAL);
	s.user = NULL;
	s.host = (char *)"fe80::zz";
	cr_assert_eq(ug_server_check(&s, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "host 'fe80::zz' is not a valid IPv6 address");
	s.host = (char *)"h";
	s.repo = (char *)"/a b";
	cr_assert_eq(ug_server_check(&s, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "repo '/a b' contains a blank or a control character");
	s.repo = NULL;
	cr_assert_eq(ug_server_check(&s, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "repo is empty");
	s.repo = (char *)"/r";
	s.name = NULL;
	cr_assert_eq(ug_server_check(&s, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "name is empty");
	cr_assert_eq(ug_cluster_name_check("ok.name_-1", NULL), 0);
}

/* ---- dup, equal, find ------------------------------------------------------ */

Test(cluster, dup_is_deep_and_equal)
{
	struct ug_cluster *a = parse_ok(example), *b = ug_cluster_dup(a);

	cr_assert_not_null(b);
	cr_assert(ug_cluster_equal(a, b));
	cr_assert_neq(a->groups, b->groups, "a deep copy");
	cr_assert_neq(a->groups[0].servers[0].name, b->groups[0].servers[0].name);
	cr_assert_null(b->groups[1].servers[0].user, "NULL user stays NULL");
	ug_cluster_free(a);
	/* b stands alone */
	assert_server(&b->groups[0].servers[1], "e2", "upgrid", "10.0.1.2", 22, "/srv/upgrid");
	ug_cluster_free(b);
	cr_assert_null(ug_cluster_dup(NULL));
}

Test(cluster, equal_sees_every_field_and_the_order)
{
	static const char *const others[] = {
		/* order of servers */
		"[group east]\nserver = e2 upgrid@10.0.1.2 /srv/upgrid\nserver = e1 upgrid@10.0.1.1:22 /srv/upgrid\n"
		"[group west]\nserver = w1 10.0.2.1:2222 /var/lib/upgrid\n",
		/* order of groups */
		"[group west]\nserver = w1 10.0.2.1:2222 /var/lib/upgrid\n"
		"[group east]\nserver = e1 upgrid@10.0.1.1:22 /srv/upgrid\nserver = e2 upgrid@10.0.1.2 /srv/upgrid\n",
		/* a group name */
		"[group east]\nserver = e1 upgrid@10.0.1.1:22 /srv/upgrid\nserver = e2 upgrid@10.0.1.2 /srv/upgrid\n"
		"[group west2]\nserver = w1 10.0.2.1:2222 /var/lib/upgrid\n",
		/* a user where there was none */
		"[group east]\nserver = e1 upgrid@10.0.1.1:22 /srv/upgrid\nserver = e2 upgrid@10.0.1.2 /srv/upgrid\n"
		"[group west]\nserver = w1 root@10.0.2.1:2222 /var/lib/upgrid\n",
		/* a port */
		"[group east]\nserver = e1 upgrid@10.0.1.1:23 /srv/upgrid\nserver = e2 upgrid@10.0.1.2 /srv/upgrid\n"
		"[group west]\nserver = w1 10.0.2.1:2222 /var/lib/upgrid\n",
		/* a repo */
		"[group east]\nserver = e1 upgrid@10.0.1.1:22 /srv/upgrid\nserver = e2 upgrid@10.0.1.2 /srv/upgrid2\n"
		"[group west]\nserver = w1 10.0.2.1:2222 /var/lib/upgrid\n",
		/* a server fewer */
		"[group east]\nserver = e1 upgrid@10.0.1.1:22 /srv/upgrid\n"
		"[group west]\nserver = w1 10.0.2.1:2222 /var/lib/upgrid\n",
	};
	struct ug_cluster *a = parse_ok(example), *empty = ug_cluster_new();

	cr_assert_not_null(empty);
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct ug_cluster *b = parse_ok(others[i]);

		cr_assert_not(ug_cluster_equal(a, b), "variant %zu", i);
		cr_assert_not(ug_cluster_equal(b, a), "variant %zu", i);
		ug_cluster_free(b);
	}
	cr_assert(ug_cluster_equal(NULL, NULL), "no list equals no list");
	cr_assert_not(ug_cluster_equal(NULL, empty), "no list differs from an empty list");
	cr_assert_not(ug_cluster_equal(a, NULL));
	ug_cluster_free(empty);
	ug_cluster_free(a);
}

Test(cluster, find_gives_group_and_position)
{
	struct ug_cluster *c = parse_ok(example);
	size_t g = 99, pos = 99;

	cr_assert_eq(ug_cluster_find(c, "e2", &g, &pos), 0);
	cr_assert_eq(g, 0);
	cr_assert_eq(pos, 1);
	cr_assert_eq(ug_cluster_find(c, "w1", &g, &pos), 0);
	cr_assert_eq(g, 1);
	cr_assert_eq(pos, 0);
	g = pos = 99;
	cr_assert_eq(ug_cluster_find(c, "east", &g, &pos), -ENOENT, "group names are not servers");
	cr_assert_eq(ug_cluster_find(c, "E2", &g, &pos), -ENOENT, "names are case-sensitive");
	cr_assert_eq(g, 99, "ret_* untouched");
	cr_assert_eq(pos, 99);
	cr_assert_eq(ug_cluster_find(NULL, "e1", &g, &pos), -ENOENT);
	ug_cluster_free(c);
}

/* ---- loading REPO/cluster -------------------------------------------------- */

Test(cluster, load_reads_the_file, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_cluster *c = NULL, *want = parse_ok(example);
	struct ug_error err = { "" };

	cr_assert_eq(ug_file_write_atomic(tmpfd, "cluster", example, strlen(example), 0644), 0);
	cr_assert_eq(ug_cluster_load(tmpfd, "cluster", &c, &err), 0, "%s", err.msg);
	cr_assert(ug_cluster_equal(c, want));
	ug_cluster_free(c);
	ug_cluster_free(want);
}

Test(cluster, load_errors, .init = tmp_setup, .fini = tmp_teardown)
{
	struct ug_cluster *c = (struct ug_cluster *)0x1;
	struct ug_error err = { "" };
	static const char bad[] = "[group east]\nserver = e1 h\n";
	char *big;
	size_t bigl = (1u << 20) + 1;

	cr_assert_eq(ug_cluster_load(tmpfd, "cluster", &c, &err), -ENOENT);
	cr_assert_eq(ug_file_write_atomic(tmpfd, "bad", bad, strlen(bad), 0644), 0);
	cr_assert_eq(ug_cluster_load(tmpfd, "bad", &c, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "line 2: 'server = e1 h' has 2 fields; expected NAME ADDRESS REPO");
	cr_assert_eq(symlinkat("bad", tmpfd, "link"), 0);
	cr_assert_eq(ug_cluster_load(tmpfd, "link", &c, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "is a symbolic link; it must be a regular file");
	cr_assert_eq(mkdirat(tmpfd, "dir", 0755), 0);
	cr_assert_eq(ug_cluster_load(tmpfd, "dir", &c, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "is not a regular file");
	big = malloc(bigl);
	cr_assert_not_null(big);
	memset(big, '#', bigl);
	cr_assert_eq(ug_file_write_atomic(tmpfd, "big", big, bigl, 0644), 0);
	free(big);
	cr_assert_eq(ug_cluster_load(tmpfd, "big", &c, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "larger than 1048576 bytes");
	cr_assert_eq(c, (struct ug_cluster *)0x1, "ret untouched on failure");
}
