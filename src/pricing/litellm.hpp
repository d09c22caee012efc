#pragma once
/// Reads LiteLLM's `model_prices_and_context_window.json`, the de-facto standard price list,
/// into priced models. Numbers are taken from their JSON text (never through a double), so
/// prices are exact. Fields it does not know are counted and skipped, never an error.

#include "pricing/price_table.hpp"

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::pricing {

struct CatalogEntry {
  ModelPricing pricing;        ///< components have source Catalog
  std::string litellm_provider;
  std::string mode;            ///< chat, embedding, image_generation, ...
};

struct CatalogParse {
  std::vector<CatalogEntry> entries;
  std::size_t entries_seen = 0;
  std::size_t skipped_provider = 0;   ///< filtered out by `providers`
  std::size_t skipped_no_price = 0;   ///< no field this gateway can price
  std::map<std::string, std::size_t> unknown_fields;  ///< cost fields not understood → count
  std::map<std::string, std::size_t> duplicate_fields;  ///< a second field for one component
};

/// Parses the catalog text; `providers` (litellm_provider values) filters when non-empty.
/// Throws std::runtime_error if the text is not a JSON object.
CatalogParse parse_litellm_catalog(std::string_view json_text,
                                   const std::set<std::string>& providers = {});

/// Maps one LiteLLM price field to a component (price not set); nullopt if not understood.
std::optional<PriceComponent> map_litellm_field(std::string_view field, std::string_view mode);

}  // namespace llmgw::pricing
