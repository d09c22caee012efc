#pragma once
/// AWS event stream (`application/vnd.amazon.eventstream`), the binary framing of Bedrock's
/// ConverseStream and InvokeModelWithResponseStream answers. Each message: total length and
/// headers length (big-endian u32), the prelude's CRC32, typed headers, the payload, and the
/// CRC32 of everything before it. The decoder is fed bytes as they arrive, split anywhere,
/// and checks both CRCs before it reads a header. Checked against the aws-sdk-go and
/// smithy-rs vectors (tests/unit/providers/event_stream_test.cpp).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::providers::bedrock {

enum class HeaderType : std::uint8_t {
  BoolTrue = 0,
  BoolFalse = 1,
  Byte = 2,
  Short = 3,
  Int = 4,
  Long = 5,
  Bytes = 6,
  String = 7,
  Timestamp = 8,  ///< milliseconds since the epoch
  Uuid = 9,
};

struct EventHeader {
  std::string name;
  HeaderType type = HeaderType::String;
  std::int64_t integer = 0;  ///< Byte, Short, Int, Long, Timestamp (sign-extended)
  std::string bytes;         ///< Bytes, String, Uuid (16 bytes)
  [[nodiscard]] bool boolean() const noexcept { return type == HeaderType::BoolTrue; }
};

struct EventMessage {
  std::vector<EventHeader> headers;
  std::string payload;
  /// The first header named `name`, or null.
  [[nodiscard]] const EventHeader* header(std::string_view name) const noexcept;
  /// The value of string header `name` (":event-type", ":message-type"…), or empty.
  [[nodiscard]] std::string_view string_header(std::string_view name) const noexcept;
};

enum class EventStreamError : std::uint8_t {
  None,
  PreludeChecksum,  ///< the prelude's CRC does not match
  MessageChecksum,  ///< the message's CRC does not match
  Length,           ///< a total length below the minimum, or a headers length past the end
  Headers,          ///< a header that runs past the headers, an empty name, an unknown type
  TooLarge,         ///< a message longer than the decoder accepts
};

/// "Prelude checksum mismatch", "Message checksum mismatch", … (the aws-sdk-go wording).
std::string_view to_string(EventStreamError e) noexcept;

class EventStreamDecoder {
 public:
  static constexpr std::size_t kDefaultMaxMessageBytes = 16u << 20;

  explicit EventStreamDecoder(std::size_t max_message_bytes = kDefaultMaxMessageBytes)
      : max_message_bytes_(max_message_bytes) {}

  /// Appends `bytes` and moves every complete message into `out`. Returns false once the
  /// stream is broken (error() says how); a broken decoder accepts nothing more.
  bool feed(std::string_view bytes, std::vector<EventMessage>& out);
  /// True when no partial message is waiting (a stream may end here).
  [[nodiscard]] bool idle() const noexcept { return buffer_.empty(); }
  [[nodiscard]] EventStreamError error() const noexcept { return error_; }

 private:
  std::string buffer_;
  std::size_t max_message_bytes_;
  EventStreamError error_ = EventStreamError::None;
};

/// One message, framed (for mocks and tests).
std::string encode_event_message(const EventMessage& m);

}  // namespace llmgw::providers::bedrock
