#include "core/provider_settings.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <map>

namespace llmgw::core {
namespace {

using BaseUrl = ProviderTypeRules::BaseUrl;

// base_url is optional where the provider has one public endpoint (the adapter knows it);
// giving one points the provider elsewhere (a regional endpoint, a proxy, a test mock).
constexpr std::array<ProviderSetting, 1> kAnthropicSettings{{{"anthropic_version"}}};
constexpr std::array<ProviderSetting, 2> kAzureSettings{{
    {"api_version"},
    {"azure_ad_token", true},
}};
constexpr std::array<ProviderSetting, 5> kVertexSettings{{
    {"project", false, true},
    {"location", false, true},
    {"credentials_file"},
    {"credentials_json", true},
    {"access_token", true},
}};
constexpr std::array<ProviderSetting, 4> kBedrockSettings{{
    {"region", false, true},
    {"aws_access_key_id"},
    {"aws_secret_access_key", true},
    {"aws_session_token", true},
}};

constexpr ProviderTypeRules kOpenAI{BaseUrl::Required, {}};
constexpr ProviderTypeRules kOpenAICompatible{BaseUrl::Required, {}};
constexpr ProviderTypeRules kEcho{BaseUrl::Unused, {}};
constexpr ProviderTypeRules kAnthropic{BaseUrl::Optional, kAnthropicSettings};
constexpr ProviderTypeRules kAzure{BaseUrl::Required, kAzureSettings};
constexpr ProviderTypeRules kGemini{BaseUrl::Optional, {}};
constexpr ProviderTypeRules kVertex{BaseUrl::Optional, kVertexSettings};
constexpr ProviderTypeRules kBedrock{BaseUrl::Optional, kBedrockSettings};

std::optional<SettingProblem> check_named(const std::map<std::string, std::string>& values,
                                          std::span<const ProviderSetting> known, bool secret,
                                          std::string_view type) {
  for (const auto& [name, value] : values) {
    const auto it = std::find_if(known.begin(), known.end(), [&](const ProviderSetting& s) {
      return s.name == name && s.secret == secret;
    });
    if (it == known.end()) {
      return SettingProblem{name, "'" + name + "' is not a setting of provider type " +
                                      std::string(type) + "."};
    }
  }
  for (const auto& s : known) {
    if (s.secret == secret && s.required) {
      const auto it = values.find(std::string(s.name));
      if (it == values.end() || it->second.empty()) {
        return SettingProblem{std::string(s.name), "'" + std::string(s.name) +
                                                       "' is required for provider type " +
                                                       std::string(type) + "."};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

const ProviderTypeRules& provider_type_rules(ProviderType type) noexcept {
  switch (type) {
    case ProviderType::OpenAI: return kOpenAI;
    case ProviderType::OpenAICompatible: return kOpenAICompatible;
    case ProviderType::Echo: return kEcho;
    case ProviderType::Anthropic: return kAnthropic;
    case ProviderType::Azure: return kAzure;
    case ProviderType::Gemini: return kGemini;
    case ProviderType::Vertex: return kVertex;
    case ProviderType::Bedrock: return kBedrock;
  }
  return kOpenAI;
}

std::optional<SettingProblem> check_provider_settings(const ProviderConfig& p) {
  const ProviderTypeRules& rules = provider_type_rules(p.type);
  const std::string type(to_string(p.type));
  if (rules.base_url == ProviderTypeRules::BaseUrl::Unused) {
    if (!p.base_url.empty()) {
      return SettingProblem{"base_url", "'base_url' is not used by provider type " + type + "."};
    }
  } else if (p.base_url.empty()) {
    if (rules.base_url == ProviderTypeRules::BaseUrl::Required) {
      return SettingProblem{"base_url", "'base_url' is required for provider type " + type + "."};
    }
  } else {
    const auto u = boost::urls::parse_absolute_uri(p.base_url);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty() ||
        u->has_query() || u->has_fragment() || u->has_userinfo()) {
      return SettingProblem{"base_url",
                            "'base_url' must be an http:// or https:// URL without query, "
                            "fragment or userinfo."};
    }
  }
  for (const auto& [name, value] : {std::pair{"connect_timeout_ms", p.connect_timeout},
                                    {"first_byte_timeout_ms", p.first_byte_timeout},
                                    {"idle_timeout_ms", p.idle_timeout}}) {
    if (value.count() < 1 || value.count() > kMaxProviderTimeoutMs) {
      return SettingProblem{name, "'" + std::string(name) + "' must be 1 to 3600000."};
    }
  }
  if (auto problem = check_named(p.settings, rules.settings, false, type)) {
    return problem;
  }
  return check_named(p.secrets, rules.settings, true, type);
}

}  // namespace llmgw::core
