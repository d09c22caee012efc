#pragma once
/// What each provider type takes, and the one check of a provider's settings that every writer
/// runs (the configuration file, the admin API, the store): the rules live with the type, so a
/// new provider type adds a row to the table in provider_settings.cpp, not a column.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/config.hpp"

namespace llmgw::core {

/// One setting of a provider type beyond name, type, base_url, api_key and the timeouts.
struct ProviderSetting {
  std::string_view name;
  bool secret = false;    ///< kept in ProviderConfig::secrets, sealed at rest, never shown
  bool required = false;
};

/// How a provider type uses base_url, and what else it takes.
struct ProviderTypeRules {
  enum class BaseUrl : std::uint8_t { Required, Optional, Unused };
  BaseUrl base_url = BaseUrl::Required;
  std::span<const ProviderSetting> settings;
};

[[nodiscard]] const ProviderTypeRules& provider_type_rules(ProviderType type) noexcept;

/// The first problem of a provider's settings for its type: `field` names the setting
/// ("base_url", "connect_timeout_ms", "region", ...), `message` says what is wrong without
/// quoting a secret.
struct SettingProblem {
  std::string field;
  std::string message;
};

/// Checks `p` against its type: base_url (an http:// or https:// URL without query, fragment
/// or userinfo where the type uses one; none where it does not), the timeouts (1 to
/// 3,600,000 ms), every setting and secret known to the type and the required ones present.
[[nodiscard]] std::optional<SettingProblem> check_provider_settings(const ProviderConfig& p);

inline constexpr std::int64_t kMaxProviderTimeoutMs = 3'600'000;

}  // namespace llmgw::core
