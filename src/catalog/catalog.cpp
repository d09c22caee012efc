#include "catalog/catalog.hpp"

#include "pricing/resolve.hpp"
#include "providers/registry/registry.hpp"

#include <algorithm>

namespace llmgw::catalog {
namespace {

pricing::PriceSource price_source(std::string_view source) noexcept {
  if (source == "admin") {
    return pricing::PriceSource::Admin;
  }
  if (source == "override") {
    return pricing::PriceSource::Override;
  }
  return pricing::PriceSource::Catalog;
}

}  // namespace

std::unordered_map<std::string, std::shared_ptr<const pricing::ModelPricing>> build_prices(
    const store::CatalogData& data) {
  std::unordered_map<std::string, std::vector<pricing::PriceComponent>> rows;
  for (const auto& r : data.prices) {
    auto d = pricing::parse_direction(r.direction);
    auto m = pricing::parse_modality(r.modality);
    auto u = pricing::parse_unit(r.unit);
    auto t = pricing::parse_tier(r.tier);
    auto p = core::Money::parse(r.price);
    if (!d || !m || !u || !t || !p) {
      continue;
    }
    rows[r.model_name].push_back({*d, *m, *u, *t, *p, price_source(r.source)});
  }
  std::unordered_map<std::string, const store::PriceModelRecord*> meta;
  for (const auto& pm : data.price_models) {
    meta.emplace(pm.name, &pm);
  }
  std::unordered_map<std::string, std::shared_ptr<const pricing::ModelPricing>> out;
  for (auto& [name, comps] : rows) {
    auto mp = std::make_shared<pricing::ModelPricing>();
    mp->name = name;
    if (auto it = meta.find(name); it != meta.end()) {
      mp->max_input_tokens = it->second->max_input_tokens;
      mp->max_output_tokens = it->second->max_output_tokens;
    }
    mp->components = pricing::effective_components(comps);
    out.emplace(name, std::move(mp));
  }
  return out;
}

std::shared_ptr<const pricing::ModelPricing> Snapshot::resolve_pricing(
    core::ProviderType type, std::string_view model) const {
  for (const auto& name : pricing::pricing_candidates(type, model)) {
    if (auto p = prices_.find(name); p != prices_.end()) {
      return p->second;
    }
  }
  return nullptr;
}

const pricing::ModelPricing* Snapshot::find_pricing(std::string_view name) const noexcept {
  auto it = prices_.find(std::string(name));
  return it == prices_.end() ? nullptr : it->second.get();
}

std::shared_ptr<const Snapshot> Snapshot::build(const store::CatalogData& data,
                                                const SeriesIds& series) {
  auto snap = std::make_shared<Snapshot>();
  snap->version_ = data.version;
  snap->prices_ = build_prices(data);
  std::unordered_map<std::string, std::shared_ptr<const Provider>> providers;
  for (const auto& p : data.providers) {
    auto prov = std::make_shared<Provider>();
    prov->name = p.config.name;
    if (!p.enabled || p.credential_unreadable) {
      prov->type = p.config.type;
      prov->unavailable = !p.enabled ? "disabled" : "credentials unreadable";
      providers.emplace(p.config.name, std::move(prov));
      continue;
    }
    prov->type = p.config.type;
    prov->base_url = p.config.base_url;
    prov->connect_timeout = p.config.connect_timeout;
    prov->first_byte_timeout = p.config.first_byte_timeout;
    prov->idle_timeout = p.config.idle_timeout;
    if (prov->type != core::ProviderType::Echo) {
      try {
        prov->adapter = providers::make_adapter(p.config);
      } catch (const std::exception& e) {
        // Checked on the way in; what can still fail here (a credentials file that went
        // away) makes the provider's models answer 503 with the reason in the log.
        prov->unavailable = std::string("settings unusable: ") + e.what();
        providers.emplace(p.config.name, std::move(prov));
        continue;
      }
      prov->origin = prov->adapter->origin();
      prov->static_headers = "Host: " + prov->origin.host_header + "\r\nUser-Agent: llmgw/0.1\r\n";
    }
    providers.emplace(p.config.name, std::move(prov));
  }
  for (const auto& m : data.models) {
    auto it = providers.find(m.config.provider);
    if (!m.enabled || it == providers.end()) {
      continue;
    }
    Route r;
    r.name = m.config.name;
    r.model = m.config.name;
    r.upstream_model = m.config.upstream_model.empty() ? m.config.name : m.config.upstream_model;
    r.provider = it->second;
    r.model_rpm = m.config.rpm_limit;
    r.model_tpm = m.config.tpm_limit;
    r.pricing_explicit = !m.config.pricing_model.empty();
    if (r.pricing_explicit) {
      if (auto p = snap->prices_.find(m.config.pricing_model); p != snap->prices_.end()) {
        r.pricing = p->second;
      }
    } else {
      r.pricing = snap->resolve_pricing(r.provider->type, r.upstream_model);
    }
    if (series) {
      r.metrics_target = series(r.model, r.provider->name);
    }
    snap->routes_.emplace(r.name, std::move(r));
  }
  for (const auto& a : data.aliases) {
    auto it = snap->routes_.find(a.config.model);
    if (it == snap->routes_.end() || it->second.is_alias ||
        snap->routes_.contains(a.config.alias)) {
      continue;
    }
    Route r = it->second;  // the model's provider, prices and limits
    r.name = a.config.alias;
    r.is_alias = true;
    snap->routes_.emplace(r.name, std::move(r));
  }
  for (const auto& [name, route] : snap->routes_) {
    if (route.provider->unavailable.empty()) {
      snap->listing_.push_back(&route);
    }
  }
  std::sort(snap->listing_.begin(), snap->listing_.end(), [](const Route* a, const Route* b) {
    return a->is_alias != b->is_alias ? !a->is_alias : a->name < b->name;
  });
  return snap;
}

const Route* Snapshot::find(std::string_view name) const noexcept {
  auto it = routes_.find(name);
  return it == routes_.end() ? nullptr : &it->second;
}

}  // namespace llmgw::catalog
