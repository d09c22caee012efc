#include "events/archive/make_sink.hpp"

#include "events/archive/local_dir_sink.hpp"
#include "events/archive/object_name.hpp"

namespace llmgw::archive {

S3Config s3_config(const core::ArchiveSettings& a, std::string bucket) {
  S3Config c;
  c.bucket = bucket.empty() ? a.s3_bucket : std::move(bucket);
  c.region = a.s3_region;
  c.endpoint = a.s3_endpoint;
  c.credentials.access_key_id = a.aws_access_key_id;
  c.credentials.secret_access_key = a.aws_secret_access_key;
  c.credentials.session_token = a.aws_session_token;
  return c;
}

std::unique_ptr<ArchiveSink> make_archive_sink(const core::Settings& settings) {
  if (settings.archive.enabled && settings.archive.s3()) {
    return std::make_unique<S3Sink>(s3_config(settings.archive));
  }
  return std::make_unique<LocalDirSink>(settings.archive_dir());
}

std::string object_prefix(const core::ArchiveSettings& a) {
  return a.enabled && a.s3() ? a.s3_prefix : "";
}

std::string object_name(const core::ArchiveSettings& a, std::chrono::system_clock::time_point t) {
  return object_name(object_prefix(a), a.pod_name, t);
}

}  // namespace llmgw::archive
