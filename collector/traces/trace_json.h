#pragma once
// TraceJson: stored spans as an OTLP/JSON trace export (wire-facts §2.2): the body of the admin
// server's GET /api/traces/{trace_id}, readable by anything that reads OTLP/JSON
// (`{"resourceSpans":[...]}`, lowerCamelCase keys, hex ids, enums as integers, 64-bit integers as
// strings). Spans are grouped by resource (service name and resource attributes) and scope, in
// the order given. The resource's service.name is the span's service_name, else a service.name
// resource attribute (a received span's), else "unknown_service"; it appears once. meshtel's
// anomaly marks appear as the span attribute "meshtel.anomalies" (e.g. "orphan,duplicate_span_id").
//
// Threading: pure functions.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "collector/store/record_store.h"
#include "meshtel/v1/span.pb.h"

namespace meshtel::collector {

std::string TraceToOtlpJson(std::span<const StoredRecord> spans);

// "orphan,ends_before_start": the names of the SpanAnomaly bits set in `anomalies`; "" for none.
std::string SpanAnomalyNames(uint32_t anomalies);

// Lower-case hex of `bytes`; and back (nullopt unless `hex` is an even number of hex digits).
std::string HexId(std::string_view bytes);
std::optional<std::string> ParseHexId(std::string_view hex);

}  // namespace meshtel::collector
