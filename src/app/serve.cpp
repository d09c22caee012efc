#include "admin/admin_api.hpp"
#include "admin/secrets.hpp"
#include "app/commands.hpp"
#include "app/default_catalog.hpp"
#include "app/health.hpp"
#include "app/prices.hpp"
#include "app/store_factory.hpp"
#include "auth/key_cache.hpp"
#include "catalog/catalog.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "events/usage_writer.hpp"
#include "http/server.hpp"
#include "http/upstream.hpp"
#include "limits/worker_limits.hpp"
#include "metrics/registry.hpp"
#include "events/archive/make_sink.hpp"
#include "events/audit/audit_log.hpp"
#include "proxy/config_reloader.hpp"
#include "proxy/proxy.hpp"
#include "redis/audit_queue.hpp"
#include "redis/redis_limits.hpp"
#include "redis/usage_queue.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <csignal>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <pthread.h>
#include <sys/resource.h>

namespace llmgw::app {

namespace {

constexpr std::size_t kBlockingThreads = 2;

/// SIGTERM/SIGINT are blocked in every thread and taken by `sigwait` in the main thread, so
/// no handler runs on an I/O thread.
sigset_t block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return set;
}

/// A gateway holds two sockets per proxied call: lift the soft descriptor limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/// This data directory's replica id (DATA_DIR/replica.id, created once): what tells its spools
/// apart from other replicas' in a shared database.
std::string replica_id(const std::string& data_dir) {
  const std::string path = data_dir + "/replica.id";
  if (std::ifstream in(path); in) {
    std::string id;
    if (std::getline(in, id) && id.size() == 20 && id.starts_with("rep_")) {
      return id;
    }
    throw std::runtime_error(path + ": not a replica id (rep_ + 16 hex digits)");
  }
  const std::string id = core::new_id("rep_");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush()) {
      throw std::runtime_error(tmp + ": cannot be written");
    }
  }
  std::filesystem::rename(tmp, path);
  return id;
}

std::optional<redis::Options> redis_options(const core::Settings& s) {
  if (s.redis_address.empty()) {
    return std::nullopt;
  }
  redis::Options o;
  if (!redis::Options::parse_address(s.redis_address, o)) {
    throw core::ConfigError("environment: REDIS_ADDRESS: expected host:port");
  }
  o.password = s.redis_password;
  o.db = s.redis_db;
  return o;
}

}  // namespace

int run_serve(const ServeOptions& opts) {
  const core::Settings& s = opts.settings;
  const sigset_t signals = block_shutdown_signals();
  core::init_logging(s.log_level);
  raise_fd_limit();
  int status = 0;
  try {
    std::filesystem::create_directories(s.data_dir);
    // The spool and the master key stay in data_dir (per process) whichever store is used.
    const auto owned_store = open_store(s);
    store::Store& store = *owned_store;
    const int schema = store.migrate();
    // Secrets first: applying the configuration file writes provider credentials, sealed.
    // The lock keeps a master-key rotation from running under this process.
    const int key_lock = admin::lock_master_key(s.data_dir, /*exclusive=*/false);
    if (key_lock < 0) {
      throw std::runtime_error("a master-key rotation is running on " + s.data_dir);
    }
    if (admin::finish_rotation(s.data_dir, store)) {
      core::LogLine(core::LogLevel::Warn, "interrupted master-key rotation completed").emit();
    }
    const auto master_keys = admin::load_master_keys(s.data_dir, /*create=*/true);
    store.set_secret_codec(std::make_shared<admin::MasterKeyCodec>(master_keys.keys));
    // Before anything is sealed or signed: a replica holding other secrets than the rest
    // stops here (the configuration file below would reseal credentials with its key).
    admin::verify_master_key(store, master_keys);
    const auth::Bytes jwt_secret = admin::load_jwt_secret(s.data_dir);
    admin::verify_jwt_secret(store, jwt_secret, admin::jwt_secret_from_environment());
    if (admin::bootstrap_admin_from_environment(store)) {
      core::LogLine(core::LogLevel::Info, "bootstrap admin created")
          .field("email", std::getenv("BOOTSTRAP_ADMIN_EMAIL"))
          .emit();
    }
    if (store.count_price_models() == 0) {
      const auto s = import_catalog(store, default_catalog_json(), {});
      core::LogLine(core::LogLevel::Info, "default price catalog imported")
          .field("models", static_cast<std::uint64_t>(s.result.added.size()))
          .emit();
    }
    if (!opts.config_file.empty()) {
      const auto cfg = core::load_config_file(opts.config_file);
      const auto overrides = price_overrides(cfg, opts.config_file);
      store.apply_config(cfg);
      store.replace_price_overrides(overrides);
      core::LogLine(core::LogLevel::Info, "configuration file applied")
          .field("file", opts.config_file)
          .field("providers", static_cast<std::uint64_t>(cfg.providers.size()))
          .field("models", static_cast<std::uint64_t>(cfg.models.size()))
          .field("aliases", static_cast<std::uint64_t>(cfg.aliases.size()))
          .emit();
    }

    catalog::Catalog catalog;
    auth::KeyInvalidations key_invalidations;
    metrics::Registry metrics;
    proxy::ConfigReloader reloader(
        store, catalog, key_invalidations, s.reload_interval,
        [&metrics](std::string_view model, std::string_view provider) {
          return metrics.target(model, provider);
        });
    reloader.start();

    // With Redis (or a shared database), this data directory's replica id names its spools'
    // marks and its usage-queue worker.
    const std::string replica = s.database_url.empty() && s.redis_address.empty()
                                    ? std::string()
                                    : replica_id(s.data_dir);
    events::UsageWriter usage(store, {.batch_size = s.usage_batch_size,
                                      .flush_interval = s.usage_flush_interval,
                                      .queue_limit = s.usage_queue_limit,
                                      .dead_letter_path = s.data_dir + "/spool/dead-usage.jsonl"});
    {
      // One crash-safe spool per I/O thread, plus any left by an earlier run with more threads:
      // all are replayed before serving.
      std::vector<std::unique_ptr<events::UsageSpool>> spools;
      const std::string dir = s.data_dir + "/spool";
      // A shared database holds the marks of every replica's spools: name them per replica.
      const std::string prefix = s.database_url.empty() ? std::string() : replica + "/";
      const unsigned producers = s.usage_spool_bytes == 0 ? 0 : s.effective_threads();
      for (unsigned i = 0;; ++i) {
        const std::string path = dir + "/usage-" + std::to_string(i) + ".spool";
        if (i >= producers && !std::filesystem::exists(path)) {
          break;
        }
        spools.push_back(events::UsageSpool::open(
            path, s.usage_spool_bytes == 0 ? (4u << 20) : s.usage_spool_bytes, prefix));
      }
      usage.attach_spools(std::move(spools), producers);
      if (s.usage_queue == "redis") {
        usage.attach_sink(std::make_unique<redis::UsageQueue>(*redis_options(s), replica));
      }
      if (const std::size_t replayed = usage.start(); replayed > 0) {
        core::LogLine(core::LogLevel::Warn, "usage records replayed from the spool")
            .field("records", static_cast<std::uint64_t>(replayed))
            .emit();
      }
    }

    // Every replica drains the shared usage queue into the store (its own pushes and those
    // of replicas that are gone).
    // Also with LLMGW_USAGE_QUEUE=direct: what the queue still holds from before is written.
    std::unique_ptr<redis::UsageQueueWorker> queue_worker;
    if (!s.redis_address.empty()) {
      queue_worker = std::make_unique<redis::UsageQueueWorker>(
          store,
          std::make_unique<redis::UsageQueue>(*redis_options(s), replica,
                                               s.usage_lease),
          redis::UsageQueueWorkerOptions{.batch_size = s.usage_batch_size});
      queue_worker->start();
    }

    // The audit log: a spool per I/O thread, archived by a background thread into the local
    // directory (DATA_DIR/audit) or, with LOGGING_SINK_ENABLED, S3. In the distributed shape
    // (LLMGW_USAGE_QUEUE=redis, as for the usage records) that thread pushes the spooled
    // records to the Redis audit queue instead, and every replica's drain worker makes the
    // objects.
    const audit::Redactor redactor = [&s] {
      try {
        return s.archive.redact_paths.empty() ? audit::Redactor()
                                              : audit::Redactor(s.archive.redact_paths);
      } catch (const std::invalid_argument& e) {
        throw core::ConfigError(std::string("environment: LOGGING_REDACT_PATHS: ") + e.what());
      }
    }();
    const auto name_for = [a = s.archive](std::chrono::system_clock::time_point t) {
      return archive::object_name(a, t);
    };
    const bool audit_queued = s.usage_queue == "redis";
    audit::AuditLog audit_log(
        {.spool_dir = s.data_dir + "/spool",
         .producers = s.effective_threads(),
         .flush_size = s.archive.flush_size,
         .flush_interval = s.archive.flush_interval,
         .stop_grace = s.shutdown_grace},
        audit_queued ? nullptr : archive::make_archive_sink(s), name_for);
    if (audit_queued) {
      audit_log.attach_buffer(std::make_unique<redis::AuditQueuePusher>(
          redis::make_audit_queue(*redis_options(s), replica, s.usage_lease)));
    }
    // Also when this replica does not push: what the queue still holds from before is archived.
    std::unique_ptr<redis::AuditQueueWorker> audit_worker;
    if (!s.redis_address.empty()) {
      audit_worker = std::make_unique<redis::AuditQueueWorker>(
          archive::make_archive_sink(s),
          redis::make_audit_queue(*redis_options(s), replica, s.usage_lease), name_for,
          s.usage_lease,
          redis::AuditQueueWorkerOptions{.flush_size = s.archive.flush_size,
                                         .flush_interval = s.archive.flush_interval,
                                         .stop_deadline = s.shutdown_grace});
      audit_worker->start();
    }
    audit_log.start();
    metrics.set_probe(metrics::Probe::AuditArchiveLag,
                      [&audit_log] { return std::optional<double>(audit_log.lag_seconds()); });
    metrics.set_probe(metrics::Probe::AuditBufferBytes, [&audit_log] {
      return std::optional<double>(static_cast<double>(audit_log.pending_bytes()));
    });
    metrics.set_probe(metrics::Probe::UsageBufferBytes, [&usage] {
      return std::optional<double>(static_cast<double>(usage.pending_bytes()));
    });
    metrics.set_probe(metrics::Probe::AuditDropped, [&audit_log] {
      return std::optional<double>(static_cast<double>(audit_log.dropped()));
    });
    metrics.set_probe(metrics::Probe::UsageDropped, [&usage] {
      return std::optional<double>(static_cast<double>(usage.dropped()));
    });

    // Each dependency's state for /readyz and the metrics, checked by a background thread.
    proxy::DependencyHealth health;
    HealthMonitor health_monitor(
        health, [&reloader] { return reloader.healthy(); },
        // In the distributed shape: the pushes to Redis, and this replica's uploads.
        [&audit_log, &audit_worker] {
          return audit_log.sink_healthy() && (!audit_worker || audit_worker->sink_healthy());
        },
        redis_options(s));
    health_monitor.start();
    const auto up = [](const std::atomic<std::int8_t>& state) -> std::optional<double> {
      const std::int8_t v = state.load(std::memory_order_relaxed);
      if (v == proxy::DependencyHealth::Absent) {
        return std::nullopt;
      }
      return v == proxy::DependencyHealth::Up ? 1.0 : 0.0;
    };
    metrics.set_probe(metrics::Probe::DatabaseUp, [&health, up] { return up(health.store); });
    metrics.set_probe(metrics::Probe::RedisUp, [&health, up] { return up(health.redis); });

    boost::asio::thread_pool blocking(kBlockingThreads);
    // The shape's rate limiter and spend ledger: in Redis when it is configured (shared by
    // replicas, one connection per I/O thread), else in process.
    std::unique_ptr<limits::LimitsFactory> limits;
    if (auto redis = redis_options(s)) {
      limits = std::make_unique<redis::RedisLimits>(std::move(*redis),
                                                    s.budget_soft_threshold_percent);
    } else {
      limits = std::make_unique<limits::LocalLimits>(s.budget_soft_threshold_percent);
    }
    auto tls = http::make_client_tls_context();
    const unsigned threads = s.effective_threads();
    admin::AdminApi admin_api({.store = store,
                               .jwt_secret = jwt_secret,
                               .reload_now = [&reloader] { reloader.poll_once(); },
                               .openapi_json = admin::openapi_document()});
    proxy::Stage fault_after = proxy::Stage::None;
    if (!s.test_fault_after.empty()) {
      const auto stage = proxy::parse_stage(s.test_fault_after);
      if (!stage) {
        throw core::ConfigError("environment: LLMGW_TEST_FAULT_AFTER: unknown stage `" +
                                s.test_fault_after + "`");
      }
      fault_after = *stage;
      core::LogLine(core::LogLevel::Warn, "test fault injection is on")
          .field("after", s.test_fault_after)
          .field("calls", s.test_fault_count)
          .emit();
    }
    proxy::Proxy handler({.store = store,
                          .catalog = catalog,
                          .key_invalidations = key_invalidations,
                          .usage = usage,
                          .blocking = blocking,
                          .tls = *tls,
                          .forward_proxy = http::ProxySettings::from_environment(),
                          .limits = *limits,
                          .rate_limit_failure = s.rate_limit_failure_policy == "fail_closed"
                                                    ? limits::FailurePolicy::FailClosed
                                                    : limits::FailurePolicy::FailOpen,
                          .budget_failure = s.budget_failure_policy == "fail_open"
                                                ? limits::FailurePolicy::FailOpen
                                                : limits::FailurePolicy::FailClosed,
                          .metrics = metrics,
                          .metrics_token = s.metrics_token,
                          .audit = s.archive.audit ? &audit_log : nullptr,
                          .audit_bodies = s.archive.bodies,
                          .audit_redactor = &redactor,
                          .audit_max_body_bytes = s.archive.max_body_bytes,
                          .admin = &admin_api,
                          .key_cache_per_worker =
                              std::max<std::size_t>(1, s.api_key_cache_size / threads),
                          .health = &health,
                          .fault_after = fault_after,
                          .fault_count = s.test_fault_count});
    http::Server server({.host = s.host,
                         .port = s.port,
                         .threads = threads,
                         .max_body_bytes = s.max_body_bytes,
                         .max_header_bytes = s.max_header_bytes,
                         .header_timeout = s.header_timeout,
                         .body_timeout = s.body_timeout,
                         .idle_timeout = s.idle_timeout,
                         .shutdown_grace = s.shutdown_grace,
                         .access_log = s.access_log},
                        handler);
    server.start();
    handler.set_ready(true);
    core::LogLine(core::LogLevel::Info, "listening")
        .field("address", s.host)
        .field("port", static_cast<unsigned>(server.port()))
        .field("threads", threads)
        .field("data_dir", s.data_dir)
        .field("schema_version", schema)
        .emit();

    int sig = 0;
    sigwait(&signals, &sig);
    core::LogLine(core::LogLevel::Info, "shutting down")
        .field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT")
        .field("grace_ms", static_cast<std::int64_t>(s.shutdown_grace.count()))
        .emit();
    handler.set_ready(false);
    server.shutdown();
    // A second signal while draining: stop waiting for in-flight requests.
    std::atomic<bool> drained{false};
    std::thread second_signal([&] {
      const timespec tick{0, 100'000'000};
      while (!drained.load()) {
        if (sigtimedwait(&signals, nullptr, &tick) > 0) {
          core::LogLine(core::LogLevel::Warn, "second signal: closing all connections now").emit();
          server.close_all_now();
          return;
        }
      }
    });
    server.join();
    drained.store(true);
    second_signal.join();
    admin_api.stop();
    health_monitor.stop();
    reloader.stop();
    blocking.join();
    usage.stop();
    audit_log.stop();
    if (audit_worker) {
      audit_worker->stop();  // after the audit log: it archives what the log pushed last
    }
    if (queue_worker) {
      queue_worker->stop();  // after the writer: it drains what the writer pushed last
    }
    core::LogLine(core::LogLevel::Info, "stopped")
        .field("usage_records_written", usage.written())
        .field("usage_records_queued", usage.queued())
        .field("usage_queue_records_written", queue_worker ? queue_worker->written() : 0)
        .field("usage_queue_entries_buried", queue_worker ? queue_worker->buried() : 0)
        .field("usage_queue_failures", queue_worker ? queue_worker->failures() : 0)
        .field("usage_records_dropped", usage.dropped())
        .field("usage_records_dead_lettered", usage.dead_letters())
        .field("audit_records_archived", audit_log.archived_records())
        .field("audit_objects_archived", audit_log.archived_objects())
        .field("audit_records_dropped", audit_log.dropped())
        .field("audit_queue_records_archived", audit_worker ? audit_worker->archived_records() : 0)
        .field("audit_queue_objects_archived", audit_worker ? audit_worker->archived_objects() : 0)
        .field("audit_queue_failed_uploads", audit_worker ? audit_worker->failed_uploads() : 0)
        .emit();
    if (usage.failed_batches() > 0) {
      status = 1;
    }
  } catch (const core::ConfigError& e) {
    core::LogLine(core::LogLevel::Error, "configuration error").field("error", e.what()).emit();
    core::shutdown_logging();
    std::fprintf(stderr, "llmgw: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    core::LogLine(core::LogLevel::Error, "start-up failed").field("error", e.what()).emit();
    core::shutdown_logging();
    std::fprintf(stderr, "llmgw: %s\n", e.what());
    return 1;
  }
  core::shutdown_logging();
  return status;
}

}  // namespace llmgw::app
