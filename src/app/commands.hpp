#pragma once
/// The command-line verbs. Each returns the process exit status; `main.cpp` only parses.

#include "core/config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace llmgw::app {

struct ServeOptions {
  core::Settings settings;
  std::string config_file;  ///< empty: no declarative file
};
int run_serve(const ServeOptions& opts);

int run_migrate(const core::Settings& settings);

struct KeyCreateOptions {
  std::string name;
  std::vector<std::string> models;
  std::string expires;  ///< "YYYY-MM-DD" or RFC 3339 UTC; empty = never
  std::optional<std::int64_t> rpm;
  std::optional<std::int64_t> tpm;
  std::string budget_usd;  ///< exact decimal; empty = none
  std::string budget_period = "monthly";
};
int run_keys_create(const core::Settings& settings, const KeyCreateOptions& opts);
int run_keys_list(const core::Settings& settings, bool json);
int run_keys_set_enabled(const core::Settings& settings, const std::string& id, bool enabled);

/// `llmgw admin create-user`: the password is the first line of stdin.
int run_admin_create_user(const core::Settings& settings, const std::string& email,
                          const std::string& role);
/// `llmgw admin rotate-master-key`: reseals every provider credential under a new key.
int run_admin_rotate_master_key(const core::Settings& settings, const std::string& new_key_file);
/// `llmgw admin adopt-jwt-secret`: the environment's JWT secret becomes the database's.
int run_admin_adopt_jwt_secret(const core::Settings& settings);
/// `llmgw admin adopt-master-key`: the environment's (or data directory's) master key becomes
/// the database's, when the one that sealed its credentials is lost.
int run_admin_adopt_master_key(const core::Settings& settings);

/// `llmgw catalog import [FILE]`: FILE empty = the built-in catalog.
int run_catalog_import(const core::Settings& settings, const std::string& file,
                       const std::vector<std::string>& providers, bool verbose);
/// `llmgw usage --key ID`: tokens and cost from the spend rows, by day or model.
int run_usage(const core::Settings& settings, const std::string& key_id, const std::string& from,
              const std::string& to, const std::string& by);

/// `llmgw audit cat OBJECT_OR_FILE`: the records of an archive object as JSON lines on
/// stdout. OBJECT_OR_FILE: a local file (or file://path), s3://BUCKET/KEY (the S3 settings'
/// region, endpoint and credentials), or an object name in the configured sink.
int run_audit_cat(const core::Settings& settings, const std::string& object_or_file);
/// `llmgw audit ls [PREFIX]`: the names of the configured sink's objects.
int run_audit_ls(const core::Settings& settings, const std::string& prefix);
/// `llmgw audit check-sink`: writes a probe object into the configured sink, reads it back and
/// prints its name (exit 0), or says why it could not (exit 1).
int run_audit_check_sink(const core::Settings& settings);

}  // namespace llmgw::app
