#include "config.h"
#include "cli.h"
struct ug_cli ug_cli;
