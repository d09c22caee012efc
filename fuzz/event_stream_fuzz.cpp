// libFuzzer target: the AWS event-stream decoder on arbitrary bytes, fed in pieces whose sizes
// the input's first byte chooses. It must never read out of bounds, and a stream it accepts
// must decode to the same messages whatever the split.
#include "providers/bedrock/event_stream.hpp"

#include <cstdlib>

using llmgw::providers::bedrock::EventMessage;
using llmgw::providers::bedrock::EventStreamDecoder;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::size_t piece = 1 + data[0] % 17;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  EventStreamDecoder whole(1 << 16);
  std::vector<EventMessage> a;
  const bool ok = whole.feed(bytes, a);
  EventStreamDecoder split(1 << 16);
  std::vector<EventMessage> b;
  bool ok_split = true;
  for (std::size_t i = 0; i < bytes.size() && ok_split; i += piece) {
    ok_split = split.feed(bytes.substr(i, piece), b);
  }
  if (ok != ok_split || a.size() != b.size()) {
    std::abort();  // the split changed the outcome
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].payload != b[i].payload || a[i].headers.size() != b[i].headers.size() ||
        encode_event_message(a[i]).size() < 16) {
      std::abort();
    }
  }
  return 0;
}
