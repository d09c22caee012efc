// /admin/keys: gateway API keys and their spend in the current budget period.
#include "admin/handlers.hpp"

#include "auth/api_key.hpp"
#include "core/ids.hpp"
#include "core/money.hpp"
#include "limits/budget_period.hpp"

#include <algorithm>

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

json::value time_or_null(const std::optional<std::int64_t>& t) {
  return t ? json::value(core::format_utc(*t)) : json::value(nullptr);
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

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
          {"audit_bodies", opt(k.audit_bodies)},
          {"created_at", core::format_utc(k.created_at)},
          {"updated_at", core::format_utc(k.updated_at)}};
}

}  // namespace

void AdminApi::Impl::read_key_fields(Body& b, store::ApiKeyRecord& k, bool create) {
  if (auto name = b.string("name")) {
    if (!printable_text(*name, 1, 200)) {
      fail(Errc::InvalidValue, "'name' must be 1 to 200 characters without control characters.", "name");
    }
    k.name = std::move(*name);
  } else if (create) {
    Body::missing("name");
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
  if (b.is_null("audit_bodies")) {
    k.audit_bodies.reset();
  } else if (auto mode = b.string("audit_bodies")) {
    core::AuditBodies parsed{};
    if (!core::parse_audit_bodies(*mode, parsed)) {
      fail(Errc::InvalidValue, "'audit_bodies' must be full, metadata, redacted or null.", "audit_bodies");
    }
    k.audit_bodies = std::move(*mode);
  }
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
  if (!k) not_found("API key", id);
  return std::move(*k);
}

Response AdminApi::Impl::list_keys(Request& r) {
  store::KeyQuery q;
  q.page.limit = page_limit(r.query);
  q.page.after = page_cursor(r.query);
  if (const auto e = query_value(r.query, "enabled"); !e.empty()) {
    if (e != "true" && e != "false") fail(Errc::InvalidValue, "'enabled' must be true or false.", "enabled");
    q.enabled = e == "true";
  }
  q.name_contains = query_value(r.query, "name");
  q.tag = query_value(r.query, "tag");
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
  return ok_with_secret(key_view(k), "key", fresh.plaintext, 201);
}

Response AdminApi::Impl::get_key(Request& r) { return ok(key_view(key_or_404(r.params[0]))); }

Response AdminApi::Impl::patch_key(Request& r) {
  auto k = key_or_404(r.params[0]);
  const json::value before = key_view(k);
  Body b(r.body);
  read_key_fields(b, k, false);
  auto a = audit(r, "update", "key", k.id, before, key_view(k));
  if (!st().update_key(k, &a)) not_found("API key", k.id);
  publish();
  return ok(key_view(k));
}

Response AdminApi::Impl::delete_key(Request& r) {
  const auto k = key_or_404(r.params[0]);
  auto a = audit(r, "delete", "key", k.id, key_view(k), nullptr);
  if (!st().delete_key(k.id, &a)) not_found("API key", k.id);
  publish();
  return deleted(k.id, "api_key");
}

Response AdminApi::Impl::regenerate_key(Request& r) {
  if (!r.body.empty()) Body(r.body).finish();
  auto k = key_or_404(r.params[0]);
  const json::value before = key_view(k);
  const auto fresh = auth::generate_api_key();
  k.key_hash = fresh.hash_hex;
  k.prefix = fresh.display_prefix;
  auto a = audit(r, "regenerate", "key", k.id, before, key_view(k));
  if (!st().update_key(k, &a)) not_found("API key", k.id);
  publish();
  return ok_with_secret(key_view(k), "key", fresh.plaintext);
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

}  // namespace llmgw::admin
