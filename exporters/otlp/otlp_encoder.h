#pragma once
// OtlpEncoder: stored spans (meshtel.v1.Span) -> one OTLP ExportTraceServiceRequest
// (wire-facts §2.4, §2.5), serialized; gzip-compressed when the exporter uses HTTP with
// `compression: gzip` (over gRPC the channel compresses).
//
// Grouping: one ResourceSpans per resource (service name + resource attributes), in order of its
// first span; within it one ScopeSpans per instrumentation scope (name, version), in order of
// first span; spans keep store order. No empty envelope is written.
// Resource attributes: service.name (SpanServiceName: "unknown_service" when the span has
// none), then the span's resource attributes other than service.name, typed.
// Span mapping: ids as stored (16 / 8 bytes; parent empty for a root), trace_state, flags = the
// W3C trace-flags byte (bits 0-7), name, kind and status (code, message) with the same numbers,
// start and end times, attributes typed (string, bool, int, double; an attribute without a value
// is an empty AnyValue) as the span assembler set them (OpenTelemetry HTTP semantic
// conventions), plus meshtel.anomaly = e.g. "orphan" when the span has anomaly marks.
//
// Measure() refuses (InvalidArgument) what CheckExportableSpan() refuses; otherwise it returns
// an estimate of the span's size in the request: its stored size plus the framing.
//
// Threading: one thread at a time. Ownership: keeps nothing from a call's records.

#include <cstddef>
#include <span>

#include "absl/status/statusor.h"
#include "collector/delivery/exporter.h"
#include "exporters/otlp/otlp_exporter.h"
#include "meshtel/v1/span.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace meshtel::exporters {

// The OTLP form of a stored span (resource and scope not included).
void ToOtlpSpan(const meshtel::v1::Span& span, opentelemetry::proto::trace::v1::Span& out);

// Fills `request` (empty; it may live in an arena) with the export request for `records` (all of
// the spans family, accepted by Measure()); InvalidArgument for a record Measure() refuses.
absl::Status BuildOtlpRequest(
    std::span<const collector::StoredRecord> records,
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request);

class OtlpEncoder : public collector::Encoder {
 public:
  explicit OtlpEncoder(const OtlpConfig& config);

  // collector::Encoder
  absl::StatusOr<size_t> Measure(const collector::StoredRecord& record) override;
  absl::StatusOr<collector::Payload> Encode(
      std::span<const collector::StoredRecord> records) override;

 private:
  bool gzip_body_;  // HTTP with gzip: the body is compressed here
};

}  // namespace meshtel::exporters
