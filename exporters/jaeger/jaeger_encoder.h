#pragma once
// JaegerEncoder: stored spans (meshtel.v1.Span) -> Jaeger api_v2 PostSpans requests
// (wire-facts §3.2).
//
// Payload body: one PostSpansRequest per process in the batch, each serialized and preceded by
// its length as a varint (protobuf's length-delimited form), in order of each process's first
// span; JaegerSender posts them one after the other. A process is a service name plus its
// resource attributes, so spans of two pods of one service with different attributes make two
// Batches with the same service name. Within a Batch spans keep store order.
//
// Span mapping (as OpenTelemetry's OTLP -> Jaeger translator does it):
//   trace_id      the 16 stored bytes (big-endian high 64 bits, then low 64 bits)
//   span_id       the 8 stored bytes
//   references    one CHILD_OF to (trace_id, parent_span_id); none for a root span
//   flags         the W3C sampled bit (0x1); the other W3C bits mean something else in Jaeger
//   start_time    Timestamp of start_time_unix_nano
//   duration      end - start; 0 when the span ends before it starts (marked by the anomaly tag)
//   tags          the span's attributes, typed (string, bool -> BOOL, int -> INT64, double ->
//                 FLOAT64; an attribute without a value -> empty string), then, unless an
//                 attribute of the same key is already there:
//                   span.kind = client|server|producer|consumer (none for internal/unspecified)
//                   error = true (BOOL) when the status is ERROR
//                   otel.status_code = OK|ERROR (none when unset)
//                   otel.status_description = the status message (ERROR with a message)
//                   otel.scope.name, otel.scope.version (when set)
//                   w3c.tracestate (when set)
//                   meshtel.anomaly = e.g. "orphan" (exporters/common/trace_export.h)
//   process       Batch.process: service_name (SpanServiceName) and tags = the resource
//                 attributes other than service.name, typed like span tags
//
// Measure() refuses (InvalidArgument) what CheckExportableSpan() refuses; otherwise it returns
// an estimate of the span's size in the request: its stored size plus the tags added above.
//
// Threading: one thread at a time. Ownership: keeps nothing from a call's records.

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/delivery/exporter.h"
#include "jaeger/api_v2/collector.pb.h"
#include "meshtel/v1/span.pb.h"

namespace meshtel::exporters {

// The Jaeger form of a stored span (its process not included).
void ToJaegerSpan(const meshtel::v1::Span& span, jaeger::api_v2::Span& out);
// The Jaeger process of a stored span.
void ToJaegerProcess(const meshtel::v1::Span& span, jaeger::api_v2::Process& out);

// The serialized PostSpansRequests of a payload body, in order; InvalidArgument when the body is
// not a sequence of length-delimited messages.
absl::StatusOr<std::vector<std::string_view>> SplitJaegerPayload(std::string_view body);

class JaegerEncoder : public collector::Encoder {
 public:
  // collector::Encoder
  absl::StatusOr<size_t> Measure(const collector::StoredRecord& record) override;
  absl::StatusOr<collector::Payload> Encode(
      std::span<const collector::StoredRecord> records) override;
};

}  // namespace meshtel::exporters
