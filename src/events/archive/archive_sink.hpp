#pragma once
/// Where batches of audit records end up: an object store with write-once objects. Exactly
/// two implementations: LocalDirSink (a directory, the embedded default) and S3Sink (S3 or
/// any S3-compatible store). Every call blocks: the archiver calls it from its background
/// thread (never an I/O thread), the CLI from its main thread. A sink is safe to call from
/// one thread at a time.
///
/// Object names are relative, '/'-separated (object_name.hpp makes them); an object, once
/// stored, never changes: storing a name again with the same bytes succeeds (a retry after a
/// lost acknowledgement), with other bytes is a Conflict. No reason text ever holds a secret.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::archive {

enum class PutStatus : std::uint8_t {
  Stored,    ///< the object holds these bytes (now, or already before)
  Failed,    ///< not stored (I/O error, store unreachable or refusing): retry later
  Conflict,  ///< the name holds other bytes: retrying the same put cannot succeed
};

struct PutResult {
  PutStatus status = PutStatus::Failed;
  std::string reason;  ///< empty when Stored; else for the log

  [[nodiscard]] bool ok() const noexcept { return status == PutStatus::Stored; }
  static PutResult stored() { return {PutStatus::Stored, {}}; }
  static PutResult failed(std::string why) { return {PutStatus::Failed, std::move(why)}; }
  static PutResult conflict(std::string why) { return {PutStatus::Conflict, std::move(why)}; }
};

class ArchiveSink {
 public:
  virtual ~ArchiveSink() = default;

  /// Stores `bytes` under `name`, durably, all or nothing.
  virtual PutResult put(std::string_view name, std::string_view bytes) = 0;
  /// The object's bytes; nullopt with `error` when it is missing or cannot be read.
  virtual std::optional<std::string> get(std::string_view name, std::string& error) = 0;
  /// The names of the objects whose name starts with `prefix`, sorted; nullopt with `error`.
  virtual std::optional<std::vector<std::string>> list(std::string_view prefix,
                                                       std::string& error) = 0;
  /// Where the objects go, for logs and /readyz: "file:///var/lib/llmgw/audit",
  /// "s3://bucket" (never a credential).
  [[nodiscard]] virtual std::string describe() const = 0;
};

}  // namespace llmgw::archive
