#include "exporters/jaeger/jaeger_encoder.h"

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "collector/common/protobuf_wire.h"
#include "exporters/common/trace_export.h"
#include "exporters/jaeger/jaeger_exporter.h"
#include "fmt/format.h"
#include "google/protobuf/arena.h"

namespace meshtel::exporters {
namespace {
using common::AppendVarint;

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

// The tags the encoder adds, as bits of a mask of those an attribute already holds.
enum AddedTag : uint32_t {
  kSpanKindTag = 1u << 0,
  kErrorTag = 1u << 1,
  kStatusCodeTag = 1u << 2,
  kStatusDescriptionTag = 1u << 3,
  kScopeNameTag = 1u << 4,
  kScopeVersionTag = 1u << 5,
  kTraceStateTag = 1u << 6,
  kAnomalyTag = 1u << 7,
};

constexpr std::array<std::pair<std::string_view, AddedTag>, 8> kAddedTags = {{
    {"span.kind", kSpanKindTag},
    {"error", kErrorTag},
    {"otel.status_code", kStatusCodeTag},
    {"otel.status_description", kStatusDescriptionTag},
    {"otel.scope.name", kScopeNameTag},
    {"otel.scope.version", kScopeVersionTag},
    {"w3c.tracestate", kTraceStateTag},
    {kAnomalyAttribute, kAnomalyTag},
}};

// Which of the added tags the span's attributes already hold.
uint32_t TagsInAttributes(const meshtel::v1::Span& span) {
  uint32_t present = 0;
  for (const meshtel::v1::SpanAttribute& attribute : span.attributes()) {
    const std::string& key = attribute.key();
    if (key.size() < 5) continue;  // every added tag's key is at least "error"
    for (const auto& [name, bit] : kAddedTags) {
      if (key == name) present |= bit;
    }
  }
  return present;
}

void AddStringTag(api::Span& span, uint32_t present, AddedTag tag, std::string_view key,
                  std::string_view value) {
  if ((present & tag) != 0) return;
  api::KeyValue* added = span.add_tags();
  added->set_key(std::string(key));
  added->set_v_str(std::string(value));
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
  const uint32_t present = TagsInAttributes(span);
  if (const std::string_view kind = KindName(span.kind()); !kind.empty()) {
    AddStringTag(out, present, kSpanKindTag, "span.kind", kind);
  }
  if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_ERROR) {
    if ((present & kErrorTag) == 0) {
      api::KeyValue* tag = out.add_tags();
      tag->set_key("error");
      tag->set_v_type(api::BOOL);
      tag->set_v_bool(true);
    }
    AddStringTag(out, present, kStatusCodeTag, "otel.status_code", "ERROR");
    if (!span.status_message().empty()) {
      AddStringTag(out, present, kStatusDescriptionTag, "otel.status_description",
                   span.status_message());
    }
  } else if (span.status_code() == meshtel::v1::SPAN_STATUS_CODE_OK) {
    AddStringTag(out, present, kStatusCodeTag, "otel.status_code", "OK");
  }
  if (!span.scope_name().empty()) {
    AddStringTag(out, present, kScopeNameTag, "otel.scope.name", span.scope_name());
  }
  if (!span.scope_version().empty()) {
    AddStringTag(out, present, kScopeVersionTag, "otel.scope.version", span.scope_version());
  }
  if (!span.trace_state().empty()) {
    AddStringTag(out, present, kTraceStateTag, "w3c.tracestate", span.trace_state());
  }
  if (span.anomalies() != 0) {
    AddStringTag(out, present, kAnomalyTag, kAnomalyAttribute, SpanAnomalyText(span.anomalies()));
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
  // The messages live in an arena: one block freed at once instead of an allocation per tag.
  google::protobuf::Arena arena;
  std::vector<api::PostSpansRequest*> requests;
  absl::flat_hash_map<std::string, size_t> by_process;
  std::string key;
  for (const collector::StoredRecord& record : records) {
    if (absl::Status status = CheckExportableSpan(record); !status.ok()) return status;
    SpanResourceKey(record.span, key);
    auto it = by_process.find(key);
    if (it == by_process.end()) {
      it = by_process.emplace(key, requests.size()).first;
      requests.push_back(google::protobuf::Arena::CreateMessage<api::PostSpansRequest>(&arena));
      ToJaegerProcess(record.span, *requests.back()->mutable_batch()->mutable_process());
    }
    ToJaegerSpan(record.span, *requests[it->second]->mutable_batch()->add_spans());
  }
  collector::Payload payload;
  payload.content_type = std::string(kJaegerPayloadContentType);
  payload.entries = records.size();
  for (const api::PostSpansRequest* request : requests) {
    const size_t size = request->ByteSizeLong();
    AppendVarint(size, payload.body);
    const size_t at = payload.body.size();
    payload.body.resize(at + size);
    request->SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(payload.body.data() + at));
  }
  return payload;
}

}  // namespace meshtel::exporters
