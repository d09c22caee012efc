// llmgw: parses the command line and calls into app/. Nothing else lives here.
#include "app/commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace {
std::vector<std::string> split_csv(const std::string& csv) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (!csv.empty() && start <= csv.size()) {
    const auto comma = csv.find(',', start);
    out.push_back(csv.substr(start, comma - start));
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  using llmgw::core::Settings;
  CLI::App cli{"llmgw: an OpenAI-compatible LLM gateway"};
  cli.require_subcommand(1);

  Settings settings;
  try {
    settings = Settings::from_environment();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmgw: %s\n", e.what());
    return 2;
  }
  auto add_data_dir = [&](CLI::App* c) {
    c->add_option("--data-dir", settings.data_dir,
                  "Directory of the embedded database (env LLMGW_DATA_DIR, default ./data)");
  };

  llmgw::app::ServeOptions serve;
  auto* serve_cmd = cli.add_subcommand("serve", "Run the gateway");
  add_data_dir(serve_cmd);
  serve_cmd->add_option("--config", serve.config_file,
                        "YAML file of providers, models and aliases written into the store");
  serve_cmd->add_option("--host", settings.host, "Address to listen on (env GATEWAY_HTTP_HOST)");
  serve_cmd->add_option("--port", settings.port, "Port (env GATEWAY_HTTP_PORT; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--threads", settings.threads,
                        "I/O threads (env LLMGW_THREADS; default: number of cores)")
      ->check(CLI::Range(0, 1024));

  auto* migrate_cmd = cli.add_subcommand("migrate", "Create or update the database schema");
  add_data_dir(migrate_cmd);

  auto* keys_cmd = cli.add_subcommand("keys", "Manage gateway API keys");
  keys_cmd->require_subcommand(1);
  llmgw::app::KeyCreateOptions create;
  std::string models_csv;
  auto* create_cmd = keys_cmd->add_subcommand("create", "Create a key (printed once, last line)");
  add_data_dir(create_cmd);
  create_cmd->add_option("--name", create.name, "Name of the key")->required();
  create_cmd->add_option("--models", models_csv, "Comma-separated models/aliases it may use");
  create_cmd->add_option("--expires", create.expires, "Expiry, YYYY-MM-DD or an RFC 3339 time (any offset)");
  create_cmd->add_option("--rpm", create.rpm, "Requests per minute limit");
  create_cmd->add_option("--tpm", create.tpm, "Tokens per minute limit");
  create_cmd->add_option("--budget", create.budget_usd, "Budget in USD per period");
  create_cmd->add_option("--budget-period", create.budget_period,
                         "daily, weekly or monthly (UTC calendar; default monthly)");
  bool list_json = false;
  auto* list_cmd = keys_cmd->add_subcommand("list", "List keys");
  add_data_dir(list_cmd);
  list_cmd->add_flag("--json", list_json, "Print JSON");
  std::string key_id;
  auto* disable_cmd = keys_cmd->add_subcommand("disable", "Disable a key");
  add_data_dir(disable_cmd);
  disable_cmd->add_option("id", key_id, "Key id (key_…)")->required();
  auto* enable_cmd = keys_cmd->add_subcommand("enable", "Enable a disabled key");
  add_data_dir(enable_cmd);
  enable_cmd->add_option("id", key_id, "Key id (key_…)")->required();

  auto* catalog_cmd = cli.add_subcommand("catalog", "Manage the price catalog");
  catalog_cmd->require_subcommand(1);
  auto* import_cmd =
      catalog_cmd->add_subcommand("import", "Import prices in LiteLLM's format (idempotent)");
  add_data_dir(import_cmd);
  std::string catalog_file;
  std::string providers_csv;
  bool import_verbose = false;
  import_cmd->add_option("file", catalog_file,
                         "model_prices_and_context_window.json (default: the built-in copy)");
  import_cmd->add_option("--providers", providers_csv,
                         "Comma-separated litellm_provider values to import (default: all)");
  import_cmd->add_flag("--verbose", import_verbose, "List every model added or changed");

  auto* usage_cmd = cli.add_subcommand("usage", "Tokens and cost of a key");
  add_data_dir(usage_cmd);
  std::string usage_key, usage_from, usage_to, usage_by = "day";
  usage_cmd->add_option("--key", usage_key, "Key id (key_…)")->required();
  usage_cmd->add_option("--from", usage_from, "First day, YYYY-MM-DD or an RFC 3339 time (default: month start)");
  usage_cmd->add_option("--to", usage_to, "Last day, YYYY-MM-DD or an RFC 3339 time (default: month end)");
  usage_cmd->add_option("--by", usage_by, "Group by day or model (default day)");

  auto* admin_cmd = cli.add_subcommand("admin", "Admin users and secrets of the admin API");
  admin_cmd->require_subcommand(1);
  std::string admin_email, admin_role = "admin", new_key_file;
  auto* create_user_cmd = admin_cmd->add_subcommand(
      "create-user", "Create an admin user (password read from stdin, first line)");
  add_data_dir(create_user_cmd);
  create_user_cmd->add_option("--email", admin_email, "Sign-in email")->required();
  create_user_cmd->add_option("--role", admin_role, "viewer, editor or admin (default admin)");
  auto* rotate_cmd = admin_cmd->add_subcommand(
      "rotate-master-key", "Re-encrypt provider credentials under a new master key");
  add_data_dir(rotate_cmd);
  rotate_cmd->add_option("--new-key-file", new_key_file,
                         "File holding the new key (64 hex digits or base64; default: generate)");
  auto* adopt_jwt_cmd = admin_cmd->add_subcommand(
      "adopt-jwt-secret",
      "Record this environment's ADMIN_JWT_SECRET as the one every gateway on the database uses "
      "(after changing it on all of them)");
  add_data_dir(adopt_jwt_cmd);
  auto* adopt_master_cmd = admin_cmd->add_subcommand(
      "adopt-master-key",
      "Record this environment's master key as the database's, when the key that sealed its "
      "credentials is lost (those credentials must then be given again)");
  add_data_dir(adopt_master_cmd);

  auto* audit_cmd = cli.add_subcommand("audit", "Read and check the audit archive");
  audit_cmd->require_subcommand(1);
  std::string audit_object, audit_prefix;
  auto* audit_cat_cmd = audit_cmd->add_subcommand(
      "cat", "Print an archive object's records as JSON lines (a local file, s3://BUCKET/KEY, "
             "or an object name in the configured sink)");
  add_data_dir(audit_cat_cmd);
  audit_cat_cmd->add_option("object", audit_object, "OBJECT_OR_FILE")->required();
  auto* audit_ls_cmd =
      audit_cmd->add_subcommand("ls", "List the configured sink's archive objects");
  add_data_dir(audit_ls_cmd);
  audit_ls_cmd->add_option("prefix", audit_prefix, "Only names starting with PREFIX");
  auto* audit_check_cmd = audit_cmd->add_subcommand(
      "check-sink", "Write a probe object into the configured sink (LOGGING_SINK_*) and read it "
                    "back; prints its name");
  add_data_dir(audit_check_cmd);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }

  if (*serve_cmd) {
    serve.settings = settings;
    return llmgw::app::run_serve(serve);
  }
  if (*migrate_cmd) {
    return llmgw::app::run_migrate(settings);
  }
  if (*create_cmd) {
    create.models = split_csv(models_csv);
    return llmgw::app::run_keys_create(settings, create);
  }
  if (*import_cmd) {
    return llmgw::app::run_catalog_import(settings, catalog_file, split_csv(providers_csv),
                                          import_verbose);
  }
  if (*usage_cmd) {
    return llmgw::app::run_usage(settings, usage_key, usage_from, usage_to, usage_by);
  }
  if (*create_user_cmd) {
    return llmgw::app::run_admin_create_user(settings, admin_email, admin_role);
  }
  if (*adopt_master_cmd) {
    return llmgw::app::run_admin_adopt_master_key(settings);
  }
  if (*adopt_jwt_cmd) {
    return llmgw::app::run_admin_adopt_jwt_secret(settings);
  }
  if (*rotate_cmd) {
    return llmgw::app::run_admin_rotate_master_key(settings, new_key_file);
  }
  if (*list_cmd) {
    return llmgw::app::run_keys_list(settings, list_json);
  }
  if (*audit_cat_cmd) {
    return llmgw::app::run_audit_cat(settings, audit_object);
  }
  if (*audit_ls_cmd) {
    return llmgw::app::run_audit_ls(settings, audit_prefix);
  }
  if (*audit_check_cmd) {
    return llmgw::app::run_audit_check_sink(settings);
  }
  if (*disable_cmd || *enable_cmd) {
    return llmgw::app::run_keys_set_enabled(settings, key_id, static_cast<bool>(*enable_cmd));
  }
  return 1;
}
