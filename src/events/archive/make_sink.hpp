#pragma once
/// The archive sink and object names the settings ask for (core::ArchiveSettings).

#include "core/config.hpp"
#include "events/archive/archive_sink.hpp"
#include "events/archive/s3_sink.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace llmgw::archive {

/// S3 settings from the environment's (LOGGING_SINK_S3_*, AWS_*), for `bucket` (empty: the
/// configured one).
S3Config s3_config(const core::ArchiveSettings& a, std::string bucket = {});

/// S3Sink when LOGGING_SINK_S3_BUCKET is set, else LocalDirSink on settings.archive_dir().
/// Throws std::invalid_argument naming the setting (never quoting a secret).
std::unique_ptr<ArchiveSink> make_archive_sink(const core::Settings& settings);

/// The prefix of object names in that sink: LOGGING_SINK_S3_PREFIX for S3, "" locally (the
/// directory is the audit archive's alone).
std::string object_prefix(const core::ArchiveSettings& a);

/// object_name() with the settings' prefix and pod name.
std::string object_name(const core::ArchiveSettings& a, std::chrono::system_clock::time_point t);

}  // namespace llmgw::archive
