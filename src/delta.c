#include "config.h"
#include "delta.h"
