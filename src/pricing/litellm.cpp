#include "pricing/litellm.hpp"

#include "core/json_sax.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <charconv>
#include <stdexcept>
#include <unordered_map>

namespace llmgw::pricing {

namespace {

/// Collects, per top-level entry, its direct members: numbers as their JSON text, strings.
class CatalogHandler : public core::SaxHandlerBase {
 public:

  struct Raw {
    std::string name;
    std::vector<std::pair<std::string, std::string>> numbers;
    std::unordered_map<std::string, std::string> strings;
  };
  std::vector<Raw> raws;
  bool top_is_object = false;

  bool on_object_begin(ec_t&) {
    if (depth_ == 0) {
      top_is_object = true;
    } else if (depth_ == 1) {
      raws.push_back(Raw{key_, {}, {}});
    }
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, ec_t&) {
    --depth_;
    return true;
  }
  bool on_array_begin(ec_t&) {
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, ec_t&) {
    --depth_;
    return true;
  }
  bool on_key_part(std::string_view s, std::size_t, ec_t&) {
    part_.append(s);
    return true;
  }
  bool on_key(std::string_view s, std::size_t, ec_t&) {
    part_.append(s);
    key_.swap(part_);
    part_.clear();
    return true;
  }
  bool on_string_part(std::string_view s, std::size_t, ec_t&) {
    part_.append(s);
    return true;
  }
  bool on_string(std::string_view s, std::size_t, ec_t&) {
    part_.append(s);
    if (depth_ == 2 && !raws.empty()) {
      raws.back().strings[key_] = part_;
    }
    part_.clear();
    return true;
  }
  bool on_number_part(std::string_view s, ec_t&) {
    part_.append(s);
    return true;
  }
  bool on_int64(std::int64_t, std::string_view s, ec_t&) { return number(s); }
  bool on_uint64(std::uint64_t, std::string_view s, ec_t&) { return number(s); }
  bool on_double(double, std::string_view s, ec_t&) { return number(s); }

 private:
  bool number(std::string_view s) {
    part_.append(s);
    if (depth_ == 2 && !raws.empty()) {
      raws.back().numbers.emplace_back(key_, part_);
    }
    part_.clear();
    return true;
  }
  std::size_t depth_ = 0;
  std::string key_;
  std::string part_;
};

bool strip_suffix(std::string_view& s, std::string_view suffix) {
  if (s.ends_with(suffix)) {
    s.remove_suffix(suffix.size());
    return true;
  }
  return false;
}

/// "..._above_200k_tokens" → 200000; leaves `s` without the suffix.
bool strip_threshold(std::string_view& s, std::int64_t& tokens) {
  if (!s.ends_with("k_tokens")) {
    return false;
  }
  const std::size_t at = s.rfind("_above_");
  if (at == std::string_view::npos) {
    return false;
  }
  const std::string_view digits = s.substr(at + 7, s.size() - (at + 7) - 8);
  std::int64_t n = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || p != digits.data() + digits.size() || n <= 0) {
    return false;
  }
  tokens = n * 1000;
  s = s.substr(0, at);
  return true;
}

}  // namespace

std::optional<PriceComponent> map_litellm_field(std::string_view f, std::string_view mode) {
  PriceComponent c;
  if (strip_suffix(f, "_priority")) {
    c.tier.service = ServiceTier::Priority;
  } else if (strip_suffix(f, "_flex")) {
    c.tier.service = ServiceTier::Flex;
  } else if (strip_suffix(f, "_batches")) {
    c.tier.service = ServiceTier::Batch;
  }
  strip_threshold(f, c.tier.above_tokens);
  const Modality seconds_modality = mode == "video_generation" ? Modality::Video : Modality::Audio;
  struct Base {
    std::string_view name;
    Direction d;
    Modality m;
    Unit u;
  };
  static const Base kBases[] = {
      {"input_cost_per_token", Direction::Input, Modality::Text, Unit::Token},
      {"output_cost_per_token", Direction::Output, Modality::Text, Unit::Token},
      {"input_cost_per_token_cache_hit", Direction::CacheRead, Modality::Text, Unit::Token},
      {"cache_read_input_token_cost", Direction::CacheRead, Modality::Text, Unit::Token},
      {"cache_creation_input_token_cost", Direction::CacheWrite5m, Modality::Text, Unit::Token},
      {"cache_creation_input_token_cost_above_1hr", Direction::CacheWrite1h, Modality::Text,
       Unit::Token},
      {"cache_read_input_audio_token_cost", Direction::CacheRead, Modality::Audio, Unit::Token},
      {"cache_creation_input_audio_token_cost", Direction::CacheWrite5m, Modality::Audio,
       Unit::Token},
      {"output_cost_per_reasoning_token", Direction::Reasoning, Modality::Text, Unit::Token},
      {"input_cost_per_audio_token", Direction::Input, Modality::Audio, Unit::Token},
      {"output_cost_per_audio_token", Direction::Output, Modality::Audio, Unit::Token},
      {"input_cost_per_image_token", Direction::Input, Modality::Image, Unit::Token},
      {"output_cost_per_image_token", Direction::Output, Modality::Image, Unit::Token},
      {"output_cost_per_video_token", Direction::Output, Modality::Video, Unit::Token},
      {"input_cost_per_image", Direction::Input, Modality::Image, Unit::Image},
      {"output_cost_per_image", Direction::Output, Modality::Image, Unit::Image},
      {"input_cost_per_pixel", Direction::Input, Modality::Image, Unit::Pixel},
      {"output_cost_per_pixel", Direction::Output, Modality::Image, Unit::Pixel},
      {"input_cost_per_character", Direction::Input, Modality::Text, Unit::Character},
      {"output_cost_per_character", Direction::Output, Modality::Text, Unit::Character},
      {"input_cost_per_video_per_second", Direction::Input, Modality::Video, Unit::Second},
      {"output_cost_per_video_per_second", Direction::Output, Modality::Video, Unit::Second},
      {"input_cost_per_audio_per_second", Direction::Input, Modality::Audio, Unit::Second},
      {"input_cost_per_query", Direction::Tool, Modality::Text, Unit::Query},
      {"input_cost_per_request", Direction::Input, Modality::Text, Unit::Request},
  };
  for (const auto& b : kBases) {
    if (b.name == f) {
      c.direction = b.d;
      c.modality = b.m;
      c.unit = b.u;
      return c;
    }
  }
  if (f == "input_cost_per_second" || f == "output_cost_per_second") {
    c.direction = f.starts_with("input") ? Direction::Input : Direction::Output;
    c.modality = seconds_modality;
    c.unit = Unit::Second;
    return c;
  }
  return std::nullopt;
}

CatalogParse parse_litellm_catalog(std::string_view text, const std::set<std::string>& providers) {
  boost::json::basic_parser<CatalogHandler> parser(boost::json::parse_options{});
  boost::system::error_code ec;
  const std::size_t n = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && n != text.size()) {
    ec = boost::json::error::extra_data;
  }
  if (ec || !parser.handler().top_is_object) {
    throw std::runtime_error("the catalog is not a JSON object" +
                             (ec ? ": " + ec.message() : std::string()));
  }
  CatalogParse out;
  for (auto& raw : parser.handler().raws) {
    if (raw.name == "sample_spec") {
      continue;  // LiteLLM's documentation entry, not a model
    }
    ++out.entries_seen;
    CatalogEntry e;
    e.pricing.name = raw.name;
    e.litellm_provider = raw.strings["litellm_provider"];
    e.mode = raw.strings["mode"];
    if (!providers.empty() && !providers.contains(e.litellm_provider)) {
      ++out.skipped_provider;
      continue;
    }
    for (const auto& [field, number] : raw.numbers) {
      if (field == "max_input_tokens" || field == "max_output_tokens") {
        std::int64_t v = 0;
        const auto [p, ec2] = std::from_chars(number.data(), number.data() + number.size(), v);
        if (ec2 == std::errc{} && p == number.data() + number.size() && v > 0) {
          (field == "max_input_tokens" ? e.pricing.max_input_tokens
                                       : e.pricing.max_output_tokens) = v;
        }
        continue;
      }
      const bool cost_field = field.find("cost") != std::string::npos;
      if (!cost_field) {
        continue;  // limits and flags other than prices are not needed
      }
      auto c = map_litellm_field(field, e.mode);
      auto price = core::Money::parse(number);
      if (!c || !price) {
        ++out.unknown_fields[field];
        continue;
      }
      c->price = *price;
      c->source = PriceSource::Catalog;
      // Two fields can name one component (deepseek lists input_cost_per_token_cache_hit and
      // cache_read_input_token_cost): the first wins, the other is reported.
      bool duplicate = false;
      for (const auto& have : e.pricing.components) {
        duplicate = duplicate || (have.direction == c->direction && have.modality == c->modality &&
                                  have.unit == c->unit && have.tier == c->tier);
      }
      if (duplicate) {
        ++out.duplicate_fields[field];
        continue;
      }
      e.pricing.components.push_back(*c);
    }
    if (e.pricing.components.empty()) {
      ++out.skipped_no_price;
      continue;
    }
    out.entries.push_back(std::move(e));
  }
  return out;
}

}  // namespace llmgw::pricing
