/// store_bench: Store::insert_usage, the usage writer's only database call, on SqliteStore (a
/// migrated file under $TMPDIR) and, when LLMGW_TEST_DATABASE_URL is set, on PgStore (a schema
/// of its own in that database, dropped at the end). Batches of 1, 64 and 512 realistic rows:
/// four keys × three models (so every batch upserts spend_daily rows), every request id
/// unique. Each run starts on an empty database. Reports rows/s (wall clock) as a counter,
/// with min / median / max over the repetitions (--benchmark_repetitions).
///
///   bench/store.sh                          builds, starts PostgreSQL, runs this
///   build/release/bench/micro/store_bench   SQLite only unless LLMGW_TEST_DATABASE_URL is set

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace llmgw::store::bench {
namespace {

constexpr std::array<std::int64_t, 3> kBatchSizes{1, 64, 512};
constexpr std::array<std::string_view, 4> kKeys{"key_00000000000000a1", "key_00000000000000b2",
                                                "key_00000000000000c3", "key_00000000000000d4"};
constexpr std::array<std::string_view, 3> kModels{"gpt-4o-mini", "gpt-4o", "claude-sonnet"};
/// "req_" and 16 hex digits, like core's ids.
constexpr std::size_t kRequestIdHexDigits = 16;
/// A fixed instant (2026-01-15 UTC) so that every row falls on one spend day.
constexpr std::int64_t kCreatedAtUs = 1'768'435'200'000'000;
/// Every tenth row unpriced, as when a model has no price.
constexpr std::size_t kUnpricedEvery = 10;

/// One usage record as the gateway writes it (n varies keys, models, tokens and flags).
UsageRecord sample_record(std::size_t n) {
  UsageRecord r;
  r.request_id = "req_" + std::string(kRequestIdHexDigits, '0');
  r.client_request_id = n % 2 == 0 ? "client-" + std::to_string(n) : "";
  r.key_id = kKeys[n % kKeys.size()];
  r.model = kModels[(n / kKeys.size()) % kModels.size()];
  r.upstream_model = r.model + "-2025-01-01";
  r.provider = n % 3 == 0 ? "anthropic" : "openai";
  r.endpoint = "chat.completions";
  r.pricing_model = r.model;
  r.service_tier = "default";
  r.status = 200;
  r.prompt_tokens = static_cast<std::int64_t>(200 + n % 1'000);
  r.completion_tokens = static_cast<std::int64_t>(50 + n % 300);
  r.cached_tokens = static_cast<std::int64_t>(n % 128);
  r.reasoning_tokens = 0;
  r.cache_write_tokens = 0;
  const bool unpriced = n % kUnpricedEvery == 0;
  r.cost_usd = unpriced ? "" : "0.000" + std::to_string(100 + n % 900);
  r.cost_status = unpriced ? "unpriced" : "exact";
  r.prices_json =
      unpriced ? ""
               : R"([{"d":"input","m":"text","u":"1m_tokens","t":"default","p":"0.15","q":)" +
                     std::to_string(r.prompt_tokens) +
                     R"(},{"d":"output","m":"text","u":"1m_tokens","t":"default","p":"0.6","q":)" +
                     std::to_string(r.completion_tokens) + "}]";
  r.overhead_us = 180;
  r.upstream_us = static_cast<std::int64_t>(250'000 + n % 50'000);
  r.stream = n % 2 == 1;
  r.usage_reported = true;
  r.created_at_us = kCreatedAtUs + static_cast<std::int64_t>(n);
  return r;
}

/// Writes `id` in hex over the 16 digits after "req_" (in place: no allocation in the loop).
void set_request_id(UsageRecord& r, std::uint64_t id) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  for (std::size_t i = 0; i < kRequestIdHexDigits; ++i) {
    r.request_id[r.request_id.size() - 1 - i] = kHex[id & 0xf];
    id >>= 4;
  }
}

/// The benchmark loop shared by both stores: one insert_usage call per iteration.
void insert_batches(benchmark::State& state, Store& store) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  std::vector<UsageRecord> batch;
  batch.reserve(batch_size);
  for (std::size_t i = 0; i < batch_size; ++i) {
    batch.push_back(sample_record(i));
  }
  std::uint64_t next_id = 0;
  for (auto _ : state) {
    // Rewriting 16 characters per row costs nanoseconds; an insert costs microseconds.
    for (auto& r : batch) {
      set_request_id(r, next_id++);
    }
    store.insert_usage(batch);
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(next_id), benchmark::Counter::kIsRate);
  if (store.count_usage() != static_cast<std::int64_t>(next_id)) {
    state.SkipWithError("the store holds fewer usage rows than were inserted");
  }
}

std::string random_hex() {
  std::random_device device;
  std::mt19937_64 generator((static_cast<std::uint64_t>(device()) << 32) ^ device());
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(generator()));
  return text;
}

/// A fresh directory under $TMPDIR, removed with its contents.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "llmgw_store_bench_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed under " +
                               std::filesystem::temp_directory_path().string());
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// A schema of its own in the database of `server_url` (so that runs never see each other's
/// rows), and the URL a PgStore reaches it by. Dropped with everything in it at the end.
class PgSchema {
 public:
  explicit PgSchema(const std::string& server_url)
      : admin_(PQconnectdb(server_url.c_str())), name_("bench_" + random_hex()) {
    if (PQstatus(admin_) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(admin_);
      PQfinish(admin_);
      throw std::runtime_error("cannot connect to LLMGW_TEST_DATABASE_URL: " + message);
    }
    PQsetNoticeProcessor(
        admin_, [](void*, const char*) {}, nullptr);
    exec("CREATE SCHEMA " + name_);
    // %3D is '=' inside the options value. A URL, as scripts/pg.sh gives; a key=value
    // conninfo string takes the same pair after a space.
    const std::string parameters = "options=-csearch_path%3D" + name_;
    if (is_postgres_url(server_url)) {
      url_ = server_url + (server_url.find('?') == std::string::npos ? "?" : "&") + parameters;
    } else {
      url_ = server_url + " options=-csearch_path=" + name_;
    }
  }
  ~PgSchema() {
    try {
      exec("DROP SCHEMA " + name_ + " CASCADE");
    } catch (const std::exception& e) {
      std::cerr << "store_bench: " << e.what() << '\n';
    }
    PQfinish(admin_);
  }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;

  [[nodiscard]] const std::string& url() const noexcept { return url_; }

 private:
  void exec(const std::string& sql) {
    PGresult* result = PQexec(admin_, sql.c_str());
    const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (!ok) {
      throw std::runtime_error("`" + sql + "` failed: " + PQerrorMessage(admin_));
    }
  }

  PGconn* admin_;
  std::string name_;
  std::string url_;
};

void sqlite_insert_usage(benchmark::State& state) {
  const ScratchDir dir;
  SqliteStore store(dir.file("llmgw.db"));
  store.migrate();
  insert_batches(state, store);
}

void postgres_insert_usage(benchmark::State& state, const std::string& server_url) {
  const PgSchema schema(server_url);
  PgStore store(schema.url());
  store.migrate();
  insert_batches(state, store);
}

double min_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}

double max_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
}

/// Wall clock (PostgreSQL's work is in another process), microseconds per batch, and the
/// spread of the repetitions: on a shared machine the median alone hides the noise.
void configure(benchmark::internal::Benchmark* b) {
  for (const std::int64_t size : kBatchSizes) {
    b->Arg(size);
  }
  b->ArgName("batch")
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond)
      ->ComputeStatistics("min", min_of)
      ->ComputeStatistics("max", max_of);
}

}  // namespace
}  // namespace llmgw::store::bench

int main(int argc, char** argv) {
  using namespace llmgw::store::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  configure(benchmark::RegisterBenchmark("sqlite_insert_usage", sqlite_insert_usage));
  const char* server_url = std::getenv("LLMGW_TEST_DATABASE_URL");
  if (server_url != nullptr && *server_url != '\0') {
    configure(benchmark::RegisterBenchmark("postgres_insert_usage", postgres_insert_usage,
                                           std::string(server_url)));
  } else {
    std::cerr << "store_bench: LLMGW_TEST_DATABASE_URL is not set: PostgreSQL is not measured"
                 " (bench/store.sh starts a server)\n";
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
