#include "exporters/jaeger/jaeger_encoder.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "exporters/common/trace_export.h"
#include "exporters/jaeger/jaeger_exporter.h"
#include "fmt/format.h"

namespace meshtel::exporters {
namespace {

namespace api = jaeger::api_v2;

// Bytes the encoder adds to a span beyond its stored attributes (kind, status, scope, anomaly
// tags, the reference and the framing), for Measure().
constexpr size_t kAddedBytesEstimate = 96;

void SetTagValue(const meshtel::v1::SpanAttribute& attribute, api::KeyValue& tag) {
  tag.set_key(attribute.key());
  switch (attribute.value_case()) {
    case meshtel::v1::SpanAttribute::kStringValue:
      tag.set_v_str(attribute.string_value());
      break;
    case meshtel::v1::SpanAttribute::kBoolValue:
      tag.set_v_type(api::BOOL);
      tag.set_v_bool(attribute.bool_value());
      break;
    case meshtel::v1::SpanAttribute::kIntValue:
      tag.set_v_type(api::INT64);
      tag.set_v_int64(attribute.int_value());
      break;
    case meshtel::v1::SpanAttribute::kDoubleValue:
      tag.set_v_type(api::FLOAT64);
      tag.set_v_float64(attribute.double_value());
      break;
    case meshtel::v1::SpanAttribute::VALUE_NOT_SET:
      break;  // an empty string
  }
}

bool HasTag(const api::Span& span, std::string_view key) {
  for (const api::KeyValue& tag : span.tags()) {
    if (tag.key() == key) return true;
  }
  return false;
}

void AddStringTag(api::Span& span, std::string_view key, std::string_view value) {
  if (HasTag(span, key)) return;
  api::KeyValue* tag = span.add_tags();
  tag->set_key(std::string(key));
  tag->set_v_str(std::string(value));
}

std::string_view KindName(meshtel::v1::SpanKind kind) {
  switch (kind) {
    case meshtel::v1::SPAN_KIND_CLIENT:
      return "client";
    case meshtel::v1::SPAN_KIND_SERVER:
      return "server";
    case meshtel::v1::SPAN_KIND_PRODUCER:
      return "producer";
    case meshtel::v1::SPAN_KIND_CONSUMER:
      return "consumer";
    default:
      return "";
  }
}

void SetTimestamp(uint64_t unix_nano, google::protobuf::Timestamp& out) {
  out.set_seconds(static_cast<int64_t>(unix_nano / 1'000'000'000));
  out.set_nanos(static_cast<int32_t>(unix_nano % 1'000'000'000));
}

void AppendVarint(uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Identity of a span's process: the service name and the resource attributes, serialized.
std::string ProcessKey(const meshtel::v1::Span& span) {
  std::string key = SpanServiceName(span);
  key.push_back('\0');
  for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
    if (attribute.key() == kServiceNameAttribute) continue;
    const std::string bytes = attribute.SerializeAsString();
    AppendVarint(bytes.size(), key);
    key += bytes;
  }
  return key;
}

}  // namespace

void ToJaegerSpan(const meshtel::v1::Span& span, api::Span& out) {
  out.set_trace_id(span.trace_id());
  out.set_span_id(span.span_id());
  out.set_operation_name(span.name());
  if (!span.parent_span_id().empty()) {
    api::SpanRef* ref = out.add_references();
    ref->set_trace_id(span.trace_id());
    ref->set_span_id(span.parent_span_id());
    ref->set_ref_type(api::CHILD_OF);
  }
  out.set_flags(span.flags() & 0x1);
  SetTimestamp(span.start_time_unix_nano(), *out.mutable_start_time());
  if (span.end_time_unix_nano() > span.start_time_unix_nano()) {
    const uint64_t duration = span.end_time_unix_nano() - span.start_time_unix_nano();
    out.mutable_duration()->set_seconds(static_cast<int64_t>(duration / 1'000'000'000));
    out.mutable_duration()->set_nanos(static_cast<int32_t>(duration % 1'000'000'000));
  } else {
    out.mutable_duration();  // zero
  }
  out.mutable_tags()->Reserve(span.attributes_size() + 4);
  for (const meshtel::v1::SpanAttribute& attribute : span.attributes()) {
    SetTagValue(attribute, *out.add_tags());
  }
  if (const std::string_view kind = KindName(span.kind()); !kind.empty()) {
    AddStringTag(out, "span.kind", kind);
  }
  if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_ERROR) {
    if (!HasTag(out, "error")) {
      api::KeyValue* tag = out.add_tags();
      tag->set_key("error");
      tag->set_v_type(api::BOOL);
      tag->set_v_bool(true);
    }
    AddStringTag(out, "otel.status_code", "ERROR");
    if (!span.status_message().empty()) {
      AddStringTag(out, "otel.status_description", span.status_message());
    }
  } else if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_OK) {
    AddStringTag(out, "otel.status_code", "OK");
  }
  if (!span.scope_name().empty()) AddStringTag(out, "otel.scope.name", span.scope_name());
  if (!span.scope_version().empty()) AddStringTag(out, "otel.scope.version", span.scope_version());
  if (!span.trace_state().empty()) AddStringTag(out, "w3c.tracestate", span.trace_state());
  if (span.anomalies() != 0) {
    AddStringTag(out, kAnomalyAttribute, SpanAnomalyText(span.anomalies()));
  }
}

void ToJaegerProcess(const meshtel::v1::Span& span, api::Process& out) {
  out.set_service_name(SpanServiceName(span));
  for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
    if (attribute.key() == kServiceNameAttribute) continue;
    SetTagValue(attribute, *out.add_tags());
  }
}

absl::StatusOr<std::vector<std::string_view>> SplitJaegerPayload(std::string_view body) {
  std::vector<std::string_view> requests;
  size_t at = 0;
  while (at < body.size()) {
    uint64_t size = 0;
    int shift = 0;
    while (true) {
      if (at >= body.size() || shift > 63) {
        return absl::InvalidArgumentError("jaeger payload: a truncated length");
      }
      const uint8_t byte = static_cast<uint8_t>(body[at++]);
      size |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
      shift += 7;
    }
    if (size > body.size() - at) {
      return absl::InvalidArgumentError(fmt::format(
          "jaeger payload: a request of {} bytes with {} bytes left", size, body.size() - at));
    }
    requests.push_back(body.substr(at, size));
    at += size;
  }
  return requests;
}

absl::StatusOr<size_t> JaegerEncoder::Measure(const collector::StoredRecord& record) {
  if (absl::Status status = CheckExportableSpan(record); !status.ok()) return status;
  return record.span.ByteSizeLong() + kAddedBytesEstimate;
}

absl::StatusOr<collector::Payload> JaegerEncoder::Encode(
    std::span<const collector::StoredRecord> records) {
  std::vector<api::PostSpansRequest> requests;
  absl::flat_hash_map<std::string, size_t> by_process;
  for (const collector::StoredRecord& record : records) {
    if (absl::Status status = CheckExportableSpan(record); !status.ok()) return status;
    const auto [it, added] = by_process.try_emplace(ProcessKey(record.span), requests.size());
    if (added) {
      requests.emplace_back();
      ToJaegerProcess(record.span, *requests.back().mutable_batch()->mutable_process());
    }
    ToJaegerSpan(record.span, *requests[it->second].mutable_batch()->add_spans());
  }
  collector::Payload payload;
  payload.content_type = std::string(kJaegerPayloadContentType);
  payload.entries = records.size();
  std::string serialized;
  for (const api::PostSpansRequest& request : requests) {
    serialized.clear();
    if (!request.SerializeToString(&serialized)) {
      return absl::InternalError("jaeger: a PostSpansRequest does not serialize");
    }
    AppendVarint(serialized.size(), payload.body);
    payload.body += serialized;
  }
  return payload;
}

}  // namespace meshtel::exporters
