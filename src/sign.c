#include "config.h"
#include "sign.h"
