#pragma once
// SerializedSpans: spans as the store keeps them (serialized meshtel.v1.Span), many in one
// buffer, each with the trace and span id its trace_index entry is keyed by. The trace pipeline
// writes the spans of kept traces straight into it (SpanBuilder::Encode) and hands it to
// RecordStore::AppendSpans: no Span message is made for a span built from a proxy record.
//
// A span is added either as a message (Add: serialized) or as bytes appended by the caller
// between Begin() and the next Begin()/Truncate()/clear(); the caller vouches that those bytes
// are a serialized meshtel.v1.Span with these ids. Views (bytes, trace_id, span_id) stay valid
// until the next change of the container.
//
// Threading: a plain value; one thread at a time. Errors: none. Ids of another size than 16 and
// 8 bytes are not kept (trace_id() and span_id() give empty views): the store writes no
// trace_index entry for such a span, as for a Span message with such ids.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "meshtel/v1/span.pb.h"

namespace meshtel::collector {

class SerializedSpans {
 public:
  // Starts a span with these ids; returns the buffer its serialized bytes are appended to.
  std::string& Begin(std::string_view trace_id, std::string_view span_id);
  // Adds `span` serialized.
  void Add(const meshtel::v1::Span& span);
  // Drops the spans from index `count` on (their bytes too).
  void Truncate(size_t count);
  void clear();

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // The serialized bytes of all spans together.
  size_t total_bytes() const { return buffer_.size(); }
  std::string_view bytes(size_t index) const;
  std::string_view trace_id(size_t index) const;
  std::string_view span_id(size_t index) const;

 private:
  static constexpr size_t kTraceIdSize = 16;
  static constexpr size_t kSpanIdSize = 8;
  struct Entry {
    size_t begin = 0;  // offset in buffer_; the span ends where the next begins
    std::array<char, kTraceIdSize> trace_id{};
    std::array<char, kSpanIdSize> span_id{};
    bool has_ids = false;  // both ids had the usual sizes
  };

  std::string buffer_;
  std::vector<Entry> entries_;
};

}  // namespace meshtel::collector
