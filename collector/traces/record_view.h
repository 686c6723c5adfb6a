#pragma once
// RecordView: a stored meshtel.v1.RequestRecord read in place from its wire format, for building
// its spans (SpanBuilder::Encode) without parsing it into a message. The trace pipeline holds the
// stored bytes of every record of a trace in assembly and builds spans only for the traces it
// keeps; when it keeps them all, parsing each held record again into a RequestRecord was a sixth
// of its work.
//
// The view has the accessors of RequestRecord that the span rules read, with the same names and
// values (strings as views into the bytes, which must outlive the view): what parsing the same
// bytes with protobuf gives, with protobuf's rules for a field given twice (the last value; an
// embedded message merged field by field; repeated fields appended).
//
// Not thread-safe (one view per thread, reused: Read keeps the capacity of its tag list). Errors:
// Read returns false when it does not vouch for the bytes (malformed, a field of the wrong wire
// type, a group, phases given twice, a received span or log record); the caller then parses them
// with protobuf. It does not check that strings are valid UTF-8: it is meant for bytes that
// protobuf (or ReadSummaryFields) has already accepted, as the pipeline holds only such.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "meshtel/v1/record.pb.h"

namespace meshtel::common {
class WireReader;
}  // namespace meshtel::common

namespace meshtel::collector {

class RecordView {
 public:
  // A WorkloadIdentity (fields 1-8 of its message).
  class Workload {
   public:
    std::string_view workload() const { return fields_[1]; }
    std::string_view namespace_() const { return fields_[2]; }
    std::string_view app() const { return fields_[3]; }
    std::string_view version() const { return fields_[4]; }
    std::string_view canonical_service() const { return fields_[5]; }
    std::string_view canonical_revision() const { return fields_[6]; }
    std::string_view cluster() const { return fields_[7]; }
    std::string_view principal() const { return fields_[8]; }

   private:
    friend class RecordView;
    std::array<std::string_view, 9> fields_{};
  };
  // A ServiceIdentity (host, name, namespace).
  class Service {
   public:
    std::string_view host() const { return fields_[1]; }
    std::string_view name() const { return fields_[2]; }
    std::string_view namespace_() const { return fields_[3]; }

   private:
    friend class RecordView;
    std::array<std::string_view, 4> fields_{};
  };
  // A SpanTag.
  struct Tag {
    std::string_view name_text;
    std::string_view value_text;
    std::string_view name() const { return name_text; }
    std::string_view value() const { return value_text; }
  };

  // Reads `bytes` (which must outlive the view's use); false when protobuf must decide (above).
  bool Read(std::string_view bytes);

  uint64_t start_time_unix_nano() const { return numbers_[1]; }
  uint64_t duration_ns() const { return numbers_[2]; }
  const meshtel::v1::PhaseTimings& phases() const { return phases_; }
  meshtel::v1::Reporter reporter() const {
    return static_cast<meshtel::v1::Reporter>(static_cast<int32_t>(numbers_[4]));
  }
  std::string_view method() const { return strings_[5]; }
  std::string_view scheme() const { return strings_[6]; }
  std::string_view authority() const { return strings_[7]; }
  std::string_view path() const { return strings_[8]; }
  std::string_view protocol() const { return strings_[9]; }
  std::string_view user_agent() const { return strings_[11]; }
  std::string_view forwarded_for() const { return strings_[12]; }
  std::string_view request_id() const { return strings_[13]; }
  uint32_t response_code() const { return static_cast<uint32_t>(numbers_[14]); }
  bool has_grpc_status() const { return has_grpc_status_; }
  uint32_t grpc_status() const { return static_cast<uint32_t>(numbers_[15]); }
  uint64_t response_flags() const { return numbers_[16]; }
  std::string_view response_code_details() const { return strings_[17]; }
  uint64_t request_bytes() const { return numbers_[18]; }
  uint64_t response_bytes() const { return numbers_[19]; }
  std::string_view upstream_host() const { return strings_[22]; }
  std::string_view upstream_cluster() const { return strings_[23]; }
  std::string_view downstream_remote_address() const { return strings_[24]; }
  std::string_view downstream_local_address() const { return strings_[25]; }
  std::string_view upstream_local_address() const { return strings_[26]; }
  std::string_view route_name() const { return strings_[27]; }
  std::string_view trace_id() const { return strings_[28]; }
  std::string_view span_id() const { return strings_[29]; }
  std::string_view parent_span_id() const { return strings_[30]; }
  bool sampled() const { return numbers_[31] != 0; }
  const Workload& source() const { return source_; }
  const Workload& destination() const { return destination_; }
  const Service& destination_service() const { return destination_service_; }
  const std::vector<Tag>& custom_tags() const { return custom_tags_; }

  // RequestRecord's field numbers up to its last (custom_tags, 39).
  static constexpr uint32_t kLastField = 39;

 private:
  // By field number: the string and bytes fields, and the varint and fixed64 ones.
  std::array<std::string_view, kLastField + 1> strings_{};
  std::array<uint64_t, kLastField + 1> numbers_{};
  bool has_grpc_status_ = false;
  meshtel::v1::PhaseTimings phases_;
  Workload source_;
  Workload destination_;
  Service destination_service_;
  std::vector<Tag> custom_tags_;
};

// The two halves of reading a record's PhaseTimings (field 3) that both wire walks of a record
// share (this view and ReadSummaryFields): the embedded message `reader` is at, its nine varint
// fields into `by_field` by field number (a field given twice keeps its last value; false when
// malformed), and PhaseTimings from those values (field 4 is a bool).
bool ReadPhaseTimingFields(common::WireReader& reader, std::array<uint64_t, 10>& by_field);
void SetPhaseTimings(const std::array<uint64_t, 10>& by_field, meshtel::v1::PhaseTimings& out);

}  // namespace meshtel::collector
