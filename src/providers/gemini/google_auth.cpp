#include "providers/gemini/google_auth.hpp"

#include "core/ids.hpp"
#include "core/json.hpp"
#include "http/client/blocking_client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cmath>

namespace llmgw::providers::gemini {

namespace json = boost::json;

namespace {

constexpr std::int64_t kAssertionLifetime = 3600;  // seconds: Google's maximum
constexpr std::size_t kMaxAnswerBytes = 64 * 1024;
constexpr std::size_t kMaxErrorText = 200;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

/// The RSA private key of a PEM text, or null (the OpenSSL error queue cleared: its text
/// may quote the input).
Pkey load_rsa_key(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey key;
  if (bio) {
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  }
  ERR_clear_error();
  if (key && EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    key.reset();
  }
  return key;
}

std::string_view string_member(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

std::string b64url(std::string_view s) {
  return core::base64url(std::span(reinterpret_cast<const unsigned char*>(s.data()), s.size()));
}

void append_form_value(std::string& out, std::string_view v) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4U];
      out += kHex[c & 0xfU];
    }
  }
}

void add_form(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) {
    out += '&';
  }
  out += name;
  out += '=';
  append_form_value(out, value);
}

/// A short, printable excerpt of a token endpoint's error fields (never the request).
std::string clip(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, kMaxErrorText)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return out;
}

}  // namespace

std::optional<GoogleCredentials> parse_credentials(std::string_view text, std::string& error) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    error = "the credentials are not a JSON object";
    return std::nullopt;
  }
  const json::object& o = v.get_object();
  GoogleCredentials c;
  c.token_uri = string_member(o, "token_uri");
  if (c.token_uri.empty()) {
    c.token_uri = kDefaultTokenUri;
  }
  const auto uri = boost::urls::parse_absolute_uri(c.token_uri);
  if (!uri || (uri->scheme() != "https" && uri->scheme() != "http") || uri->host().empty()) {
    error = "the credentials' token_uri is not an http(s) URL";
    return std::nullopt;
  }
  const std::string_view type = string_member(o, "type");
  auto need = [&](std::string_view field, std::string& into) {
    into = string_member(o, field);
    if (into.empty()) {
      error = "the credentials lack '" + std::string(field) + "'";
      return false;
    }
    return true;
  };
  if (type == "service_account") {
    c.kind = GoogleCredentials::Kind::ServiceAccount;
    if (!need("client_email", c.client_email) || !need("private_key", c.private_key)) {
      return std::nullopt;
    }
    c.private_key_id = string_member(o, "private_key_id");
    if (!load_rsa_key(c.private_key)) {
      error = "the credentials' private_key is not a PEM RSA private key";
      return std::nullopt;
    }
    return c;
  }
  if (type == "authorized_user") {
    c.kind = GoogleCredentials::Kind::AuthorizedUser;
    if (!need("client_id", c.client_id) || !need("client_secret", c.client_secret) ||
        !need("refresh_token", c.refresh_token)) {
      return std::nullopt;
    }
    return c;
  }
  error = "the credentials' type must be service_account or authorized_user";
  return std::nullopt;
}

std::string make_jwt_assertion(const GoogleCredentials& sa, std::int64_t now_unix,
                               std::string& error) {
  std::string header = R"({"alg":"RS256","typ":"JWT")";
  if (!sa.private_key_id.empty()) {
    header += R"(,"kid":)";
    core::append_json_string(header, sa.private_key_id);
  }
  header += '}';
  std::string claims = R"({"iss":)";
  core::append_json_string(claims, sa.client_email);
  claims += R"(,"scope":)";
  core::append_json_string(claims, kCloudPlatformScope);
  claims += R"(,"aud":)";
  core::append_json_string(claims, sa.token_uri);
  claims += R"(,"iat":)";
  claims += std::to_string(now_unix);
  claims += R"(,"exp":)";
  claims += std::to_string(now_unix + kAssertionLifetime);
  claims += '}';
  std::string signing_input = b64url(header) + "." + b64url(claims);

  const Pkey key = load_rsa_key(sa.private_key);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  std::string sig;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  bool ok = key && ctx &&
            EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
            EVP_DigestSign(ctx.get(), nullptr, &len, data, signing_input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                        signing_input.size()) == 1;
    sig.resize(len);
  }
  ERR_clear_error();
  if (!ok) {
    error = "signing the token assertion with the service account's key failed";
    return {};
  }
  signing_input += '.';
  signing_input += b64url(sig);
  return signing_input;
}

std::string token_request_form(const GoogleCredentials& c, std::int64_t now_unix,
                               std::string& error) {
  std::string form;
  if (c.kind == GoogleCredentials::Kind::AuthorizedUser) {
    add_form(form, "grant_type", "refresh_token");
    add_form(form, "client_id", c.client_id);
    add_form(form, "client_secret", c.client_secret);
    add_form(form, "refresh_token", c.refresh_token);
    return form;
  }
  const std::string assertion = make_jwt_assertion(c, now_unix, error);
  if (assertion.empty()) {
    return {};
  }
  add_form(form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
  add_form(form, "assertion", assertion);
  return form;
}

std::optional<AccessToken> parse_token_answer(std::string_view body,
                                              std::chrono::system_clock::time_point now,
                                              std::string& error) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    error = "the token endpoint's answer is not a JSON object";
    return std::nullopt;
  }
  const json::object& o = v.get_object();
  AccessToken t;
  t.token = string_member(o, "access_token");
  const std::string_view type = string_member(o, "token_type");
  if (t.token.empty() || t.token.find_first_of("\r\n") != std::string::npos) {
    error = "the token endpoint's answer has no access_token";
    return std::nullopt;
  }
  if (!type.empty() && type != "Bearer" && type != "bearer") {
    error = "the token endpoint's answer is not a bearer token";
    return std::nullopt;
  }
  const json::value* exp = o.if_contains("expires_in");
  double seconds = 0;
  if (exp != nullptr && exp->is_int64()) {
    seconds = static_cast<double>(exp->get_int64());
  } else if (exp != nullptr && exp->is_uint64()) {
    seconds = static_cast<double>(exp->get_uint64());
  } else if (exp != nullptr && exp->is_double()) {
    seconds = exp->get_double();
  } else {
    error = "the token endpoint's answer has no expires_in";
    return std::nullopt;
  }
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > 86400 * 365) {
    error = "the token endpoint's answer has an unusable expires_in";
    return std::nullopt;
  }
  t.expires = now + std::chrono::seconds(static_cast<std::int64_t>(seconds));
  return t;
}

std::optional<HttpAnswer> post_form(std::string_view url, std::string_view form,
                                    std::chrono::milliseconds timeout, std::string& error) {
  http::BlockingRequest req;
  req.method = "POST";
  req.url = url;
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = form;
  req.timeout = timeout;
  req.max_answer_bytes = kMaxAnswerBytes;
  auto answer = http::blocking_request(req, error);
  if (!answer) {
    error = "the token request failed: " + error;
    return std::nullopt;
  }
  return HttpAnswer{answer->status, std::move(answer->body)};
}

TokenSource::TokenSource(GoogleCredentials credentials, Clock clock)
    : credentials_(std::move(credentials)), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] { return std::chrono::system_clock::now(); };
  }
}

TokenSource::State TokenSource::state(std::chrono::system_clock::time_point now) const noexcept {
  const auto t = current();
  if (!t || now >= t->expires) {
    return State::Missing;
  }
  return now >= t->expires - kRefreshWindow ? State::RefreshSoon : State::Ready;
}

std::string TokenSource::refresh() {
  std::promise<std::string> promise;
  std::shared_future<std::string> result;
  bool leader = false;
  {
    const std::lock_guard lock(mutex_);
    if (in_flight_.valid()) {
      result = in_flight_;
    } else {
      result = promise.get_future().share();
      in_flight_ = result;
      leader = true;
    }
  }
  if (leader) {
    std::string error;
    try {
      error = fetch();
    } catch (const std::exception&) {
      error = "fetching an access token failed";
    }
    {
      const std::lock_guard lock(mutex_);
      in_flight_ = {};
    }
    promise.set_value(std::move(error));
  }
  return result.get();
}

std::string TokenSource::fetch() {
  const auto now = clock_();
  const std::int64_t now_unix =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::string error;
  const std::string form = token_request_form(credentials_, now_unix, error);
  if (form.empty()) {
    return error;
  }
  const auto answer = post_form(credentials_.token_uri, form, kTimeout, error);
  if (!answer) {
    return error;
  }
  if (answer->status != 200) {
    // OAuth's error answer: {"error": "invalid_grant", "error_description": "..."}.
    std::string reason;
    boost::system::error_code ec;
    const json::value v = json::parse(answer->body, ec);
    if (!ec && v.is_object()) {
      reason = clip(string_member(v.get_object(), "error"));
      const std::string desc = clip(string_member(v.get_object(), "error_description"));
      if (!desc.empty()) {
        reason += reason.empty() ? desc : " (" + desc + ")";
      }
    }
    return "the token endpoint answered HTTP " + std::to_string(answer->status) +
           (reason.empty() ? "" : ": " + reason);
  }
  auto token = parse_token_answer(answer->body, now, error);
  if (!token) {
    return error;
  }
  token_.store(std::make_shared<const AccessToken>(std::move(*token)), std::memory_order_release);
  return {};
}

}  // namespace llmgw::providers::gemini
