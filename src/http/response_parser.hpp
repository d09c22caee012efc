#pragma once
/// A Beast `basic_parser` for upstream responses: status, the few headers the proxy needs,
/// and the body delivered into a caller-owned string as it arrives (chunked or not).

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <string>
#include <string_view>

namespace llmgw::http {

class ResponseParser final : public boost::beast::http::basic_parser<false> {
 public:
  /// Body bytes are appended to `*body` (the proxy drains it between reads).
  explicit ResponseParser(std::string* body) : body_(body) {}

  [[nodiscard]] unsigned status() const noexcept { return status_; }
  [[nodiscard]] const std::string& content_type() const noexcept { return content_type_; }
  [[nodiscard]] const std::string& retry_after() const noexcept { return retry_after_; }
  /// Headers passed on to the client, preformatted ("Name: value\r\n"): the provider's
  /// x-ratelimit-*, openai-processing-ms and Retry-After.
  [[nodiscard]] const std::string& passthrough_headers() const noexcept { return passthrough_; }
  void set_body(std::string* body) noexcept { body_ = body; }

 private:
  using error_code = boost::beast::error_code;
  using sv = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb, sv, sv, int,
                       error_code& ec) override {
    ec = boost::beast::http::error::bad_version;
  }
  void on_response_impl(int code, sv, int, error_code&) override {
    status_ = static_cast<unsigned>(code);
  }
  void on_field_impl(boost::beast::http::field name, sv name_string,
                     sv value, error_code&) override {
    using boost::beast::http::field;
    if (name == field::content_type) {
      content_type_.assign(value);
    } else if (name == field::retry_after) {
      retry_after_.assign(value);
      append_passthrough(name_string, value);
    } else if (boost::beast::iequals(name_string.substr(0, 12), "x-ratelimit-") ||
               boost::beast::iequals(name_string, "openai-processing-ms")) {
      append_passthrough(name_string, value);
    }
  }
  void append_passthrough(std::string_view name, std::string_view value) {
    passthrough_.append(name);
    passthrough_ += ": ";
    passthrough_.append(value);
    passthrough_ += "\r\n";
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(sv body, error_code&) override {
    body_->append(body);
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, sv, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, sv body, error_code&) override {
    body_->append(body);
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  std::string* body_;
  unsigned status_ = 0;
  std::string content_type_;
  std::string retry_after_;
  std::string passthrough_;
};

}  // namespace llmgw::http
