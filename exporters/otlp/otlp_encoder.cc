#include "exporters/otlp/otlp_encoder.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "collector/common/gzip.h"
#include "exporters/common/trace_export.h"
#include "google/protobuf/arena.h"

namespace meshtel::exporters {
namespace {

namespace otlp_common = opentelemetry::proto::common::v1;
namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

// Bytes a span's envelope and ids add to its stored size, for Measure().
constexpr size_t kAddedBytesEstimate = 48;

void SetAttribute(const meshtel::v1::SpanAttribute& attribute, otlp_common::KeyValue& out) {
  out.set_key(attribute.key());
  otlp_common::AnyValue* value = out.mutable_value();
  switch (attribute.value_case()) {
    case meshtel::v1::SpanAttribute::kStringValue:
      value->set_string_value(attribute.string_value());
      break;
    case meshtel::v1::SpanAttribute::kBoolValue:
      value->set_bool_value(attribute.bool_value());
      break;
    case meshtel::v1::SpanAttribute::kIntValue:
      value->set_int_value(attribute.int_value());
      break;
    case meshtel::v1::SpanAttribute::kDoubleValue:
      value->set_double_value(attribute.double_value());
      break;
    case meshtel::v1::SpanAttribute::VALUE_NOT_SET:
      break;  // an empty AnyValue
  }
}

// The scope of a span: its name and version, length-prefixed.
void ScopeKey(const meshtel::v1::Span& span, std::string& key) {
  key.clear();
  const uint32_t size = static_cast<uint32_t>(span.scope_name().size());
  key.append(reinterpret_cast<const char*>(&size), sizeof(size));
  key += span.scope_name();
  key += span.scope_version();
}

}  // namespace

void ToOtlpSpan(const meshtel::v1::Span& span, otlp_trace::Span& out) {
  out.set_trace_id(span.trace_id());
  out.set_span_id(span.span_id());
  if (!span.trace_state().empty()) out.set_trace_state(span.trace_state());
  if (!span.parent_span_id().empty()) out.set_parent_span_id(span.parent_span_id());
  out.set_flags(span.flags() & otlp_trace::SPAN_FLAGS_TRACE_FLAGS_MASK);
  out.set_name(span.name());
  out.set_kind(static_cast<otlp_trace::Span::SpanKind>(span.kind()));
  out.set_start_time_unix_nano(span.start_time_unix_nano());
  out.set_end_time_unix_nano(span.end_time_unix_nano());
  out.mutable_attributes()->Reserve(span.attributes_size() + 1);
  for (const meshtel::v1::SpanAttribute& attribute : span.attributes()) {
    SetAttribute(attribute, *out.add_attributes());
  }
  if (span.anomalies() != 0) {
    otlp_common::KeyValue* anomaly = out.add_attributes();
    anomaly->set_key(std::string(kAnomalyAttribute));
    anomaly->mutable_value()->set_string_value(SpanAnomalyText(span.anomalies()));
  }
  if (span.status_code() != meshtel::v1::SPAN_STATUS_CODE_UNSET || !span.status_message().empty()) {
    otlp_trace::Status* status = out.mutable_status();
    status->set_code(static_cast<otlp_trace::Status::StatusCode>(span.status_code()));
    status->set_message(span.status_message());
  }
}

absl::Status BuildOtlpRequest(std::span<const collector::StoredRecord> records,
                              otlp_collector::ExportTraceServiceRequest& request) {
  // resource key -> index in resource_spans; resource index + scope key -> scope index.
  absl::flat_hash_map<std::string, int> resources;
  absl::flat_hash_map<std::string, int> scopes;
  std::string resource_key;
  std::string scope_key;
  for (const collector::StoredRecord& record : records) {
    if (absl::Status status = CheckExportableSpan(record); !status.ok()) return status;
    const meshtel::v1::Span& span = record.span;
    SpanResourceKey(span, resource_key);
    auto resource_it = resources.find(resource_key);
    if (resource_it == resources.end()) {
      resource_it = resources.emplace(resource_key, request.resource_spans_size()).first;
      otlp_trace::ResourceSpans* added = request.add_resource_spans();
      auto* attributes = added->mutable_resource()->mutable_attributes();
      otlp_common::KeyValue* service = attributes->Add();
      service->set_key(std::string(kServiceNameAttribute));
      service->mutable_value()->set_string_value(SpanServiceName(span));
      for (const meshtel::v1::SpanAttribute& attribute : span.resource_attributes()) {
        if (attribute.key() == kServiceNameAttribute) continue;
        SetAttribute(attribute, *attributes->Add());
      }
    }
    otlp_trace::ResourceSpans& resource = *request.mutable_resource_spans(resource_it->second);
    ScopeKey(span, scope_key);
    const int resource_index = resource_it->second;
    scope_key.append(reinterpret_cast<const char*>(&resource_index), sizeof(resource_index));
    auto scope_it = scopes.find(scope_key);
    if (scope_it == scopes.end()) {
      scope_it = scopes.emplace(scope_key, resource.scope_spans_size()).first;
      otlp_trace::ScopeSpans* added = resource.add_scope_spans();
      if (!span.scope_name().empty() || !span.scope_version().empty()) {
        added->mutable_scope()->set_name(span.scope_name());
        added->mutable_scope()->set_version(span.scope_version());
      }
    }
    ToOtlpSpan(span, *resource.mutable_scope_spans(scope_it->second)->add_spans());
  }
  return absl::OkStatus();
}

OtlpEncoder::OtlpEncoder(const OtlpConfig& config)
    : gzip_body_(config.protocol == OtlpProtocol::kHttpProtobuf &&
                 config.compression == OtlpCompression::kGzip) {}

absl::StatusOr<size_t> OtlpEncoder::Measure(const collector::StoredRecord& record) {
  if (absl::Status status = CheckExportableSpan(record); !status.ok()) return status;
  return record.span.ByteSizeLong() + kAddedBytesEstimate;
}

absl::StatusOr<collector::Payload> OtlpEncoder::Encode(
    std::span<const collector::StoredRecord> records) {
  // The request lives in an arena: one block freed at once instead of an allocation per value.
  google::protobuf::Arena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<otlp_collector::ExportTraceServiceRequest>(&arena);
  if (absl::Status status = BuildOtlpRequest(records, *request); !status.ok()) return status;
  collector::Payload payload;
  payload.content_type = std::string(kOtlpProtobufContentType);
  payload.entries = records.size();
  if (!request->SerializeToString(&payload.body)) {
    return absl::InternalError("otlp: the export request does not serialize");
  }
  if (gzip_body_) {
    absl::StatusOr<std::string> compressed = meshtel::common::GzipCompress(payload.body);
    if (!compressed.ok()) return compressed.status();
    payload.body = *std::move(compressed);
    payload.content_encoding = "gzip";
  }
  return payload;
}

}  // namespace meshtel::exporters
