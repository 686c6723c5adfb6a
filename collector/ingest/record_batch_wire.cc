#include "collector/ingest/record_batch_wire.h"

// Tested by: tests/collector/ingest/record_batch_wire_test.cc

#include <cstdint>

#include "collector/common/protobuf_wire.h"

namespace meshtel::collector {
namespace {

constexpr uint32_t kRecordsField = 3;

}  // namespace

bool RecordBatchRecordBytes(std::string_view batch, std::vector<std::string_view>& out) {
  out.clear();
  common::WireReader reader(batch);
  while (reader.Next()) {
    if (reader.field() == kRecordsField &&
        reader.wire_type() == common::WireType::kLengthDelimited) {
      std::string_view record;
      if (!reader.ReadBytes(record)) return false;
      out.push_back(record);
    } else if (!reader.Skip()) {
      return false;
    }
  }
  return reader.ok();
}

}  // namespace meshtel::collector
