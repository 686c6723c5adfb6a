#include "collector/ingest/otlp_convert.h"

// Tested by: tests/collector/ingest/otlp_convert_test.cc

#include <algorithm>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/ingest/otlp_json.h"
#include "collector/logs/json_escape.h"
#include "google/protobuf/arena.h"
#include "google/rpc/status.pb.h"

namespace meshtel::collector::otlp {
namespace {

namespace common_pb = opentelemetry::proto::common::v1;
namespace trace_pb = opentelemetry::proto::trace::v1;
namespace logs_pb = opentelemetry::proto::logs::v1;
using google::protobuf::RepeatedPtrField;

constexpr char kServiceName[] = "service.name";

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

void AppendQuoted(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

void AppendDoubleJson(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    absl::StrAppend(&out, value);
  }
}

void AppendKeyValuesJson(const RepeatedPtrField<common_pb::KeyValue>& values, std::string& out) {
  out += '{';
  for (int i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    AppendQuoted(out, values[i].key());
    out += ':';
    AppendAnyValueJson(values[i].value(), out);
  }
  out += '}';
}

// An AnyValue as a typed meshtel attribute value (see the header for the mapping).
void SetAttributeValue(const common_pb::AnyValue& value, meshtel::v1::SpanAttribute& out) {
  switch (value.value_case()) {
    case common_pb::AnyValue::kStringValue:
      out.set_string_value(value.string_value());
      break;
    case common_pb::AnyValue::kBoolValue:
      out.set_bool_value(value.bool_value());
      break;
    case common_pb::AnyValue::kIntValue:
      out.set_int_value(value.int_value());
      break;
    case common_pb::AnyValue::kDoubleValue:
      out.set_double_value(value.double_value());
      break;
    case common_pb::AnyValue::kBytesValue:
      out.set_string_value(absl::Base64Escape(value.bytes_value()));
      break;
    case common_pb::AnyValue::kArrayValue:
    case common_pb::AnyValue::kKvlistValue: {
      std::string* json = out.mutable_string_value();
      AppendAnyValueJson(value, *json);
      break;
    }
    case common_pb::AnyValue::VALUE_NOT_SET:
      out.set_string_value("");
      break;
  }
}

// Text of a value for fields that are strings (service.name).
std::string ValueText(const common_pb::AnyValue& value) {
  if (value.value_case() == common_pb::AnyValue::kStringValue) return value.string_value();
  std::string out;
  AppendAnyValueJson(value, out);
  return out;
}

void AddAttributes(const RepeatedPtrField<common_pb::KeyValue>& in,
                   RepeatedPtrField<meshtel::v1::SpanAttribute>& out) {
  out.Reserve(out.size() + in.size());
  for (const common_pb::KeyValue& attribute : in) {
    meshtel::v1::SpanAttribute* converted = out.Add();
    converted->set_key(attribute.key());
    SetAttributeValue(attribute.value(), *converted);
  }
}

void AddIntAttribute(std::string_view key, int64_t value,
                     RepeatedPtrField<meshtel::v1::SpanAttribute>& out) {
  meshtel::v1::SpanAttribute* attribute = out.Add();
  attribute->set_key(std::string(key));
  attribute->set_int_value(value);
}

}  // namespace

void SetResource(const opentelemetry::proto::resource::v1::Resource& resource, ItemOrigin& origin) {
  origin.service_name.clear();
  origin.resource_attributes.Clear();
  for (const common_pb::KeyValue& attribute : resource.attributes()) {
    if (attribute.key() == kServiceName) {
      origin.service_name = ValueText(attribute.value());
      continue;
    }
    meshtel::v1::SpanAttribute* converted = origin.resource_attributes.Add();
    converted->set_key(attribute.key());
    SetAttributeValue(attribute.value(), *converted);
  }
}

void NoteRejection(int64_t& rejected, std::string& message, std::string_view what) {
  if (rejected == 0) message = std::string(what);
  ++rejected;
}

bool KeepsParentSpanId(std::string_view parent_span_id) {
  return !parent_span_id.empty() && !AllZero(parent_span_id);
}

meshtel::v1::SpanKind SpanKindOf(int32_t kind) {
  return kind >= 0 && kind <= 5 ? static_cast<meshtel::v1::SpanKind>(kind)
                                : meshtel::v1::SPAN_KIND_UNSPECIFIED;
}

meshtel::v1::SpanStatusCode SpanStatusCodeOf(int32_t code) {
  return code >= 0 && code <= 2 ? static_cast<meshtel::v1::SpanStatusCode>(code)
                                : meshtel::v1::SPAN_STATUS_CODE_UNSET;
}

uint32_t TraceFlagsOf(uint32_t flags) { return flags & 0xFFu; }

namespace {

void AppendHex(std::string_view bytes, std::string& out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0xF];
  }
}

void AddEventsAndLinks(const trace_pb::Span& span, meshtel::v1::Span& out) {
  if (span.events_size() > 0) {
    meshtel::v1::SpanAttribute* attribute = out.add_attributes();
    attribute->set_key("otlp.events");
    std::string& json = *attribute->mutable_string_value();
    json += '[';
    for (int i = 0; i < span.events_size(); ++i) {
      const trace_pb::Span::Event& event = span.events(i);
      if (i > 0) json += ',';
      absl::StrAppend(&json, "{\"timeUnixNano\":\"", event.time_unix_nano(), "\",\"name\":");
      AppendQuoted(json, event.name());
      json += ",\"attributes\":";
      AppendKeyValuesJson(event.attributes(), json);
      json += '}';
    }
    json += ']';
  }
  if (span.links_size() > 0) {
    meshtel::v1::SpanAttribute* attribute = out.add_attributes();
    attribute->set_key("otlp.links");
    std::string& json = *attribute->mutable_string_value();
    json += '[';
    for (int i = 0; i < span.links_size(); ++i) {
      const trace_pb::Span::Link& link = span.links(i);
      if (i > 0) json += ',';
      json += "{\"traceId\":\"";
      AppendHex(link.trace_id(), json);
      json += "\",\"spanId\":\"";
      AppendHex(link.span_id(), json);
      json += "\",\"traceState\":";
      AppendQuoted(json, link.trace_state());
      json += ",\"attributes\":";
      AppendKeyValuesJson(link.attributes(), json);
      json += '}';
    }
    json += ']';
  }
  if (span.dropped_attributes_count() > 0) {
    AddIntAttribute("otlp.dropped_attributes_count", span.dropped_attributes_count(),
                    *out.mutable_attributes());
  }
  if (span.dropped_events_count() > 0) {
    AddIntAttribute("otlp.dropped_events_count", span.dropped_events_count(),
                    *out.mutable_attributes());
  }
  if (span.dropped_links_count() > 0) {
    AddIntAttribute("otlp.dropped_links_count", span.dropped_links_count(),
                    *out.mutable_attributes());
  }
}

}  // namespace

const char* SpanIdsProblem(std::string_view trace_id, std::string_view span_id,
                           std::string_view parent_span_id) {
  if (trace_id.size() != 16) return "trace_id is not 16 bytes";
  if (AllZero(trace_id)) return "trace_id is all zero";
  if (span_id.size() != 8) return "span_id is not 8 bytes";
  if (AllZero(span_id)) return "span_id is all zero";
  if (!parent_span_id.empty() && parent_span_id.size() != 8) {
    return "parent_span_id is neither empty nor 8 bytes";
  }
  return nullptr;
}

const char* SpanProblem(const trace_pb::Span& span) {
  return SpanIdsProblem(span.trace_id(), span.span_id(), span.parent_span_id());
}

void ConvertSpan(const trace_pb::Span& span, const ItemOrigin& origin, meshtel::v1::Span& out) {
  out.set_trace_id(span.trace_id());
  out.set_span_id(span.span_id());
  if (KeepsParentSpanId(span.parent_span_id())) out.set_parent_span_id(span.parent_span_id());
  out.set_trace_state(span.trace_state());
  out.set_name(span.name());
  out.set_kind(SpanKindOf(span.kind()));
  out.set_start_time_unix_nano(span.start_time_unix_nano());
  out.set_end_time_unix_nano(span.end_time_unix_nano());
  AddAttributes(span.attributes(), *out.mutable_attributes());
  AddEventsAndLinks(span, out);
  out.set_status_code(SpanStatusCodeOf(span.status().code()));
  out.set_status_message(span.status().message());
  out.set_flags(TraceFlagsOf(span.flags()));
  out.set_service_name(origin.service_name);
  *out.mutable_resource_attributes() = origin.resource_attributes;
  out.set_scope_name(origin.scope_name);
  out.set_scope_version(origin.scope_version);
}

void FinishRejections(int64_t rejected, const char* item, std::string& message) {
  if (rejected > 1) {
    message = absl::StrCat(rejected, " ", item, " rejected; the first: ", message);
  } else if (rejected == 1) {
    message = absl::StrCat("1 ", item, " rejected: ", message);
  }
}

const char* SignalName(Signal signal) { return signal == Signal::kTraces ? "traces" : "logs"; }
const char* EncodingName(Encoding encoding) {
  return encoding == Encoding::kProtobuf ? "protobuf" : "json";
}

void AppendAnyValueJson(const common_pb::AnyValue& value, std::string& out) {
  switch (value.value_case()) {
    case common_pb::AnyValue::kStringValue:
      AppendQuoted(out, value.string_value());
      break;
    case common_pb::AnyValue::kBoolValue:
      out += value.bool_value() ? "true" : "false";
      break;
    case common_pb::AnyValue::kIntValue:
      absl::StrAppend(&out, value.int_value());
      break;
    case common_pb::AnyValue::kDoubleValue:
      AppendDoubleJson(value.double_value(), out);
      break;
    case common_pb::AnyValue::kBytesValue:
      AppendQuoted(out, absl::Base64Escape(value.bytes_value()));
      break;
    case common_pb::AnyValue::kArrayValue:
      out += '[';
      for (int i = 0; i < value.array_value().values_size(); ++i) {
        if (i > 0) out += ',';
        AppendAnyValueJson(value.array_value().values(i), out);
      }
      out += ']';
      break;
    case common_pb::AnyValue::kKvlistValue:
      AppendKeyValuesJson(value.kvlist_value().values(), out);
      break;
    case common_pb::AnyValue::VALUE_NOT_SET:
      out += "null";
      break;
  }
}

void ConvertTraces(
    const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
    Converted& out) {
  ItemOrigin origin;
  for (const trace_pb::ResourceSpans& resource_spans : request.resource_spans()) {
    SetResource(resource_spans.resource(), origin);
    for (const trace_pb::ScopeSpans& scope_spans : resource_spans.scope_spans()) {
      origin.scope_name = scope_spans.scope().name();
      origin.scope_version = scope_spans.scope().version();
      out.records.Reserve(out.records.size() + scope_spans.spans_size());
      for (const trace_pb::Span& span : scope_spans.spans()) {
        if (const char* problem = SpanProblem(span)) {
          NoteRejection(out.rejected, out.message, problem);
          continue;
        }
        ConvertSpan(span, origin, *out.records.Add()->mutable_received_span());
      }
    }
  }
  FinishRejections(out.rejected, out.rejected == 1 ? "span" : "spans", out.message);
}

void ConvertLogs(const opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest& request,
                 uint64_t received_unix_nano, Converted& out) {
  ItemOrigin origin;
  for (const logs_pb::ResourceLogs& resource_logs : request.resource_logs()) {
    SetResource(resource_logs.resource(), origin);
    for (const logs_pb::ScopeLogs& scope_logs : resource_logs.scope_logs()) {
      origin.scope_name = scope_logs.scope().name();
      origin.scope_version = scope_logs.scope().version();
      out.records.Reserve(out.records.size() + scope_logs.log_records_size());
      for (const logs_pb::LogRecord& record : scope_logs.log_records()) {
        if (!record.trace_id().empty() && record.trace_id().size() != 16) {
          NoteRejection(out.rejected, out.message, "trace_id is neither empty nor 16 bytes");
          continue;
        }
        if (!record.span_id().empty() && record.span_id().size() != 8) {
          NoteRejection(out.rejected, out.message, "span_id is neither empty nor 8 bytes");
          continue;
        }
        meshtel::v1::LogEntry& entry = *out.records.Add()->mutable_received_log();
        entry.set_time_unix_nano(record.time_unix_nano());
        entry.set_observed_time_unix_nano(record.observed_time_unix_nano() != 0
                                              ? record.observed_time_unix_nano()
                                              : received_unix_nano);
        entry.set_severity_number(record.severity_number());
        entry.set_severity_text(record.severity_text());
        if (record.body().value_case() == common_pb::AnyValue::kStringValue) {
          entry.set_body(record.body().string_value());
        } else if (record.has_body() &&
                   record.body().value_case() != common_pb::AnyValue::VALUE_NOT_SET) {
          AppendAnyValueJson(record.body(), *entry.mutable_body());
          entry.set_body_is_json(true);
        }
        AddAttributes(record.attributes(), *entry.mutable_attributes());
        if (record.dropped_attributes_count() > 0) {
          AddIntAttribute("otlp.dropped_attributes_count", record.dropped_attributes_count(),
                          *entry.mutable_attributes());
        }
        if (!AllZero(record.trace_id())) entry.set_trace_id(record.trace_id());
        if (!AllZero(record.span_id())) entry.set_span_id(record.span_id());
        entry.set_flags(TraceFlagsOf(record.flags()));
        entry.set_event_name(record.event_name());
        entry.set_service_name(origin.service_name);
        *entry.mutable_resource_attributes() = origin.resource_attributes;
        entry.set_scope_name(origin.scope_name);
        entry.set_scope_version(origin.scope_version);
      }
    }
  }
  FinishRejections(out.rejected, out.rejected == 1 ? "log record" : "log records", out.message);
}

absl::Status DecodeAndConvert(Signal signal, Encoding encoding, std::string_view body,
                              uint64_t received_unix_nano, Converted& out) {
  // The decoded request lives in an arena: its many small messages (a span, each attribute and
  // its value) are allocated in large blocks and freed at once, not one by one.
  google::protobuf::ArenaOptions arena_options;
  arena_options.start_block_size = 64 << 10;
  arena_options.max_block_size = 1 << 20;
  google::protobuf::Arena arena(arena_options);
  if (signal == Signal::kTraces) {
    auto& request = *google::protobuf::Arena::CreateMessage<
        opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest>(&arena);
    if (encoding == Encoding::kJson) {
      if (absl::Status parsed = ParseTraceRequestJson(body, request); !parsed.ok()) return parsed;
    } else if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return absl::InvalidArgumentError("not a valid ExportTraceServiceRequest (protobuf)");
    }
    ConvertTraces(request, out);
    return absl::OkStatus();
  }
  auto& request = *google::protobuf::Arena::CreateMessage<
      opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest>(&arena);
  if (encoding == Encoding::kJson) {
    if (absl::Status parsed = ParseLogsRequestJson(body, request); !parsed.ok()) return parsed;
  } else if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::InvalidArgumentError("not a valid ExportLogsServiceRequest (protobuf)");
  }
  ConvertLogs(request, received_unix_nano, out);
  return absl::OkStatus();
}

std::string ExportResponse(Signal signal, Encoding encoding, int64_t rejected,
                           std::string_view message) {
  const bool partial = rejected != 0 || !message.empty();
  if (signal == Signal::kTraces) {
    if (encoding == Encoding::kJson) return TraceResponseJson(rejected, message);
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
    if (partial) {
      response.mutable_partial_success()->set_rejected_spans(rejected);
      response.mutable_partial_success()->set_error_message(std::string(message));
    }
    return response.SerializeAsString();
  }
  if (encoding == Encoding::kJson) return LogsResponseJson(rejected, message);
  opentelemetry::proto::collector::logs::v1::ExportLogsServiceResponse response;
  if (partial) {
    response.mutable_partial_success()->set_rejected_log_records(rejected);
    response.mutable_partial_success()->set_error_message(std::string(message));
  }
  return response.SerializeAsString();
}

std::string StatusBody(Encoding encoding, int code, std::string_view message,
                       int64_t retry_delay_seconds) {
  if (encoding == Encoding::kJson) {
    return StatusJson(code, message, absl::Seconds(retry_delay_seconds));
  }
  google::rpc::Status status;
  status.set_code(code);
  status.set_message(std::string(message));
  if (retry_delay_seconds > 0) {
    google::rpc::RetryInfo retry;
    retry.mutable_retry_delay()->set_seconds(retry_delay_seconds);
    google::protobuf::Any* detail = status.add_details();
    detail->set_type_url("type.googleapis.com/google.rpc.RetryInfo");
    detail->set_value(retry.SerializeAsString());
  }
  return status.SerializeAsString();
}

}  // namespace meshtel::collector::otlp
