// Writes a schema-version-5 database with the store of commit 7758ddf (issue 20's fixture).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "admin/secrets.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace llmgw;

static void fill(store::Store& s, std::shared_ptr<const store::SecretCodec> codec) {
  s.migrate();
  core::GatewayConfig cfg;
  core::ProviderConfig openai{"openai-main", core::ProviderType::OpenAI, "https://api.openai.com/v1",
                              "sk-fixture-openai-clear"};
  core::ProviderConfig compat{"local-vllm", core::ProviderType::OpenAICompatible,
                              "http://127.0.0.1:8000/v1", "fixture-compat-key-clear",
                              std::chrono::milliseconds(2500), std::chrono::milliseconds(30000),
                              std::chrono::milliseconds(45000)};
  core::ProviderConfig echo{"echo", core::ProviderType::Echo, "", ""};
  cfg.providers = {openai, compat, echo};
  cfg.models = {{"gpt-4o-mini", "openai-main", "gpt-4o-mini", ""},
                {"llama", "local-vllm", "meta-llama/Llama-3.1-8B-Instruct", "", 60, 100000},
                {"echo-model", "echo", "", ""}};
  cfg.aliases = {{"fast", "gpt-4o-mini"}};
  s.apply_config(cfg);  // written in clear: no codec yet
  s.set_secret_codec(codec);
  store::ProviderRecord sealed;
  sealed.id = "prov_fixture0000000a";
  sealed.config = core::ProviderConfig{"sealed-admin", core::ProviderType::OpenAICompatible,
                                       "https://llm.internal.example/v1", "sk-fixture-sealed-admin",
                                       std::chrono::milliseconds(1000),
                                       std::chrono::milliseconds(60000),
                                       std::chrono::milliseconds(90000)};
  s.insert_provider(sealed, nullptr);
  store::ProviderRecord disabled;
  disabled.id = "prov_fixture0000000b";
  disabled.enabled = false;
  disabled.config = core::ProviderConfig{"disabled-admin", core::ProviderType::OpenAI,
                                         "https://api.openai.com/v1", ""};
  s.insert_provider(disabled, nullptr);
  store::ApiKeyRecord key;
  key.id = "key_fixture00000001";
  key.key_hash = std::string(64, 'a');
  key.prefix = "sk-llmgw-Fixt";
  key.name = "fixture key";
  key.budget_usd = "25.00";
  key.rpm_limit = 120;
  key.tags = {"team-a"};
  key.metadata = {{"owner", "fixtures"}};
  s.insert_key(key, nullptr);
  std::vector<store::UsageRecord> usage;
  for (int i = 0; i < 3; ++i) {
    store::UsageRecord r;
    r.request_id = "req_fixture" + std::to_string(i);
    r.key_id = key.id;
    r.model = "fast";
    r.upstream_model = "gpt-4o-mini";
    r.provider = "openai-main";
    r.endpoint = "chat.completions";
    r.status = 200;
    r.prompt_tokens = 100 + i;
    r.completion_tokens = 20;
    r.cost_usd = "0.000027";
    r.cost_status = "exact";
    r.created_at_us = 1'780'000'000'000'000 + i;
    usage.push_back(r);
  }
  s.insert_usage(usage);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: gen SQLITE_PATH POSTGRES_URL\n";
    return 2;
  }
  auto key = admin::parse_key_text("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  auto codec = std::make_shared<admin::MasterKeyCodec>(std::vector<auth::Bytes>{*key});
  {
    store::SqliteStore s(argv[1]);
    fill(s, codec);
    std::cout << "sqlite schema " << s.schema_version() << "\n";
  }
  {
    store::PgStore s(argv[2]);
    fill(s, codec);
    std::cout << "postgres schema " << s.schema_version() << "\n";
  }
}
