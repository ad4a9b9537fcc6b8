/* upgrid-syncd - serve a repo over SSH and replicate versions down the
 * group chains (upgrid-syncd(8)).
 *
 *   upgrid-syncd --serve --repo PATH     one session on stdin/stdout (the
 *                                        forced command of a restricted key)
 *   upgrid-syncd [-f CONFIG] --once      one replication round (cron)
 *   upgrid-syncd [-f CONFIG]             follow upstream until SIGTERM
 *   upgrid-syncd --stats --repo PATH     print the serve counters */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "follow.h"
#include "progress.h"
#include "sconf.h"
#include "serve.h"
#include "store.h"
#include "wlog.h"
#include "util.h"

#define PROG "upgrid-syncd"
/* A daemon round that found nothing new takes at least this long. */
#define MIN_ROUND_S 5

static const char usage_text[] =
	"usage: upgrid-syncd [-f CONFIG] [--once] [--scrub] [--daemon]\n"
	"                    [--test-config] [-q | -v]\n"
	"       upgrid-syncd --serve --repo PATH [--read-only] [--max-sessions N]\n"
	"                    [--retry-after SECONDS] [--name NAME]\n"
	"       upgrid-syncd --stats --repo PATH\n"
	"\n"
	"Without --serve or --stats, follow the upstream named by the chain list\n"
	"(the servers before this one in its group, then the master) and replicate\n"
	"every new version into the repo: fetch the signed manifest, verify it\n"
	"against the master's key, fetch what is missing (deltas where the bases\n"
	"are held), verify every hash, then move the ref. SIGTERM stops it with\n"
	"the repo consistent.\n"
	"\n"
	"  -f, --config FILE         settings file (default: " UG_SYNCD_CONFIG ")\n"
	"  -R, --repo PATH           the repo (overrides 'repo' in CONFIG)\n"
	"      --once                one round, then exit (for cron)\n"
	"      --scrub               also check every object's hash and repair\n"
	"      --daemon              run in the background and log to syslog\n"
	"      --test-config         check the settings, print them and exit\n"
	"      --serve               speak the protocol on stdin/stdout\n"
	"      --read-only           with --serve: a terminal's key (no STATS,\n"
	"                            one REPORT per session)\n"
	"      --max-sessions N      with --serve: sessions at once (default: 64)\n"
	"      --retry-after SECONDS\n"
	"                            with --serve: what a busy server suggests (10)\n"
	"      --name NAME           with --serve: the name given to clients\n"
	"      --stats               print the serve counters (JSON) and exit\n"
	"  -q, --quiet               print only errors\n"
	"  -v, --verbose             print more\n"
	"  -h, --help                show this help\n"
	"  -V, --version             show the version\n";

static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int usage_error(const char *msg)
{
	fprintf(stderr, PROG ": %s\n", msg);
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	return UG_EXIT_USAGE;
}

static void serve_log(void *ctx, int level, const char *line)
{
	(void)ctx;
	ug_wlog_text(level, line);
}

static void remote_log(void *ctx, const char *line)
{
	(void)ctx;
	ug_wlog(UG_WLOG_INFO, "upstream: %s", line);
}

enum { OPT_ONCE = 256, OPT_SCRUB, OPT_DAEMON, OPT_TEST, OPT_SERVE, OPT_RO, OPT_MAXS,
       OPT_RETRY, OPT_NAME, OPT_STATS };

struct cmdline {
	const char *config, *repo, *name;
	bool once, scrub, daemon, test, serve, read_only, stats;
	unsigned max_sessions, retry_after;
	int verbosity;
};

static int parse_args(int argc, char **argv, struct cmdline *cl)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "repo", required_argument, NULL, 'R' },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "scrub", no_argument, NULL, OPT_SCRUB },
		{ "daemon", no_argument, NULL, OPT_DAEMON },
		{ "test-config", no_argument, NULL, OPT_TEST },
		{ "serve", no_argument, NULL, OPT_SERVE },
		{ "read-only", no_argument, NULL, OPT_RO },
		{ "max-sessions", required_argument, NULL, OPT_MAXS },
		{ "retry-after", required_argument, NULL, OPT_RETRY },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	cl->verbosity = 1;
	while ((c = getopt_long(argc, argv, "f:R:qvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'f': cl->config = optarg; break;
		case 'R': cl->repo = optarg; break;
		case OPT_ONCE: cl->once = true; break;
		case OPT_SCRUB: cl->scrub = true; break;
		case OPT_DAEMON: cl->daemon = true; break;
		case OPT_TEST: cl->test = true; break;
		case OPT_SERVE: cl->serve = true; break;
		case OPT_RO: cl->read_only = true; break;
		case OPT_STATS: cl->stats = true; break;
		case OPT_NAME: cl->name = optarg; break;
		case OPT_MAXS:
			if (ug_parse_u64(optarg, 100000, &v) < 0 || v == 0)
				return usage_error("--max-sessions needs a number from 1 to 100000");
			cl->max_sessions = (unsigned)v;
			break;
		case OPT_RETRY:
			if (ug_parse_u64(optarg, 86400, &v) < 0 || v == 0)
				return usage_error("--retry-after needs seconds from 1 to 86400");
			cl->retry_after = (unsigned)v;
			break;
		case 'q': cl->verbosity = 0; break;
		case 'v': cl->verbosity++; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'V': printf(PROG " %s\n", PACKAGE_VERSION); exit(0);
		default: return usage_error("unknown option");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument");
	if ((cl->serve || cl->stats) && !cl->repo)
		return usage_error("--serve and --stats need --repo PATH");
	if (cl->serve + cl->stats + (cl->once || cl->daemon || cl->test) > 1)
		return usage_error("--serve, --stats and following (--once, --daemon) exclude each other");
	if (cl->once && cl->daemon)
		return usage_error("--once and --daemon exclude each other");
	if (!cl->serve && (cl->read_only || cl->max_sessions || cl->retry_after || cl->name))
		return usage_error("--read-only, --max-sessions, --retry-after and --name go with --serve");
	if ((cl->serve || cl->stats) && (cl->config || cl->scrub))
		return usage_error("-f and --scrub go with following, not with --serve or --stats");
	return 0;
}

static int run_serve(const struct cmdline *cl)
{
	struct ug_serve_opts o = {
		.repo = cl->repo,
		.name = cl->name,
		.read_only = cl->read_only,
		.max_sessions = cl->max_sessions,
		.retry_after = cl->retry_after,
		.log = serve_log,
	};
	struct ug_error e = { "" };
	int r;

	r = ug_serve(&o, 0, 1, &e);
	if (r == 0)
		return UG_EXIT_OK;
	/* the session already logged the details through serve_log; this is
	 * the one line a script reading stderr needs */
	if (r == -EPROTO) {
		ug_wlog(UG_WLOG_ERR, "protocol error: %s", e.msg);
		return UG_EXIT_CORRUPT;
	}
	if (r == -ETIMEDOUT)
		return UG_EXIT_FAILURE;
	ug_wlog(UG_WLOG_ERR, "%s", e.msg[0] ? e.msg : strerror(-r));
	return ug_exit_code(r);
}

static int run_stats(const struct cmdline *cl)
{
	struct ug_error e = { "" };
	char *json;
	int r = ug_serve_stats_read(cl->repo, &json, &e);

	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "%s", e.msg);
		return ug_exit_code(r);
	}
	puts(json);
	free(json);
	return UG_EXIT_OK;
}

static void print_config(const struct ug_sconf *c)
{
	char addr[300] = "-";

	if (c->master.host)
		ug_server_format_address(&c->master, addr, sizeof(addr));
	printf("repo = %s\nname = %s\nmaster = %s %s\nmaster-key = %s\nidentity = %s\n"
	       "known-hosts = %s\n", c->repo, c->name ? c->name : "(none: follows the master)",
	       addr, c->master.repo, c->master_key, c->identity ? c->identity : "(ssh-agent, ~/.ssh)",
	       c->known_hosts ? c->known_hosts : UG_SYNCD_KNOWN_HOSTS);
	printf("channels =");
	for (unsigned i = 0; i < c->nchannels; i++)
		printf("%s%s", i ? "," : " ", c->channels[i]);
	printf("%s\n", c->nchannels ? "" : " stable");
	printf("connect-timeout = %u\nidle-timeout = %u\nkeepalive = %u\nwait = %u\nretry = %u\n"
	       "scrub-hours = %u\n", c->connect_timeout, c->idle_timeout, c->keepalive, c->wait,
	       c->retry, c->scrub_hours);
}

/* Sleep up to s seconds, waking early on SIGTERM. */
static void nap(unsigned s)
{
	for (unsigned i = 0; i < s * 10 && !stop_flag; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int exit_for(int r)
{
	switch (r) {
	case 0: return UG_EXIT_OK;
	case -EKEYREJECTED: return UG_EXIT_SIGNATURE;
	case -EBADMSG: case -EPROTO: return UG_EXIT_CORRUPT;
	case -EWOULDBLOCK: return UG_EXIT_LOCKED;
	default: return UG_EXIT_FAILURE;
	}
}

static int run_follow(const struct cmdline *cl)
{
	struct ug_sconf conf;
	struct ug_follow f = { 0 };
	struct ug_error e = { "" };
	const char *cfg = cl->config ? cl->config : UG_SYNCD_CONFIG;
	int r, rc = UG_EXIT_OK;
	time_t last_scrub = 0;

	ug_sconf_init(&conf);
	r = ug_sconf_load(&conf, cfg, &e);
	if (r == 0 && cl->repo) {
		free(conf.repo);
		conf.repo = strdup(cl->repo);
		if (!conf.repo)
			r = -ENOMEM;
	}
	if (r == 0)
		r = ug_sconf_check(&conf, &e);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "%s", e.msg[0] ? e.msg : strerror(-r));
		ug_sconf_release(&conf);
		return r == -ENOENT ? UG_EXIT_NOTFOUND : UG_EXIT_USAGE;
	}
	r = ug_pubkey_load(conf.master_key, &f.master_key, &e);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "master key: %s", e.msg);
		ug_sconf_release(&conf);
		return ug_exit_code(r);
	}
	if (cl->test) {
		print_config(&conf);
		ug_sconf_release(&conf);
		return UG_EXIT_OK;
	}
	r = ug_store_open(conf.repo, &f.s, &e);
	if (r < 0) {
		ug_wlog(UG_WLOG_ERR, "%s (create it with 'upgrid init %s')", e.msg, conf.repo);
		ug_sconf_release(&conf);
		return ug_exit_code(r);
	}
	r = ug_store_lock(f.s, false);
	if (r < 0) {
		if (r == -EWOULDBLOCK)
			ug_wlog(UG_WLOG_ERR, "repo '%s' is locked by another upgrid-syncd or publish; "
				"it is safe to run again later", conf.repo);
		else
			ug_wlog(UG_WLOG_ERR, "cannot lock repo '%s': %s", conf.repo, strerror(-r));
		rc = r == -EWOULDBLOCK ? UG_EXIT_LOCKED : UG_EXIT_FAILURE;
		goto out;
	}
	f.conf = &conf;
	f.stop = &stop_flag;
	/* objects rebuilt from deltas are stored one at a time: let zstd use
	 * every CPU for the big ones */
	f.s->object_workers = ug_ncpus() > 1 ? ug_ncpus() : 0;
	f.copts = (struct ug_client_opts){
		.name = conf.name ? conf.name : "upgrid-syncd",
		.identity = conf.identity,
		.known_hosts = conf.known_hosts ? conf.known_hosts : UG_SYNCD_KNOWN_HOSTS,
		.serve_command = conf.serve_command,
		.local_command = conf.serve_command,
		.connect_timeout_s = (int)conf.connect_timeout,
		.idle_timeout_s = (int)conf.idle_timeout,
		.keepalive_s = (int)conf.keepalive,
		.log = remote_log,
		/* a local master's session log: only when asked for */
		.local_quiet = cl->verbosity < 2,
	};
	if (cl->once) {
		/* run by hand: long downloads show their progress */
		if (ug_progress_wanted(STDERR_FILENO, cl->verbosity)) {
			f.copts.progress = ug_progress_update;
			f.copts.progress_ctx = ug_progress_stderr();
		}
		r = ug_follow_round(&f, 0, cl->scrub, &e);
		if (r < 0)
			ug_wlog(UG_WLOG_ERR, "%s", e.msg);
		rc = exit_for(r);
		goto out;
	}
	if (cl->daemon) {
		if (daemon(0, 0) < 0) {
			ug_wlog(UG_WLOG_ERR, "cannot start the daemon: %s", strerror(errno));
			rc = UG_EXIT_FAILURE;
			goto out;
		}
		ug_wlog_syslog(true);
		ug_wlog_stderr(false);
	}
	ug_wlog(UG_WLOG_INFO, "following for '%s' (%s)", conf.repo,
		conf.name ? conf.name : "not in the cluster file: follows the master");
	while (!stop_flag) {
		bool scrub = cl->scrub && last_scrub == 0;
		if (conf.scrub_hours && time(NULL) - last_scrub >= (time_t)conf.scrub_hours * 3600)
			scrub = true;
		time_t start = time(NULL);
		r = ug_follow_round(&f, (int)conf.wait, scrub, &e);
		if (r == 0 && scrub)
			last_scrub = time(NULL);
		if (r < 0 && r != -EINTR) {
			ug_wlog(UG_WLOG_ERR, "%s; retrying in %u s", e.msg, conf.retry);
			nap(conf.retry);
		} else if (r == 0 && !f.updated && time(NULL) - start < MIN_ROUND_S) {
			/* nothing to wait on (no long-poll, several channels, or
			 * no version anywhere yet): do not hammer the upstream,
			 * but a round is at least MIN_ROUND_S, not that much more */
			nap(conf.wait ? (unsigned)(MIN_ROUND_S - (time(NULL) - start)) : conf.retry);
		}
	}
	ug_wlog(UG_WLOG_INFO, "stopping on SIGTERM; the repo is consistent");
out:
	ug_store_free(f.s);
	ug_sconf_release(&conf);
	return rc;
}

int main(int argc, char **argv)
{
	struct cmdline cl = { 0 };
	struct sigaction sa = { .sa_handler = on_term };
	int r;

	r = parse_args(argc, argv, &cl);
	if (r)
		return r;
	/* a peer that goes away must give EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);
	/* with --serve, stdout is the protocol: messages go to stderr only */
	ug_wlog_setup(PROG, cl.verbosity);
	/* a serving session keeps SIGTERM's default: it holds nothing that
	 * needs finishing (a slot lock the kernel drops, temp files renamed
	 * into place only when complete) */
	if (cl.serve) {
		/* stderr goes back to the client through sshd: the server's
		 * own record of its sessions is syslog */
		ug_wlog_syslog(true);
		return run_serve(&cl);
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (cl.stats)
		return run_stats(&cl);
	return run_follow(&cl);
}
