#include "events/archive/s3_sink.hpp"

#include "core/ids.hpp"
#include "events/archive/object_name.hpp"
#include "http/client/blocking_client.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <span>
#include <stdexcept>

namespace llmgw::archive {

namespace {

constexpr std::size_t kMaxErrorText = 300;
constexpr std::size_t kMaxErrorAnswer = 64 * 1024;
constexpr std::size_t kMaxListAnswer = 16u << 20;
constexpr std::string_view kContentType = "application/gzip";
constexpr int kListPagesMax = 10'000;

/// The text of the first <tag>…</tag> of `xml` at or after `from` (entities decoded), and
/// where its closing tag ends; npos when absent.
std::pair<std::string, std::size_t> xml_element(std::string_view xml, std::string_view tag,
                                                std::size_t from = 0) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  const std::size_t start = xml.find(open, from);
  if (start == std::string_view::npos) {
    return {{}, std::string_view::npos};
  }
  const std::size_t body = start + open.size();
  const std::size_t end = xml.find(close, body);
  if (end == std::string_view::npos) {
    return {{}, std::string_view::npos};
  }
  const std::string_view raw = xml.substr(body, end - body);
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      out += raw[i];
      continue;
    }
    const std::size_t semi = raw.find(';', i);
    const std::string_view ent =
        semi == std::string_view::npos ? std::string_view{} : raw.substr(i + 1, semi - i - 1);
    char c = 0;
    if (ent == "amp") {
      c = '&';
    } else if (ent == "lt") {
      c = '<';
    } else if (ent == "gt") {
      c = '>';
    } else if (ent == "quot") {
      c = '"';
    } else if (ent == "apos") {
      c = '\'';
    } else if (ent.size() > 1 && ent[0] == '#') {
      const bool hex = ent[1] == 'x';
      const std::string digits(ent.substr(hex ? 2 : 1));
      char* stop = nullptr;
      const unsigned long v = std::strtoul(digits.c_str(), &stop, hex ? 16 : 10);
      if (!digits.empty() && stop != nullptr && *stop == '\0' && v > 0 && v < 0x80) {
        c = static_cast<char>(v);
      }
    }
    if (c == 0) {
      out += '&';  // not an entity we know: kept as is
      continue;
    }
    out += c;
    i = semi;
  }
  return {std::move(out), end + close.size()};
}

std::string clip(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, kMaxErrorText)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return out;
}

std::string base64(std::span<const unsigned char> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

bool http_ok(unsigned status) { return status >= 200 && status < 300; }

}  // namespace

aws::SigV4Options s3_signing_options(std::string region, std::int64_t unix_seconds) {
  aws::SigV4Options opt;
  opt.region = std::move(region);
  opt.service = "s3";
  opt.unix_seconds = unix_seconds;
  opt.normalize_path = false;  // S3 keys may hold what normalisation would remove
  opt.encode_path = false;     // S3 signs the path encoded once, as sent
  opt.content_sha256_header = true;
  return opt;
}

std::string content_md5(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md.data(), &len, EVP_md5(), nullptr);
  return base64(std::span(md.data(), len));
}

std::string s3_error_text(std::string_view xml) {
  const std::string code = xml_element(xml, "Code").first;
  const std::string message = xml_element(xml, "Message").first;
  if (code.empty()) {
    return clip(message);
  }
  return clip(message.empty() ? code : code + ": " + message);
}

S3Sink::S3Sink(S3Config config) : config_(std::move(config)) {
  const std::string_view b = config_.bucket;
  if (b.size() < 3 || b.size() > 63 ||
      b.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string_view::npos) {
    throw std::invalid_argument("LOGGING_SINK_S3_BUCKET: not a bucket name");
  }
  if (config_.region.empty() ||
      config_.region.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") !=
          std::string::npos) {
    throw std::invalid_argument("LOGGING_SINK_S3_REGION: not a region name");
  }
  if (config_.credentials.access_key_id.empty() || config_.credentials.secret_access_key.empty()) {
    throw std::invalid_argument(
        "the S3 archive needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  if (config_.credentials.access_key_id.find_first_of(" /\r\n") != std::string::npos ||
      config_.credentials.session_token.find_first_of("\r\n") != std::string::npos) {
    throw std::invalid_argument("AWS_ACCESS_KEY_ID or AWS_SESSION_TOKEN: malformed");
  }
  if (!config_.endpoint.empty()) {
    const auto url = http::parse_http_url(config_.endpoint);
    if (!url || url->target.find('?') != std::string::npos) {
      throw std::invalid_argument("LOGGING_SINK_S3_ENDPOINT: not an http(s) origin");
    }
    tls_ = url->tls;
    host_ = url->host_header;
    std::string base = url->target;
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    path_prefix_ = base + "/" + config_.bucket;
  } else if (b.find('.') != std::string_view::npos) {
    host_ = "s3." + config_.region + ".amazonaws.com";
    path_prefix_ = "/" + config_.bucket;
  } else {
    host_ = config_.bucket + ".s3." + config_.region + ".amazonaws.com";
  }
  origin_ = (tls_ ? "https://" : "http://") + host_;
}

std::int64_t S3Sink::now() const {
  return config_.clock ? config_.clock() : core::unix_seconds();
}

std::string S3Sink::where(std::string_view key) const {
  return "s3://" + config_.bucket + "/" + std::string(key);
}

std::string S3Sink::describe() const {
  return "s3://" + config_.bucket + (config_.endpoint.empty() ? "" : " at " + origin_);
}

S3Request S3Sink::make_request(
    std::string_view method, std::string_view key, std::string_view query,
    std::string_view payload, std::int64_t unix_seconds,
    const std::vector<std::pair<std::string, std::string>>& extra) const {
  std::string path = path_prefix_ + "/" + aws::aws_uri_encode(key, true);
  S3Request r;
  r.method = std::string(method);
  r.url = origin_ + path + (query.empty() ? "" : "?" + std::string(query));
  r.headers.emplace_back("Host", host_);
  if (method == "PUT") {
    r.headers.emplace_back("Content-MD5", content_md5(payload));
    r.headers.emplace_back("Content-Type", std::string(kContentType));
  }
  for (const auto& h : extra) {
    r.headers.push_back(h);
  }
  aws::SigV4Request sreq;
  sreq.method = method;
  sreq.path = path;
  sreq.query = query;
  sreq.headers = r.headers;
  sreq.payload = payload;
  aws::SigV4Signature sig =
      aws::sign_v4(sreq, config_.credentials, s3_signing_options(config_.region, unix_seconds));
  for (auto& h : sig.added_headers) {
    r.headers.push_back(std::move(h));
  }
  r.headers.emplace_back("Authorization", std::move(sig.authorization));
  r.signature = std::move(sig.signature);
  return r;
}

namespace {

std::optional<http::BlockingAnswer> send(const S3Request& r, std::string_view body,
                                         std::chrono::milliseconds timeout, std::size_t limit,
                                         std::string& error) {
  http::BlockingRequest req;
  req.method = r.method;
  req.url = r.url;
  req.headers = r.headers;
  req.body = body;
  req.timeout = timeout;
  req.max_answer_bytes = limit;
  return http::blocking_request(req, error);
}

std::string status_text(std::string_view what, const http::BlockingAnswer& a) {
  std::string s(what);
  s += " answered HTTP " + std::to_string(a.status);
  const std::string detail = s3_error_text(a.body);
  if (!detail.empty()) {
    s += ": " + detail;
  }
  return s;
}

}  // namespace

PutResult S3Sink::put(std::string_view name, std::string_view bytes) {
  if (!valid_object_name(name)) {
    return PutResult::failed("'" + std::string(name) + "' is not a valid object name");
  }
  if (!conditional_.load(std::memory_order_relaxed)) {
    return put_plain(name, bytes);
  }
  const S3Request r = make_request("PUT", name, {}, bytes, now(), {{"If-None-Match", "*"}});
  std::string error;
  const auto a = send(r, bytes, config_.timeout, kMaxErrorAnswer, error);
  if (!a) {
    return PutResult::failed("PUT " + where(name) + ": " + error);
  }
  if (http_ok(a->status)) {
    return PutResult::stored();
  }
  if (a->status == 412) {
    return settle_existing(name, bytes);
  }
  if (a->status == 501) {
    conditional_.store(false, std::memory_order_relaxed);
    return put_plain(name, bytes);
  }
  return PutResult::failed(status_text("PUT " + where(name), *a));
}

PutResult S3Sink::put_plain(std::string_view name, std::string_view bytes) {
  // Without conditional writes: look first (a race with another writer of the same name is
  // harmless, names are per pod and a retry sends the same bytes).
  {
    const S3Request head = make_request("HEAD", name, {}, {}, now());
    std::string error;
    const auto a = send(head, {}, config_.timeout, kMaxErrorAnswer, error);
    if (!a) {
      return PutResult::failed("HEAD " + where(name) + ": " + error);
    }
    if (http_ok(a->status)) {
      return settle_existing(name, bytes);  // HEADs again: rare, and keeps one path
    }
    if (a->status != 404) {
      return PutResult::failed(status_text("HEAD " + where(name), *a));
    }
  }
  const S3Request r = make_request("PUT", name, {}, bytes, now());
  std::string error;
  const auto a = send(r, bytes, config_.timeout, kMaxErrorAnswer, error);
  if (!a) {
    return PutResult::failed("PUT " + where(name) + ": " + error);
  }
  if (http_ok(a->status)) {
    return PutResult::stored();
  }
  return PutResult::failed(status_text("PUT " + where(name), *a));
}

PutResult S3Sink::settle_existing(std::string_view name, std::string_view bytes) {
  // The size first: an object of another size is a conflict without reading it.
  {
    const S3Request head = make_request("HEAD", name, {}, {}, now());
    std::string error;
    const auto a = send(head, {}, config_.timeout, kMaxErrorAnswer, error);
    if (!a) {
      return PutResult::failed(where(name) + " exists; HEAD failed: " + error);
    }
    if (!http_ok(a->status)) {
      return PutResult::failed(status_text(where(name) + " exists; HEAD", *a));
    }
    if (a->header("Content-Length") != std::to_string(bytes.size())) {
      return PutResult::conflict(where(name) + " exists with other content (another size)");
    }
  }
  const S3Request r = make_request("GET", name, {}, {}, now());
  std::string error;
  const auto a = send(r, {}, config_.timeout, bytes.size() + 1, error);
  if (!a) {
    return PutResult::failed(where(name) + " exists; reading it back failed: " + error);
  }
  if (!http_ok(a->status)) {
    return PutResult::failed(status_text(where(name) + " exists; GET", *a));
  }
  if (a->body == bytes) {
    return PutResult::stored();
  }
  return PutResult::conflict(where(name) + " exists with other content");
}

std::optional<std::string> S3Sink::get(std::string_view name, std::string& error) {
  if (name.empty() || name.size() > 1024) {
    error = "'" + std::string(name) + "' is not an object name";
    return std::nullopt;
  }
  const S3Request r = make_request("GET", name, {}, {}, now());
  const auto a = send(r, {}, config_.timeout, config_.max_object_bytes, error);
  if (!a) {
    error = "GET " + where(name) + ": " + error;
    return std::nullopt;
  }
  if (!http_ok(a->status)) {
    error = status_text("GET " + where(name), *a);
    return std::nullopt;
  }
  return std::move(a->body);
}

std::optional<std::vector<std::string>> S3Sink::list(std::string_view prefix,
                                                     std::string& error) {
  std::vector<std::string> names;
  std::string token;
  for (int page = 0; page < kListPagesMax; ++page) {
    std::string query = "list-type=2&prefix=" + aws::aws_uri_encode(prefix, false);
    if (!token.empty()) {
      query = "continuation-token=" + aws::aws_uri_encode(token, false) + "&" + query;
    }
    const S3Request r = make_request("GET", "", query, {}, now());
    const auto a = send(r, {}, config_.timeout, kMaxListAnswer, error);
    if (!a) {
      error = "listing " + where(prefix) + ": " + error;
      return std::nullopt;
    }
    if (!http_ok(a->status)) {
      error = status_text("listing " + where(prefix), *a);
      return std::nullopt;
    }
    std::size_t pos = 0;
    for (;;) {
      auto [key, end] = xml_element(a->body, "Key", pos);
      if (end == std::string_view::npos) {
        break;
      }
      names.push_back(std::move(key));
      pos = end;
    }
    if (xml_element(a->body, "IsTruncated").first != "true") {
      std::sort(names.begin(), names.end());
      return names;
    }
    token = xml_element(a->body, "NextContinuationToken").first;
    if (token.empty()) {
      error = "listing " + where(prefix) + ": a truncated page without a continuation token";
      return std::nullopt;
    }
  }
  error = "listing " + where(prefix) + ": too many pages";
  return std::nullopt;
}

}  // namespace llmgw::archive
