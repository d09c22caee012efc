#pragma once
/// Google OAuth 2.0 access tokens for Vertex AI, from a credentials JSON file:
/// - a service account key (`"type": "service_account"`): an RS256-signed JWT assertion
///   (RFC 7523) exchanged at the key's `token_uri`;
/// - user credentials (`"type": "authorized_user"`, what `gcloud auth application-default
///   login` writes): the refresh token exchanged at the same endpoint.
/// The token endpoint answers `{access_token, expires_in, token_type}`. Nothing here writes
/// a private key, a refresh token or an access token into an error message.

#include <chrono>
#include <cstdint>
#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::providers::gemini {

/// The OAuth scope Vertex AI takes.
inline constexpr std::string_view kCloudPlatformScope =
    "https://www.googleapis.com/auth/cloud-platform";
inline constexpr std::string_view kDefaultTokenUri = "https://oauth2.googleapis.com/token";

struct GoogleCredentials {
  enum class Kind : std::uint8_t { ServiceAccount, AuthorizedUser };
  Kind kind = Kind::ServiceAccount;
  std::string client_email;    ///< service account
  std::string private_key_id;  ///< service account: the JWT's `kid`
  std::string private_key;     ///< service account: PEM (PKCS#8 or PKCS#1 RSA); secret
  std::string client_id;       ///< authorized user
  std::string client_secret;   ///< authorized user; secret
  std::string refresh_token;   ///< authorized user; secret
  std::string token_uri;       ///< default kDefaultTokenUri
};

/// Parses a credentials JSON document; nullopt with `error` (naming the field, never its
/// value) when it is not one of the two kinds or its private key does not load.
std::optional<GoogleCredentials> parse_credentials(std::string_view json, std::string& error);

/// The signed JWT assertion of a service account: header {alg: RS256, typ: JWT, kid},
/// claims {iss, scope, aud = token_uri, iat = now, exp = now + 3600}. Empty with `error` if
/// the key cannot sign.
std::string make_jwt_assertion(const GoogleCredentials& sa, std::int64_t now_unix,
                               std::string& error);

/// The token request's form body (application/x-www-form-urlencoded).
std::string token_request_form(const GoogleCredentials& c, std::int64_t now_unix,
                               std::string& error);

struct AccessToken {
  std::string token;  ///< secret
  std::chrono::system_clock::time_point expires;
};

/// Reads a token endpoint's 200 answer; nullopt with `error` if it holds no bearer token.
std::optional<AccessToken> parse_token_answer(std::string_view body,
                                              std::chrono::system_clock::time_point now,
                                              std::string& error);

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
};

/// POSTs `form` to an http:// or https:// `url` and reads the answer (at most 64 KiB), all
/// within `timeout`, through http::blocking_request (blocking: its own io_context on the
/// calling thread). TLS verifies the server's certificate chain against the system's roots
/// and its name. Nullopt with `error`.
std::optional<HttpAnswer> post_form(std::string_view url, std::string_view form,
                                    std::chrono::milliseconds timeout, std::string& error);

/// The access token of one set of credentials: read without blocking by every request,
/// refreshed by one blocking fetch that concurrent callers share.
class TokenSource {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  static constexpr std::chrono::seconds kRefreshWindow{300};
  static constexpr std::chrono::milliseconds kTimeout{10'000};

  explicit TokenSource(GoogleCredentials credentials, Clock clock = nullptr);

  /// The current token; null before the first fetch.
  [[nodiscard]] std::shared_ptr<const AccessToken> current() const noexcept {
    return token_.load(std::memory_order_acquire);
  }

  enum class State : std::uint8_t { Ready, RefreshSoon, Missing };
  /// Missing: none, or expired at `now`; RefreshSoon: expires within kRefreshWindow.
  [[nodiscard]] State state(std::chrono::system_clock::time_point now) const noexcept;

  /// Fetches a new token (blocking, at most kTimeout). Concurrent callers wait for the one
  /// fetch in flight and get its result. Empty on success, else the reason for the log.
  std::string refresh();

 private:
  std::string fetch();

  GoogleCredentials credentials_;
  Clock clock_;
  std::atomic<std::shared_ptr<const AccessToken>> token_;
  std::mutex mutex_;
  std::shared_future<std::string> in_flight_;  ///< valid while a fetch runs
};

}  // namespace llmgw::providers::gemini
