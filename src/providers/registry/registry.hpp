#pragma once
/// Builds the adapter of a provider from its settings: the one place that knows every
/// provider type. Adding a provider type adds its folder under src/providers/ and a line here.

#include "core/config.hpp"
#include "providers/adapter.hpp"

#include <memory>

namespace llmgw::providers {

/// The adapter for `p`, or null for the echo provider (answered inside the gateway). Throws
/// std::invalid_argument, naming the setting and never quoting a secret, when the settings
/// cannot be used (an unreadable credentials file, a malformed service-account key).
std::shared_ptr<const Adapter> make_adapter(const core::ProviderConfig& p);

}  // namespace llmgw::providers
