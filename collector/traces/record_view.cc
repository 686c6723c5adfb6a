#include "collector/traces/record_view.h"

// Tested by: tests/collector/traces/record_view_test.cc

#include "collector/common/protobuf_wire.h"

namespace meshtel::collector {
namespace {

using common::ForEachField;
using common::WireReader;
using common::WireType;

enum class Kind : uint8_t {
  kSkipped,  // unknown, or not read by the view (captured_headers): stepped over
  kFixed64,
  kVarint,
  kString,
  kPhases,
  kSource,
  kDestination,
  kService,
  kReceived,  // received_span, received_log: such records are parsed whole
  kTag,
};

// RequestRecord's fields (proto/meshtel/v1/record.proto) by number.
constexpr std::array<Kind, RecordView::kLastField + 1> kFieldKinds = [] {
  std::array<Kind, RecordView::kLastField + 1> kinds{};
  kinds[1] = Kind::kFixed64;
  for (uint32_t field : {2, 4, 10, 14, 15, 16, 18, 19, 20, 21, 31, 35})
    kinds[field] = Kind::kVarint;
  for (uint32_t field : {5, 6, 7, 8, 9, 11, 12, 13, 17, 22, 23, 24, 25, 26, 27, 28, 29, 30}) {
    kinds[field] = Kind::kString;
  }
  kinds[3] = Kind::kPhases;
  kinds[32] = Kind::kSource;
  kinds[33] = Kind::kDestination;
  kinds[34] = Kind::kService;
  kinds[37] = Kind::kReceived;
  kinds[38] = Kind::kReceived;
  kinds[39] = Kind::kTag;
  return kinds;
}();

constexpr uint32_t kGrpcStatus = 15;

// An embedded message of strings, each kept by its field number below `fields.size()` (a later
// value replaces an earlier one, as protobuf merges a message given twice).
template <size_t N>
bool ReadStrings(WireReader& parent, std::array<std::string_view, N>& fields) {
  std::string_view bytes;
  return parent.ReadBytes(bytes) && ForEachField(bytes, [&](WireReader& reader) {
           const uint32_t field = reader.field();
           if (field == 0 || field >= N) return reader.Skip();
           return reader.ReadBytes(fields[field]);
         });
}

bool ReadTag(WireReader& parent, RecordView::Tag& tag) {
  std::string_view bytes;
  return parent.ReadBytes(bytes) && ForEachField(bytes, [&](WireReader& reader) {
           switch (reader.field()) {
             case 1:
               return reader.ReadBytes(tag.name_text);
             case 2:
               return reader.ReadBytes(tag.value_text);
             default:
               return reader.Skip();
           }
         });
}

}  // namespace

bool RecordView::Read(std::string_view bytes) {
  strings_.fill({});
  numbers_.fill(0);
  has_grpc_status_ = false;
  source_ = Workload();
  destination_ = Workload();
  destination_service_ = Service();
  custom_tags_.clear();
  std::array<uint64_t, 10> phases{};
  bool phases_seen = false;
  const bool read = ForEachField(bytes, [&](WireReader& reader) {
    const uint32_t field = reader.field();
    switch (field <= kLastField ? kFieldKinds[field] : Kind::kSkipped) {
      case Kind::kSkipped:
        return reader.Skip();
      case Kind::kFixed64:
        return reader.ReadFixed64(numbers_[field]);
      case Kind::kVarint:
        if (field == kGrpcStatus) has_grpc_status_ = true;
        return reader.ReadVarintValue(numbers_[field]);
      case Kind::kString:
        return reader.ReadBytes(strings_[field]);
      case Kind::kPhases:
        if (phases_seen) return false;  // protobuf merges the two: left to it
        phases_seen = true;
        return ReadPhaseTimingFields(reader, phases);
      case Kind::kSource:
        return ReadStrings(reader, source_.fields_);
      case Kind::kDestination:
        return ReadStrings(reader, destination_.fields_);
      case Kind::kService:
        return ReadStrings(reader, destination_service_.fields_);
      case Kind::kReceived:
        return false;
      case Kind::kTag:
        return ReadTag(reader, custom_tags_.emplace_back());
    }
    return false;
  });
  if (!read) return false;
  SetPhaseTimings(phases, phases_);
  return true;
}

bool ReadPhaseTimingFields(WireReader& reader, std::array<uint64_t, 10>& by_field) {
  std::string_view bytes;
  return reader.ReadBytes(bytes) && ForEachField(bytes, [&](WireReader& field_reader) {
           const uint32_t field = field_reader.field();
           if (field < 1 || field > 9) return field_reader.Skip();
           return field_reader.ReadVarintValue(by_field[field]);
         });
}

void SetPhaseTimings(const std::array<uint64_t, 10>& by_field, meshtel::v1::PhaseTimings& out) {
  out.set_downstream_headers_done_ns(by_field[1]);
  out.set_route_chosen_ns(by_field[2]);
  out.set_upstream_connected_ns(by_field[3]);
  out.set_upstream_connection_reused(by_field[4] != 0);
  out.set_upstream_headers_sent_ns(by_field[5]);
  out.set_upstream_request_done_ns(by_field[6]);
  out.set_upstream_first_byte_ns(by_field[7]);
  out.set_upstream_last_byte_ns(by_field[8]);
  out.set_downstream_last_byte_ns(by_field[9]);
}

}  // namespace meshtel::collector
