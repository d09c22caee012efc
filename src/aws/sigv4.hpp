#pragma once
/// AWS Signature Version 4 (header signing), for the Bedrock provider and the S3 archive sink:
/// one implementation, checked against the aws-c-auth and botocore test suites
/// (tests/unit/aws/sigv4_test.cpp, vectors under tests/data/aws-sigv4/).
///
/// The request is signed as it will be sent, after its body is final. The path is given as
/// it goes on the wire (already percent-encoded where needed); its canonical form encodes each
/// segment once more, as every AWS service but S3 expects (`normalize` also removes dot
/// segments and empty segments, which S3 must not have done). Query parameters are decoded
/// and re-encoded with RFC 3986's unreserved set, sorted by name then value.

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmgw::aws {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;  ///< secret: never logged
  std::string session_token;      ///< optional (temporary credentials)
};

struct SigV4Request {
  std::string_view method;  ///< "POST"
  std::string_view path;    ///< as on the wire, e.g. "/model/us.anthropic.x-v1%3A0/converse"
  std::string_view query;   ///< as on the wire, without '?'; empty for none
  /// The headers that are sent and signed (Host among them), names in any case; a name may
  /// repeat (its values are joined with ',').
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view payload;  ///< the final body
};

struct SigV4Options {
  std::string region;   ///< "us-east-1"
  std::string service;  ///< "bedrock", "s3"
  std::int64_t unix_seconds = 0;
  /// Remove "." and ".." segments and collapse repeated slashes (every service but S3).
  bool normalize_path = true;
  /// Encode the path's segments again (every service but S3, which signs the path once).
  bool encode_path = true;
  /// Add and sign `x-amz-content-sha256` (S3 requires it).
  bool content_sha256_header = false;
  /// Sign X-Amz-Security-Token (false: it is sent but left out of the signature, as a few
  /// services want).
  bool sign_session_token = true;
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      ///< 64 lowercase hex digits
  std::string authorization;  ///< the Authorization header's value
  /// Headers the request must carry besides its own: X-Amz-Date, then
  /// X-Amz-Security-Token (with a session token) and x-amz-content-sha256 (when asked).
  std::vector<std::pair<std::string, std::string>> added_headers;
};

/// The signing key of one day (four HMACs derived from the secret, the date, the region and
/// the service), kept by a signer that signs many requests with the same credentials, region
/// and service: the key changes once a day, so the derivation runs once a day instead of on
/// every request. The lock is held only to copy 32 bytes.
class SigningKeyCache {
 public:
  using Key = std::array<unsigned char, 32>;
  /// The cached key for `date` ("20150830"), or false.
  bool find(std::string_view date, Key& key) const;
  void store(std::string_view date, const Key& key);

 private:
  mutable std::mutex mu_;
  char date_[8] = {};
  Key key_{};
};

/// Signs `req`. Pure but for `cache` (optional; one per credentials, region and service): the
/// time comes from `opt.unix_seconds`.
SigV4Signature sign_v4(const SigV4Request& req, const AwsCredentials& creds,
                       const SigV4Options& opt, SigningKeyCache* cache = nullptr);

/// RFC 3986 percent-encoding of everything but the unreserved characters (A-Z a-z 0-9 - . _ ~),
/// as SigV4 canonical forms use it; `keep_slash` leaves '/' as is.
std::string aws_uri_encode(std::string_view s, bool keep_slash);

/// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace llmgw::aws
