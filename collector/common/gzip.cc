#include "collector/common/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace meshtel::common {
namespace {

// zlib counts in 32-bit units: larger buffers go in chunks.
constexpr size_t kChunk = size_t{1} << 30;
// windowBits 15 + 16: a gzip header and trailer instead of zlib's.
constexpr int kGzipWindowBits = 15 + 16;

}  // namespace

absl::StatusOr<std::string> GzipCompress(std::string_view data, int level) {
  z_stream stream{};
  if (deflateInit2(&stream, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError("gzip: deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&stream, static_cast<uLong>(std::min(data.size(), kChunk))) + 64);
  size_t produced = 0;
  size_t consumed = 0;
  int result = Z_OK;
  while (result != Z_STREAM_END) {
    const size_t input = std::min(kChunk, data.size() - consumed);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + consumed));
    stream.avail_in = static_cast<uInt>(input);
    const int flush = consumed + input == data.size() ? Z_FINISH : Z_NO_FLUSH;
    do {
      if (produced == out.size()) out.resize(out.size() * 2);
      const size_t room = std::min(kChunk, out.size() - produced);
      stream.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      stream.avail_out = static_cast<uInt>(room);
      result = deflate(&stream, flush);
      if (result == Z_STREAM_ERROR) {
        deflateEnd(&stream);
        return absl::InternalError("gzip: deflate failed");
      }
      produced += room - stream.avail_out;
    } while (stream.avail_out == 0 || (flush == Z_FINISH && result != Z_STREAM_END));
    consumed += input - stream.avail_in;
  }
  deflateEnd(&stream);
  out.resize(produced);
  return out;
}

absl::StatusOr<std::string> GzipDecompress(std::string_view data, size_t max_output_bytes) {
  std::string out;
  size_t offset = 0;
  std::array<char, 64 * 1024> chunk;
  if (data.empty()) return absl::InvalidArgumentError("gzip: empty input");
  while (offset < data.size()) {
    z_stream stream{};
    if (inflateInit2(&stream, kGzipWindowBits) != Z_OK) {
      return absl::InternalError("gzip: inflateInit2 failed");
    }
    int result = Z_OK;
    while (result == Z_OK) {
      if (stream.avail_in == 0) {
        const size_t input = std::min(kChunk, data.size() - offset);
        if (input == 0) break;
        stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + offset));
        stream.avail_in = static_cast<uInt>(input);
        offset += input;
      }
      stream.next_out = reinterpret_cast<Bytef*>(chunk.data());
      stream.avail_out = static_cast<uInt>(chunk.size());
      result = inflate(&stream, Z_NO_FLUSH);
      const size_t produced = chunk.size() - stream.avail_out;
      if (out.size() + produced > max_output_bytes) {
        inflateEnd(&stream);
        return absl::ResourceExhaustedError(
            absl::StrCat("gzip: the data decompresses to more than ", max_output_bytes, " bytes"));
      }
      out.append(chunk.data(), produced);
      if (result == Z_BUF_ERROR) result = Z_OK;  // no progress: wants more input (next turn)
    }
    // Input the member did not use belongs to the next member.
    offset -= stream.avail_in;
    inflateEnd(&stream);
    if (result != Z_STREAM_END) {
      return absl::InvalidArgumentError(result == Z_OK || result == Z_BUF_ERROR
                                            ? "gzip: the data is cut short"
                                            : "gzip: the data is not valid gzip");
    }
  }
  return out;
}

}  // namespace meshtel::common
