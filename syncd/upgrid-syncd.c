/* upgrid-syncd - serve and replicate over SSH (issue: upgrid-syncd).
 * Not implemented yet: it only reports so and exits with status 2, so a
 * service started by mistake fails loudly instead of silently idling. */
#include "config.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("upgrid-syncd %s\n", PACKAGE_VERSION);
		return 0;
	}
	fprintf(stderr, "upgrid-syncd: not implemented yet; publish with 'upgrid publish TREE'\n");
	return 2;
}
