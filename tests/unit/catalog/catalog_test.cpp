#include "catalog/catalog.hpp"

#include <gtest/gtest.h>

namespace llmgw::catalog {
namespace {

store::CatalogData sample() {
  store::CatalogData d;
  d.version = 7;
  store::ProviderRecord p;
  p.config.name = "openai-main";
  p.config.type = core::ProviderType::OpenAI;
  p.config.base_url = "https://api.openai.com/v1";
  p.config.api_key = "sk-upstream";
  d.providers.push_back(p);
  store::ProviderRecord off = p;
  off.config.name = "off";
  off.enabled = false;
  d.providers.push_back(off);
  store::ModelRecord m;
  m.config = {"gpt-4o-mini", "openai-main", "gpt-4o-mini-2024-07-18", ""};
  d.models.push_back(m);
  store::ModelRecord dangling;
  dangling.config = {"orphan", "off", "orphan", ""};
  d.models.push_back(dangling);
  d.aliases.push_back({{"fast", "gpt-4o-mini"}, "config"});
  d.aliases.push_back({{"ghost", "orphan"}, "config"});
  return d;
}

TEST(Snapshot, ResolvesModelsAndAliasesToTheUpstream) {
  const auto s = Snapshot::build(sample());
  EXPECT_EQ(s->version(), 7);
  const Route* r = s->find("fast");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->is_alias);
  EXPECT_EQ(r->model, "gpt-4o-mini");
  EXPECT_EQ(r->upstream_model, "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(r->provider->origin.host, "api.openai.com");
  EXPECT_EQ(r->provider->origin.port, 443);
  EXPECT_TRUE(r->provider->origin.tls);
  EXPECT_EQ(r->provider->origin.base_path, "/v1");
  // The credential is the adapter's: it signs each request (tests/data/providers/).
  EXPECT_EQ(r->provider->static_headers.find("sk-upstream"), std::string::npos);
  ASSERT_NE(r->provider->adapter, nullptr);
  EXPECT_NE(r->provider->static_headers.find("Host: api.openai.com\r\n"), std::string::npos);
}

TEST(Snapshot, MarksTheModelsOfADisabledProviderUnavailableAndDoesNotListThem) {
  const auto s = Snapshot::build(sample());
  for (const char* name : {"orphan", "ghost"}) {
    const Route* r = s->find(name);
    ASSERT_NE(r, nullptr) << name;  // known (503), not unknown (404)
    EXPECT_EQ(r->provider->unavailable, "disabled") << name;
    EXPECT_TRUE(r->provider->static_headers.empty()) << name;
  }
  EXPECT_TRUE(s->find("gpt-4o-mini")->provider->unavailable.empty());
  ASSERT_EQ(s->listing().size(), 2u);
  EXPECT_EQ(s->listing()[0]->name, "gpt-4o-mini");  // models before aliases
  EXPECT_EQ(s->listing()[1]->name, "fast");
}

TEST(Snapshot, MarksProvidersWhoseCredentialDoesNotOpenUnavailable) {
  auto data = sample();
  for (auto& p : data.providers) {
    p.credential_unreadable = true;  // sealed under a master key this process lacks
    p.config.api_key.clear();
  }
  data.providers[1].enabled = true;
  const auto s = Snapshot::build(data);
  const Route* r = s->find("gpt-4o-mini");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->provider->unavailable, "credentials unreadable");
  EXPECT_TRUE(r->provider->static_headers.empty());
  EXPECT_TRUE(s->listing().empty());
}

TEST(Snapshot, RoutesCarryTheLimitsOfTheModelTheyResolveTo) {
  auto data = sample();
  data.models[0].config.rpm_limit = 500;
  data.models[0].config.tpm_limit = 90'000;
  store::ModelRecord tpm_only;
  tpm_only.config = {"gpt-4o", "openai-main", "gpt-4o", ""};
  tpm_only.config.tpm_limit = 1'000;
  data.models.push_back(tpm_only);
  data.aliases.push_back({{"smart", "gpt-4o"}, "config"});
  const auto s = Snapshot::build(data);

  for (const char* name : {"gpt-4o-mini", "fast"}) {
    const Route* r = s->find(name);
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(r->model, "gpt-4o-mini") << name;
    EXPECT_EQ(r->model_rpm, 500) << name;
    EXPECT_EQ(r->model_tpm, 90'000) << name;
  }
  for (const char* name : {"gpt-4o", "smart"}) {
    const Route* r = s->find(name);
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(r->model_rpm, std::nullopt) << name;
    EXPECT_EQ(r->model_tpm, 1'000) << name;
  }
  // Without limits in the data, no route has any.
  const auto plain = Snapshot::build(sample());
  for (const Route* r : plain->listing()) {
    EXPECT_EQ(r->model_rpm, std::nullopt) << r->name;
    EXPECT_EQ(r->model_tpm, std::nullopt) << r->name;
  }
}

TEST(BuildPrices, AdminRowWinsOverOverrideAndCatalogRows) {
  store::CatalogData d;
  // As load_catalog orders them: by component, then source ("admin" < "catalog" < "override").
  d.prices = {{"gpt-4o", "input", "text", "1m_tokens", "default", "1", "admin"},
              {"gpt-4o", "input", "text", "1m_tokens", "default", "2.5", "catalog"},
              {"gpt-4o", "input", "text", "1m_tokens", "default", "2", "override"},
              {"gpt-4o", "output", "text", "1m_tokens", "default", "10", "catalog"},
              {"gpt-4o", "output", "text", "1m_tokens", "default", "8", "override"}};
  const auto prices = build_prices(d);
  ASSERT_EQ(prices.count("gpt-4o"), 1u);
  const auto& components = prices.at("gpt-4o")->components;
  ASSERT_EQ(components.size(), 2u);
  EXPECT_EQ(components[0].direction, pricing::Direction::Input);
  EXPECT_EQ(components[0].source, pricing::PriceSource::Admin);
  EXPECT_EQ(components[0].price.to_string(), "1");
  EXPECT_EQ(components[1].source, pricing::PriceSource::Override);
  EXPECT_EQ(components[1].price.to_string(), "8");
}

TEST(Catalog, PublishReplacesTheSnapshotReadersHold) {
  Catalog c;
  EXPECT_EQ(c.current()->find("fast"), nullptr);
  const auto before = c.current();
  c.publish(Snapshot::build(sample()));
  EXPECT_NE(c.current()->find("fast"), nullptr);
  EXPECT_EQ(before->find("fast"), nullptr);  // an in-flight request keeps its snapshot
}

}  // namespace
}  // namespace llmgw::catalog
