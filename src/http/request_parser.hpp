#pragma once
/// A Beast `basic_parser` that keeps only what the gateway reads: method, target, a handful
/// of headers and the body, in strings owned by the connection and reused across requests
/// (no `basic_fields` tree, no `http::message`).

#include <boost/beast/http/basic_parser.hpp>

#include <string>
#include <string_view>

namespace llmgw::http {

/// Per-connection storage the parser fills; cleared (capacity kept) for each request.
struct RequestData {
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  std::string target;
  std::string authorization;
  std::string api_key;
  std::string request_id;
  /// `anthropic-beta` (Anthropic's clients name the beta features they use); repeated headers
  /// joined by commas.
  std::string anthropic_beta;
  std::string body;
  bool expect_continue = false;
  bool has_request_id = false;

  void clear() {
    method = boost::beast::http::verb::unknown;
    target.clear();
    authorization.clear();
    api_key.clear();
    request_id.clear();
    anthropic_beta.clear();
    body.clear();
    expect_continue = false;
    has_request_id = false;
  }
};

class RequestParser final : public boost::beast::http::basic_parser<true> {
 public:
  explicit RequestParser(RequestData& data) : data_(data) { data_.clear(); }

 private:
  using error_code = boost::beast::error_code;
  using sv = boost::beast::string_view;
  using field = boost::beast::http::field;

  void on_request_impl(boost::beast::http::verb method, sv, sv target,
                       int, error_code&) override {
    data_.method = method;
    data_.target.assign(target);
  }
  void on_response_impl(int, sv, int, error_code& ec) override {
    ec = boost::beast::http::error::bad_version;  // never called for a request parser
  }
  void on_field_impl(field name, sv name_string, sv value,
                     error_code&) override {
    switch (name) {
      case field::authorization: data_.authorization.assign(value); return;
      case field::expect:
        data_.expect_continue = boost::beast::iequals(value, "100-continue");
        return;
      default: break;
    }
    // `api-key` (Azure's clients) and `x-api-key` (Anthropic's) carry the gateway key too.
    if (boost::beast::iequals(name_string, "api-key") ||
        boost::beast::iequals(name_string, "x-api-key")) {
      data_.api_key.assign(value);
    } else if (boost::beast::iequals(name_string, "x-request-id")) {
      data_.request_id.assign(value);
      data_.has_request_id = true;
    } else if (boost::beast::iequals(name_string, "anthropic-beta")) {
      if (!data_.anthropic_beta.empty()) {
        data_.anthropic_beta += ',';
      }
      data_.anthropic_beta.append(value);
    }
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code&) override {
    if (content_length && *content_length <= (64u << 20)) {
      data_.body.reserve(static_cast<std::size_t>(*content_length));
    }
  }
  std::size_t on_body_impl(sv body, error_code&) override {
    data_.body.append(body);
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, sv, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, sv body, error_code&) override {
    data_.body.append(body);
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  RequestData& data_;
};

}  // namespace llmgw::http
