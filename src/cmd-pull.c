/* cmd-pull.c - the terminal commands: upgrid pull, agent, status,
 * accept, deny, rollback. They read the terminal's settings
 * (terminal.conf, tconf.h) and work on its state directory (terminal.h). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "cli.h"
#include "prom.h"
#include "terminal.h"

static const char *config_path(const char *opt)
{
	const char *env = getenv("UPGRID_TERMINAL_CONFIG");

	return opt ? opt : env && *env ? env : UG_TERMINAL_CONFIG;
}

static int load_config(const char *path, struct ug_tconf *c)
{
	struct ug_error e = { "" };
	int r;

	ug_tconf_init(c);
	r = ug_tconf_load(c, path, &e);
	if (r == -ENOENT) {
		ug_cli_err("terminal settings '%s' do not exist: create it (see upgrid.conf(5), "
			   "TERMINAL SETTINGS) or name another with --config", path);
		return UG_EXIT_USAGE;
	}
	if (r < 0) {
		ug_cli_err("%s", e.msg[0] ? e.msg : strerror(-r));
		return UG_EXIT_USAGE;
	}
	return 0;
}

/* Exit status of a failed terminal operation. */
static int term_exit(int r)
{
	switch (r) {
	case -ECANCELED:
		return UG_EXIT_ROLLED_BACK;
	case -EWOULDBLOCK:
		return UG_EXIT_LOCKED;
	case -EKEYREJECTED:
		return UG_EXIT_SIGNATURE;
	case -ENOENT:
		return UG_EXIT_NOTFOUND;
	case -EINVAL:
		return UG_EXIT_USAGE;
	default:
		return UG_EXIT_FAILURE;
	}
}

static int open_term(const struct ug_tconf *c, unsigned flags, bool use_syslog,
		     struct ug_term **ret)
{
	struct ug_error e = { "" };
	int r = ug_term_open(c, flags, ret, &e);

	if (r < 0) {
		ug_cli_err("%s", e.msg);
		return term_exit(r);
	}
	ug_term_set_log(*ret, ug_cli.verbosity, use_syslog);
	return 0;
}

static int parse_version(const char *cmd, const char *s, uint64_t *ret)
{
	if (ug_parse_u64(s, UG_TCONF_VERSION_MAX, ret) < 0 || *ret == 0)
		return ug_cli_usage_error(cmd, "'%s' is not a version number", s);
	return 0;
}

static void say_result(struct ug_term *t, enum ug_tresult res, int r, const char *msg,
		       bool use_syslog)
{
	const struct ug_tattempt *a = &ug_term_state(t)->last;
	char b[32], f[32];

	ug_bytes_format(a->bytes, b);
	ug_bytes_format(a->full_bytes, f);
	if (res == UG_TRESULT_OK) {
		if (use_syslog)
			syslog(LOG_INFO, "installed version %" PRIu64 " from %s: %s pulled "
			       "(full: %s) in %.1f s", a->installed, a->server, b, f,
			       (double)a->duration_ms / 1000.0);
		else
			ug_cli_info("installed version %" PRIu64 " from %s: %s pulled (full: %s) "
				    "in %.1f s%s%s", a->installed, a->server, b, f,
				    (double)a->duration_ms / 1000.0, a->message[0] ? "; " : "",
				    a->message);
	} else if (res == UG_TRESULT_CURRENT) {
		ug_cli_verbose("up to date: %s", a->message);
	} else if (r < 0) {
		if (use_syslog)
			syslog(LOG_ERR, "%s", msg);
		else
			ug_cli_err("%s", msg);
	}
}

/* ------------------------------------------------------------ pull */

static const char pull_usage[] =
	"usage: upgrid pull [--config FILE] [--check] [--splay SECONDS] [--bwlimit RATE]\n"
	"\n"
	"Look for a newer version on the terminal's servers and install it:\n"
	"fetch only what changed, check every file, switch the install root\n"
	"atomically, run the hooks, roll back if the health check fails.\n"
	"Quiet unless something happened; safe to run from cron.\n"
	"\n"
	"  -C, --config FILE   terminal settings (default: $UPGRID_TERMINAL_CONFIG\n"
	"                      or " UG_TERMINAL_CONFIG ")\n"
	"  -n, --check         only say what would be done\n"
	"      --splay SECONDS\n"
	"                      wait a random 0..SECONDS first (spreads a fleet's\n"
	"                      cron jobs; default: none)\n"
	"      --bwlimit RATE  cap the download rate, bytes/s with an optional\n"
	"                      k, M or G suffix (default: 'bwlimit' setting)\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 installed or up to date, 1 failed (the installed version\n"
	"runs on), 2 bad settings, 4 a manifest failed its signature check (the\n"
	"last server tried offered it), 5 the master key, the state directory or\n"
	"the channel does not exist, 6 another upgrid command holds the lock,\n"
	"7 the new version failed its health check and was rolled back.\n";

int cmd_pull(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "check", no_argument, NULL, 'n' },
		{ "splay", required_argument, NULL, 'S' },
		{ "bwlimit", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg = NULL;
	struct ug_pull_opts o = { 0 };
	uint64_t splay = 0, bw = 0;
	bool have_bw = false;
	struct ug_tconf c;
	struct ug_term *t = NULL;
	struct ug_error e = { "" };
	enum ug_tresult res;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "C:nh", opts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			cfg = optarg;
			break;
		case 'n':
			o.check = true;
			break;
		case 'S':
			if (ug_parse_u64(optarg, 86400, &splay) < 0)
				return ug_cli_usage_error("pull", "--splay '%s': give 0 to 86400 seconds",
							  optarg);
			break;
		case 'B':
			if (ug_parse_size(optarg, UG_TCONF_BWLIMIT_MAX, &bw) < 0 ||
			    (bw && bw < UG_TCONF_BWLIMIT_MIN))
				return ug_cli_usage_error("pull", "--bwlimit '%s': give 0 (no limit) or "
							  "1k to 16G bytes per second", optarg);
			have_bw = true;
			break;
		case 'h':
			fputs(pull_usage, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("pull", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("pull", "unexpected argument '%s'", argv[optind]);
	r = load_config(config_path(cfg), &c);
	if (r)
		return r;
	if (have_bw)
		c.bwlimit = bw;
	/* --check changes nothing: no recovery (it may run hooks) */
	r = open_term(&c, o.check ? UG_TERM_LOCK : UG_TERM_LOCK | UG_TERM_RECOVER, false, &t);
	if (r) {
		ug_tconf_release(&c);
		return r;
	}
	if (splay && !o.check) {
		unsigned s = (unsigned)(ug_term_random(t) % (splay + 1));
		ug_cli_verbose("waiting %u s (--splay)", s);
		sleep(s);
	}
	r = ug_term_pull(t, &o, &res, &e);
	if (o.check)
		printf("%s\n", ug_term_state(t)->last.message[0] ? ug_term_state(t)->last.message
								  : e.msg);
	else
		say_result(t, res, r, e.msg, false);
	ug_term_free(t);
	ug_tconf_release(&c);
	return r < 0 ? term_exit(r) : UG_EXIT_OK;
}

/* ------------------------------------------------------------ agent */

static volatile sig_atomic_t agent_stop, agent_waiting;

static void on_term(int sig)
{
	(void)sig;
	/* a long-poll holds no lock and changes nothing: leave at once
	 * (it may last up to 'poll' seconds) */
	if (agent_waiting)
		_exit(UG_EXIT_OK);
	agent_stop = 1;
}

static const char agent_usage[] =
	"usage: upgrid agent [--config FILE] [--daemon]\n"
	"\n"
	"Keep the terminal up to date: wait on a server for a new version (a\n"
	"long-poll, so a publish reaches the fleet in seconds without polling),\n"
	"then pull it after a random delay of up to 'splay' seconds. Failures\n"
	"back off exponentially with jitter. SIGTERM stops it between steps.\n"
	"\n"
	"  -C, --config FILE   terminal settings (default: $UPGRID_TERMINAL_CONFIG\n"
	"                      or " UG_TERMINAL_CONFIG ")\n"
	"  -d, --daemon        log to syslog instead of stderr (for systemd)\n"
	"  -h, --help          show this help\n";

/* Sleep up to ms, waking early on SIGTERM. */
static void nap(unsigned ms)
{
	while (ms > 0 && !agent_stop) {
		unsigned step = ms > 200 ? 200 : ms;
		struct timespec ts = { step / 1000, (long)(step % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg = NULL;
	bool daemon = false;
	struct ug_pull_opts o = { 0 };
	struct ug_backoff bo;
	struct sigaction sa;
	struct ug_tconf c;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "C:dh", opts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			cfg = optarg;
			break;
		case 'd':
			daemon = true;
			break;
		case 'h':
			fputs(agent_usage, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("agent", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("agent", "unexpected argument '%s'", argv[optind]);
	r = load_config(config_path(cfg), &c);
	if (r)
		return r;
	if (daemon)
		openlog("upgrid-agent", LOG_PID, LOG_DAEMON);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ug_backoff_init(&bo, 5000, (unsigned)(c.poll > 3600 ? 3600 : c.poll) * 1000u,
			(uint64_t)time(NULL) ^ (uint64_t)getpid());
	while (!agent_stop) {
		struct ug_term *t = NULL;
		struct ug_error e = { "" };
		enum ug_tresult res = UG_TRESULT_NONE;
		uint64_t newest;
		int w;

		/* the lock is held only while working, so status, accept and
		 * deny run while the agent waits */
		r = open_term(&c, UG_TERM_LOCK | UG_TERM_RECOVER, daemon, &t);
		if (r) {
			nap(ug_backoff_next(&bo, 0));
			continue;
		}
		r = ug_term_pull(t, &o, &res, &e);
		say_result(t, res, r, e.msg, daemon);
		newest = ug_term_state(t)->last.newest;
		ug_term_free(t);
		if (agent_stop)
			break;
		if (r < 0 && res != UG_TRESULT_ROLLED_BACK) {
			nap(ug_backoff_next(&bo, 0));
			continue;
		}
		ug_backoff_reset(&bo);
		/* wait for the next version without the lock */
		r = open_term(&c, 0, daemon, &t);
		if (r) {
			nap(ug_backoff_next(&bo, 0));
			continue;
		}
		/* _exit in the handler flushes nothing */
		fflush(stdout);
		agent_waiting = 1;
		if (agent_stop)
			_exit(UG_EXIT_OK);
		w = ug_term_wait(t, newest, c.poll > 3600 ? 3600 : c.poll, &e);
		agent_waiting = 0;
		if (w > 0 && c.splay)
			nap((unsigned)(ug_term_random(t) % ((uint64_t)c.splay * 1000u + 1)));
		ug_term_free(t);
		if (w < 0) {
			if (daemon)
				syslog(LOG_WARNING, "waiting for a new version: %s", e.msg);
			else
				ug_cli_verbose("waiting for a new version: %s", e.msg);
			nap(ug_backoff_next(&bo, 0));
		}
	}
	ug_tconf_release(&c);
	return UG_EXIT_OK;
}

/* ------------------------------------------------------------ status */

static const char status_usage[] =
	"usage: upgrid status [--config FILE] [--json] [--prometheus FILE]\n"
	"\n"
	"Show the installed version, the kept versions, the last attempt (when,\n"
	"result, version, server, bytes pulled) and the versions accepted,\n"
	"denied or marked bad.\n"
	"\n"
	"  -C, --config FILE   terminal settings\n"
	"      --json          one JSON object (schema in upgrid(1))\n"
	"      --prometheus FILE\n"
	"                      also write the state as Prometheus metrics to FILE\n"
	"                      (node_exporter textfile collector), atomically;\n"
	"                      with -q nothing else is printed\n"
	"  -h, --help          show this help\n";

static void print_list(const char *what, const uint64_t *v, size_t n)
{
	if (!n)
		return;
	printf("%-12s", what);
	for (size_t i = 0; i < n; i++)
		printf(" %" PRIu64, v[i]);
	printf("\n");
}

/* The state as node_exporter textfile metrics (upgrid(1), status). */
static int status_metrics(const struct ug_tconf *c, struct ug_term *t, const char *path)
{
	const struct ug_tstate *st = ug_term_state(t);
	const struct ug_tattempt *a = &st->last;
	struct ug_prom_label l[3] = { { "terminal", c->id }, { "channel", c->channel } };
	struct ug_error e = { "" };
	struct ug_prom p;
	int r;

	ug_prom_init(&p);
	ug_prom_family(&p, "upgrid_terminal_installed_version", UG_PROM_GAUGE,
		       "Version the install root points to (0: none).");
	ug_prom_sample_u64(&p, l, 2, ug_term_installed(t));
	ug_prom_family(&p, "upgrid_terminal_last_attempt_timestamp_seconds", UG_PROM_GAUGE,
		       "Start of the last pull attempt, UNIX time (0: never).");
	ug_prom_sample_u64(&p, l, 2, a->result != UG_TRESULT_NONE && a->time > 0 ?
			   (uint64_t)a->time : 0);
	ug_prom_family(&p, "upgrid_terminal_last_attempt_duration_seconds", UG_PROM_GAUGE,
		       "How long the last attempt took.");
	ug_prom_sample(&p, l, 2, (double)a->duration_ms / 1000.0);
	ug_prom_family(&p, "upgrid_terminal_last_success_timestamp_seconds", UG_PROM_GAUGE,
		       "Last attempt that installed a version or found it up to date, "
		       "UNIX time (0: never).");
	ug_prom_sample_u64(&p, l, 2, st->last_success > 0 ? (uint64_t)st->last_success : 0);
	ug_prom_family(&p, "upgrid_terminal_last_result", UG_PROM_GAUGE,
		       "Result of the last attempt: 1 for the result it had, 0 for the others.");
	for (int i = 0; i < UG_TRESULT__COUNT; i++) {
		l[2] = (struct ug_prom_label){ "result", ug_tresult_name((enum ug_tresult)i) };
		ug_prom_sample_u64(&p, l, 3, a->result == (enum ug_tresult)i);
	}
	ug_prom_family(&p, "upgrid_terminal_last_target_version", UG_PROM_GAUGE,
		       "Version the last attempt tried to install (0: none).");
	ug_prom_sample_u64(&p, l, 2, a->target);
	ug_prom_family(&p, "upgrid_terminal_consecutive_failures", UG_PROM_GAUGE,
		       "Failed attempts since the last successful one.");
	ug_prom_sample_u64(&p, l, 2, st->failures);
	ug_prom_family(&p, "upgrid_terminal_last_pulled_bytes", UG_PROM_GAUGE,
		       "Bytes the last attempt moved over the network.");
	ug_prom_sample_u64(&p, l, 2, a->bytes);
	ug_prom_family(&p, "upgrid_terminal_last_full_bytes", UG_PROM_GAUGE,
		       "Bytes the last attempt's changed files would have cost as full objects.");
	ug_prom_sample_u64(&p, l, 2, a->full_bytes);
	ug_prom_family(&p, "upgrid_terminal_pulled_bytes_total", UG_PROM_COUNTER,
		       "Bytes moved over the network by all attempts.");
	ug_prom_sample_u64(&p, l, 2, st->bytes_total);
	ug_prom_family(&p, "upgrid_terminal_last_report_timestamp_seconds", UG_PROM_GAUGE,
		       "When a report last reached a server, UNIX time (0: never).");
	ug_prom_sample_u64(&p, l, 2, st->last_report > 0 ? (uint64_t)st->last_report : 0);
	ug_prom_family(&p, "upgrid_terminal_report_pending", UG_PROM_GAUGE,
		       "1 when the last attempt's report has not reached a server yet.");
	ug_prom_sample_u64(&p, l, 2, st->report_pending);
	ug_prom_family(&p, "upgrid_terminal_bad_versions", UG_PROM_GAUGE,
		       "Versions marked bad after a failed health check.");
	ug_prom_sample_u64(&p, l, 2, st->nbad);
	r = ug_prom_write(&p, path, &e);
	ug_prom_release(&p);
	if (r < 0) {
		ug_cli_err("%s", e.msg);
		return UG_EXIT_FAILURE;
	}
	return UG_EXIT_OK;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'J' },
		{ "prometheus", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg = NULL, *prom = NULL;
	bool json = false;
	struct ug_tconf c;
	struct ug_term *t = NULL;
	const struct ug_tstate *st;
	uint64_t *kept = NULL;
	size_t nkept = 0;
	int ch, r, rc = UG_EXIT_OK;

	while ((ch = getopt_long(argc, argv, "C:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			cfg = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'M':
			if (!*optarg)
				return ug_cli_usage_error("status", "--prometheus needs a file name");
			prom = optarg;
			break;
		case 'h':
			fputs(status_usage, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("status", NULL);
		}
	}
	if (optind < argc)
		return ug_cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
	r = load_config(config_path(cfg), &c);
	if (r)
		return r;
	r = open_term(&c, 0, false, &t);
	if (r) {
		ug_tconf_release(&c);
		return r;
	}
	st = ug_term_state(t);
	ug_term_kept(t, &kept, &nkept);
	if (prom && ug_cli.verbosity == 0) {
		/* cron writing metrics: only errors */
	} else if (json) {
		json_t *o = ug_tstate_json(st), *k = json_array();
		char *text;

		json_object_set_new(o, "terminal", json_string(c.id));
		json_object_set_new(o, "channel", json_string(c.channel));
		json_object_set_new(o, "root", json_string(c.root));
		json_object_set_new(o, "installed", json_integer((json_int_t)ug_term_installed(t)));
		for (size_t i = 0; i < nkept; i++)
			json_array_append_new(k, json_integer((json_int_t)kept[i]));
		json_object_set_new(o, "kept", k);
		text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(o);
	} else {
		const struct ug_tattempt *a = &st->last;
		char when[32], b[32];

		printf("terminal     %s (channel %s)\n", c.id, c.channel);
		if (ug_term_installed(t))
			printf("installed    %" PRIu64 " (%s)\n", ug_term_installed(t), c.root);
		else
			printf("installed    none\n");
		print_list("kept", kept, nkept);
		if (a->result != UG_TRESULT_NONE) {
			ug_time_format(a->time, when);
			ug_bytes_format(a->bytes, b);
			printf("last attempt %s: %s", when, ug_tresult_name(a->result));
			if (a->target)
				printf(", version %" PRIu64, a->target);
			if (a->server[0])
				printf(", server %s", a->server);
			printf(", %s pulled, %.1f s\n", b, (double)a->duration_ms / 1000.0);
			if (a->message[0])
				printf("             %s\n", a->message);
		}
		if (st->last_success) {
			ug_time_format(st->last_success, when);
			printf("last success %s\n", when);
		}
		if (st->failures)
			printf("failures     %" PRIu64 " in a row\n", st->failures);
		print_list("accepted", st->accepted, st->naccepted);
		print_list("denied", st->denied, st->ndenied);
		print_list("bad", st->bad, st->nbad);
	}
	if (prom)
		rc = status_metrics(&c, t, prom);
	free(kept);
	ug_term_free(t);
	ug_tconf_release(&c);
	return rc;
}

/* ------------------------------------------------------------ accept, deny, rollback */

/* accept and deny: one version into (or, with --undo, out of) a list. */
static int mark(int argc, char **argv, const char *cmd, const char *usage, bool deny)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "undo", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg = NULL;
	bool undo = false;
	struct ug_tconf c;
	struct ug_term *t = NULL;
	struct ug_tstate *st;
	struct ug_error e = { "" };
	uint64_t v;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "C:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			cfg = optarg;
			break;
		case 'u':
			undo = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error(cmd, NULL);
		}
	}
	if (optind + 1 != argc)
		return ug_cli_usage_error(cmd, "give one version number");
	r = parse_version(cmd, argv[optind], &v);
	if (r)
		return r;
	r = load_config(config_path(cfg), &c);
	if (r)
		return r;
	r = open_term(&c, UG_TERM_LOCK, false, &t);
	if (r) {
		ug_tconf_release(&c);
		return r;
	}
	st = ug_term_state(t);
	if (deny) {
		if (undo)
			ug_tstate_del(st->denied, &st->ndenied, v);
		else
			ug_tstate_add(st->denied, &st->ndenied, v);
		if (!undo && v == ug_term_installed(t))
			ug_cli_warn("version %" PRIu64 " is the one installed: 'upgrid rollback' "
				    "switches back to the one before", v);
	} else {
		if (undo) {
			ug_tstate_del(st->accepted, &st->naccepted, v);
		} else {
			ug_tstate_add(st->accepted, &st->naccepted, v);
			/* the operator's word overrides an earlier failure */
			ug_tstate_del(st->bad, &st->nbad, v);
			ug_tstate_del(st->denied, &st->ndenied, v);
		}
	}
	r = ug_term_save_state(t, &e);
	if (r < 0)
		ug_cli_err("%s", e.msg);
	else
		ug_cli_info("version %" PRIu64 " %s%s", v, undo ? "no longer " : "",
			    deny ? "denied" : "accepted: the next pull may install it");
	ug_term_free(t);
	ug_tconf_release(&c);
	return r < 0 ? UG_EXIT_FAILURE : UG_EXIT_OK;
}

static const char accept_usage[] =
	"usage: upgrid accept [--config FILE] [--undo] VERSION\n"
	"\n"
	"Allow VERSION to be installed by the next pull when the policy is manual,\n"
	"or after it failed a health check here (it is no longer marked bad).\n"
	"\n"
	"  -C, --config FILE   terminal settings\n"
	"      --undo          take VERSION off the accepted list\n"
	"  -h, --help          show this help\n";

static const char deny_usage[] =
	"usage: upgrid deny [--config FILE] [--undo] VERSION\n"
	"\n"
	"Never install VERSION on this terminal (besides the 'deny' settings).\n"
	"\n"
	"  -C, --config FILE   terminal settings\n"
	"      --undo          take VERSION off the denied list\n"
	"  -h, --help          show this help\n";

int cmd_accept(int argc, char **argv)
{
	return mark(argc, argv, "accept", accept_usage, false);
}

int cmd_deny(int argc, char **argv)
{
	return mark(argc, argv, "deny", deny_usage, true);
}

static const char rollback_usage[] =
	"usage: upgrid rollback [--config FILE] [VERSION]\n"
	"\n"
	"Switch the install root back to a kept version (default: the newest\n"
	"below the installed one), running the pre-switch, restart and health\n"
	"check hooks. The version left is marked bad and not installed again\n"
	"until a newer one is published or it is accepted.\n"
	"\n"
	"  -C, --config FILE   terminal settings\n"
	"  -h, --help          show this help\n";

int cmd_rollback(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfg = NULL;
	struct ug_tconf c;
	struct ug_term *t = NULL;
	struct ug_error e = { "" };
	uint64_t v = 0, from;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "C:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			cfg = optarg;
			break;
		case 'h':
			fputs(rollback_usage, stdout);
			return UG_EXIT_OK;
		default:
			return ug_cli_usage_error("rollback", NULL);
		}
	}
	if (optind + 1 < argc)
		return ug_cli_usage_error("rollback", "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc) {
		r = parse_version("rollback", argv[optind], &v);
		if (r)
			return r;
	}
	r = load_config(config_path(cfg), &c);
	if (r)
		return r;
	r = open_term(&c, UG_TERM_LOCK | UG_TERM_RECOVER, false, &t);
	if (r) {
		ug_tconf_release(&c);
		return r;
	}
	from = ug_term_installed(t);
	r = ug_term_rollback(t, v, &e);
	if (r < 0)
		ug_cli_err("%s", e.msg);
	else
		ug_cli_info("rolled back from version %" PRIu64 " to %" PRIu64, from,
			    ug_term_installed(t));
	ug_term_free(t);
	ug_tconf_release(&c);
	return r < 0 ? term_exit(r) : UG_EXIT_OK;
}
