// /admin/auth/*: sign-in with a password or a service token, the JWT every other route
// checks, and the throttle on failed sign-ins.
#include "admin/handlers.hpp"

#include "auth/api_key.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::int64_t now_ms() { return core::unix_micros() / 1000; }

/// A short fingerprint of a password or secret hash (not of the secret): tokens carry it, so
/// a new password or secret ends the tokens issued under the old one.
std::string credential_version(const std::string& hash) {
  return auth::digest_hex(auth::digest_api_key(hash)).substr(0, 16);
}

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

const std::string& AdminApi::Impl::dummy() {
  std::call_once(dummy_once, [&] { dummy_hash = auth::argon2id_hash(random_secret("x")); });
  return dummy_hash;
}

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

namespace {

/// A sign-in body: a name and its secret, both required, nothing else.
std::pair<std::string, std::string> sign_in_fields(const Request& r, std::string_view name,
                                                   std::string_view secret) {
  Body b(r.body);
  auto n = Body::required(b.string(name), name);
  auto s = Body::required(b.string(secret), secret);
  b.finish();
  return {std::move(n), std::move(s)};
}

/// Whom a sign-in names, when found: the principal it becomes, its password or secret hash,
/// and whether it is enabled.
struct Candidate {
  Principal who;
  std::string hash;
  bool enabled = false;
};

/// The end of a sign-in with a password or a service token, alike for both: a failure is
/// counted and audited (401 `refusal`), a success audited and answered with a token.
Response sign_in(AdminApi::Impl& api, Request& r, const std::string& name, std::string_view kind,
                 const std::string& secret, std::optional<Candidate> found,
                 std::string_view refusal) {
  // Unknown names cost a hash too, so the answer's timing does not tell which exist.
  const bool verified = auth::argon2id_verify(secret, found ? found->hash : api.dummy());
  if (!found || !found->enabled || !verified) {
    api.record_failure(r, name, kind);
    fail(Errc::Unauthenticated, std::string(refusal));
  }
  r.who = std::move(found->who);
  auto a = api.audit(r, "login", "session", r.who.id, nullptr, nullptr);
  api.st().insert_audit(a);
  return api.issue_token(r.who, found->hash);
}

}  // namespace

Response AdminApi::Impl::login(Request& r) {
  const auto [email, password] = sign_in_fields(r, "email", "password");
  throttled(r, email);
  std::optional<Candidate> found;
  if (const auto u =
          storable_name(email, 254) ? st().find_admin_user_by_email(email) : std::nullopt) {
    found = Candidate{{u->id, "user", u->email, parse_role(u->role).value_or(Role::None)},
                      u->password_hash,
                      u->enabled};
  }
  return sign_in(*this, r, email, "user", password, std::move(found),
                 "Incorrect email or password.");
}

Response AdminApi::Impl::token_login(Request& r) {
  const auto [service, secret] = sign_in_fields(r, "service_name", "token");
  throttled(r, service);
  std::optional<Candidate> found;
  if (const auto t =
          storable_name(service, 64) ? st().find_admin_token_by_service(service) : std::nullopt) {
    found = Candidate{{t->id, "token", t->service_name, parse_role(t->role).value_or(Role::None)},
                      t->token_hash,
                      t->enabled};
  }
  return sign_in(*this, r, service, "token", secret, std::move(found),
                 "Incorrect service name or token.");
}

Response AdminApi::Impl::me(Request& r) {
  return ok(json::object{{"id", r.who.id},
                         {"type", r.who.type},
                         {"name", r.who.name},
                         {"role", to_string(r.who.role)}});
}

}  // namespace llmgw::admin
