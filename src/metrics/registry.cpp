#include "metrics/registry.hpp"

#include "metrics/exposition.hpp"

#include <array>

namespace llmgw::metrics {

namespace {

/// One target's counts summed over the shards.
struct Totals {
  bool seen = false;
  std::array<std::array<std::uint64_t, kStatusClasses>, kRoutes> requests{};
  std::array<std::array<std::uint64_t, Buckets::kMax + 1>, kLatencies> buckets{};
  std::array<std::uint64_t, kLatencies> sum_ns{};
  std::array<std::uint64_t, kTokenKinds> tokens{};
  std::array<std::uint64_t, kUpstreamErrors> upstream_errors{};
  core::Money cost;

  void add(const TargetStats& s) {
    seen = true;
    for (std::size_t r = 0; r < kRoutes; ++r) {
      for (std::size_t c = 0; c < kStatusClasses; ++c) {
        requests[r][c] += s.requests[r][c].load();
      }
    }
    for (std::size_t l = 0; l < kLatencies; ++l) {
      const std::size_t n = buckets_of(static_cast<Latency>(l)).size;
      for (std::size_t b = 0; b <= n; ++b) {
        buckets[l][b] += s.latency[l].counts[b].load();
      }
      sum_ns[l] += s.latency[l].sum_ns.load();
    }
    for (std::size_t k = 0; k < kTokenKinds; ++k) {
      tokens[k] += s.tokens[k].load();
    }
    for (std::size_t e = 0; e < kUpstreamErrors; ++e) {
      upstream_errors[e] += s.upstream_errors[e].load();
    }
    cost += s.cost.load();
  }
};

struct Family {
  std::string_view name;
  std::string_view type;
  std::string_view help;
};

constexpr std::array<Family, kLatencies> kLatencyFamilies{{
    {"llmgw_request_duration_seconds", "histogram",
     "Time from the request's first byte to the answer's last, by model and provider."},
    {"llmgw_upstream_duration_seconds", "histogram",
     "Time from sending the upstream request to its answer's last byte."},
    {"llmgw_gateway_overhead_seconds", "histogram",
     "Time the gateway itself added to a proxied request (total minus upstream)."},
    {"llmgw_time_to_first_token_seconds", "histogram",
     "Time from sending the upstream request to the first content sent to the client."},
}};

constexpr std::array<std::string_view, kProbes> kProbeNames{
    "llmgw_usage_buffer_bytes", "llmgw_audit_buffer_bytes", "llmgw_audit_archive_lag_seconds",
    "llmgw_redis_up", "llmgw_database_up", "llmgw_usage_records_dropped_total",
    "llmgw_audit_records_dropped_total"};
constexpr std::array<std::string_view, kProbes> kProbeTypes{
    "gauge", "gauge", "gauge", "gauge", "gauge", "counter", "counter"};
constexpr std::array<std::string_view, kProbes> kProbeHelp{
    "Bytes of usage records spooled and not yet written (to the store or the Redis queue).",
    "Bytes of audit records spooled and not yet archived.",
    "Age of the oldest audit record not yet archived.",
    "Whether Redis answered its last health check (1) or not (0).",
    "Whether the database answered its last health check (1) or not (0).",
    "Usage records that could be kept nowhere (spool and queue full) since start.",
    "Audit records that could be kept nowhere (spools full) since start."};

void header(std::string& out, const Family& f) {
  out += "# HELP ";
  out += f.name;
  out += ' ';
  append_help_text(out, f.help);
  out += "\n# TYPE ";
  out += f.name;
  out += ' ';
  out += f.type;
  out += '\n';
}

void label_pair(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += "=\"";
  append_label_value(out, value);
  out += '"';
}

}  // namespace

BuildInfo this_build() {
  return {LLMGW_VERSION, LLMGW_GIT_COMMIT};
}

Registry::Registry(BuildInfo build, std::chrono::system_clock::time_point started)
    : started_(started) {
  label_pair(build_labels_, "version", build.version);
  if (!build.commit.empty()) {
    build_labels_ += ',';
    label_pair(build_labels_, "commit", build.commit);
  }
  target_labels_.emplace_back(R"(model="",provider="")");  // kNoTarget
}

Shard& Registry::add_shard() {
  const std::lock_guard lock(mu_);
  return *shards_.emplace_back(std::make_unique<Shard>());
}

TargetId Registry::target(std::string_view model, std::string_view provider) {
  std::string key;
  key.reserve(model.size() + provider.size() + 1);
  key.append(model).append(1, '\0').append(provider);
  const std::lock_guard lock(mu_);
  if (const auto it = target_ids_.find(key); it != target_ids_.end()) {
    return it->second;
  }
  if (target_labels_.size() >= kMaxTargets) {
    ++targets_dropped_;
    return kNoTarget;
  }
  std::string labels;
  label_pair(labels, "model", model);
  labels += ',';
  label_pair(labels, "provider", provider);
  const auto id = static_cast<TargetId>(target_labels_.size());
  target_labels_.push_back(std::move(labels));
  target_ids_.emplace(std::move(key), id);
  return id;
}

void Registry::set_probe(Probe p, ProbeFn fn) {
  const std::lock_guard lock(mu_);
  probes_[static_cast<std::size_t>(p)] = std::move(fn);
}

std::string Registry::render() const {
  std::string out;
  render(out);
  return out;
}

void Registry::render(std::string& out) const {
  const std::lock_guard lock(mu_);
  const std::size_t n = target_labels_.size();

  std::vector<Totals> totals(n);
  std::int64_t in_flight = 0;
  std::int64_t open_streams = 0;
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::array<std::uint64_t, kRefusals> refusals{};
  for (const auto& shard : shards_) {
    for (TargetId t = 0; t < n; ++t) {
      if (const TargetStats* s = shard->find(t)) {
        totals[t].add(*s);
      }
    }
    in_flight += shard->in_flight();
    open_streams += shard->open_streams();
    hits += shard->key_cache_hits();
    misses += shard->key_cache_misses();
    for (std::size_t r = 0; r < kRefusals; ++r) {
      refusals[r] += shard->refusals(static_cast<Refusal>(r));
    }
  }

  // Per-target families: a series appears once it has counted something.
  header(out, {"llmgw_requests_total", "counter",
               "Requests answered, by route, model, provider and status class. model and "
               "provider are empty for requests answered before a model was resolved."});
  for (TargetId t = 0; t < n; ++t) {
    for (std::size_t r = 0; r < kRoutes; ++r) {
      for (std::size_t c = 0; c < kStatusClasses; ++c) {
        if (totals[t].requests[r][c] == 0) {
          continue;
        }
        out += "llmgw_requests_total{route=\"";
        out += label(static_cast<Route>(r));
        out += "\",";
        out += target_labels_[t];
        out += ",status_class=\"";
        out += label(static_cast<StatusClass>(c));
        out += "\"} ";
        append_uint(out, totals[t].requests[r][c]);
        out += '\n';
      }
    }
  }

  for (std::size_t l = 0; l < kLatencies; ++l) {
    const Family& f = kLatencyFamilies[l];
    const Buckets& b = buckets_of(static_cast<Latency>(l));
    header(out, f);
    for (TargetId t = 0; t < n; ++t) {
      const auto& counts = totals[t].buckets[l];
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= b.size; ++i) {
        cumulative += counts[i];
      }
      if (cumulative == 0) {
        continue;
      }
      cumulative = 0;
      for (std::size_t i = 0; i <= b.size; ++i) {
        cumulative += counts[i];
        out += f.name;
        out += "_bucket{";
        out += target_labels_[t];
        out += ",le=\"";
        if (i < b.size) {
          append_seconds(out, b.le_ns[i]);
        } else {
          out += "+Inf";
        }
        out += "\"} ";
        append_uint(out, cumulative);
        out += '\n';
      }
      out += f.name;
      out += "_sum{";
      out += target_labels_[t];
      out += "} ";
      append_seconds(out, totals[t].sum_ns[l]);
      out += '\n';
      out += f.name;
      out += "_count{";
      out += target_labels_[t];
      out += "} ";
      append_uint(out, cumulative);
      out += '\n';
    }
  }

  header(out, {"llmgw_tokens_total", "counter",
               "Tokens by model, provider, direction and kind (disjoint: input text excludes "
               "cached, output text excludes reasoning)."});
  for (TargetId t = 0; t < n; ++t) {
    for (std::size_t k = 0; k < kTokenKinds; ++k) {
      if (totals[t].tokens[k] == 0) {
        continue;
      }
      out += "llmgw_tokens_total{";
      out += target_labels_[t];
      out += ",direction=\"";
      out += direction_label(static_cast<TokenKind>(k));
      out += "\",kind=\"";
      out += kind_label(static_cast<TokenKind>(k));
      out += "\"} ";
      append_uint(out, totals[t].tokens[k]);
      out += '\n';
    }
  }

  header(out, {"llmgw_cost_usd_total", "counter",
               "Cost of the calls in US dollars, by model and provider (summed exactly)."});
  for (TargetId t = 0; t < n; ++t) {
    if (totals[t].cost.is_zero()) {
      continue;
    }
    out += "llmgw_cost_usd_total{";
    out += target_labels_[t];
    out += "} ";
    append_money(out, totals[t].cost);
    out += '\n';
  }

  header(out, {"llmgw_upstream_errors_total", "counter",
               "Failed upstream calls, by model, provider and type."});
  for (TargetId t = 0; t < n; ++t) {
    for (std::size_t e = 0; e < kUpstreamErrors; ++e) {
      if (totals[t].upstream_errors[e] == 0) {
        continue;
      }
      out += "llmgw_upstream_errors_total{";
      out += target_labels_[t];
      out += ",type=\"";
      out += label(static_cast<UpstreamError>(e));
      out += "\"} ";
      append_uint(out, totals[t].upstream_errors[e]);
      out += '\n';
    }
  }

  // Fixed label sets: every series, always.
  header(out, {"llmgw_rate_limit_refusals_total", "counter",
               "Requests refused by a rate limit, by the limit's scope and kind."});
  constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kLimits{
      {{"key", "requests"}, {"key", "tokens"}, {"model", "requests"}, {"model", "tokens"}}};
  for (std::size_t r = 0; r < kLimits.size(); ++r) {
    out += "llmgw_rate_limit_refusals_total{scope=\"";
    out += kLimits[r].first;
    out += "\",limit=\"";
    out += kLimits[r].second;
    out += "\"} ";
    append_uint(out, refusals[r]);
    out += '\n';
  }
  header(out, {"llmgw_budget_refusals_total", "counter",
               "Requests refused because the key's budget was spent."});
  out += "llmgw_budget_refusals_total ";
  append_uint(out, refusals[static_cast<std::size_t>(Refusal::Budget)]);
  out += '\n';

  header(out, {"llmgw_in_flight_requests", "gauge", "Requests being served."});
  out += "llmgw_in_flight_requests ";
  append_int(out, in_flight);
  out += '\n';
  header(out, {"llmgw_open_streams", "gauge", "Streamed answers being sent."});
  out += "llmgw_open_streams ";
  append_int(out, open_streams);
  out += '\n';

  header(out, {"llmgw_key_cache_lookups_total", "counter",
               "API key lookups in the in-memory key cache, by result."});
  out += "llmgw_key_cache_lookups_total{result=\"hit\"} ";
  append_uint(out, hits);
  out += "\nllmgw_key_cache_lookups_total{result=\"miss\"} ";
  append_uint(out, misses);
  out += '\n';

  for (std::size_t p = 0; p < kProbes; ++p) {
    if (!probes_[p]) {
      continue;
    }
    const std::optional<double> v = probes_[p]();
    if (!v) {
      continue;
    }
    header(out, {kProbeNames[p], kProbeTypes[p], kProbeHelp[p]});
    out += kProbeNames[p];
    out += ' ';
    append_double(out, *v);
    out += '\n';
  }

  header(out, {"llmgw_build_info", "gauge", "The gateway's version and commit; always 1."});
  out += "llmgw_build_info{";
  out += build_labels_;
  out += "} 1\n";
  header(out, {"llmgw_start_time_seconds", "gauge",
               "When the process started, in seconds since the Unix epoch."});
  out += "llmgw_start_time_seconds ";
  append_seconds(
      out, static_cast<std::uint64_t>(
               std::chrono::duration_cast<std::chrono::nanoseconds>(started_.time_since_epoch())
                   .count()));
  out += '\n';
  header(out, {"llmgw_metrics_targets_dropped_total", "counter",
               "Model and provider pairs counted without their labels: past the limit of "
               "distinct pairs."});
  out += "llmgw_metrics_targets_dropped_total ";
  append_uint(out, targets_dropped_);
  out += '\n';
}

}  // namespace llmgw::metrics
