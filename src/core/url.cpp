#include "core/url.hpp"

#include <boost/url/parse.hpp>

namespace llmgw::core {

std::optional<Origin> Origin::parse(std::string_view base_url) {
  auto u = boost::urls::parse_absolute_uri(base_url);
  if (!u) {
    return std::nullopt;
  }
  Origin o;
  if (u->scheme() == "https") {
    o.tls = true;
  } else if (u->scheme() != "http") {
    return std::nullopt;
  }
  o.host = u->host_address();  // IPv6 without brackets
  if (o.host.empty()) {
    return std::nullopt;
  }
  if (u->has_port()) {
    if (u->port_number() == 0) {
      return std::nullopt;
    }
    o.port = u->port_number();
  } else {
    o.port = o.tls ? 443 : 80;
  }
  o.host_header = std::string(u->encoded_host_and_port());
  o.base_path = std::string(u->encoded_path());
  while (!o.base_path.empty() && o.base_path.back() == '/') {
    o.base_path.pop_back();
  }
  o.key = std::string(o.tls ? "https://" : "http://") + o.host + ":" + std::to_string(o.port);
  return o;
}

std::string percent_encode_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace llmgw::core
