#pragma once
/// The pricing model: per priced model, a list of components, each a price per unit for one
/// (direction, modality, unit, tier). Tiers are a prompt-size threshold (the higher rates
/// apply to the whole call once the prompt passes it, as providers bill) and a service tier.

#include "core/money.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::pricing {

enum class Direction : std::uint8_t {
  Input,
  Output,
  CacheRead,
  CacheWrite5m,
  CacheWrite1h,
  Reasoning,
  Tool,
};
enum class Modality : std::uint8_t { Text, Image, Audio, Video };
enum class Unit : std::uint8_t {
  Token,
  Tokens1k,
  Tokens1m,
  Character,
  Image,
  Pixel,
  Second,
  Minute,
  Hour,
  Request,
  Query,
};
enum class ServiceTier : std::uint8_t { Default, Priority, Flex, Batch };

std::string_view to_string(Direction d) noexcept;
std::string_view to_string(Modality m) noexcept;
std::string_view to_string(Unit u) noexcept;
std::string_view to_string(ServiceTier s) noexcept;
std::optional<Direction> parse_direction(std::string_view s) noexcept;
std::optional<Modality> parse_modality(std::string_view s) noexcept;
std::optional<Unit> parse_unit(std::string_view s) noexcept;
std::optional<ServiceTier> parse_service_tier(std::string_view s) noexcept;

/// How many of a quantity one price applies to (1 for token, 1000 for 1k_tokens, ...).
std::int64_t unit_divisor(Unit u) noexcept;

/// "default", "above_200k", "priority", "above_272k_priority", ...
struct Tier {
  std::int64_t above_tokens = 0;  ///< 0: no threshold
  ServiceTier service = ServiceTier::Default;
  bool operator==(const Tier&) const = default;
};
std::string to_string(const Tier& t);
std::optional<Tier> parse_tier(std::string_view s);

/// Where a price comes from, in increasing precedence: the imported catalog, the
/// configuration file's `prices:`, the admin API.
enum class PriceSource : std::uint8_t { Catalog, Override, Admin };

struct PriceComponent {
  Direction direction = Direction::Input;
  Modality modality = Modality::Text;
  Unit unit = Unit::Token;
  Tier tier;
  core::Money price;  ///< USD per `unit`
  PriceSource source = PriceSource::Catalog;
  bool operator==(const PriceComponent&) const = default;
};

/// A priced model: the catalog's name for it, limits the budget reservation uses, prices.
struct ModelPricing {
  std::string name;
  std::optional<std::int64_t> max_input_tokens;
  std::optional<std::int64_t> max_output_tokens;
  std::vector<PriceComponent> components;  ///< effective: admin and override rows already win

  /// The component for (direction, modality, and a unit of the same kind) that applies to a
  /// call with `prompt_tokens` of prompt in `service`: the highest threshold passed, then the
  /// service tier (else default); a kind without a component at that threshold falls back to
  /// lower thresholds. nullptr if none.
  [[nodiscard]] const PriceComponent* find(Direction d, Modality m, std::int64_t prompt_tokens,
                                           ServiceTier service, bool per_token) const;
};

/// Merges the rows of every source: for the same (direction, modality, unit, tier) the row
/// of the highest PriceSource wins (admin over override over catalog).
std::vector<PriceComponent> effective_components(const std::vector<PriceComponent>& rows);

}  // namespace llmgw::pricing
