#include "collector/ingest/otlp_json.h"

// Tested by: tests/collector/ingest/otlp_json_test.cc

#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/ingest/json_reader.h"
#include "collector/logs/json_escape.h"

namespace meshtel::collector::otlp {
namespace {

namespace common_pb = opentelemetry::proto::common::v1;
namespace resource_pb = opentelemetry::proto::resource::v1;
namespace trace_pb = opentelemetry::proto::trace::v1;
namespace logs_pb = opentelemetry::proto::logs::v1;

// Where a mapping error was found: `what`, and the path segments collected while unwinding
// (innermost first).
struct Ctx {
  std::string what;
  std::vector<std::string> where;

  bool Fail(std::string_view key, std::string message) {
    where.emplace_back(key);
    what = std::move(message);
    return false;
  }
  bool At(std::string_view key) {
    where.emplace_back(key);
    return false;
  }
  bool At(std::string_view key, size_t index) {
    where.push_back(absl::StrCat(std::string(key), "[", index, "]"));
    return false;
  }
  absl::Status ToStatus() const {
    std::vector<std::string> path(where.rbegin(), where.rend());
    return absl::InvalidArgumentError(
        absl::StrCat("OTLP/JSON: ", absl::StrJoin(path, "."), ": ", what));
  }
};

bool IsPlainInteger(std::string_view text) {
  size_t i = text.empty() || text[0] != '-' ? 0 : 1;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

// A whole number from a JSON number or string, within [min, max].
template <typename T>
bool ReadInteger(const JsonValue& value, std::string_view key, Ctx& ctx, T& out) {
  if (!value.is_number() && !value.is_string()) {
    return ctx.Fail(key, "not an integer (a number or a string)");
  }
  const std::string& text = value.text;
  if (IsPlainInteger(text)) {
    if constexpr (std::is_signed_v<T>) {
      int64_t parsed = 0;
      if (absl::SimpleAtoi(text, &parsed) && parsed >= std::numeric_limits<T>::min() &&
          parsed <= std::numeric_limits<T>::max()) {
        out = static_cast<T>(parsed);
        return true;
      }
    } else {
      uint64_t parsed = 0;
      if (text[0] != '-' && absl::SimpleAtoi(text, &parsed) &&
          parsed <= std::numeric_limits<T>::max()) {
        out = static_cast<T>(parsed);
        return true;
      }
    }
    return ctx.Fail(key, absl::StrCat("'", text, "' is out of range"));
  }
  // 1e3, 12.0 (numbers only): accepted when the value is a whole number in range.
  double number = 0;
  if (!value.is_number() || !absl::SimpleAtod(text, &number)) {
    return ctx.Fail(key, absl::StrCat("'", text, "' is not an integer"));
  }
  if (!std::isfinite(number) || number != std::floor(number) ||
      number < static_cast<double>(std::numeric_limits<T>::min()) ||
      number >= std::ldexp(1.0, std::numeric_limits<T>::digits)) {
    return ctx.Fail(key, absl::StrCat("'", text, "' is not an integer in range"));
  }
  out = static_cast<T>(number);
  return true;
}

// An enum: an integer number only (OTLP/JSON never uses enum names).
bool ReadEnum(const JsonValue& value, std::string_view key, Ctx& ctx, int32_t& out) {
  if (!value.is_number()) return ctx.Fail(key, "an enum must be an integer number");
  return ReadInteger(value, key, ctx, out);
}

bool ReadString(const JsonValue& value, std::string_view key, Ctx& ctx, std::string& out) {
  if (!value.is_string()) return ctx.Fail(key, "not a string");
  out = value.text;
  return true;
}

bool ReadBool(const JsonValue& value, std::string_view key, Ctx& ctx, bool& out) {
  if (!value.is_bool()) return ctx.Fail(key, "not a boolean");
  out = value.boolean;
  return true;
}

bool ReadDouble(const JsonValue& value, std::string_view key, Ctx& ctx, double& out) {
  if (value.is_string()) {
    if (value.text == "NaN") {
      out = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    if (value.text == "Infinity") {
      out = std::numeric_limits<double>::infinity();
      return true;
    }
    if (value.text == "-Infinity") {
      out = -std::numeric_limits<double>::infinity();
      return true;
    }
  } else if (!value.is_number()) {
    return ctx.Fail(key, "not a number");
  }
  if (!absl::SimpleAtod(value.text, &out) || std::isnan(out)) {
    return ctx.Fail(key, absl::StrCat("'", value.text, "' is not a number"));
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A trace or span id: hex, any length (the receiver checks the length item by item).
bool ReadHexId(const JsonValue& value, std::string_view key, Ctx& ctx, std::string& out) {
  if (!value.is_string()) return ctx.Fail(key, "an id must be a hex string");
  const std::string& hex = value.text;
  if (hex.size() % 2 != 0) return ctx.Fail(key, "an id must have an even number of hex digits");
  out.resize(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int high = HexDigit(hex[2 * i]);
    const int low = HexDigit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return ctx.Fail(key, "an id must be hex digits");
    out[i] = static_cast<char>((high << 4) | low);
  }
  return true;
}

bool ReadBase64(const JsonValue& value, std::string_view key, Ctx& ctx, std::string& out) {
  if (!value.is_string()) return ctx.Fail(key, "bytes must be a base64 string");
  if (absl::Base64Unescape(value.text, &out) || absl::WebSafeBase64Unescape(value.text, &out)) {
    return true;
  }
  return ctx.Fail(key, "not valid base64");
}

bool RequireObject(const JsonValue& value, std::string_view key, Ctx& ctx) {
  return value.is_object() || ctx.Fail(key, "not an object");
}

// Calls `read(item, out.Add())` for each element of the array `value`, replacing what `out` held.
template <typename Field, typename Read>
bool ReadRepeated(const JsonValue& value, std::string_view key, Ctx& ctx, Field& out,
                  const Read& read) {
  if (!value.is_array()) return ctx.Fail(key, "not an array");
  out.Clear();
  out.Reserve(static_cast<int>(value.items.size()));
  for (size_t i = 0; i < value.items.size(); ++i) {
    const JsonValue& item = value.items[i];
    if (!item.is_object())
      return ctx.Fail(absl::StrCat(std::string(key), "[", i, "]"), "not an object");
    if (!read(item, *out.Add(), ctx)) return ctx.At(key, i);
  }
  return true;
}

bool ReadKeyValue(const JsonValue& object, common_pb::KeyValue& out, Ctx& ctx);

bool ReadAnyValue(const JsonValue& object, common_pb::AnyValue& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "stringValue") {
      if (!ReadString(value, key, ctx, *out.mutable_string_value())) return false;
    } else if (key == "boolValue") {
      bool flag = false;
      if (!ReadBool(value, key, ctx, flag)) return false;
      out.set_bool_value(flag);
    } else if (key == "intValue") {
      int64_t number = 0;
      if (!ReadInteger(value, key, ctx, number)) return false;
      out.set_int_value(number);
    } else if (key == "doubleValue") {
      double number = 0;
      if (!ReadDouble(value, key, ctx, number)) return false;
      out.set_double_value(number);
    } else if (key == "bytesValue") {
      if (!ReadBase64(value, key, ctx, *out.mutable_bytes_value())) return false;
    } else if (key == "arrayValue") {
      if (!RequireObject(value, key, ctx)) return false;
      common_pb::ArrayValue* array = out.mutable_array_value();
      for (const auto& [inner_key, inner] : value.members) {
        if (inner_key != "values" || inner.is_null()) continue;
        if (!inner.is_array()) return ctx.Fail("values", "not an array") || ctx.At(key);
        array->clear_values();
        for (size_t i = 0; i < inner.items.size(); ++i) {
          if (!inner.items[i].is_object()) {
            ctx.Fail(absl::StrCat("values[", i, "]"), "not an object");
            return ctx.At(key);
          }
          if (!ReadAnyValue(inner.items[i], *array->add_values(), ctx)) {
            ctx.At("values", i);
            return ctx.At(key);
          }
        }
      }
    } else if (key == "kvlistValue") {
      if (!RequireObject(value, key, ctx)) return false;
      common_pb::KeyValueList* list = out.mutable_kvlist_value();
      for (const auto& [inner_key, inner] : value.members) {
        if (inner_key != "values" || inner.is_null()) continue;
        if (!ReadRepeated(inner, "values", ctx, *list->mutable_values(), ReadKeyValue)) {
          return ctx.At(key);
        }
      }
    }
  }
  return true;
}

bool ReadKeyValue(const JsonValue& object, common_pb::KeyValue& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "key") {
      if (!ReadString(value, key, ctx, *out.mutable_key())) return false;
    } else if (key == "value") {
      if (!RequireObject(value, key, ctx)) return false;
      out.clear_value();
      if (!ReadAnyValue(value, *out.mutable_value(), ctx)) return ctx.At(key);
    }
  }
  return true;
}

bool ReadAttributes(const JsonValue& value, std::string_view key, Ctx& ctx,
                    google::protobuf::RepeatedPtrField<common_pb::KeyValue>& out) {
  return ReadRepeated(value, key, ctx, out, ReadKeyValue);
}

bool ReadResource(const JsonValue& object, resource_pb::Resource& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "attributes") {
      if (!ReadAttributes(value, key, ctx, *out.mutable_attributes())) return false;
    } else if (key == "droppedAttributesCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_attributes_count(count);
    }
  }
  return true;
}

bool ReadScope(const JsonValue& object, common_pb::InstrumentationScope& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "name") {
      if (!ReadString(value, key, ctx, *out.mutable_name())) return false;
    } else if (key == "version") {
      if (!ReadString(value, key, ctx, *out.mutable_version())) return false;
    } else if (key == "attributes") {
      if (!ReadAttributes(value, key, ctx, *out.mutable_attributes())) return false;
    } else if (key == "droppedAttributesCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_attributes_count(count);
    }
  }
  return true;
}

// Reads a sub-message under `key` with `read`.
template <typename Message, typename Read>
bool ReadMessage(const JsonValue& value, std::string_view key, Ctx& ctx, Message& out,
                 const Read& read) {
  if (!RequireObject(value, key, ctx)) return false;
  out.Clear();
  return read(value, out, ctx) || ctx.At(key);
}

bool ReadEvent(const JsonValue& object, trace_pb::Span::Event& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "timeUnixNano") {
      uint64_t time = 0;
      if (!ReadInteger(value, key, ctx, time)) return false;
      out.set_time_unix_nano(time);
    } else if (key == "name") {
      if (!ReadString(value, key, ctx, *out.mutable_name())) return false;
    } else if (key == "attributes") {
      if (!ReadAttributes(value, key, ctx, *out.mutable_attributes())) return false;
    } else if (key == "droppedAttributesCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_attributes_count(count);
    }
  }
  return true;
}

bool ReadLink(const JsonValue& object, trace_pb::Span::Link& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "traceId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_trace_id())) return false;
    } else if (key == "spanId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_span_id())) return false;
    } else if (key == "traceState") {
      if (!ReadString(value, key, ctx, *out.mutable_trace_state())) return false;
    } else if (key == "attributes") {
      if (!ReadAttributes(value, key, ctx, *out.mutable_attributes())) return false;
    } else if (key == "droppedAttributesCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_attributes_count(count);
    } else if (key == "flags") {
      uint32_t flags = 0;
      if (!ReadInteger(value, key, ctx, flags)) return false;
      out.set_flags(flags);
    }
  }
  return true;
}

bool ReadStatus(const JsonValue& object, trace_pb::Status& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "message") {
      if (!ReadString(value, key, ctx, *out.mutable_message())) return false;
    } else if (key == "code") {
      int32_t code = 0;
      if (!ReadEnum(value, key, ctx, code)) return false;
      out.set_code(static_cast<trace_pb::Status::StatusCode>(code));
    }
  }
  return true;
}

// The envelopes around spans and log records: ScopeSpans / ScopeLogs (the scope and its items) and
// ResourceSpans / ResourceLogs (the resource and its scope lists), each with a schemaUrl.
template <typename Envelope, typename Header, typename ReadHeader, typename Items,
          typename ReadItem>
bool ReadEnvelope(const JsonValue& object, Envelope& out, Ctx& ctx, std::string_view header_key,
                  const Header& header, const ReadHeader& read_header, std::string_view items_key,
                  const Items& items, const ReadItem& read_item) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == header_key) {
      if (!ReadMessage(value, key, ctx, header(out), read_header)) return false;
    } else if (key == items_key) {
      if (!ReadRepeated(value, key, ctx, items(out), read_item)) return false;
    } else if (key == "schemaUrl") {
      if (!ReadString(value, key, ctx, *out.mutable_schema_url())) return false;
    }
  }
  return true;
}

constexpr auto kScope = [](auto& envelope) -> auto& { return *envelope.mutable_scope(); };
constexpr auto kResource = [](auto& envelope) -> auto& { return *envelope.mutable_resource(); };

bool ReadSpan(const JsonValue& object, trace_pb::Span& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "traceId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_trace_id())) return false;
    } else if (key == "spanId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_span_id())) return false;
    } else if (key == "parentSpanId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_parent_span_id())) return false;
    } else if (key == "traceState") {
      if (!ReadString(value, key, ctx, *out.mutable_trace_state())) return false;
    } else if (key == "flags") {
      uint32_t flags = 0;
      if (!ReadInteger(value, key, ctx, flags)) return false;
      out.set_flags(flags);
    } else if (key == "name") {
      if (!ReadString(value, key, ctx, *out.mutable_name())) return false;
    } else if (key == "kind") {
      int32_t kind = 0;
      if (!ReadEnum(value, key, ctx, kind)) return false;
      out.set_kind(static_cast<trace_pb::Span::SpanKind>(kind));
    } else if (key == "startTimeUnixNano") {
      uint64_t time = 0;
      if (!ReadInteger(value, key, ctx, time)) return false;
      out.set_start_time_unix_nano(time);
    } else if (key == "endTimeUnixNano") {
      uint64_t time = 0;
      if (!ReadInteger(value, key, ctx, time)) return false;
      out.set_end_time_unix_nano(time);
    } else if (key == "attributes") {
      if (!ReadAttributes(value, key, ctx, *out.mutable_attributes())) return false;
    } else if (key == "droppedAttributesCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_attributes_count(count);
    } else if (key == "events") {
      if (!ReadRepeated(value, key, ctx, *out.mutable_events(), ReadEvent)) return false;
    } else if (key == "droppedEventsCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_events_count(count);
    } else if (key == "links") {
      if (!ReadRepeated(value, key, ctx, *out.mutable_links(), ReadLink)) return false;
    } else if (key == "droppedLinksCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_links_count(count);
    } else if (key == "status") {
      if (!ReadMessage(value, key, ctx, *out.mutable_status(), ReadStatus)) return false;
    }
  }
  return true;
}

bool ReadScopeSpans(const JsonValue& object, trace_pb::ScopeSpans& out, Ctx& ctx) {
  return ReadEnvelope(
      object, out, ctx, "scope", kScope, ReadScope, "spans",
      [](trace_pb::ScopeSpans & envelope) -> auto& { return *envelope.mutable_spans(); }, ReadSpan);
}

bool ReadResourceSpans(const JsonValue& object, trace_pb::ResourceSpans& out, Ctx& ctx) {
  return ReadEnvelope(
      object, out, ctx, "resource", kResource, ReadResource, "scopeSpans",
      [](trace_pb::ResourceSpans & envelope) -> auto& { return *envelope.mutable_scope_spans(); },
      ReadScopeSpans);
}

bool ReadLogRecord(const JsonValue& object, logs_pb::LogRecord& out, Ctx& ctx) {
  for (const auto& [key, value] : object.members) {
    if (value.is_null()) continue;
    if (key == "timeUnixNano") {
      uint64_t time = 0;
      if (!ReadInteger(value, key, ctx, time)) return false;
      out.set_time_unix_nano(time);
    } else if (key == "observedTimeUnixNano") {
      uint64_t time = 0;
      if (!ReadInteger(value, key, ctx, time)) return false;
      out.set_observed_time_unix_nano(time);
    } else if (key == "severityNumber") {
      int32_t severity = 0;
      if (!ReadEnum(value, key, ctx, severity)) return false;
      out.set_severity_number(severity);
    } else if (key == "severityText") {
      if (!ReadString(value, key, ctx, *out.mutable_severity_text())) return false;
    } else if (key == "body") {
      if (!ReadMessage(value, key, ctx, *out.mutable_body(), ReadAnyValue)) return false;
    } else if (key == "attributes") {
      if (!ReadAttributes(value, key, ctx, *out.mutable_attributes())) return false;
    } else if (key == "droppedAttributesCount") {
      uint32_t count = 0;
      if (!ReadInteger(value, key, ctx, count)) return false;
      out.set_dropped_attributes_count(count);
    } else if (key == "flags") {
      uint32_t flags = 0;
      if (!ReadInteger(value, key, ctx, flags)) return false;
      out.set_flags(flags);
    } else if (key == "traceId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_trace_id())) return false;
    } else if (key == "spanId") {
      if (!ReadHexId(value, key, ctx, *out.mutable_span_id())) return false;
    } else if (key == "eventName") {
      if (!ReadString(value, key, ctx, *out.mutable_event_name())) return false;
    }
  }
  return true;
}

bool ReadScopeLogs(const JsonValue& object, logs_pb::ScopeLogs& out, Ctx& ctx) {
  return ReadEnvelope(
      object, out, ctx, "scope", kScope, ReadScope, "logRecords",
      [](logs_pb::ScopeLogs & envelope) -> auto& { return *envelope.mutable_log_records(); },
      ReadLogRecord);
}

bool ReadResourceLogs(const JsonValue& object, logs_pb::ResourceLogs& out, Ctx& ctx) {
  return ReadEnvelope(
      object, out, ctx, "resource", kResource, ReadResource, "scopeLogs",
      [](logs_pb::ResourceLogs & envelope) -> auto& { return *envelope.mutable_scope_logs(); },
      ReadScopeLogs);
}

void AppendQuoted(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

std::string PartialSuccessJson(const char* rejected_key, int64_t rejected,
                               std::string_view message) {
  if (rejected == 0 && message.empty()) return "{}";
  std::string out = absl::StrCat("{\"partialSuccess\":{\"", rejected_key, "\":\"", rejected, "\"");
  if (!message.empty()) {
    out += ",\"errorMessage\":";
    AppendQuoted(out, message);
  }
  out += "}}";
  return out;
}

}  // namespace

absl::Status ParseTraceRequestJson(
    std::string_view body,
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& out) {
  out.Clear();
  absl::StatusOr<JsonValue> root = ParseJson(body);
  if (!root.ok()) return root.status();
  if (!root->is_object()) return absl::InvalidArgumentError("OTLP/JSON: the body is not an object");
  Ctx ctx;
  for (const auto& [key, value] : root->members) {
    if (key != "resourceSpans" || value.is_null()) continue;
    if (!ReadRepeated(value, key, ctx, *out.mutable_resource_spans(), ReadResourceSpans)) {
      return ctx.ToStatus();
    }
  }
  return absl::OkStatus();
}

absl::Status ParseLogsRequestJson(
    std::string_view body,
    opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest& out) {
  out.Clear();
  absl::StatusOr<JsonValue> root = ParseJson(body);
  if (!root.ok()) return root.status();
  if (!root->is_object()) return absl::InvalidArgumentError("OTLP/JSON: the body is not an object");
  Ctx ctx;
  for (const auto& [key, value] : root->members) {
    if (key != "resourceLogs" || value.is_null()) continue;
    if (!ReadRepeated(value, key, ctx, *out.mutable_resource_logs(), ReadResourceLogs)) {
      return ctx.ToStatus();
    }
  }
  return absl::OkStatus();
}

std::string TraceResponseJson(int64_t rejected, std::string_view message) {
  return PartialSuccessJson("rejectedSpans", rejected, message);
}

std::string LogsResponseJson(int64_t rejected, std::string_view message) {
  return PartialSuccessJson("rejectedLogRecords", rejected, message);
}

std::string StatusJson(int code, std::string_view message, absl::Duration retry_delay) {
  std::string out = absl::StrCat("{\"code\":", code, ",\"message\":");
  AppendQuoted(out, message);
  if (retry_delay > absl::ZeroDuration()) {
    absl::StrAppend(&out,
                    ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                    "\"retryDelay\":\"",
                    absl::ToInt64Seconds(retry_delay), "s\"}]");
  }
  out += "}";
  return out;
}

}  // namespace meshtel::collector::otlp
