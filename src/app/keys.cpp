#include "app/commands.hpp"
#include "app/store_factory.hpp"
#include "auth/api_key.hpp"
#include "core/ids.hpp"
#include "core/money.hpp"
#include "core/json.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace llmgw::app {

namespace {

std::unique_ptr<store::Store> open_migrated_store(const core::Settings& s) {
  auto st = open_store(s);
  st->migrate();
  return st;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& x : v) {
    out += out.empty() ? "" : sep;
    out += x;
  }
  return out;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "llmgw: %s\n", msg.c_str());
  return 1;
}

template <typename T>
boost::json::value value_or_null(const std::optional<T>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

/// A key's settings as the audit trail records them, in the shape of the admin API's key
/// object: never the hash. Without created_at/updated_at, which the store assigns in the
/// transaction that stores the record.
std::string audit_json(const store::ApiKeyRecord& k) {
  boost::json::object metadata;
  for (const auto& [name, value] : k.metadata) {
    metadata[name] = value;
  }
  const boost::json::object key{
      {"id", k.id},
      {"object", "api_key"},
      {"name", k.name},
      {"prefix", k.prefix},
      {"enabled", k.enabled},
      {"expires_at", k.expires_at ? boost::json::value(core::format_utc(*k.expires_at))
                                  : boost::json::value(nullptr)},
      {"rpm_limit", value_or_null(k.rpm_limit)},
      {"tpm_limit", value_or_null(k.tpm_limit)},
      {"max_concurrent", value_or_null(k.max_concurrent)},
      {"budget_usd", value_or_null(k.budget_usd)},
      {"budget_period", k.budget_period},
      {"allowed_models", boost::json::array(k.allowed_models.begin(), k.allowed_models.end())},
      {"tags", boost::json::array(k.tags.begin(), k.tags.end())},
      {"metadata", std::move(metadata)},
      {"audit_bodies", value_or_null(k.audit_bodies)}};
  return boost::json::serialize(key);
}

/// The audit record of a key change made from the command line.
store::AuditRecord cli_audit(std::string action, const std::string& key_id, std::string before,
                             std::string after) {
  store::AuditRecord a;
  a.at_us = core::unix_micros();
  a.actor_type = "cli";
  a.actor_name = "cli";
  a.action = std::move(action);
  a.resource_type = "key";
  a.resource_id = key_id;
  a.before_json = std::move(before);
  a.after_json = std::move(after);
  return a;
}

}  // namespace

int run_migrate(const core::Settings& settings) {
  try {
    const auto st = open_store(settings);
    const int v = st->migrate();
    std::printf("database %s is at schema version %d\n", describe_store(settings).c_str(), v);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_keys_create(const core::Settings& settings, const KeyCreateOptions& o) {
  store::ApiKeyRecord rec;
  rec.name = o.name;
  if (rec.name.empty() || rec.name.size() > 200) {
    return fail("--name must be 1 to 200 characters");
  }
  for (const auto& m : o.models) {
    if (m.empty()) {
      return fail("--models: empty model name in the list");
    }
  }
  rec.allowed_models = o.models;
  if (!o.expires.empty()) {
    std::int64_t t = 0;
    if (!core::parse_utc(o.expires, t)) {
      return fail("--expires: '" + o.expires +
                  "' is not a date (YYYY-MM-DD, UTC) or an RFC 3339 time (2027-01-01T00:00:00Z, "
                  "2027-01-01T02:00:00.000+02:00)");
    }
    if (t <= core::unix_seconds()) {
      return fail("--expires: " + o.expires + " is in the past");
    }
    rec.expires_at = t;
  }
  if (o.rpm && *o.rpm <= 0) {
    return fail("--rpm must be a positive number");
  }
  if (o.tpm && *o.tpm <= 0) {
    return fail("--tpm must be a positive number");
  }
  rec.rpm_limit = o.rpm;
  rec.tpm_limit = o.tpm;
  if (!o.budget_usd.empty()) {
    if (!core::valid_budget_text(o.budget_usd)) {
      return fail("--budget: '" + o.budget_usd + "' is not an amount in USD from 0 to 9000000 (e.g. 25 or 10.50)");
    }
    rec.budget_usd = o.budget_usd;
  }
  if (o.budget_period != "daily" && o.budget_period != "weekly" && o.budget_period != "monthly") {
    return fail("--budget-period must be daily, weekly or monthly");
  }
  rec.budget_period = o.budget_period;
  try {
    auto st = open_migrated_store(settings);
    const auto key = auth::generate_api_key();
    rec.id = core::new_id("key_");
    rec.key_hash = key.hash_hex;
    rec.prefix = key.display_prefix;
    const auto audit = cli_audit("create", rec.id, {}, audit_json(rec));
    st->insert_key(rec, &audit);
    std::printf("id: %s\n", rec.id.c_str());
    std::printf("name: %s\n", rec.name.c_str());
    std::printf("prefix: %s\n", rec.prefix.c_str());
    std::printf("models: %s\n", rec.allowed_models.empty() ? "all" : join(rec.allowed_models, ",").c_str());
    std::printf("expires: %s\n", rec.expires_at ? core::format_utc(*rec.expires_at).c_str() : "never");
    if (rec.rpm_limit) {
      std::printf("rpm: %lld\n", static_cast<long long>(*rec.rpm_limit));
    }
    if (rec.tpm_limit) {
      std::printf("tpm: %lld\n", static_cast<long long>(*rec.tpm_limit));
    }
    if (rec.budget_usd) {
      std::printf("budget_usd: %s per %s period (UTC)\n", rec.budget_usd->c_str(),
                  rec.budget_period.c_str());
    }
    std::printf("The key follows on the last line. It is shown only this once: store it now.\n");
    std::printf("%s\n", key.plaintext.c_str());
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_keys_list(const core::Settings& settings, bool json) {
  try {
    auto st = open_migrated_store(settings);
    // The store lists keys by id (random): show them in the order they were created.
    auto keys = st->list_keys();
    std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
      return a.created_at < b.created_at;
    });
    if (json) {
      std::string out = "[";
      for (std::size_t i = 0; i < keys.size(); ++i) {
        const auto& k = keys[i];
        out += i == 0 ? "\n  {" : ",\n  {";
        out += "\"id\":";
        core::append_json_string(out, k.id);
        out += ",\"name\":";
        core::append_json_string(out, k.name);
        out += ",\"prefix\":";
        core::append_json_string(out, k.prefix);
        out += k.enabled ? ",\"enabled\":true" : ",\"enabled\":false";
        out += ",\"expires_at\":";
        if (k.expires_at) {
          core::append_json_string(out, core::format_utc(*k.expires_at));
        } else {
          out += "null";
        }
        out += ",\"allowed_models\":[";
        for (std::size_t j = 0; j < k.allowed_models.size(); ++j) {
          out += j == 0 ? "" : ",";
          core::append_json_string(out, k.allowed_models[j]);
        }
        out += "],\"rpm_limit\":" + (k.rpm_limit ? std::to_string(*k.rpm_limit) : "null");
        out += ",\"tpm_limit\":" + (k.tpm_limit ? std::to_string(*k.tpm_limit) : "null");
        out += ",\"budget_usd\":";
        if (k.budget_usd) {
          core::append_json_string(out, *k.budget_usd);
        } else {
          out += "null";
        }
        out += ",\"budget_period\":";
        core::append_json_string(out, k.budget_period);
        out += ",\"created_at\":";
        core::append_json_string(out, core::format_utc(k.created_at));
        out += "}";
      }
      out += keys.empty() ? "]\n" : "\n]\n";
      std::fputs(out.c_str(), stdout);
      return 0;
    }
    std::printf("%-21s %-14s %-8s %-20s %s\n", "ID", "PREFIX", "ENABLED", "EXPIRES", "NAME");
    for (const auto& k : keys) {
      std::printf("%-21s %-14s %-8s %-20s %s\n", k.id.c_str(), k.prefix.c_str(),
                  k.enabled ? "yes" : "no",
                  k.expires_at ? core::format_utc(*k.expires_at).c_str() : "never",
                  k.name.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_keys_set_enabled(const core::Settings& settings, const std::string& id, bool enabled) {
  try {
    auto st = open_migrated_store(settings);
    const auto before = st->find_key_by_id(id);
    if (!before) {
      return fail("no key with id '" + id + "'");
    }
    store::ApiKeyRecord after = *before;
    after.enabled = enabled;
    const auto audit = cli_audit("update", id, audit_json(*before), audit_json(after));
    if (!st->set_key_enabled(id, enabled, &audit)) {
      return fail("no key with id '" + id + "'");  // deleted meanwhile
    }
    std::printf("%s %s\n", enabled ? "enabled" : "disabled", id.c_str());
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace llmgw::app
