#include "sllm.h"

const char *sllm_version(void) { return "0.1.0"; }
