#pragma once
/// The admin API under /admin/: sign-in (JWT), roles, CRUD of keys, providers, models,
/// aliases, prices, admin users and service tokens, usage and spend reports, and the audit
/// trail. See docs/admin-api.md.
///
/// Requests are routed on the I/O thread, then run on the admin pool (its own two threads:
/// store calls block, Argon2 hashes take 64 MiB and tens of milliseconds), so the proxy's
/// blocking pool and the I/O threads never wait for the admin plane.

#include "admin/role.hpp"
#include "auth/crypto.hpp"
#include "http/server.hpp"
#include "store/store.hpp"

#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::admin {

struct AdminDeps {
  store::Store& store;
  auth::Bytes jwt_secret;
  /// Publishes a configuration change to the serving path (snapshot and key caches) before
  /// the write's answer is sent.
  std::function<void()> reload_now;
  std::string_view openapi_json;
  std::chrono::seconds token_ttl{24 * 3600};
  unsigned pool_threads = 2;
  /// Sign-in failures allowed per email/service name and per client address per minute.
  unsigned max_login_failures = 5;
};

/// One route of the API, as the router matches it (the OpenAPI document must list the same).
struct RouteInfo {
  std::string_view method;   ///< "GET", "POST", ...
  std::string_view pattern;  ///< "/admin/keys/{id}"
  Role min_role;
};

class AdminApi final : public http::Handler {
 public:
  explicit AdminApi(AdminDeps deps);
  ~AdminApi() override;
  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  /// Answers one /admin request (the proxy hands them over).
  boost::asio::awaitable<void> handle(http::Exchange& ex) override;
  /// Waits for admin work in progress (after the server stopped).
  void stop();

  static std::vector<RouteInfo> routes();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Creates the first admin from BOOTSTRAP_ADMIN_EMAIL / BOOTSTRAP_ADMIN_PASSWORD when both
/// are set and no enabled admin exists. Returns true if it created one. Throws
/// std::runtime_error on an invalid email or password.
bool bootstrap_admin_from_environment(store::Store& store);

/// Validates and creates an admin user (used by the CLI and the bootstrap). Throws
/// std::invalid_argument with a message on invalid input, store::ConflictError on a taken
/// email.
store::AdminUserRecord create_admin_user(store::Store& store, const std::string& email,
                                         const std::string& password, Role role,
                                         const store::AuditRecord& actor);

/// The OpenAPI 3.1 description of this API (api/openapi.json, built in).
std::string_view openapi_document();

}  // namespace llmgw::admin
