#pragma once
// OTLP trace requests straight to stored bytes: the OTLP receiver's fast path for protobuf
// ExportTraceServiceRequests. It walks the request's wire format and writes each valid span as a
// serialized meshtel.v1.RequestRecord{received_span} — the same record ConvertTraces
// (otlp_convert.h) builds, by the same mapping and validity rules — without building the decoded
// request or the converted records as messages. The resource and scope of a ScopeSpans are
// converted once (with protobuf, as ConvertTraces does) and their bytes appended to each span.
//
// A span that the walk does not vouch for is converted by protobuf and ConvertSpan instead, on
// its own: one with events, links, dropped counts, an attribute value that is bytes, an array or
// a key-value list, a field given twice, a field of an unexpected wire type, a group. Any other
// irregularity above the span level (malformed wire format, invalid UTF-8 in a string field, a
// resource or scope given twice) makes the whole request the caller's: TranscodeTraceRequest
// returns false, and the caller decodes the request with DecodeAndConvert, which then gives the
// answer protobuf gives (an error for a malformed request). So for every body it accepts, the
// records are those DecodeAndConvert gives (tests/fuzz/otlp_decoder_fuzz.cc checks this).
//
// Threading: pure functions. Allocation: `out` grows; reuse it across requests to keep its memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace meshtel::collector::otlp {

// Serialized RequestRecords, back to back, and the rejections of the request they came from.
struct EncodedRecords {
  std::string bytes;
  std::vector<size_t> ends;  // ends[i]: the offset just past record i in `bytes`
  int64_t rejected = 0;
  std::string message;  // as Converted::message

  size_t size() const { return ends.size(); }
  std::string_view record(size_t i) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(bytes).substr(begin, ends[i] - begin);
  }
  void Clear();
};

// Transcodes a protobuf ExportTraceServiceRequest into `out` (cleared first). False when the
// body is not one the transcoder vouches for (see above): then `out` is unspecified and the caller
// must use DecodeAndConvert.
bool TranscodeTraceRequest(std::string_view body, EncodedRecords& out);

}  // namespace meshtel::collector::otlp
