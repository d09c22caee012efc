// /admin/models: model routes, and /admin/models/{id}/prices: the prices they are billed at.
#include "admin/handlers.hpp"

#include "core/ids.hpp"
#include "core/money.hpp"

#include <map>
#include <set>
#include <tuple>

namespace llmgw::admin {

namespace json = boost::json;
using core::Errc;

namespace {

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

json::object price_view(const store::PriceComponentRecord& r) {
  return {{"direction", r.direction}, {"modality", r.modality}, {"unit", r.unit},
          {"tier", r.tier},           {"price", r.price},       {"source", r.source}};
}

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

void AdminApi::Impl::read_model_fields(Body& b, store::ModelRecord& m, bool create) {
  if (auto name = b.string("name")) {
    if (!model_name(*name)) {
      fail(Errc::InvalidValue, "'name' must be 1 to 200 characters without spaces or control characters.",
           "name");
    }
    m.config.name = std::move(*name);
  } else if (create) {
    Body::missing("name");
  }
  if (auto provider = b.string("provider")) {
    if (!identifier(*provider, 64)) {
      fail(Errc::InvalidValue, "'provider' must name a provider.", "provider");
    }
    m.config.provider = std::move(*provider);
  } else if (create) {
    Body::missing("provider");
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
  if (!m) not_found("model", id);
  return std::move(*m);
}

Response AdminApi::Impl::list_models(Request& r) {
  auto rows = st().list_models();
  if (const auto provider = query_value(r.query, "provider"); !provider.empty()) {
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
    if (!st().update_model(m, &a)) not_found("model", m.id);
  } catch (const store::ReferenceError& e) {
    fail(Errc::InvalidValue, e.what(), "provider");
  }
  publish();
  return ok(model_view(m));
}

Response AdminApi::Impl::delete_model(Request& r) {
  const auto m = model_or_404(r.params[0]);
  auto a = audit(r, "delete", "model", m.id, model_view(m), nullptr);
  if (!st().delete_model(m.id, &a)) not_found("model", m.id);
  publish();
  return deleted(m.id, "model_route");
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
  if (list == nullptr) Body::missing("components");
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

}  // namespace llmgw::admin
