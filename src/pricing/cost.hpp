#pragma once
/// The cost engine: normalised usage × the model's effective prices → an exact cost, plus a
/// record of the prices it was billed at (kept with the usage record, so a later price change
/// never rewrites history).

#include "pricing/price_table.hpp"
#include "pricing/usage.hpp"

#include <string>

namespace llmgw::pricing {

enum class CostStatus : std::uint8_t {
  Exact,      ///< every quantity priced, usage reported by the provider
  Estimated,  ///< usage was estimated by the gateway (the provider reported none)
  Partial,    ///< some quantity had no price: the cost covers the priced part only
  Unpriced,   ///< the model has no price at all: cost unknown (never silently $0)
};
std::string_view to_string(CostStatus s) noexcept;

struct Cost {
  core::Money total;
  CostStatus status = CostStatus::Unpriced;
  /// JSON array of the lines billed: [{"d","m","u","t","p","q"}] (direction, modality, unit,
  /// tier, price per unit, quantity; a line costs p*q per unit size). Empty for Unpriced.
  std::string lines_json;
  [[nodiscard]] bool known() const noexcept { return status != CostStatus::Unpriced; }
};

/// Prices `usage` for one call. `pricing` may be null (no price anywhere → Unpriced).
Cost compute_cost(const ModelPricing* pricing, const TokenUsage& usage, ServiceTier service,
                  bool estimated);

/// The most a call can cost: `prompt_tokens` at the dearest prompt-side rate that could apply
/// (input or cache write), `max_output_tokens` at the dearest output-side rate (output or
/// reasoning), plus any per-request fee. What a budget reserves before the call.
core::Money worst_case_cost(const ModelPricing& pricing, std::int64_t prompt_tokens,
                            std::int64_t max_output_tokens, ServiceTier service);

}  // namespace llmgw::pricing
