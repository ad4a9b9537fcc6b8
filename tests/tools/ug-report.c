/* ug-report - send REPORTs to a repo's server from the shell, for the
 * integration tests (t025-fleet.sh).
 *
 *   ug-report --command PROGRAM --repo REPO [--name NAME] TEXT...
 *
 * Opens one session with ug_client_open over the local transport
 * (PROGRAM --serve --repo REPO, PROGRAM being upgrid-syncd or a wrapper
 * script that adds --read-only or --name) and sends each TEXT as one
 * REPORT with ug_client_report, in order; a TEXT of the form @FILE sends
 * FILE's contents (up to 1 MiB). Stops at the first refusal.
 *
 * Exit status: 0 every report was acknowledged; 1 other error; 2 usage;
 * 3 a report was refused as a bad request (badreq); 4 denied (denied);
 * 6 no session. The server's message goes to stderr. */
#include "config.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "util.h"

#define TEXT_FILE_MAX (1u << 20)

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "command", required_argument, NULL, 'c' },
		{ "repo", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct ug_client_opts o = { .name = "ug-report" };
	struct ug_server srv = { 0 };
	struct ug_client *c = NULL;
	struct ug_error e = { "" };
	int opt, r, rc = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o.local_command = optarg; break;
		case 'r': srv.repo = optarg; break;
		case 'n': o.name = optarg; break;
		default: return 2;
		}
	}
	if (!o.local_command || !srv.repo || optind >= argc) {
		fprintf(stderr, "usage: ug-report --command PROGRAM --repo REPO [--name NAME] TEXT...\n");
		return 2;
	}
	r = ug_client_open(&srv, &o, &c, NULL, &e);
	if (r < 0) {
		fprintf(stderr, "ug-report: %s\n", e.msg);
		return 6;
	}
	for (; optind < argc && rc == 0; optind++) {
		const char *arg = argv[optind];
		char *text = NULL;
		size_t len;

		if (arg[0] == '@') {
			r = ug_file_read(AT_FDCWD, arg + 1, TEXT_FILE_MAX, &text, &len);
			if (r < 0) {
				fprintf(stderr, "ug-report: cannot read '%s': %s\n", arg + 1, strerror(-r));
				rc = 1;
				break;
			}
		} else {
			len = strlen(arg);
		}
		e.msg[0] = '\0';
		r = ug_client_report(c, text ? text : arg, len, &e);
		free(text);
		if (r < 0) {
			fprintf(stderr, "ug-report: %s\n", e.msg[0] ? e.msg : strerror(-r));
			rc = r == -EINVAL ? 3 : r == -EACCES ? 4 : 1;
		}
	}
	ug_client_free(c);
	return rc;
}
