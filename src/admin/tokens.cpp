// /admin/tokens: service tokens, the sign-in of programs (POST /admin/auth/token).
#include "admin/handlers.hpp"

#include "auth/crypto.hpp"
#include "core/ids.hpp"

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

constexpr std::string_view kTokenPrefix = "llmgw-st-";

json::object token_view(const store::AdminTokenRecord& t) {
  return {{"id", t.id},
          {"object", "service_token"},
          {"service_name", t.service_name},
          {"role", t.role},
          {"enabled", t.enabled},
          {"created_at", core::format_utc(t.created_at)},
          {"updated_at", core::format_utc(t.updated_at)}};
}

}  // namespace

store::AdminTokenRecord AdminApi::Impl::token_or_404(const std::string& id) {
  auto t = st().find_admin_token(id);
  if (!t) not_found("service token", id);
  return std::move(*t);
}

Response AdminApi::Impl::list_tokens(Request& r) {
  const std::size_t limit = page_limit(r.query);
  return ok(page_of(st().list_admin_tokens({page_cursor(r.query), limit}), limit, token_view));
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
  return ok_with_secret(token_view(t), "token", secret, 201);
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
  if (!st().update_admin_token(t, &a)) not_found("service token", t.id);
  return ok(token_view(t));
}

Response AdminApi::Impl::delete_token(Request& r) {
  const auto t = token_or_404(r.params[0]);
  auto a = audit(r, "delete", "token", t.id, token_view(t), nullptr);
  if (!st().delete_admin_token(t.id, &a)) not_found("service token", t.id);
  return deleted(t.id, "service_token");
}

Response AdminApi::Impl::regenerate_token(Request& r) {
  if (!r.body.empty()) Body(r.body).finish();
  auto t = token_or_404(r.params[0]);
  const std::string secret = random_secret(kTokenPrefix);
  t.token_hash = auth::argon2id_hash(secret);
  auto a = audit(r, "regenerate", "token", t.id, token_view(t), token_view(t));
  if (!st().update_admin_token(t, &a)) not_found("service token", t.id);
  return ok_with_secret(token_view(t), "token", secret);
}

}  // namespace llmgw::admin
