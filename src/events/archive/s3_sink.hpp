#pragma once
/// The archive in S3 or any S3-compatible store (MinIO, Ceph, s3rver): an object is a PUT of
/// the bucket's key <name>, signed with SigV4 (aws/sigv4.hpp, service "s3"), carrying
/// Content-MD5 (the store refuses a body that arrives damaged) and x-amz-content-sha256
/// (the payload's SHA-256, which the signature covers).
///
/// Addressing: with an endpoint, path-style (ENDPOINT/bucket/key), as S3-compatible stores
/// expect; without, AWS virtual-host style (https://bucket.s3.REGION.amazonaws.com/key), or
/// path-style on s3.REGION.amazonaws.com for a bucket name with dots (TLS names allow no
/// dots in a wildcard's label).
///
/// Write-once: a put sends `If-None-Match: *`, so a store that has the name answers 412
/// instead of replacing it; the sink then reads the object back and answers Stored when the
/// bytes are the same (a retry) or Conflict. A store that does not implement conditional
/// writes (501) gets a HEAD first instead. Reasons name the bucket, key, status and the
/// store's error code and message, never a credential or the signature.

#include "aws/sigv4.hpp"
#include "events/archive/archive_sink.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace llmgw::archive {

struct S3Config {
  std::string bucket;
  std::string region = "us-east-1";
  /// http(s) origin of an S3-compatible store (path-style); empty: AWS (virtual-host style).
  std::string endpoint;
  aws::AwsCredentials credentials;
  std::chrono::milliseconds timeout{120'000};    ///< per HTTP exchange
  std::size_t max_object_bytes = std::size_t(1) << 30;  ///< what get() reads at most
  /// Unix seconds for the signature; empty: the system clock (tests fix it).
  std::function<std::int64_t()> clock;
};

/// One request to the store, signed, as it goes on the wire (pure; exposed for tests).
struct S3Request {
  std::string method;
  std::string url;  ///< scheme, host, encoded path and query
  std::vector<std::pair<std::string, std::string>> headers;  ///< Host first
  std::string signature;  ///< for tests; secret-derived, never logged
};

class S3Sink final : public ArchiveSink {
 public:
  /// Throws std::invalid_argument naming the setting when the bucket, region, endpoint or
  /// credentials are unusable (never quoting a secret).
  explicit S3Sink(S3Config config);

  PutResult put(std::string_view name, std::string_view bytes) override;
  std::optional<std::string> get(std::string_view name, std::string& error) override;
  std::optional<std::vector<std::string>> list(std::string_view prefix,
                                               std::string& error) override;
  [[nodiscard]] std::string describe() const override;

  /// Builds and signs a request for `key` ("" for the bucket itself). `query` is encoded,
  /// without '?'. `extra` headers are sent and signed. PUTs carry Content-MD5.
  [[nodiscard]] S3Request make_request(
      std::string_view method, std::string_view key, std::string_view query,
      std::string_view payload, std::int64_t unix_seconds,
      const std::vector<std::pair<std::string, std::string>>& extra = {}) const;

 private:
  PutResult put_plain(std::string_view name, std::string_view bytes);
  PutResult settle_existing(std::string_view name, std::string_view bytes);
  std::string where(std::string_view key) const;
  std::int64_t now() const;

  S3Config config_;
  bool tls_ = true;
  std::string host_;         ///< Host header
  std::string origin_;       ///< scheme://host[:port]
  std::string path_prefix_;  ///< "" (virtual-host) or "[endpoint path]/bucket"
  std::atomic<bool> conditional_{true};  ///< the store honours If-None-Match on PUT
};

/// The SigV4 options of every S3 request: service "s3", the path signed as sent (encoded
/// once, not normalised), x-amz-content-sha256 added and signed.
aws::SigV4Options s3_signing_options(std::string region, std::int64_t unix_seconds);

/// Content-MD5's value: base64 of the MD5 of `bytes`.
std::string content_md5(std::string_view bytes);

/// The Code and Message of an S3 error document ("NoSuchKey: The specified key does not
/// exist."), clipped and stripped of control characters; empty when there is none.
std::string s3_error_text(std::string_view xml);

}  // namespace llmgw::archive
