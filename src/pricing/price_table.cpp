#include "pricing/price_table.hpp"

#include <array>
#include <charconv>

namespace llmgw::pricing {

namespace {

template <class E, std::size_t N>
std::optional<E> parse_enum(std::string_view s, const std::array<std::string_view, N>& names) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) {
      return static_cast<E>(i);
    }
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 7> kDirections{
    "input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning", "tool"};
constexpr std::array<std::string_view, 4> kModalities{"text", "image", "audio", "video"};
constexpr std::array<std::string_view, 11> kUnits{"token",  "1k_tokens", "1m_tokens", "character",
                                                  "image",  "pixel",     "second",    "minute",
                                                  "hour",   "request",   "query"};
constexpr std::array<std::string_view, 4> kServiceTiers{"default", "priority", "flex", "batch"};

bool is_token_unit(Unit u) {
  return u == Unit::Token || u == Unit::Tokens1k || u == Unit::Tokens1m;
}

}  // namespace

std::string_view to_string(Direction d) noexcept { return kDirections[static_cast<int>(d)]; }
std::string_view to_string(Modality m) noexcept { return kModalities[static_cast<int>(m)]; }
std::string_view to_string(Unit u) noexcept { return kUnits[static_cast<int>(u)]; }
std::string_view to_string(ServiceTier s) noexcept { return kServiceTiers[static_cast<int>(s)]; }
std::optional<Direction> parse_direction(std::string_view s) noexcept {
  return parse_enum<Direction>(s, kDirections);
}
std::optional<Modality> parse_modality(std::string_view s) noexcept {
  return parse_enum<Modality>(s, kModalities);
}
std::optional<Unit> parse_unit(std::string_view s) noexcept { return parse_enum<Unit>(s, kUnits); }
std::optional<ServiceTier> parse_service_tier(std::string_view s) noexcept {
  return parse_enum<ServiceTier>(s, kServiceTiers);
}

std::int64_t unit_divisor(Unit u) noexcept {
  switch (u) {
    case Unit::Tokens1k: return 1'000;
    case Unit::Tokens1m: return 1'000'000;
    default: return 1;
  }
}

std::string to_string(const Tier& t) {
  std::string s;
  if (t.above_tokens > 0) {
    if (t.above_tokens % 1000 == 0) {
      s = "above_" + std::to_string(t.above_tokens / 1000) + "k";
    } else {
      s = "above_" + std::to_string(t.above_tokens);
    }
  }
  if (t.service != ServiceTier::Default) {
    if (!s.empty()) {
      s += '_';
    }
    s += to_string(t.service);
  }
  return s.empty() ? "default" : s;
}

std::optional<Tier> parse_tier(std::string_view s) {
  Tier t;
  if (s == "default") {
    return t;
  }
  if (s.starts_with("above_")) {
    s.remove_prefix(6);
    std::int64_t n = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || n <= 0) {
      return std::nullopt;
    }
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    if (s.starts_with("k")) {
      n *= 1000;
      s.remove_prefix(1);
    }
    t.above_tokens = n;
    if (s.empty()) {
      return t;
    }
    if (!s.starts_with("_")) {
      return std::nullopt;
    }
    s.remove_prefix(1);
  }
  auto svc = parse_service_tier(s);
  if (!svc || *svc == ServiceTier::Default) {
    return std::nullopt;
  }
  t.service = *svc;
  return t;
}

const PriceComponent* ModelPricing::find(Direction d, Modality m, std::int64_t prompt_tokens,
                                         ServiceTier service, bool per_token) const {
  const PriceComponent* best = nullptr;
  // Rank: a higher threshold that the prompt passed first, then the exact service tier.
  auto rank = [&](const PriceComponent& c) -> std::int64_t {
    const std::int64_t threshold_rank = c.tier.above_tokens * 2;
    return threshold_rank + (c.tier.service == service ? 1 : 0);
  };
  for (const auto& c : components) {
    if (c.direction != d || c.modality != m || is_token_unit(c.unit) != per_token) {
      continue;
    }
    if (c.tier.above_tokens > 0 && prompt_tokens <= c.tier.above_tokens) {
      continue;
    }
    if (c.tier.service != ServiceTier::Default && c.tier.service != service) {
      continue;
    }
    if (best == nullptr || rank(c) > rank(*best)) {
      best = &c;
    }
  }
  return best;
}

std::vector<PriceComponent> effective_components(const std::vector<PriceComponent>& rows) {
  std::vector<PriceComponent> out;
  for (const auto& r : rows) {
    bool replaced = false;
    for (auto& o : out) {
      // Token, 1k-token and 1M-token prices are one component in three spellings: a price
      // in any of them replaces one of a lower source in another.
      const bool same_unit =
          o.unit == r.unit || ((unit_divisor(o.unit) > 1 || o.unit == Unit::Token) &&
                               (unit_divisor(r.unit) > 1 || r.unit == Unit::Token));
      if (o.direction == r.direction && o.modality == r.modality && same_unit &&
          o.tier == r.tier) {
        // PriceSource is ordered by precedence: a row of a higher source wins; of the same
        // source, the later row.
        if (r.source >= o.source) {
          o = r;
        }
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace llmgw::pricing
