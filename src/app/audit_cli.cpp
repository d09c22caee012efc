// `llmgw audit`: what an operator needs to trust the audit archive: read an object back
// (`cat`), see what is there (`ls`), and check the sink settings before deploying
// (`check-sink` writes a probe object and reads it back).
#include "app/commands.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "events/archive/batch_codec.hpp"
#include "events/archive/local_dir_sink.hpp"
#include "events/archive/make_sink.hpp"
#include "events/archive/object_name.hpp"
#include "events/archive/s3_sink.hpp"

#include <boost/json/parse.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace llmgw::app {

namespace {

constexpr std::string_view kS3Scheme = "s3://";
constexpr std::string_view kFileScheme = "file://";

int fail(const std::string& msg) {
  std::fprintf(stderr, "llmgw: %s\n", msg.c_str());
  return 1;
}

/// The bytes of OBJECT_OR_FILE: s3://bucket/key, file://path or an existing local file, else
/// an object name in the configured sink. Nullopt with `error`.
std::optional<std::string> fetch(const core::Settings& settings, const std::string& what,
                                 std::string& where, std::string& error) {
  if (what.starts_with(kS3Scheme)) {
    const std::string rest = what.substr(kS3Scheme.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == rest.size()) {
      error = "expected s3://BUCKET/KEY";
      return std::nullopt;
    }
    archive::S3Sink sink(archive::s3_config(settings.archive, rest.substr(0, slash)));
    where = what;
    return sink.get(rest.substr(slash + 1), error);
  }
  std::string path = what.starts_with(kFileScheme) ? what.substr(kFileScheme.size()) : what;
  std::error_code ec;
  if (what.starts_with(kFileScheme) || std::filesystem::is_regular_file(path, ec)) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error = path + ": cannot be read";
      return std::nullopt;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    where = path;
    return ss.str();
  }
  const auto sink = archive::make_archive_sink(settings);
  where = sink->describe() + ": " + what;
  return sink->get(what, error);
}

}  // namespace

int run_audit_cat(const core::Settings& settings, const std::string& object_or_file) {
  try {
    std::string where;
    std::string error;
    const auto bytes = fetch(settings, object_or_file, where, error);
    if (!bytes) {
      return fail(error);
    }
    std::size_t n = 0;
    std::size_t not_json = 0;
    const bool ok = archive::decode_batch(
        *bytes,
        [&](std::string_view record) {
          ++n;
          boost::system::error_code ec;
          (void)boost::json::parse(record, ec);
          if (ec) {
            ++not_json;
            std::fprintf(stderr, "llmgw: %s: record %zu is not JSON\n", where.c_str(), n);
            return true;
          }
          std::fwrite(record.data(), 1, record.size(), stdout);
          std::fputc('\n', stdout);
          return true;
        },
        error);
    std::fflush(stdout);
    if (!ok) {
      return fail(where + ": " + error);
    }
    return not_json == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_audit_ls(const core::Settings& settings, const std::string& prefix) {
  try {
    const auto sink = archive::make_archive_sink(settings);
    std::string error;
    const auto names = sink->list(prefix, error);
    if (!names) {
      return fail(error);
    }
    for (const auto& name : *names) {
      std::printf("%s\n", name.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_audit_check_sink(const core::Settings& settings) {
  try {
    const auto sink = archive::make_archive_sink(settings);
    const auto now = std::chrono::system_clock::now();
    // Probes live beside the archive, not in its date tree, so they never pass for audit data.
    const std::string name = archive::object_name(
        archive::object_prefix(settings.archive) + "_probes/", settings.archive.pod_name, now);
    std::string record = R"({"probe":true,"pod":)";
    core::append_json_string(record, settings.archive.pod_name);
    record += R"(,"time":)";
    core::append_json_string(record, core::format_utc(core::unix_seconds()));
    record += '}';
    std::string error;
    const auto gz = archive::encode_batch(std::vector<std::string>{record}, error);
    if (!gz) {
      return fail(error);
    }
    std::fprintf(stderr, "llmgw: archive sink %s\n", sink->describe().c_str());
    const auto put = sink->put(name, *gz);
    if (!put.ok()) {
      return fail("writing the probe failed: " + put.reason);
    }
    const auto back = sink->get(name, error);
    if (!back) {
      return fail("reading the probe back failed: " + error);
    }
    const auto records = archive::decode_batch(*back, error);
    if (!records || *records != std::vector<std::string>{record}) {
      return fail("the probe read back differs from what was written" +
                  (records ? std::string() : ": " + error));
    }
    std::fprintf(stderr, "llmgw: wrote and read back the probe object (delete it at will)\n");
    std::printf("%s\n", name.c_str());
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace llmgw::app
