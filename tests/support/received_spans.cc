#include "tests/support/received_spans.h"

#include <array>
#include <memory>

#include "collector/common/gzip.h"
#include "fmt/format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/unknown_field_set.h"
#include "tests/support/official_schema.h"

namespace meshtel::testing {
namespace {

namespace pb = google::protobuf;
namespace api = jaeger::api_v2;
namespace otlp_common = opentelemetry::proto::common::v1;
namespace otlp_trace = opentelemetry::proto::trace::v1;

AttributeValue FromJaeger(const api::KeyValue& tag) {
  switch (tag.v_type()) {
    case api::BOOL:
      return tag.v_bool();
    case api::INT64:
      return tag.v_int64();
    case api::FLOAT64:
      return tag.v_float64();
    case api::BINARY:
      return tag.v_binary();
    default:
      return tag.v_str();
  }
}

AttributeValue FromOtlp(const otlp_common::AnyValue& value) {
  switch (value.value_case()) {
    case otlp_common::AnyValue::kStringValue:
      return value.string_value();
    case otlp_common::AnyValue::kBoolValue:
      return value.bool_value();
    case otlp_common::AnyValue::kIntValue:
      return value.int_value();
    case otlp_common::AnyValue::kDoubleValue:
      return value.double_value();
    case otlp_common::AnyValue::VALUE_NOT_SET:
      return std::string();
    default: {
      std::string text;
      pb::TextFormat::PrintToString(value, &text);
      return text;
    }
  }
}

std::string StringTag(const std::map<std::string, AttributeValue>& tags, const std::string& key) {
  const auto it = tags.find(key);
  if (it == tags.end()) return "";
  const std::string* text = std::get_if<std::string>(&it->second);
  return text == nullptr ? "" : *text;
}

uint64_t Nanos(int64_t seconds, int32_t nanos) {
  return static_cast<uint64_t>(seconds) * 1'000'000'000ull + static_cast<uint64_t>(nanos);
}

void Note(std::vector<std::string>& out, const std::string& what) { out.push_back(what); }

// Compares `own` (project subset) with `official`, both decoded from the same bytes.
void Compare(const pb::Message& own, const pb::Message& official, const std::string& at,
             std::vector<std::string>& out) {
  const pb::Reflection* own_r = own.GetReflection();
  const pb::Reflection* off_r = official.GetReflection();
  if (own_r->GetUnknownFields(own).field_count() != 0) {
    Note(out, at + ": fields the project subset does not know");
  }
  if (off_r->GetUnknownFields(official).field_count() != 0) {
    Note(out, at + ": fields the official schema does not know");
  }
  std::vector<const pb::FieldDescriptor*> set_fields;
  off_r->ListFields(official, &set_fields);
  for (const pb::FieldDescriptor* off_field : set_fields) {
    if (own.GetDescriptor()->FindFieldByNumber(off_field->number()) == nullptr) {
      Note(out, fmt::format("{}.{}: set, but not in the project subset", at, off_field->name()));
    }
  }
  const pb::Descriptor* type = own.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    const pb::FieldDescriptor* field = type->field(i);
    const std::string where = fmt::format("{}.{}", at, field->name());
    const pb::FieldDescriptor* off_field =
        official.GetDescriptor()->FindFieldByNumber(field->number());
    if (off_field == nullptr) {
      Note(out, where + ": no field of this number in the official schema");
      continue;
    }
    if (off_field->name() != field->name() || off_field->type() != field->type() ||
        off_field->is_repeated() != field->is_repeated()) {
      Note(out, fmt::format("{}: official field {} #{} has another name, type or label", where,
                            off_field->name(), off_field->number()));
      continue;
    }
    if (field->is_repeated()) {
      const int n = own_r->FieldSize(own, field);
      if (n != off_r->FieldSize(official, off_field)) {
        Note(out, fmt::format("{}: {} values, official {}", where, n,
                              off_r->FieldSize(official, off_field)));
        continue;
      }
      for (int j = 0; j < n; ++j) {
        const std::string item = fmt::format("{}[{}]", where, j);
        switch (field->cpp_type()) {
          case pb::FieldDescriptor::CPPTYPE_MESSAGE:
            Compare(own_r->GetRepeatedMessage(own, field, j),
                    off_r->GetRepeatedMessage(official, off_field, j), item, out);
            break;
          case pb::FieldDescriptor::CPPTYPE_STRING:
            if (own_r->GetRepeatedString(own, field, j) !=
                off_r->GetRepeatedString(official, off_field, j)) {
              Note(out, item + ": differs");
            }
            break;
          default:
            Note(out, item + ": repeated scalars are not compared");
            break;
        }
      }
      continue;
    }
    const bool own_has = own_r->HasField(own, field);
    if (own_has != off_r->HasField(official, off_field)) {
      Note(out, where + ": present in one decode only");
      continue;
    }
    if (!own_has) continue;
    bool same = true;
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        Compare(own_r->GetMessage(own, field), off_r->GetMessage(official, off_field), where, out);
        break;
      case pb::FieldDescriptor::CPPTYPE_STRING:
        same = own_r->GetString(own, field) == off_r->GetString(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        same = own_r->GetInt32(own, field) == off_r->GetInt32(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        same = own_r->GetInt64(own, field) == off_r->GetInt64(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        same = own_r->GetUInt32(own, field) == off_r->GetUInt32(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        same = own_r->GetUInt64(own, field) == off_r->GetUInt64(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        same = own_r->GetDouble(own, field) == off_r->GetDouble(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        same = own_r->GetBool(own, field) == off_r->GetBool(official, off_field);
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM:
        same = own_r->GetEnumValue(own, field) == off_r->GetEnumValue(official, off_field);
        break;
      default:
        Note(out, where + ": a type this comparison does not handle");
        break;
    }
    if (!same) Note(out, where + ": differs");
  }
}

}  // namespace

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::vector<ReceivedSpan> SpansOf(const api::PostSpansRequest& request) {
  std::vector<ReceivedSpan> spans;
  const api::Batch& batch = request.batch();
  for (const api::Span& span : batch.spans()) {
    const api::Process& process = span.has_process() ? span.process() : batch.process();
    ReceivedSpan out;
    out.trace_id = Hex(span.trace_id());
    out.span_id = Hex(span.span_id());
    for (const api::SpanRef& ref : span.references()) {
      if (ref.ref_type() == api::CHILD_OF) out.parent_span_id = Hex(ref.span_id());
    }
    out.name = span.operation_name();
    out.service = process.service_name();
    for (const api::KeyValue& tag : span.tags()) out.attributes[tag.key()] = FromJaeger(tag);
    for (const api::KeyValue& tag : process.tags()) out.resource[tag.key()] = FromJaeger(tag);
    out.kind = StringTag(out.attributes, "span.kind");
    if (out.kind.empty()) out.kind = "internal";
    out.scope_name = StringTag(out.attributes, "otel.scope.name");
    out.status = StringTag(out.attributes, "otel.status_code");
    out.status_message = StringTag(out.attributes, "otel.status_description");
    out.flags = span.flags();
    out.start_unix_nano = Nanos(span.start_time().seconds(), span.start_time().nanos());
    out.end_unix_nano =
        out.start_unix_nano + Nanos(span.duration().seconds(), span.duration().nanos());
    spans.push_back(std::move(out));
  }
  return spans;
}

std::vector<ReceivedSpan> SpansOf(
    const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request) {
  static constexpr std::array<const char*, 6> kKinds = {"",       "internal", "server",
                                                        "client", "producer", "consumer"};
  std::vector<ReceivedSpan> spans;
  for (const otlp_trace::ResourceSpans& resource : request.resource_spans()) {
    std::string service;
    std::map<std::string, AttributeValue> resource_attributes;
    for (const otlp_common::KeyValue& kv : resource.resource().attributes()) {
      if (kv.key() == "service.name") {
        service = kv.value().string_value();
      } else {
        resource_attributes[kv.key()] = FromOtlp(kv.value());
      }
    }
    for (const otlp_trace::ScopeSpans& scope : resource.scope_spans()) {
      for (const otlp_trace::Span& span : scope.spans()) {
        ReceivedSpan out;
        out.trace_id = Hex(span.trace_id());
        out.span_id = Hex(span.span_id());
        out.parent_span_id = Hex(span.parent_span_id());
        out.name = span.name();
        const int kind = static_cast<int>(span.kind());
        out.kind = kind >= 0 && kind < static_cast<int>(kKinds.size()) ? kKinds[kind] : "?";
        out.service = service;
        for (const otlp_common::KeyValue& kv : span.attributes()) {
          out.attributes[kv.key()] = FromOtlp(kv.value());
        }
        out.resource = resource_attributes;
        out.scope_name = scope.scope().name();
        switch (span.status().code()) {
          case otlp_trace::Status::STATUS_CODE_OK:
            out.status = "OK";
            break;
          case otlp_trace::Status::STATUS_CODE_ERROR:
            out.status = "ERROR";
            break;
          default:
            break;
        }
        out.status_message = span.status().message();
        out.flags = span.flags();
        out.start_unix_nano = span.start_time_unix_nano();
        out.end_unix_nano = span.end_time_unix_nano();
        spans.push_back(std::move(out));
      }
    }
  }
  return spans;
}

std::vector<std::string> CompareWithOfficial(const pb::Message& own, const std::string& serialized,
                                             const std::string& official_type,
                                             std::string* unavailable) {
  std::vector<std::string> mismatches;
  OfficialMessage official = NewOfficialMessage(official_type);
  if (!official.unavailable.empty()) {
    if (unavailable != nullptr) *unavailable = official.unavailable;
    return mismatches;
  }
  if (!official.message->ParseFromString(serialized)) {
    mismatches.push_back("the official schema does not parse the bytes");
    return mismatches;
  }
  Compare(own, *official.message, own.GetDescriptor()->name(), mismatches);
  return mismatches;
}

std::optional<std::string> Gunzip(const std::string& data) {
  absl::StatusOr<std::string> plain = meshtel::common::GzipDecompress(data, size_t{1} << 32);
  if (!plain.ok()) return std::nullopt;
  return *std::move(plain);
}

}  // namespace meshtel::testing
