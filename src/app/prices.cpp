#include "app/prices.hpp"

namespace llmgw::app {

ImportSummary import_catalog(store::Store& store, std::string_view json,
                             const std::set<std::string>& providers) {
  ImportSummary s;
  s.parse = pricing::parse_litellm_catalog(json, providers);
  std::vector<store::PriceModelRecord> models;
  std::vector<store::PriceComponentRecord> rows;
  models.reserve(s.parse.entries.size());
  for (const auto& e : s.parse.entries) {
    models.push_back({e.pricing.name, e.litellm_provider, e.mode, e.pricing.max_input_tokens,
                      e.pricing.max_output_tokens});
    for (const auto& c : e.pricing.components) {
      rows.push_back({e.pricing.name, std::string(pricing::to_string(c.direction)),
                      std::string(pricing::to_string(c.modality)),
                      std::string(pricing::to_string(c.unit)), pricing::to_string(c.tier),
                      c.price.to_string(), "catalog"});
    }
  }
  s.result = store.import_prices(models, rows);
  return s;
}

std::vector<store::PriceComponentRecord> price_overrides(const core::GatewayConfig& cfg,
                                                         const std::string& origin) {
  std::vector<store::PriceComponentRecord> rows;
  for (std::size_t i = 0; i < cfg.prices.size(); ++i) {
    const auto& p = cfg.prices[i];
    for (std::size_t j = 0; j < p.components.size(); ++j) {
      const auto& c = p.components[j];
      const std::string at =
          origin + ": prices[" + std::to_string(i) + "].components[" + std::to_string(j) + "].";
      if (!pricing::parse_direction(c.direction)) {
        throw core::ConfigError(at + "direction: unknown direction '" + c.direction +
                                "' (expected input, output, cache_read, cache_write_5m, "
                                "cache_write_1h, reasoning or tool)");
      }
      if (!pricing::parse_modality(c.modality)) {
        throw core::ConfigError(at + "modality: unknown modality '" + c.modality +
                                "' (expected text, image, audio or video)");
      }
      if (!pricing::parse_unit(c.unit)) {
        throw core::ConfigError(at + "unit: unknown unit '" + c.unit +
                                "' (expected token, 1k_tokens, 1m_tokens, character, image, "
                                "pixel, second, minute, hour, request or query)");
      }
      if (!pricing::parse_tier(c.tier)) {
        throw core::ConfigError(at + "tier: unknown tier '" + c.tier +
                                "' (expected default, above_<N>k, priority, flex, batch, or "
                                "above_<N>k_<service>)");
      }
      const auto price = core::Money::parse(c.price);
      if (!price) {
        throw core::ConfigError(at + "price: '" + c.price +
                                "' is not a non-negative decimal amount in USD");
      }
      rows.push_back({p.model, c.direction, c.modality, c.unit,
                      pricing::to_string(*pricing::parse_tier(c.tier)), price->to_string(),
                      "override"});
    }
  }
  return rows;
}

}  // namespace llmgw::app
