#include "collector/store/serialized_spans.h"

#include <cstring>

namespace meshtel::collector {

std::string& SerializedSpans::Begin(std::string_view trace_id, std::string_view span_id) {
  Entry& entry = entries_.emplace_back();
  entry.begin = buffer_.size();
  entry.has_ids = trace_id.size() == kTraceIdSize && span_id.size() == kSpanIdSize;
  if (entry.has_ids) {
    std::memcpy(entry.trace_id.data(), trace_id.data(), kTraceIdSize);
    std::memcpy(entry.span_id.data(), span_id.data(), kSpanIdSize);
  }
  return buffer_;
}

void SerializedSpans::Add(const meshtel::v1::Span& span) {
  span.AppendToString(&Begin(span.trace_id(), span.span_id()));
}

void SerializedSpans::Truncate(size_t count) {
  if (count >= entries_.size()) return;
  buffer_.resize(entries_[count].begin);
  entries_.resize(count);
}

void SerializedSpans::clear() {
  buffer_.clear();
  entries_.clear();
}

std::string_view SerializedSpans::bytes(size_t index) const {
  const size_t begin = entries_[index].begin;
  const size_t end = index + 1 < entries_.size() ? entries_[index + 1].begin : buffer_.size();
  return std::string_view(buffer_).substr(begin, end - begin);
}

std::string_view SerializedSpans::trace_id(size_t index) const {
  const Entry& entry = entries_[index];
  if (!entry.has_ids) return {};
  return std::string_view(entry.trace_id.data(), kTraceIdSize);
}

std::string_view SerializedSpans::span_id(size_t index) const {
  const Entry& entry = entries_[index];
  if (!entry.has_ids) return {};
  return std::string_view(entry.span_id.data(), kSpanIdSize);
}

}  // namespace meshtel::collector
