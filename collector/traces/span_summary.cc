#include "collector/traces/span_summary.h"

#include "absl/strings/numbers.h"

// Tested by: tests/collector/traces/span_builder_test.cc

namespace meshtel::collector {
bool IsHttpStatusKey(std::string_view key) {
  return key == "http.response.status_code" || key == "http.status_code";
}

uint64_t SpanIdValue(std::string_view id) {
  if (id.size() != 8) return 0;
  uint64_t value = 0;
  for (char c : id) value = (value << 8) | static_cast<unsigned char>(c);
  return value;
}

std::string SpanIdBytes(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(id & 0xff);
    id >>= 8;
  }
  return out;
}

int64_t HttpStatusOf(std::string_view key, std::string_view value) {
  if (!IsHttpStatusKey(key)) return 0;
  int64_t code = 0;
  return absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &code) ? code : 0;
}

int64_t HttpStatusOf(std::string_view key, const meshtel::v1::SpanAttribute& attribute) {
  if (!IsHttpStatusKey(key)) return 0;
  if (attribute.has_int_value()) return attribute.int_value();
  if (attribute.has_string_value()) return HttpStatusOf(key, attribute.string_value());
  return 0;
}

bool IsErrorSpan(const meshtel::v1::Span& span) {
  if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_ERROR) return true;
  for (const meshtel::v1::SpanAttribute& attribute : span.attributes()) {
    if (HttpStatusOf(attribute.key(), attribute) >= 500) return true;
  }
  return false;
}

SpanSummary SummarizeSpan(const meshtel::v1::Span& span) {
  SpanSummary summary;
  summary.span_id = SpanIdValue(span.span_id());
  summary.parent_span_id = SpanIdValue(span.parent_span_id());
  summary.start_time_unix_nano = span.start_time_unix_nano();
  summary.end_time_unix_nano = span.end_time_unix_nano();
  summary.error = IsErrorSpan(span);
  return summary;
}

}  // namespace meshtel::collector
