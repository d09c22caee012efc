#pragma once
/// One audit record: the facts of one proxied request, rendered as one JSON line (no newline
/// inside). Built once at the end of every request, on every exit path, from what the proxy
/// gathered; the keys and the secrets of the call never reach it (a key is named by its id and
/// name only).

#include "core/config.hpp"
#include "events/audit/redact.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace llmgw::audit {

struct Tokens {
  std::int64_t input = 0;  ///< uncached text input
  std::int64_t cache_read = 0;
  std::int64_t cache_write_5m = 0;
  std::int64_t cache_write_1h = 0;
  std::int64_t input_audio = 0;
  std::int64_t input_image = 0;
  std::int64_t output = 0;  ///< text output, reasoning excluded
  std::int64_t reasoning = 0;
  std::int64_t output_audio = 0;
  std::int64_t output_image = 0;
  bool reported = false;  ///< false: estimated or none
};

struct Record {
  std::string_view request_id;         ///< the gateway's (32 hex digits)
  std::string_view client_request_id;  ///< the client's x-request-id, if it sent one
  std::int64_t time_us = 0;            ///< the request's start, unix microseconds
  std::string_view endpoint;           ///< "chat.completions", "embeddings", "messages"
  std::string_view key_id;             ///< empty: the request was not authenticated
  std::string_view key_name;
  std::string_view model_requested;    ///< as the client named it
  std::string_view alias;              ///< the alias the request used, if any
  std::string_view model;              ///< the model it resolved to
  std::string_view provider;
  std::string_view upstream_model;
  unsigned status = 0;
  std::string_view error_type;  ///< OpenAI's error type of an error answer
  bool stream = false;
  std::int64_t total_us = 0;
  std::int64_t overhead_us = -1;  ///< -1: not measured (the provider was not called)
  std::int64_t upstream_us = -1;
  std::int64_t ttft_us = -1;
  Tokens tokens;
  std::string_view cost_usd;  ///< exact decimal; empty: unknown
  std::string_view cost_status;
  std::string_view request_body;
  /// The answer as the client got it (a whole JSON answer or an error); for a stream, the
  /// assembled final message when the proxy has one, else empty.
  std::string_view response_body;
};

/// Appends the record as one JSON line (without the newline). `mode` metadata leaves the bodies
/// out; full keeps them (a valid JSON body as JSON, anything else as a string), each cut at
/// `max_body_bytes` and then marked `"request_cut": true` (the cut body as a string);
/// redacted keeps them as `redactor` masks them, then cut the same way.
void render(std::string& out, const Record& r, core::AuditBodies mode,
            std::size_t max_body_bytes, const Redactor& redactor);

}  // namespace llmgw::audit
