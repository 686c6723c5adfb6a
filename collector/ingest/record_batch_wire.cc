#include "collector/ingest/record_batch_wire.h"

// Tested by: tests/collector/ingest/record_batch_wire_test.cc

#include <cstdint>

namespace meshtel::collector {
namespace {

constexpr uint32_t kRecordsField = 3;

// Reads a base-128 varint at `pos`; false when it is truncated or longer than 10 bytes.
bool ReadVarint(std::string_view bytes, size_t& pos, uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && pos < bytes.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(bytes[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

bool RecordBatchRecordBytes(std::string_view batch, std::vector<std::string_view>& out) {
  out.clear();
  size_t pos = 0;
  while (pos < batch.size()) {
    uint64_t tag = 0;
    if (!ReadVarint(batch, pos, tag)) return false;
    const uint64_t field = tag >> 3;
    if (field == 0) return false;
    switch (tag & 7) {
      case 0: {  // varint
        uint64_t ignored = 0;
        if (!ReadVarint(batch, pos, ignored)) return false;
        break;
      }
      case 1:  // fixed64
        if (batch.size() - pos < 8) return false;
        pos += 8;
        break;
      case 2: {  // length-delimited
        uint64_t length = 0;
        if (!ReadVarint(batch, pos, length) || length > batch.size() - pos) return false;
        if (field == kRecordsField) out.push_back(batch.substr(pos, static_cast<size_t>(length)));
        pos += static_cast<size_t>(length);
        break;
      }
      case 5:  // fixed32
        if (batch.size() - pos < 4) return false;
        pos += 4;
        break;
      default:  // groups (3, 4) and the undefined wire types 6, 7
        return false;
    }
  }
  return true;
}

}  // namespace meshtel::collector
