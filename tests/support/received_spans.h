#pragma once
// Test support shared by the trace receivers (jaeger_receiver.h, otlp_receiver.h): spans as a
// backend received them, decoded into one simple form whatever the protocol, and the checks of a
// received message against the official upstream schema.
//
// Threading: pure functions and value types.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "google/protobuf/message.h"
#include "jaeger/api_v2/collector.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace meshtel::testing {

// A typed attribute value: OTLP AnyValue string/bool/int/double, Jaeger STRING/BOOL/INT64/
// FLOAT64. Other OTLP values (arrays, maps, bytes) and Jaeger BINARY appear as a string holding
// their text form (protobuf text format for OTLP, raw bytes for Jaeger).
using AttributeValue = std::variant<std::string, bool, int64_t, double>;

struct ReceivedSpan {
  std::string trace_id;        // 32 lower-case hex digits
  std::string span_id;         // 16 lower-case hex digits
  std::string parent_span_id;  // 16 hex digits, "" for a root span
  std::string name;            // OTLP name, Jaeger operation_name
  // "internal", "server", "client", "producer", "consumer"; "" for OTLP's UNSPECIFIED. Jaeger has
  // no tag for internal spans: a Jaeger span without span.kind is "internal".
  std::string kind;
  std::string service;  // OTLP resource service.name, Jaeger process service_name
  std::map<std::string, AttributeValue> attributes;  // OTLP attributes, Jaeger tags (all of them)
  std::map<std::string, AttributeValue> resource;    // OTLP resource attributes but service.name,
                                                     // Jaeger process tags
  std::string scope_name;                            // OTLP scope, Jaeger otel.scope.name tag
  std::string status;  // "OK", "ERROR" or "" (OTLP status code, Jaeger otel.status_code tag)
  std::string status_message;
  uint32_t flags = 0;  // OTLP flags, Jaeger flags
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;  // Jaeger: start + duration
};

// Lower-case hex of `bytes`.
std::string Hex(const std::string& bytes);

std::vector<ReceivedSpan> SpansOf(const jaeger::api_v2::PostSpansRequest& request);
std::vector<ReceivedSpan> SpansOf(
    const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request);

// Decodes `serialized` with the official type `official_type` (../shared/specs/protos) and
// compares it field by field (by field number: names, types and values) with `own`, the same
// bytes decoded with the project's subset; also reports fields that either schema does not know.
// Returns the differences (empty when they agree). `unavailable` receives why the official
// schema cannot be used (then nothing is compared), or stays empty.
std::vector<std::string> CompareWithOfficial(const google::protobuf::Message& own,
                                             const std::string& serialized,
                                             const std::string& official_type,
                                             std::string* unavailable);

// Inflates gzip data (one or more members), or nullopt when it is not gzip.
std::optional<std::string> Gunzip(const std::string& data);

}  // namespace meshtel::testing
