#pragma once
// ReadSummaryFields: the fields of a stored RequestRecord that SpanBuilder::Summarize reads, taken
// from the record's wire format without parsing the rest. The trace pipeline reads every stored
// record but builds spans only for the few traces it keeps; parsing each whole record (some 40
// fields, two workloads, captured headers) was most of its reading.
//
// Read: trace_id, span_id, parent_span_id, sampled, start_time_unix_nano, duration_ns,
// response_code, grpc_status (with its presence), phases and custom_tags; and what a telemetry
// policy is looked up by (PolicyEnforcer::For): reporter, and the namespace, workload, app and
// version of source and destination. Everything else is walked only to check it as protobuf's
// parser would (strings must be valid UTF-8).
//
// Pure function; safe from any thread. Errors: false when the walk does not vouch for the bytes
// (malformed, invalid UTF-8, phases given twice, a group, a received span or log record — which
// the pipeline reads whole): the caller parses them with protobuf instead.

#include <string_view>

#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// Sets the fields listed above in `out` to what parsing `bytes` would give them; `out`'s other
// fields are left as they are (keep them empty: `out` is meant to be reused for this only).
// False when protobuf must decide (see above); `out` is then unspecified.
bool ReadSummaryFields(std::string_view bytes, meshtel::v1::RequestRecord& out);

}  // namespace meshtel::collector
