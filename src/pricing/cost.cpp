#include "pricing/cost.hpp"

#include "core/json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <initializer_list>

namespace llmgw::pricing {

std::string_view to_string(CostStatus s) noexcept {
  switch (s) {
    case CostStatus::Exact: return "exact";
    case CostStatus::Estimated: return "estimated";
    case CostStatus::Partial: return "partial";
    case CostStatus::Unpriced: return "unpriced";
  }
  return "unpriced";
}

namespace {

struct Kind {
  Direction direction;
  Modality modality;
  bool per_token;
};

/// Up to three kinds, tried in order: the quantity's own price, then fallbacks (cached tokens
/// at the input rate when no cache rate is listed, reasoning at the output rate, audio/image
/// tokens at the text rate, as providers bill them).
struct Chain {
  std::array<Kind, 3> kinds;
  std::size_t size;
};

const PriceComponent* find_chain(const ModelPricing& p, const Chain& chain, std::int64_t prompt,
                                 ServiceTier service) {
  for (std::size_t i = 0; i < chain.size; ++i) {
    const Kind& k = chain.kinds[i];
    if (const auto* c = p.find(k.direction, k.modality, prompt, service, k.per_token)) {
      return c;
    }
  }
  return nullptr;
}

/// The per-request fee that applies (same tier rules as `ModelPricing::find`), or null.
const PriceComponent* request_fee(const ModelPricing& p, std::int64_t prompt,
                                  ServiceTier service) {
  const PriceComponent* best = nullptr;
  for (const auto& c : p.components) {
    if (c.unit != Unit::Request || (c.tier.above_tokens > 0 && prompt <= c.tier.above_tokens) ||
        (c.tier.service != ServiceTier::Default && c.tier.service != service)) {
      continue;
    }
    if (best == nullptr || c.tier.above_tokens > best->tier.above_tokens ||
        (c.tier.above_tokens == best->tier.above_tokens && c.tier.service == service)) {
      best = &c;
    }
  }
  return best;
}

core::Money line_cost(const PriceComponent& c, std::int64_t quantity) {
  return c.price * quantity / unit_divisor(c.unit);
}

void append_line(std::string& json, const PriceComponent& c, std::int64_t quantity) {
  json += json.size() > 1 ? ",{" : "{";
  json += R"("d":")";
  json += to_string(c.direction);
  json += R"(","m":")";
  json += to_string(c.modality);
  json += R"(","u":")";
  json += to_string(c.unit);
  json += R"(","t":")";
  json += to_string(c.tier);
  json += R"(","p":")";
  json += c.price.to_string();
  json += R"(","q":)";
  char buf[24];
  json.append(buf, std::to_chars(buf, buf + sizeof buf, quantity).ptr);
  json += "}";
}

}  // namespace

Cost compute_cost(const ModelPricing* pricing, const TokenUsage& u, ServiceTier service,
                  bool estimated) {
  Cost cost;
  if (pricing == nullptr || pricing->components.empty()) {
    cost.status = CostStatus::Unpriced;
    return cost;
  }
  const std::int64_t prompt = u.prompt_total();
  constexpr bool kTok = true;
  const Kind in{Direction::Input, Modality::Text, kTok};
  const Kind out{Direction::Output, Modality::Text, kTok};
  const Kind w5{Direction::CacheWrite5m, Modality::Text, kTok};
  const Kind read{Direction::CacheRead, Modality::Text, kTok};
  const Kind w1h{Direction::CacheWrite1h, Modality::Text, kTok};
  const Kind reason{Direction::Reasoning, Modality::Text, kTok};
  struct Line {
    std::int64_t quantity;
    Chain chain;
  };
  const std::array<Line, 12> lines{{
      {u.input_tokens, {{in}, 1}},
      {u.cache_read_tokens, {{read, in}, 2}},
      {u.cache_write_5m_tokens, {{w5, in}, 2}},
      {u.cache_write_1h_tokens, {{w1h, w5, in}, 3}},
      {u.output_tokens, {{out}, 1}},
      {u.reasoning_tokens, {{reason, out}, 2}},
      {u.input_audio_tokens, {{Kind{Direction::Input, Modality::Audio, kTok}, in}, 2}},
      {u.output_audio_tokens, {{Kind{Direction::Output, Modality::Audio, kTok}, out}, 2}},
      {u.input_image_tokens, {{Kind{Direction::Input, Modality::Image, kTok}, in}, 2}},
      {u.output_image_tokens, {{Kind{Direction::Output, Modality::Image, kTok}, out}, 2}},
      {u.input_images, {{Kind{Direction::Input, Modality::Image, false}}, 1}},
      {u.output_images, {{Kind{Direction::Output, Modality::Image, false}}, 1}},
  }};
  bool missing = false;
  cost.lines_json.reserve(256);  // a typical call's lines: one allocation, not five
  cost.lines_json.assign(1, '[');  // not = "[": GCC 12 warns falsely (-Wrestrict, PR 105329)
  for (const auto& line : lines) {
    if (line.quantity <= 0) {
      continue;
    }
    const PriceComponent* c = find_chain(*pricing, line.chain, prompt, service);
    if (c == nullptr) {
      missing = true;
      continue;
    }
    cost.total += line_cost(*c, line.quantity);
    append_line(cost.lines_json, *c, line.quantity);
  }
  // A per-request fee, where the model has one, for calls the provider served (usage
  // reported or estimated): a call that failed before an answer costs nothing.
  if (u.reported || estimated) {
    if (const PriceComponent* fee = request_fee(*pricing, prompt, service)) {
      cost.total += fee->price;
      append_line(cost.lines_json, *fee, 1);
    }
  }
  cost.lines_json += "]";
  cost.status = missing ? CostStatus::Partial
                        : (estimated ? CostStatus::Estimated : CostStatus::Exact);
  return cost;
}

core::Money worst_case_cost(const ModelPricing& p, std::int64_t prompt_tokens,
                            std::int64_t max_output_tokens, ServiceTier service) {
  auto dearest = [&](std::initializer_list<Kind> kinds, std::int64_t quantity) {
    core::Money best;
    for (const auto& k : kinds) {
      if (const auto* c = p.find(k.direction, k.modality, prompt_tokens, service, k.per_token)) {
        best = std::max(best, line_cost(*c, quantity));
      }
    }
    return best;
  };
  constexpr bool kTok = true;
  core::Money total = dearest({{Direction::Input, Modality::Text, kTok},
                               {Direction::CacheWrite5m, Modality::Text, kTok},
                               {Direction::CacheWrite1h, Modality::Text, kTok}},
                              prompt_tokens);
  total += dearest({{Direction::Output, Modality::Text, kTok},
                    {Direction::Reasoning, Modality::Text, kTok}},
                   max_output_tokens);
  if (const PriceComponent* fee = request_fee(p, prompt_tokens, service)) {
    total += fee->price;
  }
  return total;
}

}  // namespace llmgw::pricing
