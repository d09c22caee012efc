#pragma once
/// The `vertex` provider: Google Cloud Vertex AI. Settings: `project`, `location` (a region,
/// or `global`), `credentials_file` (a path read when the adapter is built); secrets:
/// `credentials_json` (the same document inline), `access_token` (used as it is, never
/// refreshed). Origin: https://{location}-aiplatform.googleapis.com
/// (https://aiplatform.googleapis.com for `global`), or `base_url`.
///
/// Gemini models: `/v1/projects/{project}/locations/{location}/publishers/google/models/
/// {model}:generateContent` (`:streamGenerateContent?alt=sse`), embeddings `:predict`, the
/// translation of codec.hpp. An upstream model that is a resource path (`projects/…`, or
/// `publishers/…` / `endpoints/…` under the project's location) is used as it is.
/// Claude models (an upstream model starting with `claude`): `publishers/anthropic/models/
/// {model}:rawPredict` (`:streamRawPredict`), Anthropic's Messages body.
///
/// Credentials: a service account key (or authorized-user credentials) gives OAuth access
/// tokens (google_auth.hpp): credential_state() says when one is due, refresh_credential()
/// fetches it; prepare() reads the current one without blocking. With several given, the
/// refreshable credentials win over `access_token`.

#include "core/config.hpp"
#include "providers/adapter.hpp"

#include <memory>

namespace llmgw::providers {

/// Throws std::invalid_argument naming the setting (`project`, `location`, `base_url`,
/// `credentials_file`, `credentials_json`, `access_token`) when unusable; never quotes a
/// secret.
std::shared_ptr<const Adapter> make_vertex_adapter(const core::ProviderConfig& config);

}  // namespace llmgw::providers
