#pragma once
/// The `bedrock` provider: AWS Bedrock Runtime's Converse API
/// (POST /model/{modelId}/converse, /model/{modelId}/converse-stream), for OpenAI chat calls.
///
/// Settings (core/provider_settings.cpp): `region` (required: the default endpoint
/// https://bedrock-runtime.{region}.amazonaws.com and the signature's scope), and one
/// credential: `aws_access_key_id` with the secrets `aws_secret_access_key` and optional
/// `aws_session_token` (each request signed with SigV4, service "bedrock", over its final
/// body), or a Bedrock API key in `api_key` (sent as `Authorization: Bearer`). `base_url`
/// points elsewhere (a VPC endpoint, a test mock); its Host is the one signed.
///
/// Embeddings are not offered (refused); Anthropic Messages calls reach it translated to
/// OpenAI chat by the proxy.

#include "core/config.hpp"
#include "providers/adapter.hpp"

#include <memory>

namespace llmgw::providers::bedrock {

/// Throws std::invalid_argument naming the setting (never quoting a secret) when `p` has no
/// usable region, base_url or credential.
std::shared_ptr<const Adapter> make_bedrock_adapter(const core::ProviderConfig& p);

}  // namespace llmgw::providers::bedrock
