// /admin/providers: the upstreams models route to, with their credentials and timeouts.
#include "admin/handlers.hpp"

#include "core/ids.hpp"
#include "core/provider_settings.hpp"
#include "core/url.hpp"

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

/// "sk-…abcd" for a credential long enough that four characters reveal nothing useful.
json::value credential_hint(const std::string& secret) {
  if (secret.empty()) return nullptr;
  if (secret.size() < 16) return "****";
  return json::value(secret.substr(0, 3) + "…" + secret.substr(secret.size() - 4));
}

json::object provider_view(const store::ProviderRecord& p) {
  json::object v{{"id", p.id},
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
  // The type's own settings as fields; its secrets only as whether they are set.
  json::array secrets_set;
  for (const auto& s : core::provider_type_rules(p.config.type).settings) {
    const std::string name(s.name);
    if (s.secret) {
      if (p.config.secrets.contains(name)) {
        secrets_set.emplace_back(name);
      }
    } else if (const auto it = p.config.settings.find(name); it != p.config.settings.end()) {
      v[name] = it->second;
    } else {
      v[name] = nullptr;
    }
  }
  v["secrets_set"] = std::move(secrets_set);
  return v;
}

}  // namespace

void AdminApi::Impl::read_provider_fields(Body& b, store::ProviderRecord& p, bool create) {
  if (auto name = b.string("name")) {
    if (!identifier(*name, 64)) {
      fail(Errc::InvalidValue,
           "'name' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
           "name");
    }
    p.config.name = std::move(*name);
  } else if (create) {
    Body::missing("name");
  }
  if (auto type = b.string("type")) {
    if (!core::parse_provider_type(*type, p.config.type)) {
      std::string known;
      for (auto t : core::kProviderTypes) {
        known += known.empty() ? "" : ", ";
        known += core::to_string(t);
      }
      fail(Errc::InvalidValue, "'type' must be one of: " + known + ".", "type");
    }
  } else if (create) {
    Body::missing("type");
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
  // The type's own settings and secrets (a secret is write-only; null removes either).
  for (const auto& s : core::provider_type_rules(p.config.type).settings) {
    const std::string name(s.name);
    auto& values = s.secret ? p.config.secrets : p.config.settings;
    if (b.is_null(name)) {
      values.erase(name);
    } else if (auto v = b.string(name)) {
      // A service-account key file is JSON over several lines: only its size is bounded.
      const bool multiline = name == "credentials_json";
      if (multiline ? v->size() > 16'384 : !printable_text(*v, 0, s.secret ? 16'384 : 1024)) {
        fail(Errc::InvalidValue,
             "'" + name + "' must be at most " + (s.secret ? "16384" : "1024") +
                 " characters without control characters.",
             name);
      }
      if (v->empty()) {
        values.erase(name);
      } else {
        values[name] = std::move(*v);
      }
    }
  }
  if (auto enabled = b.boolean("enabled")) p.enabled = *enabled;
  b.finish();
  // What the type takes (the rules every writer of a provider runs, core/provider_settings).
  if (const auto problem = core::check_provider_settings(p.config)) {
    fail(Errc::InvalidValue, problem->message, problem->field);
  }
}

store::ProviderRecord AdminApi::Impl::provider_or_404(const std::string& id) {
  auto p = st().find_provider(id);
  if (!p) not_found("provider", id);
  return std::move(*p);
}

Response AdminApi::Impl::list_providers(Request& r) {
  auto rows = st().list_providers();
  if (const auto type = query_value(r.query, "type"); !type.empty()) {
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
  if (!st().update_provider(p, &a)) not_found("provider", p.id);
  publish();
  return ok(provider_view(p));
}

Response AdminApi::Impl::delete_provider(Request& r) {
  const auto p = provider_or_404(r.params[0]);
  auto a = audit(r, "delete", "provider", p.id, provider_view(p), nullptr);
  if (!st().delete_provider(p.id, &a)) not_found("provider", p.id);
  publish();
  return deleted(p.id, "provider");
}

}  // namespace llmgw::admin
