#include "collector/logs/received_log.h"

#include <array>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "fmt/format.h"

namespace meshtel::collector {
namespace {

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

bool AnyNonZero(std::string_view bytes) {
  for (char c : bytes) {
    if (c != 0) return true;
  }
  return false;
}

std::string_view KindName(meshtel::v1::SpanKind kind) {
  switch (kind) {
    case meshtel::v1::SPAN_KIND_INTERNAL:
      return "internal";
    case meshtel::v1::SPAN_KIND_SERVER:
      return "server";
    case meshtel::v1::SPAN_KIND_CLIENT:
      return "client";
    case meshtel::v1::SPAN_KIND_PRODUCER:
      return "producer";
    case meshtel::v1::SPAN_KIND_CONSUMER:
      return "consumer";
    default:
      return "unspecified";
  }
}

std::string Rfc3339Nanos(uint64_t unix_nano) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E9SZ",
                          absl::FromUnixNanos(static_cast<int64_t>(unix_nano)),
                          absl::UTCTimeZone());
}

}  // namespace

std::string_view SeverityLevel(const meshtel::v1::LogEntry& entry) {
  const int32_t number = entry.severity_number();
  if (number >= 1 && number <= 24) {
    static constexpr std::array<std::string_view, 6> kByRange = {"trace", "debug", "info",
                                                                 "warn",  "error", "fatal"};
    return kByRange[static_cast<size_t>((number - 1) / 4)];
  }
  const std::string text = absl::AsciiStrToLower(entry.severity_text());
  if (text == "trace") return "trace";
  if (text == "debug" || text == "dbg") return "debug";
  if (text == "info" || text == "information" || text == "informational" || text == "notice") {
    return "info";
  }
  if (text == "warn" || text == "warning") return "warn";
  if (text == "error" || text == "err") return "error";
  if (text == "fatal" || text == "critical" || text == "crit" || text == "emerg" ||
      text == "emergency" || text == "alert" || text == "panic") {
    return "fatal";
  }
  return "unknown";
}

std::string AttributeText(const meshtel::v1::SpanAttribute& attribute) {
  switch (attribute.value_case()) {
    case meshtel::v1::SpanAttribute::kStringValue:
      return attribute.string_value();
    case meshtel::v1::SpanAttribute::kBoolValue:
      return attribute.bool_value() ? "true" : "false";
    case meshtel::v1::SpanAttribute::kIntValue:
      return std::to_string(attribute.int_value());
    case meshtel::v1::SpanAttribute::kDoubleValue:
      return fmt::format("{}", attribute.double_value());
    case meshtel::v1::SpanAttribute::VALUE_NOT_SET:
      break;
  }
  return "";
}

uint64_t LogEntryTimeNanos(const meshtel::v1::LogEntry& entry, uint64_t fallback) {
  if (entry.time_unix_nano() != 0) return entry.time_unix_nano();
  if (entry.observed_time_unix_nano() != 0) return entry.observed_time_unix_nano();
  return fallback;
}

std::string ReceivedLogSummary(const meshtel::v1::LogEntry& entry) {
  std::string out = Rfc3339Nanos(LogEntryTimeNanos(entry, 0));
  out += ' ';
  out += entry.severity_text().empty() ? std::string(SeverityLevel(entry)) : entry.severity_text();
  out += ' ';
  out += entry.service_name().empty() ? std::string("-") : entry.service_name();
  out += ": ";
  out += entry.body();
  if (AnyNonZero(entry.trace_id())) out += " trace_id=" + Hex(entry.trace_id());
  if (AnyNonZero(entry.span_id())) out += " span_id=" + Hex(entry.span_id());
  return out;
}

std::string SpanSummary(const meshtel::v1::Span& span) {
  const uint64_t start = span.start_time_unix_nano();
  const uint64_t end = span.end_time_unix_nano();
  const double duration_ms = end >= start ? static_cast<double>(end - start) / 1e6
                                          : -static_cast<double>(start - end) / 1e6;
  std::string out = fmt::format("span {}/{}", Hex(span.trace_id()), Hex(span.span_id()));
  if (!span.parent_span_id().empty()) out += " parent=" + Hex(span.parent_span_id());
  out += fmt::format(" {} \"{}\" {} {:.3f}ms",
                     span.service_name().empty() ? std::string("-") : span.service_name(),
                     span.name(), KindName(span.kind()), duration_ms);
  if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_ERROR) out += " status=ERROR";
  if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_OK) out += " status=OK";
  return out;
}

}  // namespace meshtel::collector
