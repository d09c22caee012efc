#include "store/detail.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <utility>

#include "core/json.hpp"
#include "core/log.hpp"

namespace llmgw::store::detail {

std::string to_json_array(const std::vector<std::string>& values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) {
      out += ',';
    }
    core::append_json_string(out, values[i]);
  }
  out += ']';
  return out;
}

std::vector<std::string> from_json_array(std::string_view text, std::string_view column) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(text, ec);
  if (ec || !value.is_array()) {
    throw std::runtime_error("store: " + std::string(column) + " is not a JSON array");
  }
  std::vector<std::string> out;
  out.reserve(value.as_array().size());
  for (const auto& element : value.as_array()) {
    if (!element.is_string()) {
      throw std::runtime_error("store: " + std::string(column) + " holds a non-string");
    }
    out.emplace_back(element.as_string());
  }
  return out;
}

std::string to_json_object(const std::map<std::string, std::string>& values) {
  std::string out = "{";
  for (const auto& [name, value] : values) {
    if (out.size() > 1) {
      out += ',';
    }
    core::append_json_string(out, name);
    out += ':';
    core::append_json_string(out, value);
  }
  out += '}';
  return out;
}

std::map<std::string, std::string> from_json_object(std::string_view text,
                                                    std::string_view column) {
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) {
    throw std::runtime_error("store: " + std::string(column) + " is not a JSON object");
  }
  std::map<std::string, std::string> out;
  for (const auto& member : value.as_object()) {
    if (!member.value().is_string()) {
      throw std::runtime_error("store: " + std::string(column) + " holds a non-string");
    }
    out.emplace(member.key(), member.value().as_string());
  }
  return out;
}

std::int64_t utc_day(std::int64_t unix_us) noexcept {
  constexpr std::int64_t kMicrosPerDay = 86'400'000'000;
  std::int64_t day = unix_us / kMicrosPerDay;
  if (unix_us % kMicrosPerDay < 0) {
    --day;
  }
  return day;
}

std::string format_day(std::int64_t day) {
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<std::chrono::days::rep>(day)}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

bool is_plain_decimal(std::string_view text) noexcept {
  if (text.empty() || text.front() < '0' || text.front() > '9' || text.back() == '.') {
    return false;
  }
  bool point = false;
  for (const char ch : text) {
    if (ch == '.') {
      if (point) {
        return false;
      }
      point = true;
    } else if (ch < '0' || ch > '9') {
      return false;
    }
  }
  return true;
}

ComponentKey component_key(const PriceComponentRecord& row) {
  return {row.direction, row.modality, row.unit, row.tier};
}

std::string describe(const PriceComponentRecord& row) {
  return "model '" + row.model_name + "' " + row.direction + "/" + row.modality + "/" + row.unit +
         "/" + row.tier;
}

std::string canonical_price(const PriceComponentRecord& row, std::string_view what) {
  const auto money = core::Money::parse(row.price);
  if (!money) {
    throw std::runtime_error(std::string(what) + ": " + describe(row) + ": price '" + row.price +
                             "' is not a non-negative decimal");
  }
  return money->to_string();
}

bool price_differs(const std::string& stored, const std::string& canonical) {
  if (stored == canonical) {
    return false;
  }
  const auto a = core::Money::parse(stored);
  const auto b = core::Money::parse(canonical);
  return !a || !b || *a != *b;
}

namespace {

void require_source(const PriceComponentRecord& row, std::string_view source,
                    std::string_view what) {
  if (!row.source.empty() && row.source != source) {
    throw std::runtime_error(std::string(what) + ": " + describe(row) + ": source '" + row.source +
                             "', expected '" + std::string(source) + "'");
  }
}

template <typename Set>
void require_unique(Set& seen, const std::string& name, std::string_view what) {
  if (!seen.insert(name).second) {
    throw std::runtime_error("config names " + std::string(what) + " '" + name + "' twice");
  }
}

}  // namespace

std::map<std::string, std::map<ComponentKey, std::string>> validate_import(
    const std::vector<PriceModelRecord>& models,
    const std::vector<PriceComponentRecord>& catalog_rows) {
  constexpr std::string_view kWhat = "price import";
  std::map<std::string, std::map<ComponentKey, std::string>> rows_by_model;
  for (const auto& m : models) {
    if (m.name.empty()) {
      throw std::runtime_error("price import: a model has an empty name");
    }
    if (!rows_by_model.try_emplace(m.name).second) {
      throw std::runtime_error("price import: model '" + m.name + "' given twice");
    }
  }
  for (const auto& row : catalog_rows) {
    require_source(row, kSourceCatalog, kWhat);
    const auto rows = rows_by_model.find(row.model_name);
    if (rows == rows_by_model.end()) {
      throw std::runtime_error("price import: " + describe(row) +
                               ": the model is not among the imported models");
    }
    if (!rows->second.emplace(component_key(row), canonical_price(row, kWhat)).second) {
      throw std::runtime_error("price import: " + describe(row) + " given twice");
    }
  }
  return rows_by_model;
}

std::map<ModelComponentKey, std::string> validate_overrides(
    const std::vector<PriceComponentRecord>& rows) {
  constexpr std::string_view kWhat = "price overrides";
  std::map<ModelComponentKey, std::string> given;
  for (const auto& row : rows) {
    require_source(row, kSourceOverride, kWhat);
    if (row.model_name.empty()) {
      throw std::runtime_error("price overrides: a row has an empty model name");
    }
    const ModelComponentKey key{row.model_name, row.direction, row.modality, row.unit, row.tier};
    if (!given.emplace(key, canonical_price(row, kWhat)).second) {
      throw std::runtime_error("price overrides: " + describe(row) + " given twice");
    }
  }
  return given;
}

std::map<ComponentKey, std::string> validate_admin_prices(
    const std::string& model_name, const std::vector<PriceComponentRecord>& rows) {
  constexpr std::string_view kWhat = "admin prices";
  if (model_name.empty()) {
    throw std::runtime_error("admin prices: empty model name");
  }
  std::map<ComponentKey, std::string> given;
  for (const auto& row : rows) {
    require_source(row, kSourceAdmin, kWhat);
    if (!row.model_name.empty() && row.model_name != model_name) {
      throw std::runtime_error("admin prices: " + describe(row) + ": not a price of model '" +
                               model_name + "'");
    }
    if (!given.emplace(component_key(row), canonical_price(row, kWhat)).second) {
      throw std::runtime_error("admin prices: " + describe(row) + " given twice");
    }
  }
  return given;
}

StoredCredential store_credential(const SecretCodec* codec, std::string_view provider_id,
                                  const std::string& api_key) {
  if (codec == nullptr || api_key.empty()) {
    return {api_key, false};
  }
  return {codec->seal(api_key, provider_id), true};
}

std::optional<std::string> open_credential(const SecretCodec* codec, std::string_view provider_id,
                                           std::string_view provider_name, std::string_view stored,
                                           bool encrypted) {
  if (!encrypted) {
    return std::string(stored);
  }
  if (auto api_key = codec != nullptr ? codec->open(stored, provider_id) : std::nullopt) {
    return api_key;
  }
  // Its models answer 503 until the credential opens: every process on one database must
  // hold the master key that sealed it.
  core::LogLine(core::LogLevel::Warn,
                "provider unavailable: its credential is sealed under another master key")
      .field("provider", provider_name)
      .field("fix", "set LLMGW_MASTER_KEY to the key the other gateways on this database use, "
                    "or give the provider its api_key again")
      .emit();
  return std::nullopt;
}

namespace {

constexpr std::string_view kBaseUrl = "base_url";
constexpr std::string_view kApiKey = "api_key";
constexpr std::array<std::string_view, 3> kTimeouts = {"connect_timeout_ms",
                                                       "first_byte_timeout_ms", "idle_timeout_ms"};

std::array<std::chrono::milliseconds*, 3> timeouts_of(core::ProviderConfig& p) {
  return {&p.connect_timeout, &p.first_byte_timeout, &p.idle_timeout};
}

boost::json::object parse_document(std::string_view document, std::string_view what,
                                   std::string_view provider_name) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(document, ec);
  if (ec || !value.is_object()) {
    throw std::runtime_error("store: the " + std::string(what) + " of provider '" +
                             std::string(provider_name) + "' are not a JSON object");
  }
  return std::move(value.as_object());
}

[[noreturn]] void malformed(std::string_view what, std::string_view provider_name,
                            std::string_view field) {
  throw std::runtime_error("store: the " + std::string(what) + " of provider '" +
                           std::string(provider_name) + "' hold a malformed '" +
                           std::string(field) + "'");
}

}  // namespace

std::string provider_settings_document(const core::ProviderConfig& p) {
  boost::json::object doc;
  doc[kBaseUrl] = p.base_url;
  const std::array<std::chrono::milliseconds, 3> timeouts = {p.connect_timeout,
                                                             p.first_byte_timeout, p.idle_timeout};
  for (std::size_t i = 0; i < kTimeouts.size(); ++i) {
    doc[kTimeouts[i]] = timeouts[i].count();
  }
  for (const auto& [name, value] : p.settings) {
    doc[name] = value;
  }
  return boost::json::serialize(doc);
}

void read_provider_settings(std::string_view document, std::string_view provider_name,
                            core::ProviderConfig& p) {
  constexpr std::string_view kWhat = "settings";
  const auto timeouts = timeouts_of(p);
  for (const auto& [name, value] : parse_document(document, kWhat, provider_name)) {
    if (name == kBaseUrl) {
      if (!value.is_string()) {
        malformed(kWhat, provider_name, name);
      }
      p.base_url = value.as_string();
      continue;
    }
    const auto timeout = std::find(kTimeouts.begin(), kTimeouts.end(), name);
    if (timeout != kTimeouts.end()) {
      if (!value.is_int64()) {
        malformed(kWhat, provider_name, name);
      }
      *timeouts[static_cast<std::size_t>(timeout - kTimeouts.begin())] =
          std::chrono::milliseconds(value.as_int64());
      continue;
    }
    if (!value.is_string()) {
      malformed(kWhat, provider_name, name);
    }
    p.settings.emplace(name, value.as_string());
  }
}

std::string provider_secrets_document(const core::ProviderConfig& p) {
  if (p.api_key.empty() && p.secrets.empty()) {
    return {};
  }
  boost::json::object doc;
  if (!p.api_key.empty()) {
    doc[kApiKey] = p.api_key;
  }
  for (const auto& [name, value] : p.secrets) {
    doc[name] = value;
  }
  return boost::json::serialize(doc);
}

void read_provider_secrets(std::string_view document, std::string_view provider_name,
                           core::ProviderConfig& p) {
  constexpr std::string_view kWhat = "secrets";
  if (document.empty()) {
    return;
  }
  for (const auto& [name, value] : parse_document(document, kWhat, provider_name)) {
    if (!value.is_string()) {
      malformed(kWhat, provider_name, name);
    }
    if (name == kApiKey) {
      p.api_key = value.as_string();
    } else {
      p.secrets.emplace(name, value.as_string());
    }
  }
}

void refuse_config_row(const ExistingRow& row, std::string_view what) {
  if (row.source == kSourceConfig) {
    throw ConflictError(std::string(what) + " '" + row.name +
                        "' is defined in the configuration file");
  }
}

void check_config_names(const core::GatewayConfig& cfg) {
  std::set<std::string> providers;
  std::set<std::string> models;
  std::set<std::string> aliases;
  for (const auto& p : cfg.providers) {
    require_unique(providers, p.name, "provider");
  }
  for (const auto& m : cfg.models) {
    require_unique(models, m.name, "model");
  }
  for (const auto& a : cfg.aliases) {
    require_unique(aliases, a.alias, "alias");
    if (models.contains(a.alias)) {
      throw std::runtime_error("config alias '" + a.alias + "' is also a model name");
    }
  }
}

void reject_admin_collision(const std::string& source, std::string_view what,
                            const std::string& name) {
  if (source != kSourceConfig) {
    throw std::runtime_error("config " + std::string(what) + " '" + name + "' collides with a " +
                             std::string(what) +
                             " created through the admin API; rename one of them");
  }
}

void SpendSums::add(std::string_view key_id, std::int64_t created_at_us, std::string_view model,
                    std::optional<core::Money> cost, std::int64_t prompt_tokens,
                    std::int64_t completion_tokens) {
  const SpendKeyView key{key_id, utc_day(created_at_us), model};
  auto it = sums_.find(key);
  if (it == sums_.end()) {
    it = sums_.emplace(SpendKey{std::string(key_id), key.day, std::string(model)}, SpendDelta{})
             .first;
  }
  SpendDelta& d = it->second;
  ++d.requests;
  if (cost) {
    d.cost += *cost;
  } else {
    ++d.unpriced_requests;
  }
  d.prompt_tokens += prompt_tokens;
  d.completion_tokens += completion_tokens;
}

std::vector<UsageTotals> usage_report_rows(std::map<std::string, UsageSum, std::less<>>& sums,
                                           const UsageQuery& q) {
  std::vector<UsageTotals> out;
  out.reserve(sums.size() + 1);
  for (auto& [name, sum] : sums) {
    sum.totals.group = name;
    sum.totals.cost_usd = sum.cost.to_string();
    out.push_back(std::move(sum.totals));
  }
  if (q.group_by.empty() && out.empty()) {
    out.emplace_back();  // the one total, of nothing
  }
  return out;
}

}  // namespace llmgw::store::detail
