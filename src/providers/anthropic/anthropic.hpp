#pragma once
/// The `anthropic` provider type: Anthropic's Messages API (POST {base path}/v1/messages on
/// https://api.anthropic.com unless base_url names another origin; a base path that already
/// ends in /v1 gets /messages). Takes Anthropic-format
/// calls natively (the body passes through with the model renamed) and OpenAI chat calls
/// translated (codec.hpp says how); refuses embeddings. Settings: api_key (sent as
/// x-api-key), anthropic_version (the anthropic-version header, default 2023-06-01).

#include "core/config.hpp"
#include "providers/adapter.hpp"

#include <memory>

namespace llmgw::providers {

/// Throws std::invalid_argument, naming the setting, for settings that cannot work: a
/// base_url that is not an http(s) URL, no api_key, a header value with a line break.
std::shared_ptr<const Adapter> make_anthropic_adapter(const core::ProviderConfig& config);

}  // namespace llmgw::providers
