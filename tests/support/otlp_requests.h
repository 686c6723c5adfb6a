#pragma once
// Pieces the OTLP conversion and transcoder tests build their requests from: fixed valid ids and
// an attribute adder.
//
// Header-only; no state.

#include <string>

#include "google/protobuf/repeated_ptr_field.h"
#include "opentelemetry/proto/common/v1/common.pb.h"

namespace meshtel::testing::otlp_requests {

inline const std::string kTraceId(
    "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16);
inline const std::string kSpanId("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);

// Adds an attribute named `key` to `list` and returns its value to set.
inline opentelemetry::proto::common::v1::AnyValue* AddAttribute(
    google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>& list,
    const std::string& key) {
  opentelemetry::proto::common::v1::KeyValue* attribute = list.Add();
  attribute->set_key(key);
  return attribute->mutable_value();
}

}  // namespace meshtel::testing::otlp_requests
