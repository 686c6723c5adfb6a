#include "collector/traces/record_summary_fields.h"

// Tested by: tests/collector/traces/record_summary_fields_test.cc

#include <array>
#include <cstdint>
#include <optional>

#include "collector/common/protobuf_wire.h"
#include "collector/traces/record_view.h"

namespace meshtel::collector {
namespace {

using common::ForEachField;
using common::ValidUtf8;
using common::WireReader;
using common::WireType;

// meshtel.v1.RequestRecord's field numbers (proto/meshtel/v1/record.proto).
constexpr uint32_t kStartTime = 1;
constexpr uint32_t kDuration = 2;
constexpr uint32_t kPhases = 3;
constexpr uint32_t kReporter = 4;
constexpr uint32_t kResponseCode = 14;
constexpr uint32_t kGrpcStatus = 15;
constexpr uint32_t kTraceId = 28;
constexpr uint32_t kSpanId = 29;
constexpr uint32_t kParentSpanId = 30;
constexpr uint32_t kSampled = 31;
constexpr uint32_t kSource = 32;
constexpr uint32_t kDestination = 33;
constexpr uint32_t kReceivedSpan = 37;
constexpr uint32_t kReceivedLog = 38;
constexpr uint32_t kCustomTags = 39;
constexpr uint32_t kLastField = 39;

enum class Kind : uint8_t { kUnknown, kVarint, kString, kStrings, kRead };

// What each field of RequestRecord is, for the fields only checked: a varint, a string, or a
// message of strings (WorkloadIdentity, ServiceIdentity, CapturedHeader). kRead: read below.
constexpr std::array<Kind, kLastField + 1> kFieldKinds = [] {
  std::array<Kind, kLastField + 1> kinds{};
  for (uint32_t field : {10, 16, 18, 19, 20, 21, 35}) kinds[field] = Kind::kVarint;
  for (uint32_t field : {5, 6, 7, 8, 9, 11, 12, 13, 17, 22, 23, 24, 25, 26, 27}) {
    kinds[field] = Kind::kString;
  }
  for (uint32_t field : {34, 36}) kinds[field] = Kind::kStrings;
  for (uint32_t field :
       {kStartTime, kDuration, kPhases, kReporter, kResponseCode, kGrpcStatus, kTraceId, kSpanId,
        kParentSpanId, kSampled, kSource, kDestination, kReceivedSpan, kReceivedLog, kCustomTags}) {
    kinds[field] = Kind::kRead;
  }
  return kinds;
}();

bool ReadString(WireReader& reader, std::string_view& text) {
  return reader.ReadBytes(text) && ValidUtf8(text);
}

// A message all of whose known fields are strings: every length-delimited field must be valid
// UTF-8 (for an unknown one that is stricter than protobuf, which only sends the record to
// protobuf); `on_string(field, text)` sees each of them.
template <typename OnString>
bool ReadStringsMessage(WireReader& parent, OnString&& on_string) {
  std::string_view bytes;
  return parent.ReadBytes(bytes) && ForEachField(bytes, [&](WireReader& reader) {
           if (reader.wire_type() != WireType::kLengthDelimited) return reader.Skip();
           std::string_view text;
           if (!ReadString(reader, text)) return false;
           on_string(reader.field(), text);
           return true;
         });
}

bool ValidStringsMessage(WireReader& parent) {
  return ReadStringsMessage(parent, [](uint32_t, std::string_view) {});
}

// The WorkloadIdentity fields a policy is looked up by: workload (1), namespace (2), app (3),
// version (4); the others are checked (strings). A field given twice keeps its last value, as
// protobuf does.
struct IdentityKey {
  std::string_view workload, namespace_name, app, version;
};

bool ReadIdentity(WireReader& parent, IdentityKey& key) {
  return ReadStringsMessage(parent, [&](uint32_t field, std::string_view text) {
    switch (field) {
      case 1:
        key.workload = text;
        break;
      case 2:
        key.namespace_name = text;
        break;
      case 3:
        key.app = text;
        break;
      case 4:
        key.version = text;
        break;
      default:
        break;
    }
  });
}

// Sets the key's fields of `identity` (its other fields are never set here).
void SetIdentity(const IdentityKey& key, meshtel::v1::WorkloadIdentity& identity) {
  identity.mutable_workload()->assign(key.workload);
  identity.mutable_namespace_()->assign(key.namespace_name);
  identity.mutable_app()->assign(key.app);
  identity.mutable_version()->assign(key.version);
}

// SpanTag: name (1), value (2).
bool ReadTag(WireReader& parent, std::string_view& name, std::string_view& value) {
  std::string_view bytes;
  return parent.ReadBytes(bytes) && ForEachField(bytes, [&](WireReader& reader) {
           switch (reader.field()) {
             case 1:
               return ReadString(reader, name);
             case 2:
               return ReadString(reader, value);
             default:
               return reader.Skip();
           }
         });
}

}  // namespace

bool ReadSummaryFields(std::string_view bytes, meshtel::v1::RequestRecord& out) {
  uint64_t start = 0;
  uint64_t duration = 0;
  uint64_t response_code = 0;
  std::optional<uint64_t> grpc_status;
  std::string_view trace_id;
  std::string_view span_id;
  std::string_view parent_span_id;
  bool sampled = false;
  uint64_t reporter = 0;
  IdentityKey source;
  IdentityKey destination;
  bool phases_seen = false;
  std::array<uint64_t, 10> phases{};
  out.mutable_custom_tags()->Clear();
  const bool read = ForEachField(bytes, [&](WireReader& reader) {
    const uint32_t field = reader.field();
    const Kind kind = field <= kLastField ? kFieldKinds[field] : Kind::kUnknown;
    uint64_t value = 0;
    std::string_view text;
    switch (kind) {
      case Kind::kUnknown:
        return reader.Skip();
      case Kind::kVarint:
        return reader.ReadVarintValue(value);
      case Kind::kString:
        return ReadString(reader, text);
      case Kind::kStrings:
        return ValidStringsMessage(reader);
      case Kind::kRead:
        break;
    }
    switch (field) {
      case kStartTime:
        return reader.ReadFixed64(start);
      case kDuration:
        return reader.ReadVarintValue(duration);
      case kPhases:
        if (phases_seen) return false;  // protobuf merges the two
        phases_seen = true;
        return ReadPhaseTimingFields(reader, phases);
      case kReporter:
        return reader.ReadVarintValue(reporter);
      case kSource:  // a message given twice would be merged by protobuf: the same, field by field
        return ReadIdentity(reader, source);
      case kDestination:
        return ReadIdentity(reader, destination);
      case kResponseCode:
        return reader.ReadVarintValue(response_code);
      case kGrpcStatus:
        if (!reader.ReadVarintValue(value)) return false;
        grpc_status = value;
        return true;
      case kTraceId:
        return reader.ReadBytes(trace_id);
      case kSpanId:
        return reader.ReadBytes(span_id);
      case kParentSpanId:
        return reader.ReadBytes(parent_span_id);
      case kSampled:
        if (!reader.ReadVarintValue(value)) return false;
        sampled = value != 0;
        return true;
      case kCustomTags: {
        std::string_view name;
        std::string_view tag_value;
        if (!ReadTag(reader, name, tag_value)) return false;
        meshtel::v1::SpanTag& tag = *out.add_custom_tags();
        tag.mutable_name()->assign(name);
        tag.mutable_value()->assign(tag_value);
        return true;
      }
      default:  // received_span, received_log: the pipeline reads those records whole
        return false;
    }
  });
  if (!read) return false;
  out.set_start_time_unix_nano(start);
  out.set_duration_ns(duration);
  out.set_response_code(static_cast<uint32_t>(response_code));
  if (grpc_status) {
    out.set_grpc_status(static_cast<uint32_t>(*grpc_status));
  } else {
    out.clear_grpc_status();
  }
  out.mutable_trace_id()->assign(trace_id);
  out.mutable_span_id()->assign(span_id);
  out.mutable_parent_span_id()->assign(parent_span_id);
  out.set_sampled(sampled);
  out.set_reporter(static_cast<meshtel::v1::Reporter>(static_cast<int32_t>(reporter)));
  SetIdentity(source, *out.mutable_source());
  SetIdentity(destination, *out.mutable_destination());
  SetPhaseTimings(phases, *out.mutable_phases());
  return true;
}

}  // namespace meshtel::collector
