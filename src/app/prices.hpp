#pragma once
/// Price list plumbing shared by `serve` and the `catalog` command: importing a LiteLLM
/// catalog into the store, and turning the config file's price overrides into store rows.

#include "core/config.hpp"
#include "pricing/litellm.hpp"
#include "store/store.hpp"

#include <set>
#include <string>
#include <string_view>

namespace llmgw::app {

struct ImportSummary {
  store::ImportResult result;
  pricing::CatalogParse parse;
};

/// Parses `json` (LiteLLM format) and imports it; `providers` filters when non-empty.
ImportSummary import_catalog(store::Store& store, std::string_view json,
                             const std::set<std::string>& providers);

/// Validates the config file's `prices` and converts them to override rows. Throws
/// core::ConfigError "ORIGIN: prices[i].components[j].FIELD: problem".
std::vector<store::PriceComponentRecord> price_overrides(const core::GatewayConfig& cfg,
                                                         const std::string& origin);

}  // namespace llmgw::app
