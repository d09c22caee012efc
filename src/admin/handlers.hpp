#pragma once
/// What the admin API's handlers share, inside src/admin only: one request and its answer,
/// the list-page shape, and AdminApi::Impl. The route table and the dispatcher are in
/// admin_api.cpp; the handlers live one file per resource (session.cpp, keys.cpp,
/// providers.cpp, models.cpp, aliases.cpp, users.cpp, tokens.cpp, reports.cpp, audit.cpp);
/// the checks of what clients send are in input.hpp. Each resource file's `*_view` is what
/// the API shows of a row; secrets never appear in them, so they double as the audit trail's
/// before/after.

#include "admin/admin_api.hpp"
#include "admin/input.hpp"
#include "admin/login_throttle.hpp"

#include <boost/asio/thread_pool.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::admin {

/// Who sent a request, once its token is checked.
struct Principal {
  std::string id;
  std::string type;  ///< "user" | "token"
  std::string name;
  Role role = Role::None;
};

struct Request {
  std::string method;
  std::vector<std::string> params;
  Query query;
  std::string body;
  std::string authorization;
  std::string request_id;
  std::string client_ip;
  Principal who;
  std::optional<ApiError> bad_query;
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string headers;
};

inline Response ok(const boost::json::value& v, unsigned status = 200) {
  return {status, boost::json::serialize(v), {}};
}

inline boost::json::value opt(const std::optional<std::int64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}
inline boost::json::value opt(const std::optional<std::string>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

/// A view with a secret shown this once (a new API key or service token) as `field`.
inline Response ok_with_secret(boost::json::object view, std::string_view field,
                               const std::string& secret, unsigned status = 200) {
  view[field] = secret;
  return ok(view, status);
}

/// The answer to a DELETE: {"id","object","deleted":true}.
inline Response deleted(const std::string& id, std::string_view object) {
  return ok(boost::json::object{{"id", id}, {"object", object}, {"deleted", true}});
}

/// Throws ApiError 404 "No <what> with id '<id>'." (param "id").
[[noreturn]] void not_found(std::string_view what, const std::string& id);

/// {"object":"list","has_more","next_cursor","data"}; the cursor encodes the last row's key.
boost::json::object list_page(boost::json::array data, bool has_more,
                              const std::string& last_key);

/// Pages a list the store returns whole (providers, models, aliases: small tables).
template <class T, class KeyFn, class ViewFn>
boost::json::object page_in_memory(const std::vector<T>& rows, const Request& r, KeyFn key,
                                   ViewFn view) {
  const std::size_t limit = page_limit(r.query);
  const std::string after = page_cursor(r.query);
  boost::json::array data;
  std::string last;
  bool more = false;
  for (const auto& row : rows) {
    const std::string k = key(row);
    if (!after.empty() && k <= after) {
      continue;
    }
    if (data.size() == limit) {
      more = true;
      break;
    }
    data.push_back(view(row));
    last = k;
  }
  return list_page(std::move(data), more, last);
}

/// Pages a list the store returned with one row beyond `limit` when there are more.
template <class Rec, class ViewFn>
boost::json::object page_of(std::vector<Rec> rows, std::size_t limit, ViewFn view) {
  const bool more = rows.size() > limit;
  if (more) {
    rows.resize(limit);
  }
  boost::json::array data;
  for (const auto& row : rows) {
    data.push_back(view(row));
  }
  return list_page(std::move(data), more, rows.empty() ? std::string() : rows.back().id);
}

/// `prefix` and 32 random bytes, base64url.
std::string random_secret(std::string_view prefix);

struct AdminApi::Impl {
  using Handler = Response (Impl::*)(Request&);
  struct Route {
    std::string_view method;
    std::string_view pattern;
    Role min_role;
    Handler fn;
  };

  explicit Impl(AdminDeps d)
      : deps(std::move(d)), pool(deps.pool_threads), throttle(deps.max_login_failures) {}

  AdminDeps deps;
  boost::asio::thread_pool pool;
  LoginThrottle throttle;
  std::mutex users_mutex;  ///< user writes one at a time: the last-admin rule checks, then writes
  std::atomic<int> in_flight{0};
  std::once_flag dummy_once;
  std::string dummy_hash;

  static const std::vector<Route>& table();
  Response run(const Route& route, Request& r);

  // --- helpers
  store::Store& st() { return deps.store; }
  void authenticate(Request& r, Role min_role);
  /// `credential_hash`: the subject's password or secret hash; its fingerprint in the token
  /// (`cv`) ends every token issued before the password or secret changes.
  Response issue_token(const Principal& p, const std::string& credential_hash);
  store::AuditRecord audit(const Request& r, std::string_view action, std::string_view type,
                           std::string id, const boost::json::value& before,
                           const boost::json::value& after);
  void publish() {
    if (deps.reload_now) {
      deps.reload_now();
    }
  }
  const std::string& dummy();
  void throttled(const Request& r, const std::string& who);
  void record_failure(const Request& r, const std::string& who, std::string_view kind);

  // --- handlers
  Response openapi(Request&) { return {200, std::string(deps.openapi_json), {}}; }
  // session.cpp
  Response login(Request& r);
  Response token_login(Request& r);
  Response me(Request& r);

  // keys.cpp
  Response list_keys(Request& r);
  Response create_key(Request& r);
  Response get_key(Request& r);
  Response patch_key(Request& r);
  Response delete_key(Request& r);
  Response regenerate_key(Request& r);
  Response key_spend(Request& r);

  // providers.cpp
  Response list_providers(Request& r);
  Response create_provider(Request& r);
  Response get_provider(Request& r);
  Response patch_provider(Request& r);
  Response delete_provider(Request& r);

  // models.cpp
  Response list_models(Request& r);
  Response create_model(Request& r);
  Response get_model(Request& r);
  Response patch_model(Request& r);
  Response delete_model(Request& r);
  Response get_prices(Request& r);
  Response put_prices(Request& r);
  Response delete_prices(Request& r);

  // aliases.cpp
  Response list_aliases(Request& r);
  Response create_alias(Request& r);
  Response get_alias(Request& r);
  Response patch_alias(Request& r);
  Response delete_alias(Request& r);

  // users.cpp
  Response list_users(Request& r);
  Response create_user(Request& r);
  Response get_user(Request& r);
  Response patch_user(Request& r);
  Response delete_user(Request& r);

  // tokens.cpp
  Response list_tokens(Request& r);
  Response create_token(Request& r);
  Response get_token(Request& r);
  Response patch_token(Request& r);
  Response delete_token(Request& r);
  Response regenerate_token(Request& r);

  // reports.cpp
  Response usage(Request& r);
  // audit.cpp
  Response list_audit(Request& r);
  // logging.cpp
  Response get_logging(Request& r);
  Response put_logging(Request& r);

  // shared by create and update
  void read_key_fields(Body& b, store::ApiKeyRecord& k, bool create);
  void read_provider_fields(Body& b, store::ProviderRecord& p, bool create);
  void read_model_fields(Body& b, store::ModelRecord& m, bool create);
  store::ApiKeyRecord key_or_404(const std::string& id);
  store::ProviderRecord provider_or_404(const std::string& id);
  store::ModelRecord model_or_404(const std::string& id);
  store::AdminUserRecord user_or_404(const std::string& id);
  store::AdminTokenRecord token_or_404(const std::string& id);
  void keep_an_admin(const store::AdminUserRecord& before, const store::AdminUserRecord* after);
};

}  // namespace llmgw::admin
