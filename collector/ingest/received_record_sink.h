#pragma once
// ReceivedRecordSink: where the receivers (Envoy ALS, OTLP) hand what they took in, as entries of
// the store's logs family: request records (from ALS) and received spans and log records (from
// OTLP; RequestRecord.received_span / received_log).
//
// Threading: both methods are called from many receiver threads at once. Errors: OK means every
// entry is durable (the receiver may answer success now) and the request records were counted in
// the metrics; a non-OK status means none was stored (the receiver answers with a retryable
// status).

#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

class ReceivedRecordSink {
 public:
  virtual ~ReceivedRecordSink() = default;
  virtual absl::Status Store(
      const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) = 0;
  // Store() for entries given as their bytes: each one a serialized RequestRecord holding a
  // received span or log record (nothing the metrics count), which the caller vouches parses.
  virtual absl::Status StoreEncoded(std::span<const std::string_view> records) = 0;
};

}  // namespace meshtel::collector
