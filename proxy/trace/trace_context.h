#pragma once
// Trace context across a proxy hop: W3C Trace Context and B3 (single and multi header) read from
// the incoming request, a sampling decision, and the headers written to the upstream.
//
// Rules (wire-facts §7.1, §7.2, §7.4):
//   - Extraction order: W3C `traceparent`, then single `b3`, then the `x-b3-*` headers; the first
//     form present decides. A present but malformed form (wrong length, upper-case or non-hex,
//     all-zero ids, version ff) is discarded with its `tracestate`, reported as `invalid`, and the
//     request starts a new trace: it is never an error to the client.
//   - Sampling: an incoming decision (W3C sampled flag, B3 sampled/debug) is kept; else
//     `x-client-trace-id` or `x-envoy-force-trace` forces sampling; else a draw at the configured
//     percentage, computed from the request id like Envoy (first 8 hex digits mod 10000), so every
//     hop of a request decides the same way.
//   - Each hop gets a new span id whose parent is the incoming span; the trace id is kept.
//   - Injection replaces every incoming trace header with the configured forms, so a stale single
//     `b3` never contradicts fresh `x-b3-*` headers downstream; `tracestate` passes unchanged
//     alongside a valid incoming `traceparent`.
// Pure functions and value types; safe from any thread.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace meshtel::proxy {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

// The raw values of the trace headers of one request; empty = absent.
struct TraceHeaders {
  std::string_view traceparent;
  std::string_view tracestate;
  std::string_view b3;
  std::string_view x_b3_traceid;
  std::string_view x_b3_spanid;
  std::string_view x_b3_parentspanid;
  std::string_view x_b3_sampled;
  std::string_view x_b3_flags;
  std::string_view x_client_trace_id;
  std::string_view x_envoy_force_trace;
};

struct IncomingContext {
  bool has_ids = false;  // trace_id and span_id are valid
  TraceId trace_id{};
  SpanId span_id{};             // the caller's span: our parent
  std::optional<bool> sampled;  // the caller's decision, if any
  uint8_t w3c_flags = 0;        // W3C flags other than sampled, kept downstream (e.g. 0x02)
  std::string tracestate;       // kept only with a valid traceparent
  bool invalid = false;         // some trace header was present but malformed
};

IncomingContext ExtractTraceContext(const TraceHeaders& headers);

enum class SamplingReason { kIncomingDecision, kClientForced, kServiceForced, kRandom };

struct SamplingDecision {
  bool sampled = false;
  SamplingReason reason = SamplingReason::kRandom;
};

// `percentage` in [0, 100] with 0.01 steps; `request_id` is the x-request-id being forwarded.
SamplingDecision DecideSampling(const IncomingContext& incoming, const TraceHeaders& headers,
                                std::string_view request_id, double percentage);

enum class Propagation { kW3c, kB3Multi, kB3Single };

// The context of this hop: the trace, our new span, and its parent (all-zero when a root).
struct HopContext {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};
  bool sampled = false;
  uint8_t w3c_flags = 0;
  std::string tracestate;
};

// Builds this hop's context: the incoming trace (or a new random one) and a new random span id.
HopContext NewHop(const IncomingContext& incoming, bool sampled);

// Every header name ExtractTraceContext reads that injection rewrites (lower-case).
const std::vector<std::string_view>& PropagatedTraceHeaderNames();

// The headers to send upstream for one hop, written into fixed storage inside this object, so
// that building them allocates nothing (the request path fills one per request). A form listed
// twice is written once. Views: the values point into this object, except `tracestate`, which
// points into the HopContext it was written from; both must outlive the views.
class InjectedTraceHeaders {
 public:
  struct Header {
    std::string_view name;
    std::string_view value;
  };
  // In the order of the configured forms.
  const Header* begin() const { return headers_.data(); }
  const Header* end() const { return headers_.data() + count_; }
  size_t size() const { return count_; }

 private:
  friend void WriteTraceHeaders(const HopContext& hop, const std::vector<Propagation>& forms,
                                InjectedTraceHeaders& out);
  void Add(std::string_view name, std::string_view value) { headers_[count_++] = {name, value}; }

  std::array<Header, 7> headers_{};  // traceparent, tracestate, four x-b3-*, b3
  size_t count_ = 0;
  char traceparent_[55];           // 00-{trace}-{span}-{flags}
  char b3_trace_id_[32];           // x-b3-traceid
  char b3_span_id_[16];            // x-b3-spanid
  char b3_parent_span_id_[16];     // x-b3-parentspanid
  char b3_[32 + 1 + 16 + 2 + 17];  // {trace}-{span}-{sampled}[-{parent}]
};

// Writes the headers to send upstream for `hop`, in the configured forms, into `out` (replacing
// what it held).
void WriteTraceHeaders(const HopContext& hop, const std::vector<Propagation>& forms,
                       InjectedTraceHeaders& out);

// The same headers as (name, value) pairs with their own strings.
std::vector<std::pair<std::string_view, std::string>> TraceHeadersToInject(
    const HopContext& hop, const std::vector<Propagation>& forms);

// Writes the lower-case hex of `size` bytes to `out` (2 * size characters).
void WriteHex(const uint8_t* data, size_t size, char* out);
// Lower-case hex of bytes.
std::string ToHex(const uint8_t* data, size_t size);
template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& bytes) {
  return ToHex(bytes.data(), N);
}
// Raw bytes as a std::string (for the record's bytes fields).
template <size_t N>
std::string ToBytes(const std::array<uint8_t, N>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), N);
}

}  // namespace meshtel::proxy
