#pragma once
// What the log exporters and the admin API share about entries of the logs family that are not
// request records: received log records (meshtel.v1.LogEntry, from OTLP) and received spans.
//
//   - IsRequestRecord(): a request record, as opposed to an entry with received_span or
//     received_log set (the access-log format, the request metrics and the log exporters' access
//     lines are for request records only).
//   - SeverityLevel(): Loki's level name of a log record ("trace", "debug", "info", "warn",
//     "error", "fatal", "unknown"): from OpenTelemetry's severity number (1-4 trace .. 21-24
//     fatal), else from a known severity text (any case; "warning", "err", "critical" ...), else
//     "unknown" — the values Loki gives its detected_level.
//   - AttributeText(): an attribute value as text (string as is, bool true/false, int in
//     decimal, double in the shortest form that reads back the same), as Loki stores OTLP
//     attribute values in labels and structured metadata.
//   - LogEntryTimeNanos(): a log record's time: time_unix_nano, else observed_time_unix_nano,
//     else `fallback` (the store key's time) — as Loki's OTLP ingestion takes it.
//   - ReceivedLogSummary() / SpanSummary(): one readable line for a received log record or a
//     span (the dead-letter listing shows these instead of an access-log line).
//
// Threading: pure functions.

#include <cstdint>
#include <string>
#include <string_view>

#include "meshtel/v1/log.pb.h"
#include "meshtel/v1/record.pb.h"
#include "meshtel/v1/span.pb.h"

namespace meshtel::collector {

inline bool IsRequestRecord(const meshtel::v1::RequestRecord& record) {
  return !record.has_received_span() && !record.has_received_log();
}

std::string_view SeverityLevel(const meshtel::v1::LogEntry& entry);

std::string AttributeText(const meshtel::v1::SpanAttribute& attribute);

uint64_t LogEntryTimeNanos(const meshtel::v1::LogEntry& entry, uint64_t fallback);

// "2026-08-20T10:00:00.123456789Z error checkout: payment declined trace_id=<hex> span_id=<hex>"
// (the ids only when set; the severity text when there is one, else the level; "-" for no
// service).
std::string ReceivedLogSummary(const meshtel::v1::LogEntry& entry);

// "span <trace hex>/<span hex> checkout \"GET /cart\" server 12.345ms status=ERROR" (the status
// only when set; parent=<hex> when there is one).
std::string SpanSummary(const meshtel::v1::Span& span);

}  // namespace meshtel::collector
