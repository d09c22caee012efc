// The AWS event-stream decoder against the aws-sdk-go and smithy-rs vectors
// (tests/data/aws-eventstream/README.md): every positive frame decodes to the documented
// headers and payload whole, one byte at a time and split at every offset, and encodes back
// to the same bytes; every negative frame is refused with the documented reason.

#include "providers/bedrock/event_stream.hpp"

#include "read_file.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

namespace llmgw::providers::bedrock {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(LLMGW_TEST_DATA_DIR) / "aws-eventstream";

using test::read_file;

std::string base64(std::string_view b64) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (const char c : b64) {
    const auto v = kAlphabet.find(c);
    if (v == std::string_view::npos) continue;  // '=' padding
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return out;
}

std::vector<EventMessage> decode_in_pieces(const std::string& bytes, std::size_t piece,
                                           EventStreamError* error = nullptr) {
  EventStreamDecoder d;
  std::vector<EventMessage> out;
  for (std::size_t i = 0; i < bytes.size(); i += piece) {
    if (!d.feed(std::string_view(bytes).substr(i, piece), out)) break;
  }
  if (error != nullptr) *error = d.error();
  return out;
}

void expect_matches(const EventMessage& m, const boost::json::object& want) {
  const auto& headers = want.at("headers").as_array();
  ASSERT_EQ(m.headers.size(), headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& h = headers[i].as_object();
    SCOPED_TRACE(std::string(h.at("name").as_string()));
    EXPECT_EQ(m.headers[i].name, h.at("name").as_string());
    const auto type = static_cast<HeaderType>(h.at("type").as_int64());
    EXPECT_EQ(m.headers[i].type, type);
    const auto& v = h.at("value");
    switch (type) {
      case HeaderType::BoolTrue:
      case HeaderType::BoolFalse: EXPECT_EQ(m.headers[i].boolean(), v.as_bool()); break;
      case HeaderType::Bytes:
      case HeaderType::String:
      case HeaderType::Uuid: EXPECT_EQ(m.headers[i].bytes, base64(v.as_string())); break;
      default: EXPECT_EQ(m.headers[i].integer, v.to_number<std::int64_t>()); break;
    }
  }
  EXPECT_EQ(m.payload, base64(want.at("payload").as_string()));
}

TEST(EventStream, AwsSdkGoPositiveFramesDecodeHoweverTheyAreSplit) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(kData / "aws-sdk-go/encoded/positive")) {
    SCOPED_TRACE(e.path().filename().string());
    const std::string bytes = read_file(e.path());
    const auto want =
        boost::json::parse(read_file(kData / "aws-sdk-go/decoded/positive" / e.path().filename()))
            .as_object();
    for (std::size_t piece : {bytes.size(), std::size_t{1}, std::size_t{7}}) {
      const auto msgs = decode_in_pieces(bytes, piece);
      ASSERT_EQ(msgs.size(), 1u) << "piece " << piece;
      expect_matches(msgs[0], want);
    }
    // Split at every offset into two reads.
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      EventStreamDecoder d;
      std::vector<EventMessage> out;
      ASSERT_TRUE(d.feed(std::string_view(bytes).substr(0, cut), out));
      ASSERT_TRUE(d.feed(std::string_view(bytes).substr(cut), out));
      ASSERT_EQ(out.size(), 1u) << "cut " << cut;
      EXPECT_TRUE(d.idle());
    }
    EXPECT_EQ(encode_event_message(decode_in_pieces(bytes, bytes.size())[0]), bytes);
    ++n;
  }
  EXPECT_EQ(n, 5u);
}

TEST(EventStream, AwsSdkGoNegativeFramesAreRefusedWithTheirReason) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(kData / "aws-sdk-go/encoded/negative")) {
    SCOPED_TRACE(e.path().filename().string());
    std::string want = read_file(kData / "aws-sdk-go/decoded/negative" / e.path().filename());
    while (!want.empty() && (want.back() == '\n' || want.back() == '\r')) want.pop_back();
    for (std::size_t piece : {std::size_t{1} << 20, std::size_t{1}}) {
      EventStreamError err{};
      EXPECT_TRUE(decode_in_pieces(read_file(e.path()), piece, &err).empty());
      EXPECT_EQ(to_string(err), want);
    }
    ++n;
  }
  EXPECT_EQ(n, 4u);
}

TEST(EventStream, SmithyFrames) {
  std::size_t valid = 0, invalid = 0;
  for (const auto& e : fs::directory_iterator(kData / "smithy-rs")) {
    const std::string name = e.path().filename().string();
    if (name == "LICENSE") continue;
    SCOPED_TRACE(name);
    const std::string bytes = read_file(e.path());
    EventStreamError err{};
    const auto msgs = decode_in_pieces(bytes, 3, &err);
    if (name.starts_with("valid_")) {
      ASSERT_EQ(msgs.size(), 1u) << to_string(err);
      EXPECT_EQ(encode_event_message(msgs[0]), bytes);
      ++valid;
    } else {
      EXPECT_TRUE(msgs.empty());
      EXPECT_NE(err, EventStreamError::None);
      ++invalid;
    }
  }
  EXPECT_EQ(valid, 3u);
  EXPECT_EQ(invalid, 8u);
}

/// A frame around raw header bytes, with both CRCs right.
std::string frame_with_raw_headers(const std::string& headers) {
  const auto be32 = [](std::string& out, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  const auto crc = [](std::string_view s) {
    return static_cast<std::uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
  };
  std::string out;
  be32(out, static_cast<std::uint32_t>(16 + headers.size()));
  be32(out, static_cast<std::uint32_t>(headers.size()));
  be32(out, crc(out));
  out += headers;
  be32(out, crc(out));
  return out;
}

TEST(EventStream, MalformedHeadersWithValidChecksumsAreRefused) {
  // The decoder must not read past the headers block, whatever a header claims.
  const std::vector<std::string> bad = {
      std::string("\x00", 1),                               // empty name
      std::string("\x05" "ab", 3),                          // name past the block
      std::string("\x01" "a", 2),                           // no type byte
      std::string("\x01" "a" "\x0a", 3),                    // type 10
      std::string("\x01" "a" "\x07" "\x00\x09" "abc", 8),   // string longer than the block
      std::string("\x01" "a" "\x06" "\x00", 4),             // bytes length cut off
      std::string("\x01" "a" "\x05" "\x00\x00", 5),         // int64 cut off
      std::string("\x01" "a" "\x09" "0123", 7),             // uuid cut off
  };
  for (const auto& h : bad) {
    SCOPED_TRACE(::testing::PrintToString(h));
    EventStreamError err{};
    EXPECT_TRUE(decode_in_pieces(frame_with_raw_headers(h), 1, &err).empty());
    EXPECT_EQ(err, EventStreamError::Headers);
  }
  // The same helper with good headers decodes: the refusals above are the headers'.
  const auto ok = decode_in_pieces(frame_with_raw_headers(std::string("\x01" "a" "\x00", 3)), 1);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_TRUE(ok[0].headers[0].boolean());
  // A headers length past the message is a length error, not a read out of bounds.
  std::string lying = frame_with_raw_headers("");
  lying[7] = 1;  // headers length 1 in a 16-byte message (the prelude CRC now fails first)
  EventStreamError err{};
  EXPECT_TRUE(decode_in_pieces(lying, 1, &err).empty());
  EXPECT_NE(err, EventStreamError::None);
}

TEST(EventStream, BoundsMemoryAndStopsAfterAnError) {
  EventMessage big;
  big.payload.assign(2048, 'x');
  const std::string bytes = encode_event_message(big);
  EventStreamDecoder small(1024);
  std::vector<EventMessage> out;
  EXPECT_FALSE(small.feed(bytes, out));
  EXPECT_EQ(small.error(), EventStreamError::TooLarge);
  EXPECT_FALSE(small.feed(encode_event_message(EventMessage{}), out)) << "a broken stream stays broken";
  EXPECT_TRUE(out.empty());

  // Two messages in one read, and a partial third left waiting.
  EventMessage a;
  a.headers.push_back({":event-type", HeaderType::String, 0, "contentBlockDelta"});
  a.payload = R"({"delta":{"text":"Hi"}})";
  EventMessage b;
  b.headers.push_back({":event-type", HeaderType::String, 0, "metadata"});
  b.payload = R"({"usage":{"inputTokens":3,"outputTokens":1}})";
  const std::string stream = encode_event_message(a) + encode_event_message(b) + encode_event_message(a);
  EventStreamDecoder d;
  ASSERT_TRUE(d.feed(std::string_view(stream).substr(0, stream.size() - 5), out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].string_header(":event-type"), "contentBlockDelta");
  EXPECT_EQ(out[1].payload, b.payload);
  EXPECT_FALSE(d.idle());
  ASSERT_TRUE(d.feed(std::string_view(stream).substr(stream.size() - 5), out));
  EXPECT_EQ(out.size(), 3u);
  EXPECT_TRUE(d.idle());
}

}  // namespace
}  // namespace llmgw::providers::bedrock
