// Layering probe (control): a source of the core library may include core's own headers.
#include "core/json.hpp"

int llmgw_layering_control() { return static_cast<int>(llmgw::core::JsonKind::Object); }
