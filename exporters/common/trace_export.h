#pragma once
// What the two trace exporters (Jaeger, OTLP) share about stored spans (meshtel.v1.Span) and
// their settings: which spans a backend can take, how the collector's anomaly marks and the
// service name are shown, and the check of configured headers.
//
// Errors: CheckExportableSpan() and CheckHeaders() return InvalidArgument with the reason.
// Threading: pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "collector/store/record_store.h"
#include "meshtel/v1/span.pb.h"

namespace meshtel::exporters {

// The attribute (OTLP) / tag (Jaeger) that lists a span's anomaly marks, e.g. "orphan".
inline constexpr std::string_view kAnomalyAttribute = "meshtel.anomaly";
// The resource attribute naming the service (OpenTelemetry semantic conventions).
inline constexpr std::string_view kServiceNameAttribute = "service.name";
// The service name of a span that has none (OpenTelemetry's default for a missing service.name).
inline constexpr std::string_view kUnknownService = "unknown_service";

// OK when `record` is a span a trace backend can take: of the spans family, a 16-byte trace id
// and an 8-byte span id that are not all zero, a parent span id of 0 or 8 bytes. Otherwise the
// reason (InvalidArgument): OTLP receivers refuse such a span, and with it the whole request.
absl::Status CheckExportableSpan(const collector::StoredRecord& record);

// The names of the anomaly bits set in `anomalies` (meshtel.v1.SpanAnomaly), in bit order, joined
// by ",": "ends_before_start", "duplicate_span_id", "orphan", "trace_evicted"; an unknown bit is
// "bit<n>". Empty for 0.
std::string SpanAnomalyText(uint32_t anomalies);

// The span's service: service_name, else a string resource attribute service.name, else
// "unknown_service".
std::string SpanServiceName(const meshtel::v1::Span& span);

// Replaces `key` with the identity of the span's resource (Jaeger: process): its service name
// and its resource attributes other than service.name, typed, in order. Two spans have the same
// key exactly when their resource is the same. (A reused string: no allocation once warm.)
void SpanResourceKey(const meshtel::v1::Span& span, std::string& key);

// Checks configured headers found at `path` ("exporters[0].otlp.headers"). Names must be HTTP
// tokens; values must not hold CR, LF or NUL. With `grpc`, names are lower-cased in place (gRPC
// metadata keys are lower case), and names starting with "grpc-" or ":", or ending in "-bin",
// are refused.
absl::Status CheckHeaders(std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view path, bool grpc);

}  // namespace meshtel::exporters
