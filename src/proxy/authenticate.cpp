#include "proxy/call.hpp"

#include "core/json.hpp"
#include "core/log.hpp"

#include <boost/asio/co_spawn.hpp>

namespace llmgw::proxy {

using core::Errc;

namespace {

/// Looks a key up in the store; runs on the blocking pool.
asio::awaitable<std::shared_ptr<const auth::KeyInfo>> lookup_key(store::Store* store,
                                                                  std::string digest_hex) {
  auto rec = store->find_key_by_hash(digest_hex);
  co_return rec ? auth::KeyInfo::from_record(*rec) : nullptr;
}

}  // namespace

asio::awaitable<std::shared_ptr<const auth::KeyInfo>> Proxy::authenticate(
    http::Exchange& ex, Local& local, providers::Format format) {
  const auto& rq = ex.request();
  const std::string_view presented = auth::extract_api_key(rq.authorization, rq.api_key);
  if (presented.empty()) {
    co_await respond_error(ex, format, Errc::InvalidApiKey,
                              "You didn't provide an API key. Provide it in the Authorization "
                              "header as 'Bearer YOUR_KEY', or in the api-key or x-api-key "
                              "header.");
    co_return nullptr;
  }
  const auth::KeyDigest digest = auth::digest_api_key(presented);
  local.keys.sync();
  std::shared_ptr<const auth::KeyInfo> key;
  auto hit = local.keys.find(digest);
  local.metrics.key_cache(hit.has_value());
  if (hit) {
    key = std::move(*hit);
  } else {
    const std::uint64_t generation = local.keys.generation();
    auto [eptr, found] = co_await asio::co_spawn(
        deps_.blocking, lookup_key(&deps_.store, auth::digest_hex(digest)), use_tuple);
    if (eptr) {
      std::string why = "unknown";
      try {
        std::rethrow_exception(eptr);
      } catch (const std::exception& e) {
        why = e.what();
      }
      core::LogLine(core::LogLevel::Error, "key lookup failed").field("error", why).emit();
      co_await respond_error(ex, format, Errc::NotReady, "The gateway could not check the API key.");
      co_return nullptr;
    }
    local.keys.insert(digest, found, generation);
    key = std::move(found);
  }
  if (key == nullptr) {
    co_await respond_error(ex, format, Errc::InvalidApiKey, "Incorrect API key provided.");
    co_return nullptr;
  }
  ex.log.key_id = key->id;
  if (!key->enabled) {
    co_await respond_error(ex, format, Errc::InvalidApiKey, "This API key has been disabled.");
    co_return nullptr;
  }
  if (key->expired(core::unix_seconds())) {
    co_await respond_error(ex, format, Errc::InvalidApiKey, "This API key has expired.");
    co_return nullptr;
  }
  co_return key;
}

asio::awaitable<void> Proxy::handle_models(http::Exchange& ex, Local& local) {
  auto key = co_await authenticate(ex, local, providers::Format::OpenAIChat);
  if (!key) {
    co_return;
  }
  const auto snap = deps_.catalog.current();
  std::string body = R"({"object":"list","data":[)";
  bool first = true;
  for (const catalog::Route* r : snap->listing()) {
    if (!key->allows(r->name) && !key->allows(r->model)) {
      continue;
    }
    body += first ? "{" : ",{";
    first = false;
    body += R"("id":)";
    core::append_json_string(body, r->name);
    body += R"(,"object":"model","created":)";
    body += std::to_string(r->created);
    body += R"(,"owned_by":)";
    core::append_json_string(body, r->provider->name);
    body += "}";
  }
  body += "]}";
  co_await ex.respond(200, "application/json", body);
}
}  // namespace llmgw::proxy
