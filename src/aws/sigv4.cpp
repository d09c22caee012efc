#include "aws/sigv4.hpp"

#include "core/ids.hpp"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/url/pct_string_view.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <map>

namespace llmgw::aws {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr char kHexUpper[] = "0123456789ABCDEF";

using Digest = std::array<unsigned char, 32>;

/// SHA-256 through one digest fetched once and a context per thread: OpenSSL 3's one-shot
/// SHA256() and HMAC() look the algorithm up on every call (a lock and string compares),
/// which cost more than hashing a request body.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {}
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  static Sha256& local() {
    thread_local Sha256 h;
    return h;
  }
  void init() { EVP_DigestInit_ex2(ctx_, md(), nullptr); }
  void update(std::string_view data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  void update(const unsigned char* data, std::size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  Digest final() {
    Digest out{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out.data(), &len);
    return out;
  }

 private:
  static const EVP_MD* md() {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return md;
  }
  EVP_MD_CTX* ctx_;
};

Digest sha256(std::string_view data) {
  Sha256& h = Sha256::local();
  h.init();
  h.update(data);
  return h.final();
}

/// HMAC-SHA256 (RFC 2104) over the digest above.
Digest hmac(std::string_view key, std::string_view data) {
  constexpr std::size_t kBlock = 64;
  std::array<unsigned char, kBlock> pad{};
  if (key.size() > kBlock) {
    const Digest k = sha256(key);
    std::copy(k.begin(), k.end(), pad.begin());
  } else {
    std::copy(key.begin(), key.end(), pad.begin());
  }
  Sha256& h = Sha256::local();
  for (auto& b : pad) {
    b ^= 0x36;
  }
  h.init();
  h.update(pad.data(), pad.size());
  h.update(data);
  const Digest inner = h.final();
  for (auto& b : pad) {
    b ^= 0x36 ^ 0x5c;
  }
  h.init();
  h.update(pad.data(), pad.size());
  h.update(inner.data(), inner.size());
  return h.final();
}

std::string_view view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

/// %XX sequences decoded (Boost.URL); a string with a malformed escape is taken as it is.
std::string percent_decode(std::string_view s) {
  const auto pct = boost::urls::make_pct_string_view(s);
  return pct ? pct->decode() : std::string(s);
}

/// RFC 3986 remove_dot_segments, with empty segments (repeated slashes) dropped too.
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing = false;
  std::size_t i = 0;
  while (i <= path.size()) {
    const std::size_t slash = path.find('/', i);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    const std::string_view seg = path.substr(i, end - i);
    const bool last = slash == std::string_view::npos;
    if (seg == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
      trailing = last;
    } else if (seg == ".") {
      trailing = last;
    } else if (seg.empty()) {
      trailing = last && i > 0;
    } else {
      segments.push_back(seg);
      trailing = false;
    }
    if (last) {
      break;
    }
    i = slash + 1;
  }
  std::string out;
  for (const auto& s : segments) {
    out += '/';
    out.append(s);
  }
  if (out.empty() || trailing) {
    out += '/';
  }
  return out;
}

/// Trims and collapses each run of whitespace (line breaks of a folded value included) into
/// one space.
std::string canonical_value(std::string_view v) {
  std::string out;
  bool space = false;
  for (const char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    out.push_back(c);
  }
  return out;
}

/// "20150830T123600Z": RFC 3339 UTC without its separators.
std::string amz_date(std::int64_t t) {
  std::string s = core::format_utc(t);
  std::erase_if(s, [](char c) { return c == '-' || c == ':'; });
  return s;
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  std::size_t i = 0;
  while (i < query.size()) {
    std::size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) {
      amp = query.size();
    }
    const std::string_view pair = query.substr(i, amp - i);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      const std::string_view k = pair.substr(0, eq);
      const std::string_view v = eq == std::string_view::npos ? std::string_view{}
                                                              : pair.substr(eq + 1);
      params.emplace_back(aws_uri_encode(percent_decode(k), false),
                          aws_uri_encode(percent_decode(v), false));
    }
    i = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) {
      out += '&';
    }
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

}  // namespace

std::string aws_uri_encode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 0xF]);
    }
  }
  return out;
}

std::string sha256_hex(std::string_view data) { return core::to_hex(sha256(data)); }

bool SigningKeyCache::find(std::string_view date, Key& key) const {
  const std::lock_guard lock(mu_);
  if (date.size() != sizeof date_ || !std::equal(date.begin(), date.end(), date_)) {
    return false;
  }
  key = key_;
  return true;
}

void SigningKeyCache::store(std::string_view date, const Key& key) {
  const std::lock_guard lock(mu_);
  if (date.size() == sizeof date_) {
    std::copy(date.begin(), date.end(), date_);
    key_ = key;
  }
}

SigV4Signature sign_v4(const SigV4Request& req, const AwsCredentials& creds,
                       const SigV4Options& opt, SigningKeyCache* cache) {
  SigV4Signature sig;
  const std::string date_time = amz_date(opt.unix_seconds);
  const std::string date = date_time.substr(0, 8);
  const std::string payload_hash = sha256_hex(req.payload);

  sig.added_headers.emplace_back("X-Amz-Date", date_time);
  if (!creds.session_token.empty()) {
    sig.added_headers.emplace_back("X-Amz-Security-Token", creds.session_token);
  }
  if (opt.content_sha256_header) {
    sig.added_headers.emplace_back("x-amz-content-sha256", payload_hash);
  }

  // Canonical headers: lower-case names in order, a repeated name's values joined by ','.
  std::map<std::string, std::string> headers;
  const auto add = [&headers](std::string_view name, std::string_view value) {
    auto [it, fresh] = headers.try_emplace(boost::algorithm::to_lower_copy(std::string(name)));
    if (!fresh) {
      it->second += ',';
    }
    it->second += canonical_value(value);
  };
  for (const auto& [name, value] : req.headers) {
    add(name, value);
  }
  for (const auto& [name, value] : sig.added_headers) {
    if (opt.sign_session_token || name != "X-Amz-Security-Token") {
      add(name, value);
    }
  }
  std::string canonical_headers;
  std::string signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name;
    canonical_headers += ':';
    canonical_headers += value;
    canonical_headers += '\n';
    if (!signed_headers.empty()) {
      signed_headers += ';';
    }
    signed_headers += name;
  }

  std::string path = opt.normalize_path ? normalize_path(req.path) : std::string(req.path);
  if (path.empty()) {
    path.assign(1, '/');  // not = "/": GCC 12 warns falsely (-Wrestrict, PR 105329)
  }
  std::string& cr = sig.canonical_request;
  cr.append(req.method);
  cr += '\n';
  cr += opt.encode_path ? aws_uri_encode(path, true) : path;
  cr += '\n';
  cr += canonical_query(req.query);
  cr += '\n';
  cr += canonical_headers;
  cr += '\n';
  cr += signed_headers;
  cr += '\n';
  cr += payload_hash;

  const std::string scope = date + "/" + opt.region + "/" + opt.service + "/aws4_request";
  std::string& sts = sig.string_to_sign;
  sts.append(kAlgorithm);
  sts += '\n';
  sts += date_time;
  sts += '\n';
  sts += scope;
  sts += '\n';
  sts += sha256_hex(cr);

  Digest k_signing{};
  if (cache == nullptr || !cache->find(date, k_signing)) {
    const Digest k_date = hmac("AWS4" + creds.secret_access_key, date);
    const Digest k_region = hmac(view(k_date), opt.region);
    const Digest k_service = hmac(view(k_region), opt.service);
    k_signing = hmac(view(k_service), "aws4_request");
    if (cache != nullptr) {
      cache->store(date, k_signing);
    }
  }
  const Digest s = hmac(view(k_signing), sts);
  sig.signature = core::to_hex(s);

  sig.authorization = std::string(kAlgorithm) + " Credential=" + creds.access_key_id + "/" + scope +
                      ", SignedHeaders=" + signed_headers + ", Signature=" + sig.signature;
  return sig;
}

}  // namespace llmgw::aws
