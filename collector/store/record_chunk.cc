#include "collector/store/record_chunk.h"

namespace meshtel::collector {
namespace {

constexpr char kChunkMarker = 0x00;
constexpr char kChunkFormat = 0x01;

size_t EncodeVarint(uint64_t value, char* out) {
  size_t written = 0;
  while (value >= 0x80) {
    out[written++] = static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out[written++] = static_cast<char>(value);
  return written;
}

// Reads a varint of at most 10 bytes at data[*offset]; false when it runs past the end.
bool DecodeVarint(std::string_view data, size_t* offset, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && *offset < data.size(); shift += 7) {
    const auto byte = static_cast<unsigned char>(data[(*offset)++]);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

}  // namespace

bool IsRecordChunk(std::string_view value) {
  return !value.empty() && value.front() == kChunkMarker;
}

size_t EncodeRecordChunkHeader(size_t count, char* out) {
  out[0] = kChunkMarker;
  out[1] = kChunkFormat;
  return 2 + EncodeVarint(count, out + 2);
}

size_t EncodeRecordChunkSizePrefix(size_t size, char* out) { return EncodeVarint(size, out); }

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
  if (!DecodeVarint(value, &offset, &count) || count > value.size() - offset) return false;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size = 0;
    if (!DecodeVarint(value, &offset, &size) || size > value.size() - offset) {
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
