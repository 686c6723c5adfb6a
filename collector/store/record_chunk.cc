#include "collector/store/record_chunk.h"

#include <lz4.h>

#include <cstdint>
#include <cstring>

#include "collector/common/protobuf_wire.h"

namespace meshtel::collector {
namespace {

constexpr char kChunkMarker = 0x00;
constexpr char kPlainFormat = 0x01;
constexpr char kLz4Format = 0x02;
// LZ4 expands at most 255 times: a body size past that is damage, not data.
constexpr uint64_t kLz4MaxRatio = 255;

// Appends the plain body of `records` (count, then size-prefixed records) to `out`.
template <typename Records>
void AppendBody(const Records& records, std::string& out) {
  common::AppendVarint(records.size(), out);
  for (const auto& record : records) {
    common::AppendVarint(record.size(), out);
    out.append(record);
  }
}

}  // namespace

bool IsRecordChunk(std::string_view value) {
  return !value.empty() && value.front() == kChunkMarker;
}

std::string EncodeRecordChunk(std::span<const std::string> records) {
  std::string value{kChunkMarker, kPlainFormat};
  AppendBody(records, value);
  return value;
}

std::string_view RecordChunkWriter::Encode(std::span<const std::string_view> records) {
  body_.clear();
  AppendBody(records, body_);
  char header[2 + 2 * common::kMaxVarintBytes] = {kChunkMarker, kLz4Format};
  size_t header_size = 2;
  header_size += common::EncodeVarint(records.size(), header + header_size);
  header_size += common::EncodeVarint(body_.size(), header + header_size);
  // LZ4's bound is above the body's size, so the plain form fits the same room.
  const int bound = LZ4_compressBound(static_cast<int>(body_.size()));
  const size_t room = header_size + static_cast<size_t>(bound);
  if (value_capacity_ < room) {
    value_.reset(new char[room]);  // not zero-filled: every byte returned is written first
    value_capacity_ = room;
  }
  const int compressed = LZ4_compress_default(body_.data(), value_.get() + header_size,
                                              static_cast<int>(body_.size()), bound);
  if (compressed <= 0 || header_size + static_cast<size_t>(compressed) >= 2 + body_.size()) {
    value_[0] = kChunkMarker;
    value_[1] = kPlainFormat;
    std::memcpy(value_.get() + 2, body_.data(), body_.size());
    return std::string_view(value_.get(), 2 + body_.size());
  }
  std::memcpy(value_.get(), header, header_size);
  return std::string_view(value_.get(), header_size + static_cast<size_t>(compressed));
}

bool RecordChunkReader::Reset(std::string_view value) {
  records_.clear();
  if (!IsRecordChunk(value)) {
    records_.push_back(value);
    return true;
  }
  if (value.size() < 2) return false;
  if (value[1] == kPlainFormat) return ReadBody(value.substr(2));
  if (value[1] != kLz4Format) return false;
  size_t offset = 2;
  uint64_t count = 0;
  uint64_t body_size = 0;
  if (!common::ReadVarint(value, offset, count) || !common::ReadVarint(value, offset, body_size) ||
      body_size > (value.size() - offset) * kLz4MaxRatio + 16 || body_size > INT32_MAX) {
    return false;
  }
  body_.resize(static_cast<size_t>(body_size));
  const int decompressed =
      LZ4_decompress_safe(value.data() + offset, body_.data(),
                          static_cast<int>(value.size() - offset), static_cast<int>(body_.size()));
  if (decompressed < 0 || static_cast<uint64_t>(decompressed) != body_size || !ReadBody(body_) ||
      records_.size() != count) {
    records_.clear();
    return false;
  }
  return true;
}

bool RecordChunkReader::ReadBody(std::string_view body) {
  size_t offset = 0;
  uint64_t count = 0;
  // Each record takes at least its one-byte size prefix: a count above that is damage.
  if (!common::ReadVarint(body, offset, count) || count > body.size() - offset) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size = 0;
    if (!common::ReadVarint(body, offset, size) || size > body.size() - offset) {
      records_.clear();
      return false;
    }
    records_.push_back(body.substr(offset, static_cast<size_t>(size)));
    offset += static_cast<size_t>(size);
  }
  if (offset != body.size()) {
    records_.clear();
    return false;
  }
  return true;
}

std::optional<size_t> RecordCount(std::string_view value) {
  if (!IsRecordChunk(value)) return 1;
  if (value.size() < 2 || (value[1] != kPlainFormat && value[1] != kLz4Format)) {
    return std::nullopt;
  }
  size_t offset = 2;
  uint64_t count = 0;
  if (!common::ReadVarint(value, offset, count) || count > SIZE_MAX) return std::nullopt;
  return static_cast<size_t>(count);
}

RecordIndexRange RecordsBetween(const StoreKey& first, size_t count, const StoreKey& after,
                                const StoreKey& before) {
  // Record i has the key {first.time_unix_nano, first.sequence + i}.
  const auto first_above = [&](const StoreKey& bound, bool inclusive) -> size_t {
    if (first.time_unix_nano != bound.time_unix_nano) {
      return first.time_unix_nano > bound.time_unix_nano ? 0 : count;
    }
    // The first i with first.sequence + i > bound.sequence (>= when inclusive).
    if (!inclusive && bound.sequence == UINT64_MAX) return count;
    const uint64_t needed = inclusive ? bound.sequence : bound.sequence + 1;
    if (first.sequence >= needed) return 0;
    const uint64_t i = needed - first.sequence;
    return i >= count ? count : static_cast<size_t>(i);
  };
  RecordIndexRange range{first_above(after, /*inclusive=*/false),
                         first_above(before, /*inclusive=*/true)};
  if (range.end < range.begin) range.end = range.begin;
  return range;
}

}  // namespace meshtel::collector
