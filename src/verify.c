#include "config.h"
#include "verify.h"
