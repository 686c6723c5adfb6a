#include "collector/store/record_chunk.h"

#include "collector/common/protobuf_wire.h"

namespace meshtel::collector {
namespace {

constexpr char kChunkMarker = 0x00;
constexpr char kChunkFormat = 0x01;

}  // namespace

bool IsRecordChunk(std::string_view value) {
  return !value.empty() && value.front() == kChunkMarker;
}

size_t EncodeRecordChunkHeader(size_t count, char* out) {
  out[0] = kChunkMarker;
  out[1] = kChunkFormat;
  return 2 + common::EncodeVarint(count, out + 2);
}

size_t EncodeRecordChunkSizePrefix(size_t size, char* out) {
  return common::EncodeVarint(size, out);
}

std::string EncodeRecordChunk(std::span<const std::string> records) {
  std::string value;
  char header[kRecordChunkMaxHeaderSize];
  value.append(header, EncodeRecordChunkHeader(records.size(), header));
  for (const std::string& record : records) {
    char prefix[kRecordChunkMaxSizePrefix];
    value.append(prefix, EncodeRecordChunkSizePrefix(record.size(), prefix));
    value.append(record);
  }
  return value;
}

bool RecordChunkReader::Reset(std::string_view value) {
  records_.clear();
  if (!IsRecordChunk(value)) {
    records_.push_back(value);
    return true;
  }
  if (value.size() < 2 || value[1] != kChunkFormat) return false;
  size_t offset = 2;
  uint64_t count = 0;
  // Each record takes at least its one-byte size prefix: a count above that is damage.
  if (!common::ReadVarint(value, offset, count) || count > value.size() - offset) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size = 0;
    if (!common::ReadVarint(value, offset, size) || size > value.size() - offset) {
      records_.clear();
      return false;
    }
    records_.push_back(value.substr(offset, static_cast<size_t>(size)));
    offset += static_cast<size_t>(size);
  }
  if (offset != value.size()) {
    records_.clear();
    return false;
  }
  return true;
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
