#include "collector/ingest/otlp_span_transcoder.h"

// Tested by: tests/collector/ingest/otlp_span_transcoder_test.cc

#include <cstdlib>
#include <cstring>

#include "collector/common/protobuf_wire.h"
#include "collector/ingest/otlp_convert.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/common.h"
#include "meshtel/v1/record.pb.h"
#include "meshtel/v1/span.pb.h"
#include "opentelemetry/proto/common/v1/common.pb.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace meshtel::collector::otlp {
namespace {

namespace trace_pb = opentelemetry::proto::trace::v1;
using common::ParseNested;
using common::ValidUtf8;
using common::WireReader;
using common::WireType;

// Field numbers of the OTLP messages walked here (opentelemetry/proto/collector/trace/v1,
// trace/v1, common/v1). ResourceSpans and ScopeSpans share theirs: the resource or scope (1), the
// ScopeSpans or spans (2), the schema URL (3).
constexpr uint32_t kRequestResourceSpans = 1;
constexpr uint32_t kLevelOrigin = 1;
constexpr uint32_t kLevelItems = 2;
constexpr uint32_t kLevelSchemaUrl = 3;

constexpr uint32_t kSpanTraceId = 1;
constexpr uint32_t kSpanSpanId = 2;
constexpr uint32_t kSpanTraceState = 3;
constexpr uint32_t kSpanParentSpanId = 4;
constexpr uint32_t kSpanName = 5;
constexpr uint32_t kSpanKind = 6;
constexpr uint32_t kSpanStartTime = 7;
constexpr uint32_t kSpanEndTime = 8;
constexpr uint32_t kSpanAttributes = 9;
constexpr uint32_t kSpanStatus = 15;
constexpr uint32_t kSpanFlags = 16;
// 10-14: dropped counts, events, links: spans with them take the protobuf path.
constexpr uint32_t kSpanLastKnownField = 16;

constexpr uint32_t kStatusMessage = 2;
constexpr uint32_t kStatusCode = 3;
constexpr uint32_t kKeyValueKey = 1;
constexpr uint32_t kKeyValueValue = 2;
constexpr uint32_t kAnyValueString = 1;
constexpr uint32_t kAnyValueBool = 2;
constexpr uint32_t kAnyValueInt = 3;
constexpr uint32_t kAnyValueDouble = 4;
constexpr uint32_t kAnyValueLastKnownField = 7;  // 5-7: array, kvlist, bytes

// Field numbers written: meshtel.v1.RequestRecord.received_span, meshtel.v1.Span, SpanAttribute.
constexpr uint32_t kRecordReceivedSpan = 37;
constexpr uint32_t kOutTraceId = 1;
constexpr uint32_t kOutSpanId = 2;
constexpr uint32_t kOutParentSpanId = 3;
constexpr uint32_t kOutTraceState = 4;
constexpr uint32_t kOutName = 5;
constexpr uint32_t kOutKind = 6;
constexpr uint32_t kOutStartTime = 7;
constexpr uint32_t kOutEndTime = 8;
constexpr uint32_t kOutAttributes = 9;
constexpr uint32_t kOutStatusCode = 10;
constexpr uint32_t kOutStatusMessage = 11;
constexpr uint32_t kOutFlags = 12;
constexpr uint32_t kOutAttributeKey = 1;
constexpr uint32_t kOutAttributeString = 2;
constexpr uint32_t kOutAttributeBool = 3;
constexpr uint32_t kOutAttributeInt = 4;
constexpr uint32_t kOutAttributeDouble = 5;

// How deep below the request the messages parsed on their own (common::ParseNested) sit: a
// resource at 2 (request → ResourceSpans → Resource), a scope and a span at 3.
constexpr int kResourceDepth = 2;
constexpr int kScopeAndSpanDepth = 3;

// Reads a ResourceSpans or ScopeSpans: its resource or scope (at most once; empty when absent)
// into `origin`, its ScopeSpans or spans into `items` (cleared first). False when it is not one
// the walk vouches for.
bool ReadLevel(std::string_view bytes, std::string_view& origin,
               std::vector<std::string_view>& items) {
  bool origin_seen = false;
  items.clear();
  WireReader reader(bytes);
  while (reader.Next()) {
    if (reader.field() == kLevelOrigin) {
      if (origin_seen || !reader.ReadBytes(origin)) return false;
      origin_seen = true;
    } else if (reader.field() == kLevelItems) {
      if (!reader.ReadBytes(items.emplace_back())) return false;
    } else if (reader.field() == kLevelSchemaUrl) {
      std::string_view schema_url;
      if (!reader.ReadBytes(schema_url) || !ValidUtf8(schema_url)) return false;
    } else if (!reader.Skip()) {
      return false;
    }
  }
  return reader.ok();
}

// Writes protobuf fields to memory sized beforehand (the *Size functions give the sizes).
class FieldWriter {
 public:
  explicit FieldWriter(char* out) : out_(out) {}
  char* position() const { return out_; }

  void Varint(uint64_t value) { out_ += common::EncodeVarint(value, out_); }
  void Tag(uint32_t field, WireType wire_type) { Varint(common::FieldTag(field, wire_type)); }
  void LengthDelimited(uint32_t field, std::string_view value) {
    Tag(field, WireType::kLengthDelimited);
    Varint(value.size());
    Raw(value);
  }
  void Fixed64(uint32_t field, uint64_t value) {
    Tag(field, WireType::kFixed64);
    std::memcpy(out_, &value, 8);  // little-endian hosts only, as protobuf_wire.h
    out_ += 8;
  }
  void VarintField(uint32_t field, uint64_t value) {
    Tag(field, WireType::kVarint);
    Varint(value);
  }
  void Raw(std::string_view bytes) {
    if (bytes.empty()) return;  // its data() may be null, which memcpy must not get
    std::memcpy(out_, bytes.data(), bytes.size());
    out_ += bytes.size();
  }

 private:
  char* out_;
};

using common::LengthDelimitedSize;
using common::VarintFieldSize;
constexpr size_t kFixed64FieldSize = 1 + 8;  // fields 1-15

// One attribute the walk read: a KeyValue whose value is empty, a string, a bool, an int or a
// double.
struct Attribute {
  enum class Type { kEmpty, kString, kBool, kInt, kDouble };
  std::string_view key;
  Type type = Type::kEmpty;
  std::string_view text;
  uint64_t number = 0;      // bool (0/1), int64 bits, or double bits
  size_t written_size = 0;  // of the SpanAttribute written, once SpanSize() ran
};

// A span's fields as the walk read them.
struct SpanFields {
  std::string_view trace_id;
  std::string_view span_id;
  std::string_view trace_state;
  std::string_view parent_span_id;
  std::string_view name;
  uint64_t kind = 0;
  uint64_t start_time = 0;
  uint64_t end_time = 0;
  uint64_t status_code = 0;
  std::string_view status_message;
  uint32_t flags = 0;
  std::vector<Attribute> attributes;  // keeps its memory from span to span

  void Clear() {
    trace_id = span_id = trace_state = parent_span_id = name = status_message = {};
    kind = start_time = end_time = status_code = 0;
    flags = 0;
    attributes.clear();
  }
};

// Reads an AnyValue; false when it is not one the walk vouches for.
bool ReadAnyValue(std::string_view bytes, Attribute& attribute) {
  WireReader reader(bytes);
  bool seen = false;
  while (reader.Next()) {
    const uint32_t field = reader.field();
    if (field > kAnyValueLastKnownField) {
      if (!reader.Skip()) return false;
      continue;
    }
    if (seen) return false;  // one value, once
    seen = true;
    switch (field) {
      case kAnyValueString:
        if (!reader.ReadBytes(attribute.text) || !ValidUtf8(attribute.text)) return false;
        attribute.type = Attribute::Type::kString;
        break;
      case kAnyValueBool:
        if (!reader.ReadVarintValue(attribute.number)) return false;
        attribute.number = attribute.number != 0 ? 1 : 0;
        attribute.type = Attribute::Type::kBool;
        break;
      case kAnyValueInt:
        if (!reader.ReadVarintValue(attribute.number)) return false;
        attribute.type = Attribute::Type::kInt;
        break;
      case kAnyValueDouble:
        if (!reader.ReadFixed64(attribute.number)) return false;
        attribute.type = Attribute::Type::kDouble;
        break;
      default:  // array, kvlist, bytes
        return false;
    }
  }
  return reader.ok();
}

bool ReadKeyValue(std::string_view bytes, Attribute& attribute) {
  WireReader reader(bytes);
  bool key_seen = false;
  bool value_seen = false;
  while (reader.Next()) {
    if (reader.field() == kKeyValueKey) {
      if (key_seen || !reader.ReadBytes(attribute.key) || !ValidUtf8(attribute.key)) return false;
      key_seen = true;
    } else if (reader.field() == kKeyValueValue) {
      std::string_view value;
      if (value_seen || !reader.ReadBytes(value) || !ReadAnyValue(value, attribute)) return false;
      value_seen = true;
    } else if (!reader.Skip()) {
      return false;
    }
  }
  return reader.ok();
}

bool ReadStatus(std::string_view bytes, SpanFields& span) {
  WireReader reader(bytes);
  bool message_seen = false;
  bool code_seen = false;
  while (reader.Next()) {
    if (reader.field() == kStatusMessage) {
      if (message_seen || !reader.ReadBytes(span.status_message) ||
          !ValidUtf8(span.status_message)) {
        return false;
      }
      message_seen = true;
    } else if (reader.field() == kStatusCode) {
      if (code_seen || !reader.ReadVarintValue(span.status_code)) return false;
      code_seen = true;
    } else if (!reader.Skip()) {
      return false;
    }
  }
  return reader.ok();
}

// Reads a span's fields; false when the span is not one the walk vouches for (it then takes the
// protobuf path).
bool ReadSpan(std::string_view bytes, SpanFields& span) {
  span.Clear();
  WireReader reader(bytes);
  uint32_t seen = 0;  // bit per non-repeated field read
  while (reader.Next()) {
    const uint32_t field = reader.field();
    if (field > kSpanLastKnownField) {
      if (!reader.Skip()) return false;
      continue;
    }
    if (field != kSpanAttributes) {
      if ((seen & (1u << field)) != 0) return false;
      seen |= 1u << field;
    }
    bool read = false;
    switch (field) {
      case kSpanTraceId:
        read = reader.ReadBytes(span.trace_id);
        break;
      case kSpanSpanId:
        read = reader.ReadBytes(span.span_id);
        break;
      case kSpanTraceState:
        read = reader.ReadBytes(span.trace_state) && ValidUtf8(span.trace_state);
        break;
      case kSpanParentSpanId:
        read = reader.ReadBytes(span.parent_span_id);
        break;
      case kSpanName:
        read = reader.ReadBytes(span.name) && ValidUtf8(span.name);
        break;
      case kSpanKind:
        read = reader.ReadVarintValue(span.kind);
        break;
      case kSpanStartTime:
        read = reader.ReadFixed64(span.start_time);
        break;
      case kSpanEndTime:
        read = reader.ReadFixed64(span.end_time);
        break;
      case kSpanAttributes: {
        std::string_view key_value;
        read =
            reader.ReadBytes(key_value) && ReadKeyValue(key_value, span.attributes.emplace_back());
        break;
      }
      case kSpanStatus: {
        std::string_view status;
        read = reader.ReadBytes(status) && ReadStatus(status, span);
        break;
      }
      case kSpanFlags:
        read = reader.ReadFixed32(span.flags);
        break;
      default:  // dropped counts, events, links
        break;
    }
    if (!read) return false;
  }
  return reader.ok();
}

size_t AttributeSize(const Attribute& attribute) {
  size_t size =
      attribute.key.empty() ? 0 : LengthDelimitedSize(kOutAttributeKey, attribute.key.size());
  switch (attribute.type) {
    case Attribute::Type::kEmpty:
      return size + LengthDelimitedSize(kOutAttributeString, 0);
    case Attribute::Type::kString:
      return size + LengthDelimitedSize(kOutAttributeString, attribute.text.size());
    case Attribute::Type::kBool:
    case Attribute::Type::kInt:
      return size + VarintFieldSize(kOutAttributeInt, attribute.number);
    case Attribute::Type::kDouble:
      return size + kFixed64FieldSize;
  }
  return size;
}

void WriteAttribute(const Attribute& attribute, FieldWriter& out) {
  out.Tag(kOutAttributes, WireType::kLengthDelimited);
  out.Varint(attribute.written_size);
  if (!attribute.key.empty()) out.LengthDelimited(kOutAttributeKey, attribute.key);
  switch (attribute.type) {
    case Attribute::Type::kEmpty:  // the oneof set to "", as ConvertSpan sets it
      out.LengthDelimited(kOutAttributeString, {});
      break;
    case Attribute::Type::kString:
      out.LengthDelimited(kOutAttributeString, attribute.text);
      break;
    case Attribute::Type::kBool:
      out.VarintField(kOutAttributeBool, attribute.number);
      break;
    case Attribute::Type::kInt:
      out.VarintField(kOutAttributeInt, attribute.number);
      break;
    case Attribute::Type::kDouble:
      out.Fixed64(kOutAttributeDouble, attribute.number);
      break;
  }
}

// What a valid span's meshtel.v1.Span holds besides its attributes and origin, decided once for
// SpanSize() and WriteSpan().
// (A value of 0 is not written, as protobuf leaves out a proto3 default.)
struct SpanChoices {
  bool parent = false;
  meshtel::v1::SpanKind kind = meshtel::v1::SPAN_KIND_UNSPECIFIED;
  meshtel::v1::SpanStatusCode status_code = meshtel::v1::SPAN_STATUS_CODE_UNSET;
  uint32_t flags = 0;
};

SpanChoices Choose(const SpanFields& span) {
  // Enums are int32 on the wire.
  return SpanChoices{.parent = KeepsParentSpanId(span.parent_span_id),
                     .kind = SpanKindOf(static_cast<int32_t>(span.kind)),
                     .status_code = SpanStatusCodeOf(static_cast<int32_t>(span.status_code)),
                     .flags = TraceFlagsOf(span.flags)};
}

// The size of the span's meshtel.v1.Span with `origin_size` bytes of origin fields; sets each
// attribute's written_size.
size_t SpanSize(SpanFields& span, const SpanChoices& choices, size_t origin_size) {
  size_t size = LengthDelimitedSize(kOutTraceId, span.trace_id.size()) +
                LengthDelimitedSize(kOutSpanId, span.span_id.size()) + origin_size;
  if (choices.parent) size += LengthDelimitedSize(kOutParentSpanId, span.parent_span_id.size());
  if (!span.trace_state.empty())
    size += LengthDelimitedSize(kOutTraceState, span.trace_state.size());
  if (!span.name.empty()) size += LengthDelimitedSize(kOutName, span.name.size());
  if (choices.kind != 0) size += VarintFieldSize(kOutKind, choices.kind);
  if (span.start_time != 0) size += kFixed64FieldSize;
  if (span.end_time != 0) size += kFixed64FieldSize;
  for (Attribute& attribute : span.attributes) {
    attribute.written_size = AttributeSize(attribute);
    size += LengthDelimitedSize(kOutAttributes, attribute.written_size);
  }
  if (choices.status_code != 0) size += VarintFieldSize(kOutStatusCode, choices.status_code);
  if (!span.status_message.empty()) {
    size += LengthDelimitedSize(kOutStatusMessage, span.status_message.size());
  }
  if (choices.flags != 0) size += VarintFieldSize(kOutFlags, choices.flags);
  return size;
}

// The meshtel.v1.Span of a valid span, in field order; `origin_fields` (fields 13-16, the last
// ones a converted span sets) go at the end.
void WriteSpan(const SpanFields& span, const SpanChoices& choices, std::string_view origin_fields,
               FieldWriter& out) {
  out.LengthDelimited(kOutTraceId, span.trace_id);
  out.LengthDelimited(kOutSpanId, span.span_id);
  if (choices.parent) out.LengthDelimited(kOutParentSpanId, span.parent_span_id);
  if (!span.trace_state.empty()) out.LengthDelimited(kOutTraceState, span.trace_state);
  if (!span.name.empty()) out.LengthDelimited(kOutName, span.name);
  if (choices.kind != 0) out.VarintField(kOutKind, static_cast<uint64_t>(choices.kind));
  if (span.start_time != 0) out.Fixed64(kOutStartTime, span.start_time);
  if (span.end_time != 0) out.Fixed64(kOutEndTime, span.end_time);
  for (const Attribute& attribute : span.attributes) WriteAttribute(attribute, out);
  if (choices.status_code != 0) {
    out.VarintField(kOutStatusCode, static_cast<uint64_t>(choices.status_code));
  }
  if (!span.status_message.empty()) out.LengthDelimited(kOutStatusMessage, span.status_message);
  if (choices.flags != 0) out.VarintField(kOutFlags, choices.flags);
  out.Raw(origin_fields);
}

// What the spans of one ScopeSpans share.
struct Origin {
  ItemOrigin converted;
  std::string fields;  // serialized meshtel.v1.Span fields 13-16 of `converted`
};

// Transcodes the spans of one ScopeSpans; false when the request is the caller's.
class ScopeTranscoder {
 public:
  explicit ScopeTranscoder(EncodedRecords& out) : out_(out) {}

  // Reads the resource (at most once; an absent one is empty) into the origin.
  bool SetResource(std::string_view resource_bytes) {
    auto& resource =
        *google::protobuf::Arena::CreateMessage<opentelemetry::proto::resource::v1::Resource>(
            &arena_);
    if (!ParseNested(resource_bytes, kResourceDepth, resource)) return false;
    otlp::SetResource(resource, origin_.converted);
    return true;
  }

  bool TranscodeScopeSpans(std::string_view bytes) {
    std::string_view scope_bytes;
    if (!ReadLevel(bytes, scope_bytes, spans_)) return false;
    auto& scope = *google::protobuf::Arena::CreateMessage<
        opentelemetry::proto::common::v1::InstrumentationScope>(&arena_);
    if (!ParseNested(scope_bytes, kScopeAndSpanDepth, scope)) return false;
    origin_.converted.scope_name = scope.name();
    origin_.converted.scope_version = scope.version();
    meshtel::v1::Span origin_span;
    origin_span.set_service_name(origin_.converted.service_name);
    *origin_span.mutable_resource_attributes() = origin_.converted.resource_attributes;
    origin_span.set_scope_name(origin_.converted.scope_name);
    origin_span.set_scope_version(origin_.converted.scope_version);
    origin_.fields.clear();
    origin_span.SerializeToString(&origin_.fields);

    for (std::string_view span_bytes : spans_) {
      if (!ReadSpan(span_bytes, span_)) {
        if (!TranscodeWithProtobuf(span_bytes)) return false;
        continue;
      }
      if (const char* problem =
              SpanIdsProblem(span_.trace_id, span_.span_id, span_.parent_span_id)) {
        NoteRejection(out_.rejected, out_.message, problem);
        continue;
      }
      const SpanChoices choices = Choose(span_);
      const size_t span_size = SpanSize(span_, choices, origin_.fields.size());
      FieldWriter writer = StartRecord(span_size);
      WriteSpan(span_, choices, origin_.fields, writer);
      FinishRecord(writer);
    }
    return true;
  }

 private:
  // A span the walk does not vouch for, by protobuf and ConvertSpan.
  bool TranscodeWithProtobuf(std::string_view bytes) {
    auto& span = *google::protobuf::Arena::CreateMessage<trace_pb::Span>(&arena_);
    if (!ParseNested(bytes, kScopeAndSpanDepth, span)) return false;
    if (const char* problem = SpanProblem(span)) {
      NoteRejection(out_.rejected, out_.message, problem);
      return true;
    }
    meshtel::v1::Span converted;
    ConvertSpan(span, origin_.converted, converted);
    const std::string bytes_of_span = converted.SerializeAsString();
    FieldWriter writer = StartRecord(bytes_of_span.size());
    writer.Raw(bytes_of_span);
    FinishRecord(writer);
    return true;
  }

  // Makes room for a RequestRecord{received_span} of a span of `span_size` bytes at the end of
  // out_.bytes, writes its tag and length, and returns the writer for the span's bytes.
  FieldWriter StartRecord(size_t span_size) {
    const size_t at = out_.bytes.size();
    out_.bytes.resize(at + LengthDelimitedSize(kRecordReceivedSpan, span_size));
    FieldWriter writer(out_.bytes.data() + at);
    writer.Tag(kRecordReceivedSpan, WireType::kLengthDelimited);
    writer.Varint(span_size);
    return writer;
  }
  void FinishRecord(const FieldWriter& writer) {
    if (writer.position() != out_.bytes.data() + out_.bytes.size()) std::abort();
    out_.ends.push_back(out_.bytes.size());
  }

  EncodedRecords& out_;
  google::protobuf::Arena arena_;
  Origin origin_;
  std::vector<std::string_view> spans_;
  SpanFields span_;
};

}  // namespace

void EncodedRecords::Clear() {
  bytes.clear();
  ends.clear();
  rejected = 0;
  message.clear();
}

bool TranscodeTraceRequest(std::string_view body, EncodedRecords& out) {
  out.Clear();
  // The records are about the request's size, plus each span's copy of its resource and scope.
  out.bytes.reserve(body.size() + body.size() / 2);
  ScopeTranscoder transcoder(out);
  WireReader request(body);
  std::vector<std::string_view> scope_spans;
  while (request.Next()) {
    if (request.field() != kRequestResourceSpans) {
      if (!request.Skip()) return false;
      continue;
    }
    std::string_view resource_spans;
    if (!request.ReadBytes(resource_spans)) return false;
    // The resource applies to every ScopeSpans of the ResourceSpans, wherever it is.
    std::string_view resource;
    if (!ReadLevel(resource_spans, resource, scope_spans) || !transcoder.SetResource(resource)) {
      return false;
    }
    for (std::string_view one_scope : scope_spans) {
      if (!transcoder.TranscodeScopeSpans(one_scope)) return false;
    }
  }
  if (!request.ok()) return false;
  FinishRejections(out.rejected, out.rejected == 1 ? "span" : "spans", out.message);
  return true;
}

}  // namespace meshtel::collector::otlp
