#pragma once
// OTLP/JSON (wire-facts §2.2) for the OTLP receiver: request bodies into the project's OTLP
// protobuf subset, and the JSON forms of the responses.
//
// The mapping is proto3 JSON with OTLP's changes: trace and span ids are hex strings (either
// case), every other bytes field base64 (standard or URL-safe alphabet, padding optional); enums
// are integers; keys are lowerCamelCase (the snake_case proto names are unknown keys); unknown keys
// are ignored; 64-bit integers may be strings or numbers (a number with a fraction or exponent is
// taken when its value is a whole number in range); null stands for an absent field. A key given
// twice: the last one wins. An id that is valid hex of the wrong length decodes to bytes of that
// length, so the receiver rejects only that item; an id that is not hex makes the whole body
// invalid.
//
// Threading: pure functions. Errors: InvalidArgument with the JSON path of the offending value
// ("resourceSpans[0].scopeSpans[1].spans[3].kind: not an integer").

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace meshtel::collector::otlp {

absl::Status ParseTraceRequestJson(
    std::string_view body,
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& out);
absl::Status ParseLogsRequestJson(
    std::string_view body,
    opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest& out);

// `{}` for full success; `{"partialSuccess":{"rejectedSpans":"N","errorMessage":"..."}}` (or
// rejectedLogRecords) when something was rejected or `message` is not empty.
std::string TraceResponseJson(int64_t rejected, std::string_view message);
std::string LogsResponseJson(int64_t rejected, std::string_view message);

// google.rpc.Status as JSON: {"code":C,"message":"..."}, with a google.rpc.RetryInfo detail
// ({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}) when `retry_delay`
// is positive.
std::string StatusJson(int code, std::string_view message,
                       absl::Duration retry_delay = absl::ZeroDuration());

}  // namespace meshtel::collector::otlp
