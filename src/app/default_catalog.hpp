#pragma once
/// The default price catalog built into the binary: LiteLLM's price list
/// (catalog/litellm/, MIT licence, source in catalog/litellm/SOURCE.md).

#include <string_view>

namespace llmgw::app {

std::string_view default_catalog_json();

}  // namespace llmgw::app
