#include "collector/traces/trace_json.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "collector/logs/json_escape.h"
#include "fmt/format.h"

namespace meshtel::collector {
namespace {

void AppendString(std::string& out, std::string_view text) {
  out.push_back('"');
  AppendJsonEscaped(out, text);
  out.push_back('"');
}

void AppendAttribute(std::string& out, const meshtel::v1::SpanAttribute& attribute) {
  out.append("{\"key\":");
  AppendString(out, attribute.key());
  out.append(",\"value\":{");
  switch (attribute.value_case()) {
    case meshtel::v1::SpanAttribute::kStringValue:
      out.append("\"stringValue\":");
      AppendString(out, attribute.string_value());
      break;
    case meshtel::v1::SpanAttribute::kBoolValue:
      out.append("\"boolValue\":").append(attribute.bool_value() ? "true" : "false");
      break;
    case meshtel::v1::SpanAttribute::kIntValue:
      out.append("\"intValue\":\"").append(std::to_string(attribute.int_value())).append("\"");
      break;
    case meshtel::v1::SpanAttribute::kDoubleValue:
      out.append("\"doubleValue\":").append(fmt::format("{}", attribute.double_value()));
      break;
    case meshtel::v1::SpanAttribute::VALUE_NOT_SET:
      break;
  }
  out.append("}}");
}

template <typename Attributes>
void AppendAttributes(std::string& out, const Attributes& attributes, bool& first) {
  for (const meshtel::v1::SpanAttribute& attribute : attributes) {
    if (!first) out.push_back(',');
    first = false;
    AppendAttribute(out, attribute);
  }
}

void AppendSpan(std::string& out, const meshtel::v1::Span& span) {
  out.append("{\"traceId\":\"").append(HexId(span.trace_id()));
  out.append("\",\"spanId\":\"").append(HexId(span.span_id())).append("\"");
  if (!span.parent_span_id().empty()) {
    out.append(",\"parentSpanId\":\"").append(HexId(span.parent_span_id())).append("\"");
  }
  if (!span.trace_state().empty()) {
    out.append(",\"traceState\":");
    AppendString(out, span.trace_state());
  }
  out.append(",\"flags\":").append(std::to_string(span.flags()));
  out.append(",\"name\":");
  AppendString(out, span.name());
  out.append(",\"kind\":").append(std::to_string(static_cast<int>(span.kind())));
  out.append(",\"startTimeUnixNano\":\"")
      .append(std::to_string(span.start_time_unix_nano()))
      .append("\",\"endTimeUnixNano\":\"")
      .append(std::to_string(span.end_time_unix_nano()))
      .append("\",\"attributes\":[");
  bool first = true;
  AppendAttributes(out, span.attributes(), first);
  if (span.anomalies() != 0) {
    meshtel::v1::SpanAttribute marks;
    marks.set_key("meshtel.anomalies");
    marks.set_string_value(SpanAnomalyNames(span.anomalies()));
    if (!first) out.push_back(',');
    AppendAttribute(out, marks);
  }
  out.append("],\"status\":{");
  if (span.status_code() != meshtel::v1::SPAN_STATUS_CODE_UNSET) {
    out.append("\"code\":").append(std::to_string(static_cast<int>(span.status_code())));
    if (!span.status_message().empty()) {
      out.append(",\"message\":");
      AppendString(out, span.status_message());
    }
  }
  out.append("}}");
}

// Spans sharing a resource and a scope, by their resource's serialized form.
using ResourceKey = std::string;

constexpr std::string_view kServiceNameKey = "service.name";

// The span's service: service_name, else a string resource attribute service.name (a received
// span whose sender left it there), else OpenTelemetry's "unknown_service".
std::string ServiceNameOf(const meshtel::v1::Span& span) {
  if (!span.service_name().empty()) return span.service_name();
  for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
    if (attribute.key() == kServiceNameKey && attribute.has_string_value() &&
        !attribute.string_value().empty()) {
      return attribute.string_value();
    }
  }
  return "unknown_service";
}
using ScopeKey = std::pair<std::string, std::string>;

}  // namespace

std::string HexId(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
  }
  return out;
}

std::optional<std::string> ParseHexId(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = nibble(hex[i]);
    const int low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high << 4 | low));
  }
  return out;
}

std::string SpanAnomalyNames(uint32_t anomalies) {
  static constexpr std::pair<meshtel::v1::SpanAnomaly, std::string_view> kNames[] = {
      {meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START, "ends_before_start"},
      {meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID, "duplicate_span_id"},
      {meshtel::v1::SPAN_ANOMALY_ORPHAN, "orphan"},
      {meshtel::v1::SPAN_ANOMALY_TRACE_EVICTED, "trace_evicted"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((anomalies & (1u << bit)) == 0) continue;
    if (!out.empty()) out.push_back(',');
    out.append(name);
  }
  return out;
}

std::string TraceToOtlpJson(std::span<const StoredRecord> spans) {
  // resource -> scope -> spans, each in first-seen order.
  struct Scope {
    ScopeKey key;
    std::vector<const meshtel::v1::Span*> spans;
  };
  struct Resource {
    const meshtel::v1::Span* first = nullptr;
    std::vector<Scope> scopes;
  };
  std::vector<std::pair<ResourceKey, Resource>> resources;
  for (const StoredRecord& stored : spans) {
    const meshtel::v1::Span& span = stored.span;
    ResourceKey key = ServiceNameOf(span);
    for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
      if (attribute.key() == kServiceNameKey) continue;
      key.push_back('\0');
      key.append(attribute.SerializeAsString());
    }
    auto resource = std::find_if(resources.begin(), resources.end(),
                                 [&key](const auto& entry) { return entry.first == key; });
    if (resource == resources.end()) {
      resources.emplace_back(std::move(key), Resource{.first = &span, .scopes = {}});
      resource = std::prev(resources.end());
    }
    ScopeKey scope_key{span.scope_name(), span.scope_version()};
    auto& scopes = resource->second.scopes;
    auto scope = std::find_if(scopes.begin(), scopes.end(),
                              [&scope_key](const Scope& entry) { return entry.key == scope_key; });
    if (scope == scopes.end()) {
      scopes.push_back(Scope{.key = scope_key, .spans = {}});
      scope = std::prev(scopes.end());
    }
    scope->spans.push_back(&span);
  }
  std::string out = "{\"resourceSpans\":[";
  for (size_t r = 0; r < resources.size(); ++r) {
    const Resource& resource = resources[r].second;
    if (r > 0) out.push_back(',');
    out.append("{\"resource\":{\"attributes\":[");
    meshtel::v1::SpanAttribute service;
    service.set_key("service.name");
    service.set_string_value(ServiceNameOf(*resource.first));
    AppendAttribute(out, service);
    for (const meshtel::v1::SpanAttribute& attribute : resource.first->resource_attributes()) {
      if (attribute.key() == kServiceNameKey) continue;  // given once, above
      out.push_back(',');
      AppendAttribute(out, attribute);
    }
    out.append("]},\"scopeSpans\":[");
    for (size_t s = 0; s < resource.scopes.size(); ++s) {
      const Scope& scope = resource.scopes[s];
      if (s > 0) out.push_back(',');
      out.append("{\"scope\":{\"name\":");
      AppendString(out, scope.key.first);
      out.append(",\"version\":");
      AppendString(out, scope.key.second);
      out.append("},\"spans\":[");
      for (size_t i = 0; i < scope.spans.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendSpan(out, *scope.spans[i]);
      }
      out.append("]}");
    }
    out.append("]}");
  }
  out.append("]}");
  return out;
}

}  // namespace meshtel::collector
