#pragma once
// A usage record with every field set (and some of them varying with `i`), for the usage
// writer, codec and queue tests.

#include "store/store.hpp"

#include <string>

namespace llmgw::events::test {

inline store::UsageRecord record(int i) {
  store::UsageRecord r;
  r.request_id = "req-" + std::to_string(i);
  r.client_request_id = i % 2 == 0 ? "client \"" + std::to_string(i) + "\" é\n" : "";
  r.key_id = "key_" + std::to_string(i % 3);
  r.model = "gpt-4o-mini";
  r.upstream_model = "gpt-4o-mini-2024-07-18";
  r.provider = "openai";
  r.endpoint = i % 2 == 0 ? "chat.completions" : "embeddings";
  r.pricing_model = "gpt-4o-mini";
  r.service_tier = "default";
  r.status = 200 + i % 2;
  r.prompt_tokens = i;
  r.completion_tokens = 2 * i;
  r.cached_tokens = i / 2;
  r.reasoning_tokens = i / 3;
  r.cache_write_tokens = i / 4;
  r.cost_usd = i % 10 == 0 ? "" : "0.001";
  r.cost_status = i % 10 == 0 ? "unpriced" : "exact";
  r.prices_json = i % 10 == 0 ? "" : R"([{"direction":"input","price":"0.15"}])";
  r.overhead_us = 17;
  r.upstream_us = 1'000 + i;
  r.stream = i % 3 == 0;
  r.usage_reported = i % 5 != 0;
  r.created_at_us = 1'764'201'600'000'000 + i;
  return r;
}

}  // namespace llmgw::events::test
