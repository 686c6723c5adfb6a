#pragma once
// OTLP → meshtel conversion for the OTLP receiver (wire-facts §2.4-§2.6): each valid OTLP Span
// becomes a meshtel.v1.Span and each valid LogRecord a meshtel.v1.LogEntry, each in a
// RequestRecord of its own (received_span / received_log set, nothing else), ready for
// ReceivedRecordSink::Store.
//
// Mapping (docs/ingest.md "## OTLP"):
//   - resource attribute service.name → service_name (a non-string value as its rendering); the
//     other resource attributes → resource_attributes; scope name/version → scope_name/version
//     (scope attributes are dropped);
//   - attributes keep their type for string, bool, int and double; bytes become base64 strings;
//     arrays and key-value lists become their JSON rendering (strings); an empty value becomes "";
//   - kind and status code keep their numbers (out-of-range values become UNSPECIFIED / UNSET);
//     flags keep the W3C trace-flags byte (low 8 bits);
//   - span events and links are kept as JSON attributes "otlp.events" and "otlp.links"
//     ([{"timeUnixNano":"..","name":"..","attributes":{..}}], ids in hex), and the OTLP dropped
//     counts, when not zero, as int attributes otlp.dropped_{attributes,events,links}_count;
//   - a log body that is a string stays as it is; any other body is its JSON rendering
//     (body_is_json); observed_time_unix_nano 0 becomes `received_unix_nano`.
// Validity, item by item: a span needs a 16-byte non-zero trace id, an 8-byte non-zero span id
// and a parent span id that is empty or 8 bytes (8 zero bytes count as none); a log record's
// trace id must be empty or 16 bytes and its span id empty or 8 bytes. Invalid items are left out
// and counted in `rejected`, with the first reason in `message`.
//
// Threading: pure functions. Allocation: the records appended to `out`.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "meshtel/v1/record.pb.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace meshtel::collector::otlp {

enum class Signal { kTraces, kLogs };
enum class Encoding { kProtobuf, kJson };

// "traces" / "logs"; "protobuf" / "json".
const char* SignalName(Signal signal);
const char* EncodingName(Encoding encoding);

struct Converted {
  google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> records;
  int64_t rejected = 0;
  std::string message;  // why the first rejected item was rejected (and how many were), or ""
};

// The resource and scope of a batch, converted once and copied into each of its items.
struct ItemOrigin {
  std::string service_name;
  google::protobuf::RepeatedPtrField<meshtel::v1::SpanAttribute> resource_attributes;
  std::string scope_name;
  std::string scope_version;
};

// Sets the resource's part of `origin` (service_name, resource_attributes).
void SetResource(const opentelemetry::proto::resource::v1::Resource& resource, ItemOrigin& origin);

// Why a span with these ids is invalid (the rule above), or nullptr.
const char* SpanIdsProblem(std::string_view trace_id, std::string_view span_id,
                           std::string_view parent_span_id);
const char* SpanProblem(const opentelemetry::proto::trace::v1::Span& span);

// A valid span (SpanProblem is nullptr) of `origin` as a meshtel.v1.Span, into `out`.
void ConvertSpan(const opentelemetry::proto::trace::v1::Span& span, const ItemOrigin& origin,
                 meshtel::v1::Span& out);

// Counts a rejected item, keeping the first one's reason in `message` for FinishRejections.
void NoteRejection(int64_t& rejected, std::string& message, std::string_view what);

// The mapping rules above, one field at a time: a parent span id is kept when it is not empty
// and not all zero; an out-of-range kind or status code becomes UNSPECIFIED / UNSET; the flags
// keep their low 8 bits (the W3C trace flags).
bool KeepsParentSpanId(std::string_view parent_span_id);
meshtel::v1::SpanKind SpanKindOf(int32_t kind);
meshtel::v1::SpanStatusCode SpanStatusCodeOf(int32_t code);
uint32_t TraceFlagsOf(uint32_t flags);

// Turns `message`, the first rejected item's reason, into the summary of `rejected` items
// ("1 span rejected: ...", "3 spans rejected; the first: ..."); `item` is the item's name in the
// right number.
void FinishRejections(int64_t rejected, const char* item, std::string& message);

void ConvertTraces(
    const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
    Converted& out);
void ConvertLogs(const opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest& request,
                 uint64_t received_unix_nano, Converted& out);

// Decodes one (already decompressed) Export request body of `signal` in `encoding` and converts
// it into `out`. InvalidArgument when the body is not a valid request.
absl::Status DecodeAndConvert(Signal signal, Encoding encoding, std::string_view body,
                              uint64_t received_unix_nano, Converted& out);

// The Export*ServiceResponse of `signal` in `encoding`; partial_success is set when `rejected`
// is not 0 or `message` is not empty.
std::string ExportResponse(Signal signal, Encoding encoding, int64_t rejected,
                           std::string_view message);

// google.rpc.Status in `encoding` (JSON per otlp_json.h), with a google.rpc.RetryInfo detail when
// `retry_delay_seconds` > 0.
std::string StatusBody(Encoding encoding, int code, std::string_view message,
                       int64_t retry_delay_seconds = 0);

// An OTLP AnyValue as JSON (strings escaped, int64 as numbers, bytes as base64 strings, kvlists
// as objects), appended to `out`.
void AppendAnyValueJson(const opentelemetry::proto::common::v1::AnyValue& value, std::string& out);

}  // namespace meshtel::collector::otlp
