#include "exporters/common/trace_export.h"

#include <array>

#include "fmt/format.h"

namespace meshtel::exporters {
namespace {

bool AllZero(std::string_view bytes) {
  for (char c : bytes) {
    if (c != 0) return false;
  }
  return true;
}

bool TokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

absl::Status CheckExportableSpan(const collector::StoredRecord& record) {
  if (record.family != collector::RecordFamily::kSpans) {
    return absl::InvalidArgumentError(
        fmt::format("a {} record is not a span", collector::RecordFamilyName(record.family)));
  }
  const meshtel::v1::Span& span = record.span;
  if (span.trace_id().size() != 16 || AllZero(span.trace_id())) {
    return absl::InvalidArgumentError(
        fmt::format("trace id of {} bytes is not 16 bytes, not all zero", span.trace_id().size()));
  }
  if (span.span_id().size() != 8 || AllZero(span.span_id())) {
    return absl::InvalidArgumentError(
        fmt::format("span id of {} bytes is not 8 bytes, not all zero", span.span_id().size()));
  }
  if (!span.parent_span_id().empty() && span.parent_span_id().size() != 8) {
    return absl::InvalidArgumentError(
        fmt::format("parent span id of {} bytes is not 8 bytes", span.parent_span_id().size()));
  }
  return absl::OkStatus();
}

std::string SpanAnomalyText(uint32_t anomalies) {
  static constexpr std::array<std::string_view, 4> kNames = {
      "ends_before_start", "duplicate_span_id", "orphan", "trace_evicted"};
  std::string text;
  for (uint32_t bit = 0; bit < 32; ++bit) {
    if ((anomalies & (1u << bit)) == 0) continue;
    if (!text.empty()) text += ',';
    if (bit < kNames.size()) {
      text += kNames[bit];
    } else {
      text += fmt::format("bit{}", bit);
    }
  }
  return text;
}

std::string SpanServiceName(const meshtel::v1::Span& span) {
  if (!span.service_name().empty()) return span.service_name();
  for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
    if (attribute.key() == kServiceNameAttribute && attribute.has_string_value() &&
        !attribute.string_value().empty()) {
      return attribute.string_value();
    }
  }
  return std::string(kUnknownService);
}

namespace {

void AppendSized(std::string_view bytes, std::string& out) {
  const uint32_t size = static_cast<uint32_t>(bytes.size());
  out.append(reinterpret_cast<const char*>(&size), sizeof(size));
  out.append(bytes);
}

}  // namespace

void SpanResourceKey(const meshtel::v1::Span& span, std::string& key) {
  key.clear();
  if (!span.service_name().empty()) {
    AppendSized(span.service_name(), key);
  } else {
    AppendSized(SpanServiceName(span), key);
  }
  for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
    if (attribute.key() == kServiceNameAttribute) continue;
    AppendSized(attribute.key(), key);
    key.push_back(static_cast<char>('0' + attribute.value_case()));
    switch (attribute.value_case()) {
      case meshtel::v1::SpanAttribute::kStringValue:
        AppendSized(attribute.string_value(), key);
        break;
      case meshtel::v1::SpanAttribute::kBoolValue:
        key.push_back(attribute.bool_value() ? '1' : '0');
        break;
      case meshtel::v1::SpanAttribute::kIntValue: {
        const int64_t value = attribute.int_value();
        key.append(reinterpret_cast<const char*>(&value), sizeof(value));
        break;
      }
      case meshtel::v1::SpanAttribute::kDoubleValue: {
        const double value = attribute.double_value();
        key.append(reinterpret_cast<const char*>(&value), sizeof(value));
        break;
      }
      case meshtel::v1::SpanAttribute::VALUE_NOT_SET:
        break;
    }
  }
}

absl::Status CheckHeaders(std::vector<std::pair<std::string, std::string>>& headers,
                          std::string_view path, bool grpc) {
  for (auto& [name, value] : headers) {
    const std::string at = fmt::format("{}.{}", path, name);
    if (name.empty()) return absl::InvalidArgumentError(fmt::format("{}: empty name", at));
    for (char& c : name) {
      if (!TokenChar(c)) {
        return absl::InvalidArgumentError(
            fmt::format("{}: '{}' is not a valid header name", at, name));
      }
      if (grpc && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (grpc && (name.starts_with("grpc-") || name.ends_with("-bin"))) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: '{}' is reserved by gRPC or binary (-bin) metadata, which is not supported", at,
          name));
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return absl::InvalidArgumentError(fmt::format("{}: the value holds CR, LF or NUL", at));
    }
  }
  return absl::OkStatus();
}

}  // namespace meshtel::exporters
