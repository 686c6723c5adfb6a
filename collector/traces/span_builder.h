#pragma once
// SpanBuilder: the spans of one proxy record, as Envoy and Istio's sidecars report them.
//
// Each record is one hop seen by one proxy: reporter=source (the outbound listener of the
// calling workload) gives a CLIENT span, reporter=destination (the inbound listener of the
// called workload) a SERVER span. Ids and parents are the ones the proxy propagated (a new span
// id per hop whose parent is the incoming span), so the client span of a call is the parent of
// the server span on the other side. The span is named like Envoy's route decorator,
// "<destination host>:<port>/*", and carries Envoy's tracing tags (component, node_id,
// guid:x-request-id, http.url, http.method, http.protocol, http.status_code, user_agent,
// downstream_cluster, peer.address, request_size, response_size, response_flags,
// upstream_cluster, upstream_cluster.name, error) and Istio's (istio.canonical_service,
// istio.canonical_revision, istio.namespace, istio.mesh_id); the service name follows
// TracesConfig::service_name; status is ERROR, with error=true, for HTTP 5xx, no response, or
// a proxy error flag (docs/traces.md lists the whole set).
//
// With phase_spans, each hop span gets INTERNAL children, one per proxy phase the record's
// timings show (proxy.read_request, proxy.route, proxy.upstream_connect, proxy.upstream_send,
// proxy.upstream_wait, proxy.response): each lies within its hop's time window, and its span id
// is derived from the hop's, so building the same record twice gives the same spans.
//
// A telemetry policy (collector/policy/policy_enforcer.h) may override, per record: whether
// phase spans are added, extra tags (the `formatter` custom tags, rendered from the record),
// and which span exporters the spans go to (Span.exporters). Every record's custom_tags (filled
// by the proxy from the policy's literal/header/environment tags) become tags of its hop span.
//
// Summarize() gives, for the same record and options, the summaries (span_summary.h) of exactly
// the spans Build() gives, in the same order, without building them: the trace pipeline
// assembles and samples on summaries and builds only the spans of kept traces. It builds them
// with Encode(), which writes the spans' serialized bytes (the bytes SerializeToString gives of
// the Span messages Build() makes, with the assembler's marks applied) straight into the store's
// SerializedSpans: no message, no allocation per attribute. Build() is Encode() parsed back, so
// the rules above live in Encode() alone. Encode() takes the record as a RequestRecord or as a
// RecordView of its stored bytes (record_view.h: the same spans, byte for byte, without parsing
// the record; formatter tags need the message, so a view is encoded only without them).
//
// Threading: Build(), Encode() and Summarize() are const and safe from any thread. Errors: a
// record without a valid trace context (16-byte trace id, 8-byte span id, not all zero) gives no
// span.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/logs/access_log_format.h"
#include "collector/store/serialized_spans.h"
#include "collector/traces/record_view.h"
#include "collector/traces/span_summary.h"
#include "collector/traces/traces_config.h"
#include "meshtel/v1/record.pb.h"
#include "meshtel/v1/span.pb.h"

namespace meshtel::collector {

// The instrumentation scope of the spans built from proxy records.
inline constexpr std::string_view kProxyScopeName = "meshtel-proxy";

// What a policy decides for the spans of one record; the pointers are read only during Build().
struct SpanOptions {
  bool phase_spans = false;
  // Tags rendered from the record with an access-log format (the name, the format).
  std::span<const std::pair<std::string, const AccessLogFormat*>> formatter_tags;
  // Span.exporters of every span built; empty: every span exporter.
  std::span<const std::string> exporters;
};

// What the trace assembler decided about the spans of one record, applied by Encode().
struct SpanMarks {
  // The summaries of the record's spans, in Encode()'s order: span i takes its start, end and
  // anomalies from summaries[i]. Empty (or shorter): the record's own times, no anomalies.
  std::span<const SpanSummary> summaries;
  // The trace's fits: one whose span is first_summary + i adds its attribute
  // (kFittedToParentAttribute) to the record's span i, after its other attributes.
  std::span<const SpanFit> fits;
  size_t first_summary = 0;
};

class SpanBuilder {
 public:
  explicit SpanBuilder(const TracesConfig& config);

  // Appends the record's hop span, then its phase spans, to `out`; returns how many.
  size_t Build(const meshtel::v1::RequestRecord& record,
               std::vector<meshtel::v1::Span>& out) const {
    return Build(record, out, SpanOptions{.phase_spans = phase_spans_});
  }
  // The same as a policy decides it.
  size_t Build(const meshtel::v1::RequestRecord& record, std::vector<meshtel::v1::Span>& out,
               const SpanOptions& options) const;

  // Appends the serialized spans Build() gives for the same record and options, with `marks`
  // applied, to `out`; returns how many.
  size_t Encode(const meshtel::v1::RequestRecord& record, const SpanOptions& options,
                const SpanMarks& marks, SerializedSpans& out) const;
  // The same from a view of the record's stored bytes; `options` must have no formatter tags
  // (none is built, 0 returned, if it has).
  size_t Encode(const RecordView& record, const SpanOptions& options, const SpanMarks& marks,
                SerializedSpans& out) const;

  // Appends the summaries of the spans Build() gives for the same record and options (the same
  // number, in the same order) to `out`; returns how many.
  size_t Summarize(const meshtel::v1::RequestRecord& record, std::vector<SpanSummary>& out) const {
    return Summarize(record, out, SpanOptions{.phase_spans = phase_spans_});
  }
  size_t Summarize(const meshtel::v1::RequestRecord& record, std::vector<SpanSummary>& out,
                   const SpanOptions& options) const;

  // The service name of the record's spans.
  std::string ServiceName(const meshtel::v1::RequestRecord& record) const;
  std::string ServiceName(const RecordView& record) const;

  // The span id of phase `phase` (0-based) of the hop span `hop_span_id` (8 bytes).
  static std::string PhaseSpanId(std::string_view hop_span_id, size_t phase);

 private:
  // The service name of a WorkloadIdentity or RecordView::Workload.
  template <typename Workload>
  std::string ServiceNameOf(const Workload& workload) const;
  // The service name as pieces to concatenate (no allocation).
  template <typename Workload>
  std::array<std::string_view, 3> ServiceNamePieces(const Workload& workload) const;
  // Encode() of a RequestRecord or a RecordView.
  template <typename Record>
  size_t EncodeRecord(const Record& record, const SpanOptions& options, const SpanMarks& marks,
                      SerializedSpans& out) const;

  const bool phase_spans_;
  const TraceServiceName service_name_;
  const std::string mesh_id_;
  const std::string scope_version_;
};

// Whether `id` is a valid trace id (16 bytes) or span id (8 bytes): right size, not all zero.
bool IsValidTraceId(std::string_view id);
bool IsValidSpanId(std::string_view id);

}  // namespace meshtel::collector
