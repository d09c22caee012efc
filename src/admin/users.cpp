// /admin/users: admin accounts (email and password), and the first admin from the environment.
#include "admin/handlers.hpp"

#include "auth/crypto.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

#include <cstdlib>
#include <stdexcept>

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

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

json::object user_view(const store::AdminUserRecord& u) {
  return {{"id", u.id},
          {"object", "admin_user"},
          {"email", u.email},
          {"role", u.role},
          {"enabled", u.enabled},
          {"created_at", core::format_utc(u.created_at)},
          {"updated_at", core::format_utc(u.updated_at)}};
}

}  // namespace

store::AdminUserRecord AdminApi::Impl::user_or_404(const std::string& id) {
  auto u = st().find_admin_user(id);
  if (!u) not_found("admin user", id);
  return std::move(*u);
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
  const std::size_t limit = page_limit(r.query);
  return ok(page_of(st().list_admin_users({page_cursor(r.query), limit}), limit, user_view));
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
  if (!st().update_admin_user(u, &a)) not_found("admin user", u.id);
  return ok(user_view(u));
}

Response AdminApi::Impl::delete_user(Request& r) {
  std::lock_guard users_lock(users_mutex);
  const auto u = user_or_404(r.params[0]);
  keep_an_admin(u, nullptr);
  auto a = audit(r, "delete", "user", u.id, user_view(u), nullptr);
  if (!st().delete_admin_user(u.id, &a)) not_found("admin user", u.id);
  return deleted(u.id, "admin_user");
}

}  // namespace llmgw::admin
