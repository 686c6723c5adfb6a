#include "collector/ingest/record_batch_wire.h"

// Tested by: tests/collector/ingest/record_batch_wire_test.cc

#include <cstdint>

#include "collector/common/protobuf_wire.h"

namespace meshtel::collector {
namespace {

constexpr uint32_t kInstanceIdField = 1;
constexpr uint32_t kSequenceField = 2;
constexpr uint32_t kRecordsField = 3;
constexpr uint32_t kDroppedRecordsField = 4;

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

bool SalvageRecordBatch(std::string_view batch, meshtel::v1::RecordBatch& decoded,
                        std::vector<std::string_view>& record_bytes, size_t& invalid_records) {
  decoded.Clear();
  record_bytes.clear();
  invalid_records = 0;
  common::WireReader reader(batch);
  while (reader.Next()) {
    const bool varint = reader.wire_type() == common::WireType::kVarint;
    const bool bytes = reader.wire_type() == common::WireType::kLengthDelimited;
    if (reader.field() == kRecordsField && bytes) {
      std::string_view record;
      if (!reader.ReadBytes(record)) return false;
      meshtel::v1::RequestRecord* parsed = decoded.add_records();
      if (parsed->ParseFromArray(record.data(), static_cast<int>(record.size()))) {
        record_bytes.push_back(record);
      } else {
        decoded.mutable_records()->RemoveLast();
        ++invalid_records;
      }
    } else if (reader.field() == kInstanceIdField && bytes) {
      std::string_view instance_id;
      if (!reader.ReadBytes(instance_id) || !common::ValidUtf8(instance_id)) return false;
      decoded.set_proxy_instance_id(std::string(instance_id));
    } else if ((reader.field() == kSequenceField || reader.field() == kDroppedRecordsField) &&
               varint) {
      uint64_t value = 0;
      if (!reader.ReadVarintValue(value)) return false;
      if (reader.field() == kSequenceField) {
        decoded.set_sequence(value);
      } else {
        decoded.set_dropped_records_total(value);
      }
    } else if (!reader.Skip()) {
      return false;
    }
  }
  return reader.ok();
}

}  // namespace meshtel::collector
