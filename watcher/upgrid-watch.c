/* upgrid-watch - inotify watcher on the master tree (issue: upgrid-watch).
 * Not implemented yet: it only reports so and exits with status 2, so a
 * service started by mistake fails loudly instead of silently idling. */
#include "config.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("upgrid-watch %s\n", PACKAGE_VERSION);
		return 0;
	}
	fprintf(stderr, "upgrid-watch: not implemented yet; publish with 'upgrid publish TREE'\n");
	return 2;
}
