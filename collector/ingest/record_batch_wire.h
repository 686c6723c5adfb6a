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
//
// SalvageRecordBatch: the records of a batch that parse, when not all of them do, so that one bad
// record does not cost the others.

#include <cstddef>
#include <string_view>
#include <vector>

#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// Appends a view of each `records` element (field 3) of `batch`, in order, to `out` (cleared).
bool RecordBatchRecordBytes(std::string_view batch, std::vector<std::string_view>& out);

// For a batch that does not parse as a whole because some of its records do not (a record whose
// text is not UTF-8, say): fills `decoded` (cleared) with the batch's own fields and the records
// that parse, `record_bytes` (cleared) with those records' bytes, and sets `invalid_records` to
// how many records did not parse. False when the batch itself is malformed: not a sequence of
// fields, or an instance id that is not UTF-8.
bool SalvageRecordBatch(std::string_view batch, meshtel::v1::RecordBatch& decoded,
                        std::vector<std::string_view>& record_bytes, size_t& invalid_records);

}  // namespace meshtel::collector
