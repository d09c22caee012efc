#include "providers/bedrock/event_stream.hpp"

#include <zlib.h>

namespace llmgw::providers::bedrock {

namespace {

/// Prelude (total length, headers length, prelude CRC) and the trailing message CRC.
constexpr std::size_t kPreludeBytes = 12;
constexpr std::size_t kOverheadBytes = kPreludeBytes + 4;

std::uint32_t crc32_of(std::string_view s) {
  return static_cast<std::uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

std::uint64_t read_be(std::string_view s, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  }
  return v;
}

void write_be(std::string& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = n; i-- > 0;) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

/// Sign-extends the low `n` bytes of `v`.
std::int64_t signed_of(std::uint64_t v, std::size_t n) {
  const unsigned bits = static_cast<unsigned>(n * 8);
  if (bits < 64 && (v & (std::uint64_t{1} << (bits - 1))) != 0) {
    v |= ~std::uint64_t{0} << bits;
  }
  return static_cast<std::int64_t>(v);
}

std::size_t integer_size(HeaderType t) {
  switch (t) {
    case HeaderType::Byte: return 1;
    case HeaderType::Short: return 2;
    case HeaderType::Int: return 4;
    case HeaderType::Long:
    case HeaderType::Timestamp: return 8;
    default: return 0;
  }
}

/// Reads the headers block; false when it is malformed.
bool parse_headers(std::string_view h, std::vector<EventHeader>& out) {
  std::size_t i = 0;
  while (i < h.size()) {
    const std::size_t name_len = static_cast<unsigned char>(h[i++]);
    if (name_len == 0 || i + name_len + 1 > h.size()) {
      return false;
    }
    EventHeader header;
    header.name.assign(h.substr(i, name_len));
    i += name_len;
    const auto type = static_cast<unsigned char>(h[i++]);
    if (type > static_cast<unsigned char>(HeaderType::Uuid)) {
      return false;
    }
    header.type = static_cast<HeaderType>(type);
    switch (header.type) {
      case HeaderType::BoolTrue:
      case HeaderType::BoolFalse: break;
      case HeaderType::Byte:
      case HeaderType::Short:
      case HeaderType::Int:
      case HeaderType::Long:
      case HeaderType::Timestamp: {
        const std::size_t n = integer_size(header.type);
        if (i + n > h.size()) {
          return false;
        }
        header.integer = signed_of(read_be(h, i, n), n);
        i += n;
        break;
      }
      case HeaderType::Bytes:
      case HeaderType::String: {
        if (i + 2 > h.size()) {
          return false;
        }
        const std::size_t len = read_be(h, i, 2);
        i += 2;
        if (i + len > h.size()) {
          return false;
        }
        header.bytes.assign(h.substr(i, len));
        i += len;
        break;
      }
      case HeaderType::Uuid:
        if (i + 16 > h.size()) {
          return false;
        }
        header.bytes.assign(h.substr(i, 16));
        i += 16;
        break;
    }
    out.push_back(std::move(header));
  }
  return true;
}

}  // namespace

const EventHeader* EventMessage::header(std::string_view name) const noexcept {
  for (const auto& h : headers) {
    if (h.name == name) {
      return &h;
    }
  }
  return nullptr;
}

std::string_view EventMessage::string_header(std::string_view name) const noexcept {
  const EventHeader* h = header(name);
  return h != nullptr && h->type == HeaderType::String ? std::string_view(h->bytes)
                                                       : std::string_view{};
}

std::string_view to_string(EventStreamError e) noexcept {
  switch (e) {
    case EventStreamError::None: return "no error";
    case EventStreamError::PreludeChecksum: return "Prelude checksum mismatch";
    case EventStreamError::MessageChecksum: return "Message checksum mismatch";
    case EventStreamError::Length: return "Invalid message length";
    case EventStreamError::Headers: return "Invalid message headers";
    case EventStreamError::TooLarge: return "Message too large";
  }
  return "unknown error";
}

bool EventStreamDecoder::feed(std::string_view bytes, std::vector<EventMessage>& out) {
  if (error_ != EventStreamError::None) {
    return false;
  }
  buffer_.append(bytes);
  std::size_t pos = 0;
  const auto fail = [&](EventStreamError e) {
    error_ = e;
    buffer_.clear();
    return false;
  };
  while (buffer_.size() - pos >= kPreludeBytes) {
    const std::string_view rest = std::string_view(buffer_).substr(pos);
    const std::size_t total = read_be(rest, 0, 4);
    const std::size_t headers_len = read_be(rest, 4, 4);
    if (crc32_of(rest.substr(0, 8)) != read_be(rest, 8, 4)) {
      return fail(EventStreamError::PreludeChecksum);
    }
    if (total < kOverheadBytes || headers_len > total - kOverheadBytes) {
      return fail(EventStreamError::Length);
    }
    if (total > max_message_bytes_) {
      return fail(EventStreamError::TooLarge);
    }
    if (rest.size() < total) {
      break;  // the rest of this message is still on its way
    }
    const std::string_view msg = rest.substr(0, total);
    if (crc32_of(msg.substr(0, total - 4)) != read_be(msg, total - 4, 4)) {
      return fail(EventStreamError::MessageChecksum);
    }
    EventMessage m;
    if (!parse_headers(msg.substr(kPreludeBytes, headers_len), m.headers)) {
      return fail(EventStreamError::Headers);
    }
    m.payload.assign(msg.substr(kPreludeBytes + headers_len, total - kOverheadBytes - headers_len));
    out.push_back(std::move(m));
    pos += total;
  }
  buffer_.erase(0, pos);
  return true;
}

std::string encode_event_message(const EventMessage& m) {
  std::string headers;
  for (const auto& h : m.headers) {
    headers.push_back(static_cast<char>(h.name.size()));
    headers += h.name;
    headers.push_back(static_cast<char>(h.type));
    switch (h.type) {
      case HeaderType::BoolTrue:
      case HeaderType::BoolFalse: break;
      case HeaderType::Bytes:
      case HeaderType::String:
        write_be(headers, h.bytes.size(), 2);
        headers += h.bytes;
        break;
      case HeaderType::Uuid: headers += h.bytes; break;
      default:
        write_be(headers, static_cast<std::uint64_t>(h.integer), integer_size(h.type));
        break;
    }
  }
  std::string out;
  const std::size_t total = kOverheadBytes + headers.size() + m.payload.size();
  write_be(out, total, 4);
  write_be(out, headers.size(), 4);
  write_be(out, crc32_of(out), 4);
  out += headers;
  out += m.payload;
  write_be(out, crc32_of(out), 4);
  return out;
}

}  // namespace llmgw::providers::bedrock
