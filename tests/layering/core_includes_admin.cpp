// Layering probe: a source of the core library must not see the admin library's headers
// (core does not link admin). The test expects this file NOT to compile.
#include "admin/input.hpp"

int llmgw_layering_violation() { return 0; }
