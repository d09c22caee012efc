#pragma once
/// Names of archive objects:
///
///     PREFIX YYYY/MM/DD/<pod>-<timestamp>-<nanos>.jsonl.gz
///
/// in UTC, where PREFIX is LOGGING_SINK_S3_PREFIX for S3 ("logs/" by default) and empty for
/// the local directory, <pod> is POD_NAME (default the host name) with every character
/// outside [A-Za-z0-9._-] replaced by '_', <timestamp> is ISO 8601 basic format to the
/// second (20261207T180102Z) and <nanos> the nine digits of the nanoseconds within that
/// second. Names sort by time within a pod and day, and two replicas never share a name.
/// Example: logs/2026/12/07/gw-7f9c-20261207T180102Z-000123456.jsonl.gz

#include <chrono>
#include <string>
#include <string_view>

namespace llmgw::archive {

inline constexpr std::string_view kObjectSuffix = ".jsonl.gz";

/// POD_NAME made safe for a file name ("llmgw" when nothing is left).
std::string sanitize_pod_name(std::string_view pod);

/// The name of the object of a batch made at `t`. `prefix` is used as given ("" or ending
/// in '/'; one is added otherwise).
std::string object_name(std::string_view prefix, std::string_view pod,
                        std::chrono::system_clock::time_point t);

/// Whether `name` may name an object in either sink: 1 to 1024 printable ASCII characters
/// without '\\', '/'-separated segments none of which is empty, "." or "..", and a last
/// segment that does not start with '.' (the local sink's temporary files do).
bool valid_object_name(std::string_view name) noexcept;

}  // namespace llmgw::archive
