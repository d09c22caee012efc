#include "admin/admin_api.hpp"

#include "admin/input.hpp"
#include "auth/api_key.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/money.hpp"
#include "core/url.hpp"
#include "limits/budget_period.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <regex>
#include <unordered_map>

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

std::string check_email(std::string_view email) {
  static const std::regex kEmail(R"(^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f.]+(\.[^@\s\x00-\x1f.]+)+$)");
  if (email.size() > 254 || !std::regex_match(email.begin(), email.end(), kEmail)) {
    return "must be an email address (name@example.com)";
  }
  return {};
}

std::string check_password(std::string_view password) {
  // Characters, not bytes: a passphrase in another script is not three times as strong.
  const auto chars = std::count_if(password.begin(), password.end(),
                                   [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
  if (!valid_utf8(password) || chars < 12 || chars > 256) {
    return "must be 12 to 256 characters";
  }
  return {};
}

store::AdminUserRecord create_admin_user(store::Store& store, const std::string& email,
                                         const std::string& password, Role role,
                                         const store::AuditRecord& actor) {
  if (auto why = check_email(email); !why.empty()) {
    throw std::invalid_argument("email " + why);
  }
  if (auto why = check_password(password); !why.empty()) {
    throw std::invalid_argument("password " + why);
  }
  store::AdminUserRecord u;
  u.id = core::new_id("usr_");
  u.email = email;
  u.password_hash = auth::argon2id_hash(password);
  u.role = std::string(to_string(role));
  store::AuditRecord audit = actor;
  audit.action = "create";
  audit.resource_type = "user";
  audit.resource_id = u.id;
  audit.at_us = core::unix_micros();
  json::object after{{"id", u.id}, {"object", "admin_user"}, {"email", u.email},
                     {"role", u.role}, {"enabled", true}};
  audit.after_json = json::serialize(after);
  store.insert_admin_user(u, &audit);
  return u;
}

bool bootstrap_admin_from_environment(store::Store& store) {
  const char* email = std::getenv("BOOTSTRAP_ADMIN_EMAIL");
  const char* password = std::getenv("BOOTSTRAP_ADMIN_PASSWORD");
  if (email == nullptr || password == nullptr || *email == '\0' || *password == '\0') {
    return false;
  }
  if (store.count_enabled_admins() > 0) {
    return false;
  }
  store::AuditRecord actor;
  actor.actor_type = "system";
  actor.actor_name = "bootstrap";
  try {
    create_admin_user(store, email, password, Role::Admin, actor);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("BOOTSTRAP_ADMIN_*: ") + e.what());
  } catch (const store::ConflictError&) {
    // The email belongs to a user who is not an enabled admin: never promote or overwrite
    // an account from the environment.
    core::LogLine(core::LogLevel::Warn, "bootstrap admin not created: the email is taken").emit();
    return false;
  }
  return true;
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kDefaultPage = 100;
constexpr std::size_t kMaxPage = 500;
constexpr std::string_view kTokenPrefix = "llmgw-st-";
constexpr int kMaxQueued = 64;  ///< admin requests waiting or running at once

struct Principal {
  std::string id;
  std::string type;  ///< "user" | "token"
  std::string name;
  Role role = Role::None;
};

struct Request {
  std::string method;
  std::vector<std::string> params;
  std::map<std::string, std::string, std::less<>> query;
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

Response ok(const json::value& v, unsigned status = 200) {
  return {status, json::serialize(v), {}};
}

json::value opt(const std::optional<std::int64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}
json::value opt(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}
json::value time_or_null(const std::optional<std::int64_t>& t) {
  return t ? json::value(core::format_utc(*t)) : json::value(nullptr);
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

// --- views: what the API shows of a row. Secrets never appear in them, so they double as
// the audit trail's before/after.

json::object key_view(const store::ApiKeyRecord& k) {
  json::object meta;
  for (const auto& [n, v] : k.metadata) meta[n] = v;
  return {{"id", k.id},
          {"object", "api_key"},
          {"name", k.name},
          {"prefix", k.prefix},
          {"enabled", k.enabled},
          {"expires_at", time_or_null(k.expires_at)},
          {"rpm_limit", opt(k.rpm_limit)},
          {"tpm_limit", opt(k.tpm_limit)},
          {"max_concurrent", opt(k.max_concurrent)},
          {"budget_usd", opt(k.budget_usd)},
          {"budget_period", k.budget_period},
          {"allowed_models", to_array(k.allowed_models)},
          {"tags", to_array(k.tags)},
          {"metadata", std::move(meta)},
          {"created_at", core::format_utc(k.created_at)},
          {"updated_at", core::format_utc(k.updated_at)}};
}

/// "sk-…abcd" for a credential long enough that four characters reveal nothing useful.
json::value credential_hint(const std::string& secret) {
  if (secret.empty()) return nullptr;
  if (secret.size() < 16) return "****";
  return json::value(secret.substr(0, 3) + "…" + secret.substr(secret.size() - 4));
}

json::object provider_view(const store::ProviderRecord& p) {
  return {{"id", p.id},
          {"object", "provider"},
          {"name", p.config.name},
          {"type", core::to_string(p.config.type)},
          {"base_url", p.config.base_url},
          {"api_key_hint", credential_hint(p.config.api_key)},
          {"connect_timeout_ms", p.config.connect_timeout.count()},
          {"first_byte_timeout_ms", p.config.first_byte_timeout.count()},
          {"idle_timeout_ms", p.config.idle_timeout.count()},
          {"enabled", p.enabled},
          {"source", p.source},
          {"created_at", core::format_utc(p.created_at)},
          {"updated_at", core::format_utc(p.updated_at)}};
}

json::object model_view(const store::ModelRecord& m) {
  return {{"id", m.id},
          {"object", "model_route"},
          {"name", m.config.name},
          {"provider", m.config.provider},
          {"upstream_model", m.config.upstream_model},
          {"pricing_model", m.config.pricing_model.empty() ? json::value(nullptr)
                                                           : json::value(m.config.pricing_model)},
          {"rpm_limit", opt(m.config.rpm_limit)},
          {"tpm_limit", opt(m.config.tpm_limit)},
          {"enabled", m.enabled},
          {"source", m.source},
          {"created_at", core::format_utc(m.created_at)},
          {"updated_at", core::format_utc(m.updated_at)}};
}

json::object alias_view(const store::AliasRecord& a) {
  return {{"alias", a.config.alias},
          {"object", "alias"},
          {"model", a.config.model},
          {"source", a.source},
          {"created_at", core::format_utc(a.created_at)},
          {"updated_at", core::format_utc(a.updated_at)}};
}

json::object user_view(const store::AdminUserRecord& u) {
  return {{"id", u.id},
          {"object", "admin_user"},
          {"email", u.email},
          {"role", u.role},
          {"enabled", u.enabled},
          {"created_at", core::format_utc(u.created_at)},
          {"updated_at", core::format_utc(u.updated_at)}};
}

json::object token_view(const store::AdminTokenRecord& t) {
  return {{"id", t.id},
          {"object", "service_token"},
          {"service_name", t.service_name},
          {"role", t.role},
          {"enabled", t.enabled},
          {"created_at", core::format_utc(t.created_at)},
          {"updated_at", core::format_utc(t.updated_at)}};
}

json::object price_view(const store::PriceComponentRecord& r) {
  return {{"direction", r.direction}, {"modality", r.modality}, {"unit", r.unit},
          {"tier", r.tier},           {"price", r.price},       {"source", r.source}};
}

json::value parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

json::object audit_view(const store::AuditRecord& a) {
  return {{"id", a.id},
          {"object", "audit_event"},
          {"at", core::format_utc(a.at_us / 1'000'000)},
          {"at_us", a.at_us},
          {"actor", json::object{{"type", a.actor_type}, {"id", a.actor_id}, {"name", a.actor_name}}},
          {"action", a.action},
          {"resource_type", a.resource_type},
          {"resource_id", a.resource_id},
          {"before", parse_or_null(a.before_json)},
          {"after", parse_or_null(a.after_json)},
          {"request_id", a.request_id},
          {"client_ip", a.client_ip}};
}

json::object list_page(json::array data, bool has_more, const std::string& last_key) {
  json::object o{{"object", "list"}, {"has_more", has_more}};
  o["next_cursor"] = has_more ? json::value(core::base64url(std::span(
                                    reinterpret_cast<const unsigned char*>(last_key.data()),
                                    last_key.size())))
                              : json::value(nullptr);
  o["data"] = std::move(data);
  return o;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// Failed sign-ins per email / service name and per client address, over a sliding minute.
class LoginThrottle {
 public:
  explicit LoginThrottle(unsigned max) : max_(max) {}

  /// Seconds until `key` may try again; 0: now.
  std::int64_t retry_after(const std::string& key, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    auto it = failures_.find(key);
    if (it == failures_.end()) {
      return now_ms < full_until_ms_ ? (full_until_ms_ - now_ms + 999) / 1000 : 0;
    }
    prune(it->second, now_ms);
    if (it->second.size() < max_) return 0;
    return (it->second.front() + kWindowMs - now_ms + 999) / 1000;
  }

  void failed(const std::string& key, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    if (failures_.size() >= kMaxTracked && !failures_.contains(key)) {
      for (auto it = failures_.begin(); it != failures_.end();) {
        prune(it->second, now_ms);
        it = it->second.empty() ? failures_.erase(it) : std::next(it);
      }
      if (failures_.size() >= kMaxTracked) {
        full_until_ms_ = now_ms + kWindowMs;  // bounded memory: refuse unknown names a while
        return;
      }
    }
    auto& q = failures_[key];
    prune(q, now_ms);
    q.push_back(now_ms);
    if (q.size() > max_) q.pop_front();
  }

 private:
  static constexpr std::int64_t kWindowMs = 60'000;
  static constexpr std::size_t kMaxTracked = 100'000;
  static void prune(std::deque<std::int64_t>& q, std::int64_t now_ms) {
    while (!q.empty() && q.front() + kWindowMs <= now_ms) q.pop_front();
  }
  unsigned max_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::deque<std::int64_t>> failures_;
  std::int64_t full_until_ms_ = 0;
};

std::int64_t now_ms() { return core::unix_micros() / 1000; }

/// A short fingerprint of a password or secret hash (not of the secret): tokens carry it, so
/// a new password or secret ends the tokens issued under the old one.
std::string credential_version(const std::string& hash) {
  return auth::digest_hex(auth::digest_api_key(hash)).substr(0, 16);
}

/// An RFC 3339 time ("2026-11-27T10:00:00.000+02:00", "…Z") or a date ("2026-11-27", midnight
/// UTC) → unix seconds; 422 otherwise.
std::int64_t parse_time(std::string_view text, std::string_view param) {
  std::int64_t t = 0;
  if (!core::parse_utc(text, t)) {
    fail(Errc::InvalidValue,
         "'" + std::string(param) +
             "' must be an RFC 3339 time (2027-01-01T00:00:00Z, 2027-01-01T02:00:00.000+02:00) "
             "or a date (YYYY-MM-DD, midnight UTC).",
         std::string(param));
  }
  return t;
}

std::size_t page_limit(const Request& r) {
  auto it = r.query.find("limit");
  if (it == r.query.end()) return kDefaultPage;
  std::size_t n = 0;
  const auto& s = it->second;
  if (s.empty() || s.size() > 4 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (n = std::stoul(s)) < 1 || n > kMaxPage) {
    fail(Errc::InvalidValue, "'limit' must be an integer from 1 to 500.", "limit");
  }
  return n;
}

std::string page_cursor(const Request& r) {
  auto it = r.query.find("cursor");
  if (it == r.query.end() || it->second.empty()) return {};
  auto bytes = core::base64url_decode(it->second);
  if (!bytes) fail(Errc::InvalidValue, "'cursor' is not a cursor this API returned.", "cursor");
  return std::string(bytes->begin(), bytes->end());
}

std::string query_value(const Request& r, std::string_view name) {
  auto it = r.query.find(name);
  return it == r.query.end() ? std::string() : it->second;
}

/// Pages a list the store returns whole (providers, models, aliases: small tables).
template <class T, class KeyFn, class ViewFn>
json::object page_in_memory(const std::vector<T>& rows, const Request& r, KeyFn key, ViewFn view) {
  const std::size_t limit = page_limit(r);
  const std::string after = page_cursor(r);
  json::array data;
  std::string last;
  bool more = false;
  for (const auto& row : rows) {
    const std::string k = key(row);
    if (!after.empty() && k <= after) continue;
    if (data.size() == limit) {
      more = true;
      break;
    }
    data.push_back(view(row));
    last = k;
  }
  return list_page(std::move(data), more, last);
}

std::string random_secret(std::string_view prefix) {
  unsigned char b[32];
  core::secure_random(b);
  return std::string(prefix) + core::base64url(b);
}

}  // namespace

// ---------------------------------------------------------------------------------------

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
  asio::thread_pool pool;
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
                           std::string id, const json::value& before, const json::value& after);
  void publish() {
    if (deps.reload_now) deps.reload_now();
  }
  const std::string& dummy() {
    std::call_once(dummy_once, [&] { dummy_hash = auth::argon2id_hash(random_secret("x")); });
    return dummy_hash;
  }
  void throttled(const Request& r, const std::string& who);
  void record_failure(const Request& r, const std::string& who, std::string_view kind);

  // --- handlers
  Response openapi(Request&) { return {200, std::string(deps.openapi_json), {}}; }
  Response login(Request& r);
  Response token_login(Request& r);
  Response me(Request& r);

  Response list_keys(Request& r);
  Response create_key(Request& r);
  Response get_key(Request& r);
  Response patch_key(Request& r);
  Response delete_key(Request& r);
  Response regenerate_key(Request& r);
  Response key_spend(Request& r);

  Response list_providers(Request& r);
  Response create_provider(Request& r);
  Response get_provider(Request& r);
  Response patch_provider(Request& r);
  Response delete_provider(Request& r);

  Response list_models(Request& r);
  Response create_model(Request& r);
  Response get_model(Request& r);
  Response patch_model(Request& r);
  Response delete_model(Request& r);
  Response get_prices(Request& r);
  Response put_prices(Request& r);
  Response delete_prices(Request& r);

  Response list_aliases(Request& r);
  Response create_alias(Request& r);
  Response get_alias(Request& r);
  Response patch_alias(Request& r);
  Response delete_alias(Request& r);

  Response list_users(Request& r);
  Response create_user(Request& r);
  Response get_user(Request& r);
  Response patch_user(Request& r);
  Response delete_user(Request& r);

  Response list_tokens(Request& r);
  Response create_token(Request& r);
  Response get_token(Request& r);
  Response patch_token(Request& r);
  Response delete_token(Request& r);
  Response regenerate_token(Request& r);

  Response usage(Request& r);
  Response list_audit(Request& r);

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
  } catch (const std::exception& e) {
    core::LogLine(core::LogLevel::Error, "admin request failed")
        .field("route", route.pattern)
        .field("error", e.what())
        .emit();
    return {500, core::render_error(Errc::Internal, "The admin request failed; see the gateway log."),
            {}};
  }
}

// --- identity -----------------------------------------------------------------------------

void AdminApi::Impl::authenticate(Request& r, Role min_role) {
  const std::string_view token = auth::extract_api_key(r.authorization, {});
  if (token.empty()) {
    fail(Errc::Unauthenticated,
         "Sign in with POST /admin/auth/login and send the token as 'Authorization: Bearer "
         "<token>'.");
  }
  if (token.starts_with(auth::kKeyPrefix)) {
    fail(Errc::Unauthenticated,
         "Gateway API keys are for /v1 only; the admin API needs a token from POST "
         "/admin/auth/login.");
  }
  auth::JwtError why{};
  const auto payload = auth::jwt_verify_hs256(token, deps.jwt_secret, core::unix_seconds(), &why);
  if (!payload) {
    switch (why) {
      case auth::JwtError::Expired: fail(Errc::Unauthenticated, "The token has expired; sign in again.");
      case auth::JwtError::NotYetValid: fail(Errc::Unauthenticated, "The token is not valid yet.");
      case auth::JwtError::Algorithm:
        fail(Errc::Unauthenticated, "The token must be signed with HS256.");
      default: fail(Errc::Unauthenticated, "The token is invalid.");
    }
  }
  boost::system::error_code ec;
  const json::value claims = json::parse(*payload, ec);
  const json::object* o = ec ? nullptr : claims.if_object();
  const json::value* sub = o ? o->if_contains("sub") : nullptr;
  const json::value* type = o ? o->if_contains("auth_type") : nullptr;
  const json::value* cv = o ? o->if_contains("cv") : nullptr;
  const json::value* exp = o ? o->if_contains("exp") : nullptr;
  const json::value* iat = o ? o->if_contains("iat") : nullptr;
  if (sub == nullptr || type == nullptr || cv == nullptr || !sub->is_string() ||
      !type->is_string() || !cv->is_string() || exp == nullptr || !exp->is_int64() ||
      iat == nullptr || !iat->is_int64()) {
    fail(Errc::Unauthenticated, "The token is invalid.");
  }
  // The subject is read on every request: a user disabled, deleted or demoted loses access
  // at once, not when the token expires.
  Principal p;
  std::optional<Role> role;
  if (type->as_string() == "user") {
    auto u = st().find_admin_user(std::string(sub->as_string()));
    if (u && u->enabled && credential_version(u->password_hash) == cv->as_string()) {
      p = {u->id, "user", u->email, Role::None};
      role = parse_role(u->role);
    }
  } else if (type->as_string() == "token") {
    auto t = st().find_admin_token(std::string(sub->as_string()));
    if (t && t->enabled && credential_version(t->token_hash) == cv->as_string()) {
      p = {t->id, "token", t->service_name, Role::None};
      role = parse_role(t->role);
    }
  }
  if (!role) {
    fail(Errc::Unauthenticated,
         "The token's user or service no longer exists, is disabled, or changed its password or "
         "secret since the token was issued; sign in again.");
  }
  p.role = *role;
  r.who = std::move(p);
  if (static_cast<int>(r.who.role) < static_cast<int>(min_role)) {
    fail(Errc::Forbidden, "This needs the '" + std::string(to_string(min_role)) +
                              "' role; you have '" + std::string(to_string(r.who.role)) + "'.");
  }
}

Response AdminApi::Impl::issue_token(const Principal& p, const std::string& credential_hash) {
  const std::int64_t now = core::unix_seconds();
  const std::int64_t exp = now + deps.token_ttl.count();
  unsigned char jti[16];
  core::secure_random(jti);
  const json::object claims{{"iss", "llmgw"},
                            {"sub", p.id},
                            {"auth_type", p.type},
                            {"roles", json::array{to_string(p.role)}},
                            {"name", p.name},
                            {"iat", now},
                            {"exp", exp},
                            {"jti", core::to_hex(jti)},
                            {"cv", credential_version(credential_hash)}};
  return ok(json::object{{"token", auth::jwt_sign_hs256(json::serialize(claims), deps.jwt_secret)},
                         {"token_type", "Bearer"},
                         {"expires_at", core::format_utc(exp)},
                         {"expires_in", deps.token_ttl.count()},
                         {"subject", json::object{{"id", p.id},
                                                  {"type", p.type},
                                                  {"name", p.name},
                                                  {"role", to_string(p.role)}}}});
}

store::AuditRecord AdminApi::Impl::audit(const Request& r, std::string_view action,
                                         std::string_view type, std::string id,
                                         const json::value& before, const json::value& after) {
  store::AuditRecord a;
  a.at_us = core::unix_micros();
  a.actor_type = r.who.type.empty() ? "system" : r.who.type;
  a.actor_id = r.who.id;
  a.actor_name = r.who.name;
  a.action = std::string(action);
  a.resource_type = std::string(type);
  a.resource_id = std::move(id);
  a.before_json = before.is_null() ? std::string() : json::serialize(before);
  a.after_json = after.is_null() ? std::string() : json::serialize(after);
  a.request_id = r.request_id;
  a.client_ip = r.client_ip;
  return a;
}

namespace {
/// The throttle's and the audit's name for a sign-in attempt: as sent when it could be an
/// email or service name, else a digest (bounded size, valid UTF-8).
std::string attempt_name(const std::string& who) {
  if (who.size() <= 254 && valid_utf8(who) && printable_text(who, 0, 254)) {
    return lower(who);
  }
  return "sha256:" + auth::digest_hex(auth::digest_api_key(who)).substr(0, 32);
}

/// Whether a sign-in name could be stored, so is worth a lookup: at most `max` bytes and no
/// NUL (PostgreSQL text cannot hold one; the lookup would fail instead of finding nothing).
bool storable_name(std::string_view who, std::size_t max) {
  return who.size() <= max && who.find('\0') == std::string_view::npos;
}
}  // namespace

void AdminApi::Impl::throttled(const Request& r, const std::string& who) {
  const std::int64_t now = now_ms();
  const std::int64_t wait = std::max(throttle.retry_after("id:" + attempt_name(who), now),
                                     throttle.retry_after("ip:" + r.client_ip, now));
  if (wait > 0) {
    throw ApiError{Errc::RateLimited,
                   "Too many failed sign-ins; try again in " + std::to_string(wait) + " s.",
                   {},
                   "Retry-After: " + std::to_string(wait) + "\r\n"};
  }
}

void AdminApi::Impl::record_failure(const Request& r, const std::string& who,
                                    std::string_view kind) {
  const std::int64_t now = now_ms();
  const std::string name = attempt_name(who);
  throttle.failed("id:" + name, now);
  throttle.failed("ip:" + r.client_ip, now);
  store::AuditRecord a = audit(r, "login_failed", "session", {}, nullptr, nullptr);
  a.actor_type = kind;
  a.actor_name = name;
  st().insert_audit(a);
}

Response AdminApi::Impl::login(Request& r) {
  Body b(r.body);
  const auto email = Body::required(b.string("email"), "email");
  const auto password = Body::required(b.string("password"), "password");
  b.finish();
  throttled(r, email);
  const auto user = storable_name(email, 254) ? st().find_admin_user_by_email(email) : std::nullopt;
  // Unknown emails cost a hash too, so the answer's timing does not tell which exist.
  const bool verified = auth::argon2id_verify(password, user ? user->password_hash : dummy());
  if (!user || !user->enabled || !verified) {
    record_failure(r, email, "user");
    fail(Errc::Unauthenticated, "Incorrect email or password.");
  }
  r.who = {user->id, "user", user->email, parse_role(user->role).value_or(Role::None)};
  auto a = audit(r, "login", "session", user->id, nullptr, nullptr);
  st().insert_audit(a);
  return issue_token(r.who, user->password_hash);
}

Response AdminApi::Impl::token_login(Request& r) {
  Body b(r.body);
  const auto service = Body::required(b.string("service_name"), "service_name");
  const auto secret = Body::required(b.string("token"), "token");
  b.finish();
  throttled(r, service);
  const auto tok =
      storable_name(service, 64) ? st().find_admin_token_by_service(service) : std::nullopt;
  const bool verified = auth::argon2id_verify(secret, tok ? tok->token_hash : dummy());
  if (!tok || !tok->enabled || !verified) {
    record_failure(r, service, "token");
    fail(Errc::Unauthenticated, "Incorrect service name or token.");
  }
  r.who = {tok->id, "token", tok->service_name, parse_role(tok->role).value_or(Role::None)};
  auto a = audit(r, "login", "session", tok->id, nullptr, nullptr);
  st().insert_audit(a);
  return issue_token(r.who, tok->token_hash);
}

Response AdminApi::Impl::me(Request& r) {
  return ok(json::object{{"id", r.who.id},
                         {"type", r.who.type},
                         {"name", r.who.name},
                         {"role", to_string(r.who.role)}});
}

// --- keys ---------------------------------------------------------------------------------

namespace {

std::optional<std::int64_t> positive_or_null(Body& b, std::string_view name, bool& present) {
  present = b.has(name);
  if (!present || b.is_null(name)) return std::nullopt;
  const std::int64_t v = *b.integer(name);
  if (v <= 0 || v > 1'000'000'000'000) {
    fail(Errc::InvalidValue, "'" + std::string(name) + "' must be a positive integer.",
         std::string(name));
  }
  return v;
}

void check_names(const std::vector<std::string>& v, std::string_view param, std::size_t max) {
  if (v.size() > max) {
    fail(Errc::InvalidValue, "'" + std::string(param) + "' has more than " + std::to_string(max) +
                                 " entries.", std::string(param));
  }
  for (const auto& s : v) {
    if (!model_name(s)) {
      fail(Errc::InvalidValue, "'" + std::string(param) +
                                   "' entries must be 1 to 200 characters without spaces or control characters.",
           std::string(param));
    }
  }
}

}  // namespace

void AdminApi::Impl::read_key_fields(Body& b, store::ApiKeyRecord& k, bool create) {
  if (auto name = b.string("name")) {
    if (!printable_text(*name, 1, 200)) {
      fail(Errc::InvalidValue, "'name' must be 1 to 200 characters without control characters.", "name");
    }
    k.name = std::move(*name);
  } else if (create) {
    fail(Errc::BadRequest, "Missing required field 'name'.", "name");
  }
  if (b.is_null("allowed_models")) {
    k.allowed_models.clear();
  } else if (auto models = b.string_array("allowed_models")) {
    check_names(*models, "allowed_models", 1000);
    std::sort(models->begin(), models->end());
    models->erase(std::unique(models->begin(), models->end()), models->end());
    k.allowed_models = std::move(*models);
  }
  bool present = false;
  for (auto [name, field] : {std::pair{"rpm_limit", &k.rpm_limit}, {"tpm_limit", &k.tpm_limit},
                             {"max_concurrent", &k.max_concurrent}}) {
    auto v = positive_or_null(b, name, present);
    if (present) *field = v;
  }
  if (b.is_null("budget_usd")) {
    k.budget_usd.reset();
  } else if (auto budget = b.string("budget_usd")) {
    if (!core::valid_budget_text(*budget)) {
      fail(Errc::InvalidValue, "'budget_usd' must be a decimal amount such as \"25.00\", at most 9000000.", "budget_usd");
    }
    k.budget_usd = std::move(*budget);
  }
  if (auto period = b.string("budget_period")) {
    if (!limits::parse_budget_period(*period)) {
      fail(Errc::InvalidValue, "'budget_period' must be daily, weekly or monthly.", "budget_period");
    }
    k.budget_period = std::move(*period);
  }
  if (b.is_null("expires_at")) {
    k.expires_at.reset();
  } else if (auto when = b.string("expires_at")) {
    const std::int64_t t = parse_time(*when, "expires_at");
    if (t <= core::unix_seconds()) {
      fail(Errc::InvalidValue, "'expires_at' is in the past.", "expires_at");
    }
    k.expires_at = t;
  }
  if (auto enabled = b.boolean("enabled")) k.enabled = *enabled;
  if (b.is_null("tags")) {
    k.tags.clear();
  } else if (auto tags = b.string_array("tags")) {
    if (tags->size() > 64) fail(Errc::InvalidValue, "'tags' has more than 64 entries.", "tags");
    for (const auto& t : *tags) {
      if (!printable_text(t, 1, 64)) {
        fail(Errc::InvalidValue, "'tags' entries must be 1 to 64 characters.", "tags");
      }
    }
    std::sort(tags->begin(), tags->end());
    tags->erase(std::unique(tags->begin(), tags->end()), tags->end());
    k.tags = std::move(*tags);
  }
  if (b.is_null("metadata")) {
    k.metadata.clear();
  } else if (auto meta = b.string_map("metadata")) {
    if (meta->size() > 64) fail(Errc::InvalidValue, "'metadata' has more than 64 entries.", "metadata");
    for (const auto& [n, v] : *meta) {
      if (!printable_text(n, 1, 64) || !printable_text(v, 0, 1024)) {
        fail(Errc::InvalidValue,
             "'metadata' names must be 1 to 64 characters and values at most 1024, without control characters.",
             "metadata");
      }
    }
    k.metadata = std::move(*meta);
  }
  b.finish();
}

store::ApiKeyRecord AdminApi::Impl::key_or_404(const std::string& id) {
  auto k = st().find_key_by_id(id);
  if (!k) fail(Errc::NotFound, "No API key with id '" + id + "'.", "id");
  return std::move(*k);
}

Response AdminApi::Impl::list_keys(Request& r) {
  store::KeyQuery q;
  q.page.limit = page_limit(r);
  q.page.after = page_cursor(r);
  if (const auto e = query_value(r, "enabled"); !e.empty()) {
    if (e != "true" && e != "false") fail(Errc::InvalidValue, "'enabled' must be true or false.", "enabled");
    q.enabled = e == "true";
  }
  q.name_contains = query_value(r, "name");
  q.tag = query_value(r, "tag");
  auto rows = st().list_keys(q);
  const bool more = rows.size() > q.page.limit;
  if (more) rows.resize(q.page.limit);
  json::array data;
  for (const auto& k : rows) data.push_back(key_view(k));
  return ok(list_page(std::move(data), more, rows.empty() ? std::string() : rows.back().id));
}

Response AdminApi::Impl::create_key(Request& r) {
  Body b(r.body);
  store::ApiKeyRecord k;
  read_key_fields(b, k, true);
  const auto fresh = auth::generate_api_key();
  k.id = core::new_id("key_");
  k.key_hash = fresh.hash_hex;
  k.prefix = fresh.display_prefix;
  k.created_at = k.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "key", k.id, nullptr, key_view(k));
  st().insert_key(k, &a);
  publish();
  json::object out = key_view(k);
  out["key"] = fresh.plaintext;
  return ok(out, 201);
}

Response AdminApi::Impl::get_key(Request& r) { return ok(key_view(key_or_404(r.params[0]))); }

Response AdminApi::Impl::patch_key(Request& r) {
  auto k = key_or_404(r.params[0]);
  const json::value before = key_view(k);
  Body b(r.body);
  read_key_fields(b, k, false);
  auto a = audit(r, "update", "key", k.id, before, key_view(k));
  if (!st().update_key(k, &a)) fail(Errc::NotFound, "No API key with id '" + k.id + "'.", "id");
  publish();
  return ok(key_view(k));
}

Response AdminApi::Impl::delete_key(Request& r) {
  const auto k = key_or_404(r.params[0]);
  auto a = audit(r, "delete", "key", k.id, key_view(k), nullptr);
  if (!st().delete_key(k.id, &a)) fail(Errc::NotFound, "No API key with id '" + k.id + "'.", "id");
  publish();
  return ok(json::object{{"id", k.id}, {"object", "api_key"}, {"deleted", true}});
}

Response AdminApi::Impl::regenerate_key(Request& r) {
  if (!r.body.empty()) Body(r.body).finish();
  auto k = key_or_404(r.params[0]);
  const json::value before = key_view(k);
  const auto fresh = auth::generate_api_key();
  k.key_hash = fresh.hash_hex;
  k.prefix = fresh.display_prefix;
  auto a = audit(r, "regenerate", "key", k.id, before, key_view(k));
  if (!st().update_key(k, &a)) fail(Errc::NotFound, "No API key with id '" + k.id + "'.", "id");
  publish();
  json::object out = key_view(k);
  out["key"] = fresh.plaintext;
  return ok(out);
}

Response AdminApi::Impl::key_spend(Request& r) {
  const auto k = key_or_404(r.params[0]);
  const auto period = limits::parse_budget_period(k.budget_period).value_or(limits::BudgetPeriod::Monthly);
  const auto w = limits::period_window(period, core::unix_seconds());
  core::Money spent;
  std::int64_t requests = 0;
  std::int64_t unpriced = 0;
  for (const auto& row : st().spend(k.id, w.first_day, w.last_day)) {
    if (auto m = core::Money::parse(row.cost_usd)) spent += *m;
    requests += row.requests;
    unpriced += row.unpriced_requests;
  }
  json::value remaining = nullptr;
  if (k.budget_usd) {
    if (auto budget = core::Money::parse(*k.budget_usd)) {
      core::Money left = *budget - spent;
      remaining = (left < core::Money{} ? core::Money{} : left).to_string();
    }
  }
  return ok(json::object{{"key_id", k.id},
                         {"object", "key_spend"},
                         {"budget_usd", opt(k.budget_usd)},
                         {"budget_period", k.budget_period},
                         {"period", json::object{{"id", w.id},
                                                 {"start", core::format_utc(w.start_unix)},
                                                 {"end", core::format_utc(w.end_unix)}}},
                         {"spent_usd", spent.to_string()},
                         {"remaining_usd", remaining},
                         {"requests", requests},
                         {"unpriced_requests", unpriced}});
}

// --- providers ----------------------------------------------------------------------------

void AdminApi::Impl::read_provider_fields(Body& b, store::ProviderRecord& p, bool create) {
  if (auto name = b.string("name")) {
    if (!identifier(*name, 64)) {
      fail(Errc::InvalidValue,
           "'name' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
           "name");
    }
    p.config.name = std::move(*name);
  } else if (create) {
    fail(Errc::BadRequest, "Missing required field 'name'.", "name");
  }
  if (auto type = b.string("type")) {
    if (!core::parse_provider_type(*type, p.config.type)) {
      fail(Errc::InvalidValue, "'type' must be openai, openai_compatible or echo.", "type");
    }
  } else if (create) {
    fail(Errc::BadRequest, "Missing required field 'type'.", "type");
  }
  if (b.is_null("base_url")) {
    p.config.base_url.clear();
  } else if (auto url = b.string("base_url")) {
    if (!url->empty() && !core::Origin::parse(*url)) {
      fail(Errc::InvalidValue, "'base_url' must be an http:// or https:// URL.", "base_url");
    }
    p.config.base_url = std::move(*url);
  }
  if (b.is_null("api_key")) {
    p.config.api_key.clear();
  } else if (auto key = b.string("api_key")) {
    if (!printable_text(*key, 0, 4096)) {
      fail(Errc::InvalidValue, "'api_key' must be at most 4096 characters without control characters.",
           "api_key");
    }
    p.config.api_key = std::move(*key);
  }
  for (auto [name, field] : {std::pair{"connect_timeout_ms", &p.config.connect_timeout},
                             {"first_byte_timeout_ms", &p.config.first_byte_timeout},
                             {"idle_timeout_ms", &p.config.idle_timeout}}) {
    if (auto v = b.integer(name)) {
      if (*v < 1 || *v > 3'600'000) {
        fail(Errc::InvalidValue, "'" + std::string(name) + "' must be 1 to 3600000.", name);
      }
      *field = std::chrono::milliseconds(*v);
    }
  }
  if (auto enabled = b.boolean("enabled")) p.enabled = *enabled;
  b.finish();
  if (p.config.type != core::ProviderType::Echo && p.config.base_url.empty()) {
    fail(Errc::InvalidValue, "'base_url' is required for this provider type.", "base_url");
  }
}

store::ProviderRecord AdminApi::Impl::provider_or_404(const std::string& id) {
  auto p = st().find_provider(id);
  if (!p) fail(Errc::NotFound, "No provider with id '" + id + "'.", "id");
  return std::move(*p);
}

Response AdminApi::Impl::list_providers(Request& r) {
  auto rows = st().list_providers();
  if (const auto type = query_value(r, "type"); !type.empty()) {
    std::erase_if(rows, [&](const auto& p) { return core::to_string(p.config.type) != type; });
  }
  return ok(page_in_memory(rows, r, [](const auto& p) { return p.config.name; }, provider_view));
}

Response AdminApi::Impl::create_provider(Request& r) {
  Body b(r.body);
  store::ProviderRecord p;
  read_provider_fields(b, p, true);
  p.id = core::new_id("prov_");
  p.source = "admin";
  p.created_at = p.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "provider", p.id, nullptr, provider_view(p));
  st().insert_provider(p, &a);
  publish();
  return ok(provider_view(p), 201);
}

Response AdminApi::Impl::get_provider(Request& r) {
  return ok(provider_view(provider_or_404(r.params[0])));
}

Response AdminApi::Impl::patch_provider(Request& r) {
  auto p = provider_or_404(r.params[0]);
  const json::value before = provider_view(p);
  Body b(r.body);
  if (p.credential_unreadable && !b.has("api_key")) {
    fail(Errc::Conflict,
         "The provider's stored credential cannot be decrypted with this gateway's master key; "
         "send 'api_key' with the change.", "api_key");
  }
  read_provider_fields(b, p, false);
  auto a = audit(r, "update", "provider", p.id, before, provider_view(p));
  if (!st().update_provider(p, &a)) fail(Errc::NotFound, "No provider with id '" + p.id + "'.", "id");
  publish();
  return ok(provider_view(p));
}

Response AdminApi::Impl::delete_provider(Request& r) {
  const auto p = provider_or_404(r.params[0]);
  auto a = audit(r, "delete", "provider", p.id, provider_view(p), nullptr);
  if (!st().delete_provider(p.id, &a)) fail(Errc::NotFound, "No provider with id '" + p.id + "'.", "id");
  publish();
  return ok(json::object{{"id", p.id}, {"object", "provider"}, {"deleted", true}});
}

// --- models and prices --------------------------------------------------------------------

void AdminApi::Impl::read_model_fields(Body& b, store::ModelRecord& m, bool create) {
  if (auto name = b.string("name")) {
    if (!model_name(*name)) {
      fail(Errc::InvalidValue, "'name' must be 1 to 200 characters without spaces or control characters.",
           "name");
    }
    m.config.name = std::move(*name);
  } else if (create) {
    fail(Errc::BadRequest, "Missing required field 'name'.", "name");
  }
  if (auto provider = b.string("provider")) {
    if (!identifier(*provider, 64)) {
      fail(Errc::InvalidValue, "'provider' must name a provider.", "provider");
    }
    m.config.provider = std::move(*provider);
  } else if (create) {
    fail(Errc::BadRequest, "Missing required field 'provider'.", "provider");
  }
  if (auto up = b.string("upstream_model")) {
    if (!model_name(*up)) {
      fail(Errc::InvalidValue, "'upstream_model' must be 1 to 200 characters without spaces.",
           "upstream_model");
    }
    m.config.upstream_model = std::move(*up);
  }
  if (b.is_null("pricing_model")) {
    m.config.pricing_model.clear();
  } else if (auto pm = b.string("pricing_model")) {
    if (!model_name(*pm)) {
      fail(Errc::InvalidValue, "'pricing_model' must be 1 to 200 characters without spaces.",
           "pricing_model");
    }
    m.config.pricing_model = std::move(*pm);
  }
  bool present = false;
  for (auto [name, field] :
       {std::pair{"rpm_limit", &m.config.rpm_limit}, {"tpm_limit", &m.config.tpm_limit}}) {
    auto v = positive_or_null(b, name, present);
    if (present) *field = v;
  }
  if (auto enabled = b.boolean("enabled")) m.enabled = *enabled;
  b.finish();
  if (m.config.upstream_model.empty()) m.config.upstream_model = m.config.name;
}

store::ModelRecord AdminApi::Impl::model_or_404(const std::string& id) {
  auto m = st().find_model(id);
  if (!m) fail(Errc::NotFound, "No model with id '" + id + "'.", "id");
  return std::move(*m);
}

Response AdminApi::Impl::list_models(Request& r) {
  auto rows = st().list_models();
  if (const auto provider = query_value(r, "provider"); !provider.empty()) {
    std::erase_if(rows, [&](const auto& m) { return m.config.provider != provider; });
  }
  return ok(page_in_memory(rows, r, [](const auto& m) { return m.config.name; }, model_view));
}

Response AdminApi::Impl::create_model(Request& r) {
  Body b(r.body);
  store::ModelRecord m;
  read_model_fields(b, m, true);
  m.id = core::new_id("mdl_");
  m.source = "admin";
  m.created_at = m.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "model", m.id, nullptr, model_view(m));
  try {
    st().insert_model(m, &a);
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "provider");
  }
  publish();
  return ok(model_view(m), 201);
}

namespace {

std::string pricing_name(const store::ModelRecord& m) {
  return m.config.pricing_model.empty() ? m.config.upstream_model : m.config.pricing_model;
}

int source_rank(std::string_view s) { return s == "admin" ? 2 : s == "override" ? 1 : 0; }

/// The rows that win: per (direction, modality, unit, tier), admin over override over catalog.
json::array effective_prices(const std::vector<store::PriceComponentRecord>& rows) {
  std::map<std::tuple<std::string, std::string, std::string, std::string>,
           const store::PriceComponentRecord*>
      best;
  for (const auto& r : rows) {
    auto& slot = best[{r.direction, r.modality, r.unit, r.tier}];
    if (slot == nullptr || source_rank(r.source) > source_rank(slot->source)) slot = &r;
  }
  json::array out;
  for (const auto& [k, r] : best) out.push_back(price_view(*r));
  return out;
}

json::object prices_view(const std::string& name,
                         const std::vector<store::PriceComponentRecord>& rows) {
  json::array all;
  for (const auto& r : rows) all.push_back(price_view(r));
  return {{"object", "model_prices"},
          {"pricing_model", name},
          {"components", std::move(all)},
          {"effective", effective_prices(rows)}};
}

}  // namespace

Response AdminApi::Impl::get_model(Request& r) {
  const auto m = model_or_404(r.params[0]);
  json::object out = model_view(m);
  out["prices"] = effective_prices(st().prices_of(pricing_name(m)));
  return ok(out);
}

Response AdminApi::Impl::patch_model(Request& r) {
  auto m = model_or_404(r.params[0]);
  const json::value before = model_view(m);
  Body b(r.body);
  read_model_fields(b, m, false);
  auto a = audit(r, "update", "model", m.id, before, model_view(m));
  try {
    if (!st().update_model(m, &a)) fail(Errc::NotFound, "No model with id '" + m.id + "'.", "id");
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "provider");
  }
  publish();
  return ok(model_view(m));
}

Response AdminApi::Impl::delete_model(Request& r) {
  const auto m = model_or_404(r.params[0]);
  auto a = audit(r, "delete", "model", m.id, model_view(m), nullptr);
  if (!st().delete_model(m.id, &a)) fail(Errc::NotFound, "No model with id '" + m.id + "'.", "id");
  publish();
  return ok(json::object{{"id", m.id}, {"object", "model_route"}, {"deleted", true}});
}

Response AdminApi::Impl::get_prices(Request& r) {
  const auto m = model_or_404(r.params[0]);
  const std::string name = pricing_name(m);
  return ok(prices_view(name, st().prices_of(name)));
}

Response AdminApi::Impl::put_prices(Request& r) {
  static const std::set<std::string_view> kDirections{
      "input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning", "tool"};
  static const std::set<std::string_view> kModalities{"text", "image", "audio", "video"};
  static const std::set<std::string_view> kUnits{"token",  "1k_tokens", "1m_tokens", "character",
                                                 "image",  "pixel",     "second",    "minute",
                                                 "hour",   "request",   "query"};
  const auto m = model_or_404(r.params[0]);
  const std::string name = pricing_name(m);
  Body b(r.body);
  const json::value* list = b.raw("components");
  b.finish();
  if (list == nullptr) fail(Errc::BadRequest, "Missing required field 'components'.", "components");
  if (!list->is_array()) fail(Errc::BadRequest, "'components' must be an array.", "components");
  if (list->as_array().empty()) {
    fail(Errc::InvalidValue, "'components' is empty; DELETE the prices to remove them.", "components");
  }
  if (list->as_array().size() > 200) {
    fail(Errc::InvalidValue, "'components' has more than 200 entries.", "components");
  }
  std::vector<store::PriceComponentRecord> rows;
  std::set<std::tuple<std::string, std::string, std::string, std::string>> seen;
  for (std::size_t i = 0; i < list->as_array().size(); ++i) {
    const auto& item = list->as_array()[i];
    const std::string at = "components[" + std::to_string(i) + "].";
    Body c = body_of(item, "components");
    store::PriceComponentRecord row;
    row.model_name = name;
    row.direction = Body::required(c.string("direction"), "direction");
    row.modality = c.string("modality").value_or("text");
    row.unit = c.string("unit").value_or("1m_tokens");
    row.tier = c.string("tier").value_or("default");
    row.price = Body::required(c.string("price"), "price");
    row.source = "admin";
    c.finish();
    if (!kDirections.contains(row.direction)) {
      fail(Errc::InvalidValue, "'direction' must be one of input, output, cache_read, cache_write_5m, "
           "cache_write_1h, reasoning, tool.", at + "direction");
    }
    if (!kModalities.contains(row.modality)) {
      fail(Errc::InvalidValue, "'modality' must be text, image, audio or video.", at + "modality");
    }
    if (!kUnits.contains(row.unit)) {
      fail(Errc::InvalidValue, "'unit' is not a known unit (token, 1k_tokens, 1m_tokens, ...).",
           at + "unit");
    }
    if (!identifier(row.tier, 64)) {
      fail(Errc::InvalidValue, "'tier' must be a name such as default, priority or above_200k.",
           at + "tier");
    }
    const auto price = core::Money::parse(row.price);
    if (!price || *price < core::Money{} || row.price.size() > 40) {
      fail(Errc::InvalidValue, "'price' must be a non-negative decimal string such as \"0.15\".",
           at + "price");
    }
    if (!seen.insert({row.direction, row.modality, row.unit, row.tier}).second) {
      fail(Errc::InvalidValue, "A component is given twice.", "components");
    }
    rows.push_back(std::move(row));
  }
  const json::value before = prices_view(name, st().prices_of(name));
  json::array after;
  for (const auto& row : rows) after.push_back(price_view(row));
  auto a = audit(r, "update", "prices", name, before, json::object{{"components", after}});
  st().set_admin_prices(name, rows, &a);
  publish();
  return ok(prices_view(name, st().prices_of(name)));
}

Response AdminApi::Impl::delete_prices(Request& r) {
  const auto m = model_or_404(r.params[0]);
  const std::string name = pricing_name(m);
  const json::value before = prices_view(name, st().prices_of(name));
  auto a = audit(r, "delete", "prices", name, before, nullptr);
  st().set_admin_prices(name, {}, &a);
  publish();
  return ok(prices_view(name, st().prices_of(name)));
}

// --- aliases ------------------------------------------------------------------------------

Response AdminApi::Impl::list_aliases(Request& r) {
  const auto rows = st().list_aliases();
  return ok(page_in_memory(rows, r, [](const auto& a) { return a.config.alias; }, alias_view));
}

Response AdminApi::Impl::create_alias(Request& r) {
  Body b(r.body);
  store::AliasRecord al;
  al.config.alias = Body::required(b.string("alias"), "alias");
  al.config.model = Body::required(b.string("model"), "model");
  b.finish();
  if (!model_name(al.config.alias)) {
    fail(Errc::InvalidValue, "'alias' must be 1 to 200 characters without spaces.", "alias");
  }
  if (!model_name(al.config.model)) {
    fail(Errc::InvalidValue, "'model' must name a model.", "model");
  }
  al.source = "admin";
  al.created_at = al.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "alias", al.config.alias, nullptr, alias_view(al));
  try {
    st().insert_alias(al, &a);
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "model");
  }
  publish();
  return ok(alias_view(al), 201);
}

Response AdminApi::Impl::get_alias(Request& r) {
  auto al = st().find_alias(r.params[0]);
  if (!al) fail(Errc::NotFound, "No alias '" + r.params[0] + "'.", "alias");
  return ok(alias_view(*al));
}

Response AdminApi::Impl::patch_alias(Request& r) {
  auto al = st().find_alias(r.params[0]);
  if (!al) fail(Errc::NotFound, "No alias '" + r.params[0] + "'.", "alias");
  const json::value before = alias_view(*al);
  Body b(r.body);
  if (auto model = b.string("model")) {
    if (!model_name(*model)) fail(Errc::InvalidValue, "'model' must name a model.", "model");
    al->config.model = std::move(*model);
  }
  b.finish();
  auto a = audit(r, "update", "alias", al->config.alias, before, alias_view(*al));
  try {
    if (!st().update_alias(*al, &a)) fail(Errc::NotFound, "No alias '" + r.params[0] + "'.", "alias");
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "model");
  }
  publish();
  return ok(alias_view(*al));
}

Response AdminApi::Impl::delete_alias(Request& r) {
  auto al = st().find_alias(r.params[0]);
  if (!al) fail(Errc::NotFound, "No alias '" + r.params[0] + "'.", "alias");
  auto a = audit(r, "delete", "alias", al->config.alias, alias_view(*al), nullptr);
  if (!st().delete_alias(al->config.alias, &a)) {
    fail(Errc::NotFound, "No alias '" + r.params[0] + "'.", "alias");
  }
  publish();
  return ok(json::object{
      {"id", al->config.alias}, {"object", "alias"}, {"deleted", true}});
}

// --- admin users and service tokens -------------------------------------------------------

namespace {

Role role_field(Body& b, std::string_view name) {
  const auto s = Body::required(b.string(name), name);
  auto role = parse_role(s);
  if (!role) fail(Errc::InvalidValue, "'role' must be viewer, editor or admin.", "role");
  return *role;
}

template <class Rec, class ViewFn>
json::object page_of(std::vector<Rec> rows, std::size_t limit, ViewFn view) {
  const bool more = rows.size() > limit;
  if (more) rows.resize(limit);
  json::array data;
  for (const auto& row : rows) data.push_back(view(row));
  return list_page(std::move(data), more, rows.empty() ? std::string() : rows.back().id);
}

}  // namespace

store::AdminUserRecord AdminApi::Impl::user_or_404(const std::string& id) {
  auto u = st().find_admin_user(id);
  if (!u) fail(Errc::NotFound, "No admin user with id '" + id + "'.", "id");
  return std::move(*u);
}

store::AdminTokenRecord AdminApi::Impl::token_or_404(const std::string& id) {
  auto t = st().find_admin_token(id);
  if (!t) fail(Errc::NotFound, "No service token with id '" + id + "'.", "id");
  return std::move(*t);
}

void AdminApi::Impl::keep_an_admin(const store::AdminUserRecord& before,
                                   const store::AdminUserRecord* after) {
  const bool was = before.enabled && before.role == "admin";
  const bool stays = after != nullptr && after->enabled && after->role == "admin";
  if (was && !stays && st().count_enabled_admins() <= 1) {
    fail(Errc::Conflict, "This is the last enabled admin; create another admin first.");
  }
}

Response AdminApi::Impl::list_users(Request& r) {
  const std::size_t limit = page_limit(r);
  return ok(page_of(st().list_admin_users({page_cursor(r), limit}), limit, user_view));
}

Response AdminApi::Impl::create_user(Request& r) {
  Body b(r.body);
  const auto email = Body::required(b.string("email"), "email");
  const auto password = Body::required(b.string("password"), "password");
  const Role role = role_field(b, "role");
  const bool enabled = b.boolean("enabled").value_or(true);
  b.finish();
  if (auto why = check_email(email); !why.empty()) fail(Errc::InvalidValue, "'email' " + why + ".", "email");
  if (auto why = check_password(password); !why.empty()) {
    fail(Errc::InvalidValue, "'password' " + why + ".", "password");
  }
  store::AdminUserRecord u;
  u.id = core::new_id("usr_");
  u.email = email;
  u.role = std::string(to_string(role));
  u.enabled = enabled;
  u.password_hash = auth::argon2id_hash(password);
  u.created_at = u.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "user", u.id, nullptr, user_view(u));
  st().insert_admin_user(u, &a);
  return ok(user_view(u), 201);
}

Response AdminApi::Impl::get_user(Request& r) { return ok(user_view(user_or_404(r.params[0]))); }

Response AdminApi::Impl::patch_user(Request& r) {
  std::lock_guard users_lock(users_mutex);
  auto u = user_or_404(r.params[0]);
  const auto old = u;
  Body b(r.body);
  if (auto email = b.string("email")) {
    if (auto why = check_email(*email); !why.empty()) fail(Errc::InvalidValue, "'email' " + why + ".", "email");
    u.email = std::move(*email);
  }
  std::optional<std::string> password = b.string("password");
  if (b.has("role")) u.role = std::string(to_string(role_field(b, "role")));
  if (auto enabled = b.boolean("enabled")) u.enabled = *enabled;
  b.finish();
  if (password) {
    if (auto why = check_password(*password); !why.empty()) {
      fail(Errc::InvalidValue, "'password' " + why + ".", "password");
    }
    u.password_hash = auth::argon2id_hash(*password);
  }
  keep_an_admin(old, &u);
  json::object after = user_view(u);
  if (password) after["password"] = "(changed)";
  auto a = audit(r, "update", "user", u.id, user_view(old), after);
  if (!st().update_admin_user(u, &a)) fail(Errc::NotFound, "No admin user with id '" + u.id + "'.", "id");
  return ok(user_view(u));
}

Response AdminApi::Impl::delete_user(Request& r) {
  std::lock_guard users_lock(users_mutex);
  const auto u = user_or_404(r.params[0]);
  keep_an_admin(u, nullptr);
  auto a = audit(r, "delete", "user", u.id, user_view(u), nullptr);
  if (!st().delete_admin_user(u.id, &a)) fail(Errc::NotFound, "No admin user with id '" + u.id + "'.", "id");
  return ok(json::object{{"id", u.id}, {"object", "admin_user"}, {"deleted", true}});
}

Response AdminApi::Impl::list_tokens(Request& r) {
  const std::size_t limit = page_limit(r);
  return ok(page_of(st().list_admin_tokens({page_cursor(r), limit}), limit, token_view));
}

Response AdminApi::Impl::create_token(Request& r) {
  Body b(r.body);
  const auto service = Body::required(b.string("service_name"), "service_name");
  const Role role = role_field(b, "role");
  const bool enabled = b.boolean("enabled").value_or(true);
  b.finish();
  if (!identifier(service, 64)) {
    fail(Errc::InvalidValue, "'service_name' must be 1 to 64 letters, digits, '.', '_' or '-'.",
         "service_name");
  }
  store::AdminTokenRecord t;
  t.id = core::new_id("tok_");
  t.service_name = service;
  t.role = std::string(to_string(role));
  t.enabled = enabled;
  const std::string secret = random_secret(kTokenPrefix);
  t.token_hash = auth::argon2id_hash(secret);
  t.created_at = t.updated_at = core::unix_seconds();
  auto a = audit(r, "create", "token", t.id, nullptr, token_view(t));
  st().insert_admin_token(t, &a);
  json::object out = token_view(t);
  out["token"] = secret;
  return ok(out, 201);
}

Response AdminApi::Impl::get_token(Request& r) { return ok(token_view(token_or_404(r.params[0]))); }

Response AdminApi::Impl::patch_token(Request& r) {
  auto t = token_or_404(r.params[0]);
  const json::value before = token_view(t);
  Body b(r.body);
  if (b.has("role")) t.role = std::string(to_string(role_field(b, "role")));
  if (auto enabled = b.boolean("enabled")) t.enabled = *enabled;
  b.finish();
  auto a = audit(r, "update", "token", t.id, before, token_view(t));
  if (!st().update_admin_token(t, &a)) fail(Errc::NotFound, "No service token with id '" + t.id + "'.", "id");
  return ok(token_view(t));
}

Response AdminApi::Impl::delete_token(Request& r) {
  const auto t = token_or_404(r.params[0]);
  auto a = audit(r, "delete", "token", t.id, token_view(t), nullptr);
  if (!st().delete_admin_token(t.id, &a)) fail(Errc::NotFound, "No service token with id '" + t.id + "'.", "id");
  return ok(json::object{{"id", t.id}, {"object", "service_token"}, {"deleted", true}});
}

Response AdminApi::Impl::regenerate_token(Request& r) {
  if (!r.body.empty()) Body(r.body).finish();
  auto t = token_or_404(r.params[0]);
  const std::string secret = random_secret(kTokenPrefix);
  t.token_hash = auth::argon2id_hash(secret);
  auto a = audit(r, "regenerate", "token", t.id, token_view(t), token_view(t));
  if (!st().update_admin_token(t, &a)) fail(Errc::NotFound, "No service token with id '" + t.id + "'.", "id");
  json::object out = token_view(t);
  out["token"] = secret;
  return ok(out);
}

// --- reports ------------------------------------------------------------------------------

namespace {

json::object totals_view(const store::UsageTotals& t, bool with_group) {
  json::object o;
  if (with_group) o["group"] = t.group;
  o["requests"] = t.requests;
  o["unpriced_requests"] = t.unpriced_requests;
  o["prompt_tokens"] = t.prompt_tokens;
  o["completion_tokens"] = t.completion_tokens;
  o["total_tokens"] = t.prompt_tokens + t.completion_tokens;
  o["cached_tokens"] = t.cached_tokens;
  o["reasoning_tokens"] = t.reasoning_tokens;
  o["cost_usd"] = t.cost_usd;
  return o;
}

}  // namespace

Response AdminApi::Impl::usage(Request& r) {
  store::UsageQuery q;
  q.key_id = query_value(r, "key_id");
  q.model = query_value(r, "model");
  q.provider = query_value(r, "provider");
  json::value from = nullptr;
  json::value to = nullptr;
  if (const auto f = query_value(r, "from"); !f.empty()) {
    const std::int64_t t = parse_time(f, "from");
    q.from_us = t * 1'000'000;
    from = core::format_utc(t);
  }
  if (const auto e = query_value(r, "to"); !e.empty()) {
    const std::int64_t t = parse_time(e, "to");
    q.to_us = t * 1'000'000;
    to = core::format_utc(t);
  }
  const std::string group = query_value(r, "group_by");
  if (!group.empty() && group != "day" && group != "model" && group != "key" && group != "provider") {
    fail(Errc::InvalidValue, "'group_by' must be day, model, key or provider.", "group_by");
  }
  const auto totals = st().usage_report(q);
  json::array data;
  if (!group.empty()) {
    q.group_by = group;
    for (const auto& t : st().usage_report(q)) data.push_back(totals_view(t, true));
  }
  return ok(json::object{
      {"object", "usage_report"},
      {"group_by", group.empty() ? json::value(nullptr) : json::value(group)},
      {"from", from},
      {"to", to},
      {"totals", totals.empty() ? json::object{} : totals_view(totals.front(), false)},
      {"data", std::move(data)}});
}

Response AdminApi::Impl::list_audit(Request& r) {
  store::AuditQuery q;
  q.limit = page_limit(r);
  if (const auto c = page_cursor(r); !c.empty()) {
    std::int64_t id = 0;
    const auto [p, ec] = std::from_chars(c.data(), c.data() + c.size(), id);
    if (ec != std::errc{} || p != c.data() + c.size()) {
      fail(Errc::InvalidValue, "'cursor' is not a cursor this API returned.", "cursor");
    }
    q.before_id = id;
  }
  q.resource_type = query_value(r, "resource_type");
  q.resource_id = query_value(r, "resource_id");
  q.actor_id = query_value(r, "actor_id");
  if (const auto f = query_value(r, "from"); !f.empty()) q.from_us = parse_time(f, "from") * 1'000'000;
  if (const auto e = query_value(r, "to"); !e.empty()) q.to_us = parse_time(e, "to") * 1'000'000;
  auto rows = st().list_audit(q);
  const bool more = rows.size() > q.limit;
  if (more) rows.resize(q.limit);
  json::array data;
  for (const auto& a : rows) data.push_back(audit_view(a));
  return ok(list_page(std::move(data), more, rows.empty() ? std::string() : std::to_string(rows.back().id)));
}

}  // namespace llmgw::admin
