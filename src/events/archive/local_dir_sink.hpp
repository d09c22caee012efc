#pragma once
/// The archive in a local directory (LOGGING_SINK_DIR, default DATA_DIR/audit), the embedded
/// default: an object is a file at DIR/<name>. A put writes a temporary file in the target's
/// directory, fsyncs it, links it to its name (which fails when the name exists, so an
/// object is never replaced), removes the temporary name and fsyncs the directory: after a
/// crash the name holds all of its bytes or does not exist. A crash mid-put leaves at most a
/// temporary file (".<name>.<pid>.<n>.tmp"), which list() skips.

#include "events/archive/archive_sink.hpp"

#include <string>

namespace llmgw::archive {

class LocalDirSink final : public ArchiveSink {
 public:
  /// `dir` is created on the first put when missing.
  explicit LocalDirSink(std::string dir);

  PutResult put(std::string_view name, std::string_view bytes) override;
  std::optional<std::string> get(std::string_view name, std::string& error) override;
  std::optional<std::vector<std::string>> list(std::string_view prefix,
                                               std::string& error) override;
  [[nodiscard]] std::string describe() const override;

  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

 private:
  std::string dir_;
};

}  // namespace llmgw::archive
