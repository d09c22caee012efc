#include "events/archive/batch_codec.hpp"

#include <zlib.h>

#include <array>
#include <limits>

namespace llmgw::archive {

namespace {

constexpr int kGzipWindow = 15 + 16;  // 2^15 window, gzip wrapper
constexpr int kMemLevel = 8;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMaxBatchBytes = std::size_t(1) << 30;  // all records of a batch

struct Deflater {
  z_stream z{};
  bool ready = false;
  Deflater() {
    ready = deflateInit2(&z, kGzipLevel, Z_DEFLATED, kGzipWindow, kMemLevel,
                         Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    if (ready) {
      deflateEnd(&z);
    }
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
};

struct Inflater {
  z_stream z{};
  bool ready = false;
  Inflater() { ready = inflateInit2(&z, kGzipWindow) == Z_OK; }
  ~Inflater() {
    if (ready) {
      inflateEnd(&z);
    }
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

/// Deflates `in` into `out` (appending); `flush` Z_NO_FLUSH or Z_FINISH.
bool deflate_into(z_stream& z, std::string_view in, int flush, std::string& out) {
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::array<unsigned char, kChunk> buf{};
  for (;;) {
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    const int rc = deflate(&z, flush);
    if (rc == Z_STREAM_ERROR) {
      return false;
    }
    out.append(reinterpret_cast<const char*>(buf.data()), buf.size() - z.avail_out);
    if (flush == Z_FINISH ? rc == Z_STREAM_END : (z.avail_in == 0 && z.avail_out != 0)) {
      return true;
    }
  }
}

/// Two memchr scans: find_first_of("\r\n") searches the two-byte set once per byte of the
/// record (it was a third of the archiver's time on the benchmark's load).
bool has_line_break(std::string_view r) {
  return r.find('\n') != std::string_view::npos || r.find('\r') != std::string_view::npos;
}

}  // namespace

std::optional<std::string> encode_batch(std::span<const std::string> records,
                                        std::string& error) {
  std::size_t total = 0;
  for (const auto& r : records) {
    if (has_line_break(r)) {
      error = "a record holds a line break";
      return std::nullopt;
    }
    total += r.size() + 1;
  }
  if (total > kMaxBatchBytes) {
    error = "the batch is larger than 1 GiB";
    return std::nullopt;
  }
  Deflater d;
  if (!d.ready) {
    error = "zlib could not start a gzip stream";
    return std::nullopt;
  }
  // The lines joined first: one deflate call per batch instead of two per record.
  // Kept per thread: a batch's lines are megabytes, which malloc would map and unmap (and
  // the kernel zero) on every batch.
  thread_local std::string lines;
  lines.clear();
  lines.reserve(total);
  for (const auto& r : records) {
    lines.append(r).push_back('\n');
  }
  std::string out;
  out.reserve(total / 4 + 64);
  // Each piece stays below zlib's 32-bit avail_in.
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  for (std::size_t at = 0; at < lines.size(); at += kPiece) {
    if (!deflate_into(d.z, std::string_view(lines).substr(at, kPiece), Z_NO_FLUSH, out)) {
      error = "zlib failed while compressing the batch";
      return std::nullopt;
    }
  }
  if (!deflate_into(d.z, {}, Z_FINISH, out)) {
    error = "zlib failed while finishing the batch";
    return std::nullopt;
  }
  return out;
}

std::size_t erase_invalid_records(std::vector<std::string>& records) {
  return std::erase_if(records, [](const std::string& r) {
    return r.empty() || has_line_break(r);
  });
}

bool decode_batch(std::string_view gz, const std::function<bool(std::string_view)>& on_record,
                  std::string& error, std::size_t max_record) {
  if (gz.empty()) {
    error = "the object is empty (not gzip)";
    return false;
  }
  Inflater inf;
  if (!inf.ready) {
    error = "zlib could not start a gzip reader";
    return false;
  }
  z_stream& z = inf.z;
  std::string line;
  std::array<unsigned char, kChunk> buf{};
  std::size_t offset = 0;
  std::size_t member = 1;
  bool stopped = false;
  // Splits decoded bytes into lines and hands the complete ones over.
  const auto take = [&](std::string_view bytes) {
    while (!bytes.empty() && !stopped) {
      const std::size_t nl = bytes.find('\n');
      const std::string_view piece = bytes.substr(0, nl);
      if (line.size() + piece.size() > max_record) {
        error = "a record is longer than " + std::to_string(max_record) + " bytes";
        return false;
      }
      line.append(piece);
      if (nl == std::string_view::npos) {
        return true;
      }
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (!line.empty() && !on_record(line)) {
        stopped = true;
      }
      line.clear();
      bytes.remove_prefix(nl + 1);
    }
    return true;
  };
  while (!stopped) {
    const std::size_t in_now =
        std::min<std::size_t>(gz.size() - offset, std::numeric_limits<uInt>::max());
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data() + offset));
    z.avail_in = static_cast<uInt>(in_now);
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    offset += in_now - z.avail_in;
    const std::size_t produced = buf.size() - z.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && produced != 0)) {
      if (rc == Z_BUF_ERROR) {
        error = "gzip member " + std::to_string(member) + " is truncated";
      } else {
        error = "gzip member " + std::to_string(member) + " is corrupt: " +
                (z.msg != nullptr ? z.msg : "inflate error " + std::to_string(rc));
      }
      return false;
    }
    if (!take({reinterpret_cast<const char*>(buf.data()), produced})) {
      return false;
    }
    if (rc == Z_STREAM_END) {
      if (offset == gz.size()) {
        break;
      }
      ++member;
      if (inflateReset(&z) != Z_OK) {
        error = "zlib could not read the next gzip member";
        return false;
      }
      continue;
    }
    if (offset == gz.size() && produced == 0 && z.avail_out != 0) {
      error = "gzip member " + std::to_string(member) + " is truncated";
      return false;
    }
  }
  if (!stopped && !line.empty()) {
    on_record(line);
  }
  return true;
}

std::optional<std::vector<std::string>> decode_batch(std::string_view gz, std::string& error) {
  std::vector<std::string> out;
  std::size_t total = 0;
  bool too_big = false;
  const bool ok = decode_batch(
      gz,
      [&](std::string_view r) {
        total += r.size();
        if (total > kMaxBatchBytes) {
          too_big = true;
          return false;
        }
        out.emplace_back(r);
        return true;
      },
      error);
  if (too_big) {
    error = "the object decodes to more than 1 GiB";
    return std::nullopt;
  }
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

}  // namespace llmgw::archive
