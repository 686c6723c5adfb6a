#pragma once
// SpanSummary: what trace assembly and tail sampling read of one span — ids, times, whether it is
// an error, its marks — without the span itself. The trace pipeline summarizes each stored record
// (SpanBuilder::Summarize for a proxy record's hop and phase spans, SummarizeSpan for a received
// span), holds the summaries and the record's serialized bytes while its trace is assembled, and
// builds the full spans only for a trace the sampler keeps: a dropped trace (most of them, at the
// usual base rates) never costs a built span.
//
// Threading: plain values and pure functions, safe from any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "meshtel/v1/span.pb.h"

namespace meshtel::collector {

struct SpanSummary {
  uint64_t span_id = 0;         // the 8 id bytes, big-endian (SpanIdValue); never 0
  uint64_t parent_span_id = 0;  // 0: no parent (a root)
  uint64_t start_time_unix_nano = 0;
  uint64_t end_time_unix_nano = 0;
  uint32_t anomalies = 0;  // SpanAnomaly bits, set by the assembler when the trace is decided
  uint32_t record = 0;     // the index of the span's record in its trace (set by the assembler)
  // What the tail sampler counts as an error: status ERROR, or an HTTP status of 500 or more in
  // an http.response.status_code / http.status_code attribute (IsErrorSpan).
  bool error = false;
};

// A span fitted into its parent's window: its summary has the fitted times; its span gets the
// attribute meshtel.fitted_to_parent_ns = trimmed_ns.
struct SpanFit {
  uint32_t span = 0;  // index of the span's summary in its trace (AssembledTrace::spans)
  uint64_t trimmed_ns = 0;
};

// The attribute a fitted span gets.
inline constexpr std::string_view kFittedToParentAttribute = "meshtel.fitted_to_parent_ns";

// An 8-byte span id as a number (big-endian; 0 for an id of another size) and back.
uint64_t SpanIdValue(std::string_view id);
std::string SpanIdBytes(uint64_t id);

// Whether an attribute named `key` holds an HTTP status the sampler reads.
bool IsHttpStatusKey(std::string_view key);
// The HTTP status code an attribute `key` holds (an integer, or a string of digits as Envoy's
// http.status_code tag) when the key is http.response.status_code or http.status_code; else 0.
int64_t HttpStatusOf(std::string_view key, const meshtel::v1::SpanAttribute& attribute);
// The same for a string value (a tag rendered as text).
int64_t HttpStatusOf(std::string_view key, std::string_view value);

// Whether the span is an error as the tail sampler sees it: status ERROR, or an HTTP status of
// 500 or more (an SDK's span may leave its status unset on a 5xx).
bool IsErrorSpan(const meshtel::v1::Span& span);

// The summary of a whole span (a received one: valid ids, a parent id that is no span id read as
// none).
SpanSummary SummarizeSpan(const meshtel::v1::Span& span);

}  // namespace meshtel::collector
