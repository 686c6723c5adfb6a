#pragma once
// RecordBatchRecordBytes: the serialized RequestRecords of a serialized meshtel.v1.RecordBatch,
// as views into it, so that the store can keep each record's bytes as they arrived instead of
// serializing the decoded record again (a record's bytes in field 3 are one serialized
// RequestRecord, exactly what the store keeps per record).
//
// Only the top level of the batch is walked (tags, lengths); what a record holds is not looked
// at: call it on bytes that already parsed as a RecordBatch, so every record's bytes are valid.
//
// Threading: a pure function. Ownership: the views point into `batch`, which must outlive them.
// Errors: false (and `out` unspecified) when the bytes are not a well-formed sequence of fields
// (a truncated varint or length, a group, an unknown wire type); the caller then serializes the
// decoded records instead.

#include <string_view>
#include <vector>

namespace meshtel::collector {

// Appends a view of each `records` element (field 3) of `batch`, in order, to `out` (cleared).
bool RecordBatchRecordBytes(std::string_view batch, std::vector<std::string_view>& out);

}  // namespace meshtel::collector
