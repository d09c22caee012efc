#pragma once
/// The routing catalog: an immutable snapshot of providers, models and aliases, published
/// through an atomic pointer. A request takes one snapshot and uses it to the end; the
/// reloader builds a new one from the store when the config version moves.

#include "core/config.hpp"
#include "core/url.hpp"
#include "pricing/price_table.hpp"
#include "providers/adapter.hpp"
#include "store/store.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmgw::catalog {

struct Provider {
  std::string name;
  core::ProviderType type = core::ProviderType::OpenAI;
  std::string base_url;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds first_byte_timeout{120'000};
  std::chrono::milliseconds idle_timeout{120'000};
  core::Origin origin;  ///< where calls go: the adapter's origin (unset for echo)
  /// Speaks the provider's API: request, answer, stream and error translation, and the
  /// credential (which lives only in the adapter, in memory). Null for echo.
  std::shared_ptr<const providers::Adapter> adapter;
  /// Header lines sent upstream on every call besides the adapter's: Host, User-Agent.
  /// Precomputed at snapshot build.
  std::string static_headers;
  /// Why its models cannot be served ("disabled", "credentials unreadable", "settings
  /// unusable: …"); empty: usable.
  /// Such a provider's models answer 503 instead of passing for unknown (404).
  std::string unavailable;
};

/// A name a client may ask for (a model or an alias) and where it goes.
struct Route {
  std::string name;            ///< as requested
  std::string model;           ///< the model it resolves to
  std::string upstream_model;  ///< the provider's name for it
  bool is_alias = false;
  std::shared_ptr<const Provider> provider;
  std::int64_t created = 0;    ///< unix seconds, for /v1/models
  /// Effective prices (admin and override prices already win), or null when it has none.
  std::shared_ptr<const pricing::ModelPricing> pricing;
  /// The model names its price list (`pricing_model`); otherwise the list was found from the
  /// provider's name for it (pricing/resolve.hpp), and Azure's reported model may refine it.
  bool pricing_explicit = false;
  /// Requests and tokens per minute of `model` (for an alias, of the model it points to),
  /// shared by every key and alias that reaches it; none: no limit.
  std::optional<std::int64_t> model_rpm;
  std::optional<std::int64_t> model_tpm;
  /// The id of this (model, provider) pair's metric series (metrics::TargetId; 0: none).
  std::uint32_t metrics_target = 0;
};

/// Gives a (model, provider) pair its metric series id when a snapshot is built
/// (metrics::Registry::target); the same pair gets the same id in every snapshot.
using SeriesIds = std::function<std::uint32_t(std::string_view model, std::string_view provider)>;

/// Builds the effective price of every priced model from the store's rows; rows whose
/// direction, modality, unit, tier or price this build cannot read are skipped.
std::unordered_map<std::string, std::shared_ptr<const pricing::ModelPricing>> build_prices(
    const store::CatalogData& data);

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

class Snapshot {
 public:
  /// Builds a snapshot; providers/models that are disabled or dangling are left out.
  static std::shared_ptr<const Snapshot> build(const store::CatalogData& data,
                                               const SeriesIds& series = {});

  [[nodiscard]] const Route* find(std::string_view name) const noexcept;
  [[nodiscard]] std::int64_t version() const noexcept { return version_; }
  /// Models and aliases in a stable order (models first, by name); those of an unavailable
  /// provider are not listed.
  [[nodiscard]] const std::vector<const Route*>& listing() const noexcept { return listing_; }
  /// The price list for a provider's name of a model, by the rules of pricing/resolve.hpp;
  /// null when none is found.
  [[nodiscard]] std::shared_ptr<const pricing::ModelPricing> resolve_pricing(
      core::ProviderType type, std::string_view model) const;
  /// Prices by price-list name (for tools that price outside a route).
  [[nodiscard]] const pricing::ModelPricing* find_pricing(std::string_view name) const noexcept;

 private:
  std::unordered_map<std::string, std::shared_ptr<const pricing::ModelPricing>> prices_;
  std::int64_t version_ = 0;
  std::unordered_map<std::string, Route, StringHash, std::equal_to<>> routes_;
  std::vector<const Route*> listing_;
};

/// Holds the current snapshot. Readers load it atomically; the reloader publishes.
class Catalog {
 public:
  Catalog() : current_(std::make_shared<const Snapshot>()) {}
  [[nodiscard]] std::shared_ptr<const Snapshot> current() const noexcept {
    return current_.load(std::memory_order_acquire);
  }
  void publish(std::shared_ptr<const Snapshot> s) noexcept {
    current_.store(std::move(s), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const Snapshot>> current_;
};

}  // namespace llmgw::catalog
