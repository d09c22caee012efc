#pragma once
/// What the implementations of `Store` share, apart from SQL: the encoding of list columns,
/// UTC days, the validation of prices, sealed credentials and the exact sums of spend. Not
/// part of the interface: only store implementations include it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/money.hpp"
#include "store/store.hpp"

namespace llmgw::store::detail {

inline constexpr std::string_view kSourceConfig = "config";
inline constexpr std::string_view kSourceCatalog = "catalog";
inline constexpr std::string_view kSourceOverride = "override";
inline constexpr std::string_view kSourceAdmin = "admin";

// --- list columns (JSON text)

std::string to_json_array(const std::vector<std::string>& values);
/// Throws std::runtime_error naming `column` when `text` is not an array of strings.
std::vector<std::string> from_json_array(std::string_view text, std::string_view column);
std::string to_json_object(const std::map<std::string, std::string>& values);
/// Throws std::runtime_error naming `column` when `text` is not an object of strings.
std::map<std::string, std::string> from_json_object(std::string_view text, std::string_view column);

// --- days

/// Days since 1970-01-01 of a unix time in microseconds (floor: before 1970 counts down).
std::int64_t utc_day(std::int64_t unix_us) noexcept;
/// "YYYY-MM-DD" of a day number from utc_day().
std::string format_day(std::int64_t day);

/// Whether `text` already is what the money CHECKs accept (digits, at most one point, not
/// last): the common case, stored as it is.
bool is_plain_decimal(std::string_view text) noexcept;

// --- prices

/// What identifies a price within one model and source: direction, modality, unit, tier.
using ComponentKey = std::tuple<std::string, std::string, std::string, std::string>;
/// The same, with the model's name in front (override rows of every model at once).
using ModelComponentKey =
    std::tuple<std::string, std::string, std::string, std::string, std::string>;

ComponentKey component_key(const PriceComponentRecord& row);
std::string describe(const PriceComponentRecord& row);
/// The price of `row` as core::Money writes it, so that two spellings of one amount compare
/// equal as text. Throws for anything that is not a non-negative decimal.
std::string canonical_price(const PriceComponentRecord& row, std::string_view what);
/// Whether a stored price differs from `canonical` (compared as exact amounts).
bool price_differs(const std::string& stored, const std::string& canonical);

/// import_prices' input, validated (see SqliteStore::import_prices): model → component →
/// canonical price. Throws std::runtime_error on the first problem.
std::map<std::string, std::map<ComponentKey, std::string>> validate_import(
    const std::vector<PriceModelRecord>& models,
    const std::vector<PriceComponentRecord>& catalog_rows);
/// replace_price_overrides' input, validated.
std::map<ModelComponentKey, std::string> validate_overrides(
    const std::vector<PriceComponentRecord>& rows);
/// set_admin_prices' input, validated.
std::map<ComponentKey, std::string> validate_admin_prices(
    const std::string& model_name, const std::vector<PriceComponentRecord>& rows);

// --- provider credentials

/// What providers.credentials holds for `api_key`: sealed with `codec` and bound to the
/// row's id, or in clear without a codec. An empty key stays '' in clear: nothing to hide.
struct StoredCredential {
  std::string value;
  bool encrypted = false;
};
StoredCredential store_credential(const SecretCodec* codec, std::string_view provider_id,
                                  const std::string& api_key);

/// The api_key of a stored credential, or nullopt when it is sealed and `codec` is absent or
/// does not open it (logged as a warning naming the provider, never the secret): such a
/// provider reads with `credential_unreadable` set and `enabled` as stored.
std::optional<std::string> open_credential(const SecretCodec* codec, std::string_view provider_id,
                                           std::string_view provider_name, std::string_view stored,
                                           bool encrypted);

// --- provider settings and secrets (one document each; no column per setting)

/// The settings document of `p`: base_url, the three timeouts and the type's settings, as a
/// JSON object. Never holds a secret.
std::string provider_settings_document(const core::ProviderConfig& p);
/// Reads a settings document into `p` (what it does not name keeps its default). Throws
/// std::runtime_error naming the provider when it is not one.
void read_provider_settings(std::string_view document, std::string_view provider_name,
                            core::ProviderConfig& p);
/// The secrets document of `p`: api_key and the type's secrets, as a JSON object; "" when
/// there is none (nothing to seal).
std::string provider_secrets_document(const core::ProviderConfig& p);
/// Reads a secrets document into `p`. Throws std::runtime_error naming the provider (never a
/// value) when it is not one.
void read_provider_secrets(std::string_view document, std::string_view provider_name,
                           core::ProviderConfig& p);

// --- catalog rows

/// What an admin write needs to know of the row it changes.
struct ExistingRow {
  std::string source;
  std::string name;
  std::int64_t created_at = 0;
};

/// Rows of the configuration file belong to it: it rewrites them at every start, so a
/// change through the admin API would not last. Throws ConflictError for one.
void refuse_config_row(const ExistingRow& row, std::string_view what);

/// Throws std::runtime_error when `cfg` names a provider, model or alias twice, or names an
/// alias like a model.
void check_config_names(const core::GatewayConfig& cfg);

/// Throws std::runtime_error when a row of the file meets a row of the same name written
/// through the admin API (`source` is the stored row's).
void reject_admin_collision(const std::string& source, std::string_view what,
                            const std::string& name);

// --- spend

/// What a set of usage rows adds to one spend row.
struct SpendDelta {
  core::Money cost;
  std::int64_t requests = 0;
  std::int64_t unpriced_requests = 0;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

struct SpendKey {
  std::string key_id;
  std::int64_t day = 0;
  std::string model;
};

/// A SpendKey borrowed from a usage record or a result row, for lookups without copies.
struct SpendKeyView {
  std::string_view key_id;
  std::int64_t day = 0;
  std::string_view model;
};

struct SpendKeyLess {
  using is_transparent = void;
  static SpendKeyView view(const SpendKey& k) noexcept { return {k.key_id, k.day, k.model}; }
  static SpendKeyView view(const SpendKeyView& k) noexcept { return k; }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    const SpendKeyView x = view(a);
    const SpendKeyView y = view(b);
    return std::tie(x.key_id, x.day, x.model) < std::tie(y.key_id, y.day, y.model);
  }
};

/// Sums usage by (key, UTC day, model) in C++: exact money, one database write per group.
/// Iterating yields the groups in (key, day, model) order, which is also the order rows are
/// locked in by writers (so two writers never wait on each other in a cycle).
class SpendSums {
 public:
  using Map = std::map<SpendKey, SpendDelta, SpendKeyLess>;

  /// `cost`: nullopt when the cost is unknown (counted apart, adds nothing).
  void add(std::string_view key_id, std::int64_t created_at_us, std::string_view model,
           std::optional<core::Money> cost, std::int64_t prompt_tokens,
           std::int64_t completion_tokens);

  [[nodiscard]] Map::const_iterator begin() const noexcept { return sums_.begin(); }
  [[nodiscard]] Map::const_iterator end() const noexcept { return sums_.end(); }

 private:
  Map sums_;
};

/// Sums of a usage report, per group (ordered by group).
struct UsageSum {
  UsageTotals totals;
  core::Money cost;
};

/// The report rows of `sums` (see Store::usage_report: one zero row for group_by "" when
/// nothing matched).
std::vector<UsageTotals> usage_report_rows(std::map<std::string, UsageSum, std::less<>>& sums,
                                           const UsageQuery& q);

}  // namespace llmgw::store::detail
