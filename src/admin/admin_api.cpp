#include "admin/admin_api.hpp"

#include "admin/handlers.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <span>

namespace llmgw::admin {

namespace asio = boost::asio;
namespace json = boost::json;
using core::Errc;

std::string_view to_string(Role r) noexcept {
  switch (r) {
    case Role::Viewer: return "viewer";
    case Role::Editor: return "editor";
    case Role::Admin: return "admin";
    case Role::None: break;
  }
  return "none";
}

std::optional<Role> parse_role(std::string_view s) noexcept {
  if (s == "viewer") return Role::Viewer;
  if (s == "editor") return Role::Editor;
  if (s == "admin") return Role::Admin;
  return std::nullopt;
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr int kMaxQueued = 64;  ///< admin requests waiting or running at once

}  // namespace

json::object list_page(json::array data, bool has_more, const std::string& last_key) {
  json::object o{{"object", "list"}, {"has_more", has_more}};
  o["next_cursor"] = has_more ? json::value(core::base64url(std::span(
                                    reinterpret_cast<const unsigned char*>(last_key.data()),
                                    last_key.size())))
                              : json::value(nullptr);
  o["data"] = std::move(data);
  return o;
}

void not_found(std::string_view what, const std::string& id) {
  fail(Errc::NotFound, "No " + std::string(what) + " with id '" + id + "'.", "id");
}

std::string random_secret(std::string_view prefix) {
  unsigned char b[32];
  core::secure_random(b);
  return std::string(prefix) + core::base64url(b);
}

// --- the route table: each route's least role and handler. api/openapi.json documents the
// same routes and roles (tests/unit/admin/admin_test.cpp compares them).

const std::vector<AdminApi::Impl::Route>& AdminApi::Impl::table() {
  using R = Role;
  static const std::vector<Route> t{
      {"GET", "/admin/openapi.json", R::None, &Impl::openapi},
      {"POST", "/admin/auth/login", R::None, &Impl::login},
      {"POST", "/admin/auth/token", R::None, &Impl::token_login},
      {"GET", "/admin/auth/me", R::Viewer, &Impl::me},

      {"GET", "/admin/keys", R::Viewer, &Impl::list_keys},
      {"POST", "/admin/keys", R::Editor, &Impl::create_key},
      {"GET", "/admin/keys/{id}", R::Viewer, &Impl::get_key},
      {"PATCH", "/admin/keys/{id}", R::Editor, &Impl::patch_key},
      {"DELETE", "/admin/keys/{id}", R::Editor, &Impl::delete_key},
      {"POST", "/admin/keys/{id}/regenerate", R::Editor, &Impl::regenerate_key},
      {"GET", "/admin/keys/{id}/spend", R::Viewer, &Impl::key_spend},

      {"GET", "/admin/providers", R::Viewer, &Impl::list_providers},
      {"POST", "/admin/providers", R::Editor, &Impl::create_provider},
      {"GET", "/admin/providers/{id}", R::Viewer, &Impl::get_provider},
      {"PATCH", "/admin/providers/{id}", R::Editor, &Impl::patch_provider},
      {"DELETE", "/admin/providers/{id}", R::Editor, &Impl::delete_provider},

      {"GET", "/admin/models", R::Viewer, &Impl::list_models},
      {"POST", "/admin/models", R::Editor, &Impl::create_model},
      {"GET", "/admin/models/{id}", R::Viewer, &Impl::get_model},
      {"PATCH", "/admin/models/{id}", R::Editor, &Impl::patch_model},
      {"DELETE", "/admin/models/{id}", R::Editor, &Impl::delete_model},
      {"GET", "/admin/models/{id}/prices", R::Viewer, &Impl::get_prices},
      {"PUT", "/admin/models/{id}/prices", R::Editor, &Impl::put_prices},
      {"DELETE", "/admin/models/{id}/prices", R::Editor, &Impl::delete_prices},

      {"GET", "/admin/aliases", R::Viewer, &Impl::list_aliases},
      {"POST", "/admin/aliases", R::Editor, &Impl::create_alias},
      {"GET", "/admin/aliases/{alias}", R::Viewer, &Impl::get_alias},
      {"PATCH", "/admin/aliases/{alias}", R::Editor, &Impl::patch_alias},
      {"DELETE", "/admin/aliases/{alias}", R::Editor, &Impl::delete_alias},

      {"GET", "/admin/users", R::Admin, &Impl::list_users},
      {"POST", "/admin/users", R::Admin, &Impl::create_user},
      {"GET", "/admin/users/{id}", R::Admin, &Impl::get_user},
      {"PATCH", "/admin/users/{id}", R::Admin, &Impl::patch_user},
      {"DELETE", "/admin/users/{id}", R::Admin, &Impl::delete_user},

      {"GET", "/admin/tokens", R::Admin, &Impl::list_tokens},
      {"POST", "/admin/tokens", R::Admin, &Impl::create_token},
      {"GET", "/admin/tokens/{id}", R::Admin, &Impl::get_token},
      {"PATCH", "/admin/tokens/{id}", R::Admin, &Impl::patch_token},
      {"DELETE", "/admin/tokens/{id}", R::Admin, &Impl::delete_token},
      {"POST", "/admin/tokens/{id}/regenerate", R::Admin, &Impl::regenerate_token},

      {"GET", "/admin/usage", R::Viewer, &Impl::usage},
      {"GET", "/admin/audit", R::Admin, &Impl::list_audit},

      {"GET", "/admin/logging", R::Viewer, &Impl::get_logging},
      {"PUT", "/admin/logging", R::Admin, &Impl::put_logging},
  };
  return t;
}

std::vector<RouteInfo> AdminApi::routes() {
  std::vector<RouteInfo> out;
  for (const auto& r : Impl::table()) out.push_back({r.method, r.pattern, r.min_role});
  return out;
}

AdminApi::AdminApi(AdminDeps deps) : impl_(std::make_unique<Impl>(std::move(deps))) {}
AdminApi::~AdminApi() { stop(); }
void AdminApi::stop() { impl_->pool.join(); }

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return out;
}

/// Matches a pattern against the path's segments; fills the {params}.
bool match(std::string_view pattern, const std::vector<std::string_view>& segs,
           std::vector<std::string>* params) {
  const auto pat = split_path(pattern);
  if (pat.size() != segs.size()) return false;
  std::vector<std::string> found;
  for (std::size_t i = 0; i < pat.size(); ++i) {
    if (pat[i].starts_with('{')) {
      auto decoded = percent_decode(segs[i], false);
      // No id or name holds a NUL (PostgreSQL text cannot): such a segment names nothing.
      if (!decoded || decoded->empty() || !valid_utf8(*decoded) ||
          decoded->find('\0') != std::string::npos) {
        return false;
      }
      found.push_back(std::move(*decoded));
    } else if (pat[i] != segs[i]) {
      return false;
    }
  }
  if (params != nullptr) *params = std::move(found);
  return true;
}

std::string_view method_name(boost::beast::http::verb v) {
  return boost::beast::http::to_string(v);
}

}  // namespace

namespace {
/// A plain coroutine, not a lambda: a lambda coroutine's captures live in the closure, which
/// co_spawn destroys while the coroutine still runs; parameters are copied into the frame.
asio::awaitable<Response> run_on_pool(AdminApi::Impl* impl, const AdminApi::Impl::Route* route,
                                      std::shared_ptr<Request> req) {
  co_return impl->run(*route, *req);
}
}  // namespace

asio::awaitable<void> AdminApi::handle(http::Exchange& ex) {
  if (!valid_utf8(ex.path())) {
    co_await ex.respond_error(Errc::BadRequest, "The request path is not UTF-8.");
    co_return;
  }
  const auto segs = split_path(ex.path());
  const std::string_view method = method_name(ex.request().method);
  const Impl::Route* route = nullptr;
  std::string allow;
  auto req = std::make_shared<Request>();
  for (const auto& r : Impl::table()) {
    if (!match(r.pattern, segs, nullptr)) continue;
    allow += allow.empty() ? "" : ", ";
    allow += r.method;
    if (r.method == method) {
      route = &r;
      match(r.pattern, segs, &req->params);
    }
  }
  // An admin answer may carry a key or a token shown once: never cache it.
  constexpr std::string_view kNoStore = "Cache-Control: no-store\r\n";
  if (route == nullptr) {
    if (allow.empty()) {
      co_await ex.respond_error(Errc::NotFound,
                                "Unknown admin route: " + std::string(ex.path()) + ".", {},
                                kNoStore);
    } else {
      co_await ex.respond_error(Errc::MethodNotAllowed,
                                "Use " + allow + " for " + std::string(ex.path()) + ".", {},
                                std::string(kNoStore) + "Allow: " + allow + "\r\n");
    }
    co_return;
  }
  const auto& rq = ex.request();
  req->method = std::string(method);
  if (const auto q = rq.target.find('?'); q != std::string::npos) {
    try {
      req->query = parse_query(std::string_view(rq.target).substr(q + 1));
    } catch (const ApiError& e) {
      req->bad_query = e;  // answered after authentication: strangers learn nothing
    }
  }
  req->body = rq.body;
  req->authorization = rq.authorization;
  req->request_id = std::string(ex.request_id());
  boost::system::error_code ec;
  const auto peer = ex.client_socket().remote_endpoint(ec);
  req->client_ip = ec ? std::string() : peer.address().to_string();

  // Admin work queues on two threads; a flood (of sign-ins, say) gets 503, not a queue that
  // grows without bound.
  if (impl_->in_flight.fetch_add(1) >= kMaxQueued) {
    impl_->in_flight.fetch_sub(1);
    co_await ex.respond_error(Errc::NotReady, "The admin API is busy; try again shortly.", {},
                              std::string(kNoStore) + "Retry-After: 1\r\n");
    co_return;
  }
  auto [eptr, resp] =
      co_await asio::co_spawn(impl_->pool, run_on_pool(impl_.get(), route, req), use_tuple);
  impl_->in_flight.fetch_sub(1);
  if (eptr) {
    resp = {500, core::render_error(Errc::Internal, "The admin request failed."), {}};
  }
  ex.log.key_id = req->who.id;
  if (resp.status >= 400) {
    ex.log.error_type = "admin";
  }
  co_await ex.respond(resp.status, "application/json", resp.body,
                      std::string(kNoStore) + resp.headers);
}

Response AdminApi::Impl::run(const Route& route, Request& r) {
  try {
    if (route.min_role != Role::None) {
      authenticate(r, route.min_role);
    }
    if (r.bad_query) {
      throw *r.bad_query;
    }
    return (this->*route.fn)(r);
  } catch (const ApiError& e) {
    return {core::http_status(e.errc), core::render_error(e.errc, e.message, e.param),
            e.extra_headers};
  } catch (const store::ConflictError& e) {
    return {409, core::render_error(Errc::Conflict, e.what()), {}};
  } catch (const store::ReferenceError& e) {
    return {422, core::render_error(Errc::InvalidValue, e.what()), {}};
  } catch (const store::InvalidSettingError& e) {
    return {422, core::render_error(Errc::InvalidValue, e.what(), e.field()), {}};
  } catch (const std::exception& e) {
    core::LogLine(core::LogLevel::Error, "admin request failed")
        .field("route", route.pattern)
        .field("error", e.what())
        .emit();
    return {500, core::render_error(Errc::Internal, "The admin request failed; see the gateway log."),
            {}};
  }
}

}  // namespace llmgw::admin
