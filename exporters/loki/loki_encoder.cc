#include "exporters/loki/loki_encoder.h"

#include <algorithm>
#include <functional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collector/common/protobuf_wire.h"
#include "collector/common/record_names.h"
#include "collector/logs/json_escape.h"
#include "collector/logs/received_log.h"
#include "fmt/format.h"
#include "snappy.h"

namespace meshtel::exporters {

namespace {

using collector::AttributeText;
using common::AppendVarint;
using common::VarintSize;

std::string HexLower(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// Appends ` name=value` to `line`, the value quoted (with \\, \" and \n escaped) when it is
// empty or holds a space, '=', '"' or a control character — logfmt as Loki's `| logfmt` reads it.
void AppendLogfmt(const std::string& name, const std::string& value, std::string& line) {
  line.push_back(' ');
  line.append(name);
  line.push_back('=');
  const bool quote =
      value.empty() || std::any_of(value.begin(), value.end(), [](char c) {
        return c == ' ' || c == '=' || c == '"' || static_cast<unsigned char>(c) < 0x20;
      });
  if (!quote) {
    line.append(value);
    return;
  }
  line.push_back('"');
  for (char c : value) {
    switch (c) {
      case '\\':
        line.append("\\\\");
        break;
      case '"':
        line.append("\\\"");
        break;
      case '\n':
        line.append("\\n");
        break;
      case '\t':
        line.append("\\t");
        break;
      case '\r':
        line.append("\\r");
        break;
      default:
        line.push_back(c);
    }
  }
  line.push_back('"');
}

// Bytes a (name, value) pair adds to the encoded message, roughly: the strings and a few tags.
size_t PairBytes(const std::string& name, const std::string& value) {
  return name.size() + value.size() + 6;
}

// The protobuf wire form of logproto (proto/loki/push.proto), written directly.
// Tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
constexpr char kPushStreams = (1 << 3) | 2;       // PushRequest.streams
constexpr char kStreamLabels = (1 << 3) | 2;      // StreamAdapter.labels
constexpr char kStreamEntries = (2 << 3) | 2;     // StreamAdapter.entries
constexpr char kEntryTimestamp = (1 << 3) | 2;    // EntryAdapter.timestamp
constexpr char kEntryLine = (2 << 3) | 2;         // EntryAdapter.line
constexpr char kEntryMetadata = (3 << 3) | 2;     // EntryAdapter.structuredMetadata
constexpr char kPairName = (1 << 3) | 2;          // LabelPairAdapter.name
constexpr char kPairValue = (2 << 3) | 2;         // LabelPairAdapter.value
constexpr char kTimestampSeconds = (1 << 3) | 0;  // google.protobuf.Timestamp.seconds
constexpr char kTimestampNanos = (2 << 3) | 0;    // google.protobuf.Timestamp.nanos

// A length-delimited field: tag, length, bytes. proto3 leaves an empty string out.
void AppendString(char tag, std::string_view value, std::string& out) {
  if (value.empty()) return;
  out.push_back(tag);
  AppendVarint(value.size(), out);
  out.append(value);
}

// EntryAdapter.timestamp (always present, as mutable_timestamp() makes it).
void AppendTimestamp(uint64_t time_ns, std::string& out) {
  const auto seconds = static_cast<int64_t>(time_ns / 1000000000);
  const auto nanos = static_cast<int32_t>(time_ns % 1000000000);
  // int64 and int32 are varints of their two's complement (a negative int32 sign-extended).
  const auto seconds_bits = static_cast<uint64_t>(seconds);
  const auto nanos_bits = static_cast<uint64_t>(static_cast<int64_t>(nanos));
  size_t size = 0;
  if (seconds != 0) size += 1 + VarintSize(seconds_bits);
  if (nanos != 0) size += 1 + VarintSize(nanos_bits);
  out.push_back(kEntryTimestamp);
  AppendVarint(size, out);
  if (seconds != 0) {
    out.push_back(kTimestampSeconds);
    AppendVarint(seconds_bits, out);
  }
  if (nanos != 0) {
    out.push_back(kTimestampNanos);
    AppendVarint(nanos_bits, out);
  }
}

// One EntryAdapter.structuredMetadata pair.
void AppendPair(std::string_view name, std::string_view value, std::string& out) {
  size_t size = 0;
  if (!name.empty()) size += 1 + VarintSize(name.size()) + name.size();
  if (!value.empty()) size += 1 + VarintSize(value.size()) + value.size();
  out.push_back(kEntryMetadata);
  AppendVarint(size, out);
  AppendString(kPairName, name, out);
  AppendString(kPairValue, value, out);
}

// Appends `value` to `key` with its length first (so that no two value lists give one key).
void AppendKeyPart(std::string_view value, std::string& key) {
  const auto size = static_cast<uint32_t>(value.size());
  key.append(reinterpret_cast<const char*>(&size), sizeof(size));
  key.append(value);
}

}  // namespace

std::string FormatLokiLabels(std::vector<std::pair<std::string, std::string>> labels) {
  std::sort(labels.begin(), labels.end());
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '"':
          out += "\\\"";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string LokiLabelValue(const meshtel::v1::RequestRecord& record, LokiLabelField field) {
  switch (field) {
    case LokiLabelField::kReporter:
      return std::string(common::ReporterName(record.reporter()));
    case LokiLabelField::kSourceWorkload:
      return record.source().workload();
    case LokiLabelField::kSourceNamespace:
      return record.source().namespace_();
    case LokiLabelField::kSourceApp:
      return record.source().app();
    case LokiLabelField::kSourceVersion:
      return record.source().version();
    case LokiLabelField::kSourceCanonicalService:
      return record.source().canonical_service();
    case LokiLabelField::kSourceCluster:
      return record.source().cluster();
    case LokiLabelField::kDestinationWorkload:
      return record.destination().workload();
    case LokiLabelField::kDestinationNamespace:
      return record.destination().namespace_();
    case LokiLabelField::kDestinationApp:
      return record.destination().app();
    case LokiLabelField::kDestinationVersion:
      return record.destination().version();
    case LokiLabelField::kDestinationCanonicalService:
      return record.destination().canonical_service();
    case LokiLabelField::kDestinationCluster:
      return record.destination().cluster();
    case LokiLabelField::kDestinationService:
      return record.destination_service().host();
    case LokiLabelField::kDestinationServiceName:
      return record.destination_service().name();
    case LokiLabelField::kDestinationServiceNamespace:
      return record.destination_service().namespace_();
    case LokiLabelField::kRequestProtocol:
      return std::string(common::RequestProtocolName(record.request_protocol()));
    case LokiLabelField::kMethod:
      return record.method();
    case LokiLabelField::kResponseCode:
      return std::to_string(record.response_code());
    case LokiLabelField::kResponseCodeClass:
      return fmt::format("{}xx", record.response_code() / 100);
  }
  return "";
}

uint64_t LokiEntryTimeNanos(const collector::StoredRecord& stored) {
  if (stored.record.has_received_log()) {
    return collector::LogEntryTimeNanos(stored.record.received_log(), stored.key.time_unix_nano);
  }
  const uint64_t start = stored.record.start_time_unix_nano();
  return start != 0 ? start : stored.key.time_unix_nano;
}

LokiEncoder::LokiEncoder(LokiConfig config, collector::AccessLogLines lines, std::string exporter)
    : config_(std::move(config)), lines_(std::move(lines)), exporter_(std::move(exporter)) {}

std::string LokiEncoder::StreamLabels(const meshtel::v1::RequestRecord& record,
                                      bool* repaired) const {
  std::vector<std::pair<std::string, std::string>> labels = config_.static_labels;
  for (const LokiLabel& label : config_.labels) {
    std::string value = LokiLabelValue(record, label.field);
    if (value.empty()) value = "unknown";
    if (collector::ReplaceInvalidUtf8(value) && repaired != nullptr) *repaired = true;
    labels.emplace_back(label.name, std::move(value));
  }
  return FormatLokiLabels(std::move(labels));
}

std::string LokiEncoder::Line(const meshtel::v1::RequestRecord& record, bool* repaired) const {
  std::string line;
  const collector::AccessLogRouting::Line routed = lines_.Route(record, exporter_);
  routed.format->Render(record, line);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (collector::ReplaceInvalidUtf8(line) && repaired != nullptr) *repaired = true;
  return line;
}

std::vector<std::pair<std::string, std::string>> LokiEncoder::Metadata(
    const meshtel::v1::RequestRecord& record, bool* repaired) const {
  std::vector<std::pair<std::string, std::string>> metadata;
  if (!config_.structured_metadata) return metadata;
  const std::string& trace_id = record.trace_id();
  if (std::any_of(trace_id.begin(), trace_id.end(), [](char c) { return c != 0; })) {
    metadata.emplace_back("trace_id", HexLower(trace_id));
  }
  if (!record.request_id().empty()) {
    std::string request_id = record.request_id();
    if (collector::ReplaceInvalidUtf8(request_id) && repaired != nullptr) *repaired = true;
    metadata.emplace_back("request_id", std::move(request_id));
  }
  return metadata;
}

LokiEncoder::ReceivedEntry LokiEncoder::Received(const meshtel::v1::LogEntry& entry) const {
  ReceivedEntry out;
  std::vector<std::pair<std::string, std::string>> labels = config_.static_labels;
  std::vector<std::pair<std::string, std::string>> metadata;
  // The service: service_name, else a service.name resource attribute the sender left there.
  std::string service = entry.service_name();
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (service.empty() && attribute.key() == "service.name") service = AttributeText(attribute);
  }
  // Resource attributes made labels, in mapping order, up to Loki's limit.
  std::vector<std::string_view> labelled;
  for (const auto& [attribute_name, label] : config_.resource_labels) {
    std::string value;
    if (attribute_name == "service.name") {
      value = service.empty() ? std::string("unknown_service") : service;
    } else {
      for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
        if (attribute.key() == attribute_name) {
          value = AttributeText(attribute);
          break;
        }
      }
    }
    if (value.empty() || labels.size() >= kLokiMaxLabels) continue;
    if (collector::ReplaceInvalidUtf8(value)) out.repaired = true;
    out.longest_label_value = std::max(out.longest_label_value, value.size());
    labels.emplace_back(label, std::move(value));
    labelled.push_back(attribute_name);
  }
  const auto is_labelled = [&labelled](std::string_view name) {
    return std::find(labelled.begin(), labelled.end(), name) != labelled.end();
  };
  // Everything else is structured metadata, as Loki's OTLP ingestion keeps it.
  const auto add = [&metadata](std::string name, std::string value) {
    if (!value.empty()) metadata.emplace_back(std::move(name), std::move(value));
  };
  if (!service.empty() && !is_labelled("service.name")) add("service_name", service);
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (attribute.key() == "service.name" || is_labelled(attribute.key())) continue;
    add(LokiAttributeName(attribute.key()), AttributeText(attribute));
  }
  add("scope_name", entry.scope_name());
  add("scope_version", entry.scope_version());
  for (const meshtel::v1::SpanAttribute& attribute : entry.attributes()) {
    add(LokiAttributeName(attribute.key()), AttributeText(attribute));
  }
  const auto non_zero = [](const std::string& id) {
    return std::any_of(id.begin(), id.end(), [](char c) { return c != 0; });
  };
  if (non_zero(entry.trace_id())) add("trace_id", HexLower(entry.trace_id()));
  if (non_zero(entry.span_id())) add("span_id", HexLower(entry.span_id()));
  add("severity_text", entry.severity_text());
  if (entry.severity_number() != 0) add("severity_number", std::to_string(entry.severity_number()));
  add("detected_level", std::string(collector::SeverityLevel(entry)));
  if (entry.flags() != 0) add("flags", std::to_string(entry.flags()));
  if (entry.observed_time_unix_nano() != 0) {
    add("observed_timestamp", std::to_string(entry.observed_time_unix_nano()));
  }
  add("event_name", entry.event_name());
  for (auto& [name, value] : metadata) {
    if (collector::ReplaceInvalidUtf8(value)) out.repaired = true;
  }

  out.labels = FormatLokiLabels(std::move(labels));
  out.line = entry.body();
  if (collector::ReplaceInvalidUtf8(out.line)) out.repaired = true;
  if (config_.structured_metadata) {
    out.metadata = std::move(metadata);
  } else {
    for (const auto& [name, value] : metadata) {
      AppendLogfmt(name == "detected_level" ? std::string("level") : name, value, out.line);
    }
  }
  return out;
}

namespace {

// The record's own text for a string label field, or nullptr for the others (enums, numbers).
const std::string* LabelText(const meshtel::v1::RequestRecord& record, LokiLabelField field) {
  switch (field) {
    case LokiLabelField::kSourceWorkload:
      return &record.source().workload();
    case LokiLabelField::kSourceNamespace:
      return &record.source().namespace_();
    case LokiLabelField::kSourceApp:
      return &record.source().app();
    case LokiLabelField::kSourceVersion:
      return &record.source().version();
    case LokiLabelField::kSourceCanonicalService:
      return &record.source().canonical_service();
    case LokiLabelField::kSourceCluster:
      return &record.source().cluster();
    case LokiLabelField::kDestinationWorkload:
      return &record.destination().workload();
    case LokiLabelField::kDestinationNamespace:
      return &record.destination().namespace_();
    case LokiLabelField::kDestinationApp:
      return &record.destination().app();
    case LokiLabelField::kDestinationVersion:
      return &record.destination().version();
    case LokiLabelField::kDestinationCanonicalService:
      return &record.destination().canonical_service();
    case LokiLabelField::kDestinationCluster:
      return &record.destination().cluster();
    case LokiLabelField::kDestinationService:
      return &record.destination_service().host();
    case LokiLabelField::kDestinationServiceName:
      return &record.destination_service().name();
    case LokiLabelField::kDestinationServiceNamespace:
      return &record.destination_service().namespace_();
    case LokiLabelField::kMethod:
      return &record.method();
    case LokiLabelField::kReporter:
    case LokiLabelField::kRequestProtocol:
    case LokiLabelField::kResponseCode:
    case LokiLabelField::kResponseCodeClass:
      return nullptr;
  }
  return nullptr;
}

// What the label's value is made from, appended to `key`: the same parts give the same value.
void AppendLabelKey(const meshtel::v1::RequestRecord& record, LokiLabelField field,
                    std::string& key) {
  if (const std::string* text = LabelText(record, field)) {
    AppendKeyPart(*text, key);
    return;
  }
  uint64_t number = 0;
  switch (field) {
    case LokiLabelField::kReporter:
      number = static_cast<uint64_t>(record.reporter());
      break;
    case LokiLabelField::kRequestProtocol:
      number = static_cast<uint64_t>(record.request_protocol());
      break;
    case LokiLabelField::kResponseCode:
      number = record.response_code();
      break;
    case LokiLabelField::kResponseCodeClass:
      number = record.response_code() / 100;
      break;
    default:
      break;
  }
  key.append(reinterpret_cast<const char*>(&number), sizeof(number));
}

// MeasuredEntries flag: the entry's line or metadata had invalid UTF-8.
constexpr uint32_t kRepaired = 1;

// The longest label value a field's text can become (each invalid byte may become 3 bytes).
constexpr size_t kMaxRepairGrowth = 3;

bool NonZero(const std::string& id) {
  return std::any_of(id.begin(), id.end(), [](char c) { return c != 0; });
}

}  // namespace

LokiEncoder::EntryText LokiEncoder::AppendRequestEntry(const meshtel::v1::RequestRecord& record,
                                                       uint64_t time_ns, std::string& out) {
  EntryText text;
  line_.clear();
  const collector::AccessLogRouting::Line routed = lines_.Route(record, exporter_);
  routed.format->Render(record, line_);
  if (!line_.empty() && line_.back() == '\n') line_.pop_back();
  text.repaired = collector::ReplaceInvalidUtf8(line_);
  text.line_size = line_.size();
  text.estimate = line_.size() + 24;  // the line, the timestamp and the entry's tags
  AppendTimestamp(time_ns, out);
  AppendString(kEntryLine, line_, out);
  if (!config_.structured_metadata) return text;
  const std::string& trace_id = record.trace_id();
  if (NonZero(trace_id)) {
    metadata_value_.clear();
    static constexpr char kDigits[] = "0123456789abcdef";
    for (unsigned char c : trace_id) {
      metadata_value_.push_back(kDigits[c >> 4]);
      metadata_value_.push_back(kDigits[c & 0xf]);
    }
    AppendPair("trace_id", metadata_value_, out);
    text.estimate += PairBytes("trace_id", metadata_value_);
  }
  if (!record.request_id().empty()) {
    metadata_value_.assign(record.request_id());
    if (collector::ReplaceInvalidUtf8(metadata_value_)) text.repaired = true;
    AppendPair("request_id", metadata_value_, out);
    text.estimate += PairBytes("request_id", metadata_value_);
  }
  return text;
}

uint32_t LokiEncoder::StreamOf(std::string labels) {
  const auto [it, added] = labels_index_.try_emplace(labels, streams_.size());
  if (added) streams_.push_back(std::move(labels));
  return it->second;
}

uint32_t LokiEncoder::RequestStream(const meshtel::v1::RequestRecord& record, bool* repaired) {
  stream_key_.clear();
  for (const LokiLabel& label : config_.labels) AppendLabelKey(record, label.field, stream_key_);
  auto it = key_index_.find(stream_key_);
  if (it == key_index_.end()) {
    KeyedStream keyed;
    keyed.stream = StreamOf(StreamLabels(record, &keyed.repaired));
    it = key_index_.emplace(stream_key_, keyed).first;
  }
  if (it->second.repaired) *repaired = true;
  return it->second.stream;
}

absl::StatusOr<size_t> LokiEncoder::Measure(const collector::StoredRecord& stored) {
  measured_.StartMeasure(stored.key);
  const uint64_t time_ns = LokiEntryTimeNanos(stored);
  const absl::Time time = absl::FromUnixNanos(static_cast<int64_t>(time_ns));
  const absl::Time now = absl::Now();
  if (time < now - config_.reject_older_than) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry time ", absl::FormatTime(time, absl::UTCTimeZone()),
                     " is older than reject_older_than (",
                     absl::FormatDuration(config_.reject_older_than), "): Loki would refuse it"));
  }
  if (time > now + config_.creation_grace_period) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry time ", absl::FormatTime(time, absl::UTCTimeZone()),
                     " is more than creation_grace_period (",
                     absl::FormatDuration(config_.creation_grace_period),
                     ") in the future: Loki would refuse it (too_far_in_future)"));
  }
  if (stored.record.has_received_log()) {
    const ReceivedEntry entry = Received(stored.record.received_log());
    if (entry.longest_label_value > kLokiMaxLabelValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("a resource label would be ", entry.longest_label_value,
                       " bytes, over Loki's ", kLokiMaxLabelValueBytes));
    }
    if (entry.line.size() > config_.max_line_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("line of ", entry.line.size(),
                                                     " bytes is over max_line_bytes (",
                                                     config_.max_line_bytes, ")"));
    }
    size_t bytes = entry.line.size() + 24;
    for (const auto& [name, value] : entry.metadata) bytes += PairBytes(name, value);
    return bytes;
  }
  for (const LokiLabel& label : config_.labels) {
    const std::string* text = LabelText(stored.record, label.field);
    // Only a long value can be over the limit, even with every byte repaired.
    if (text == nullptr || text->size() * kMaxRepairGrowth <= kLokiMaxLabelValueBytes) continue;
    std::string value = LokiLabelValue(stored.record, label.field);
    collector::ReplaceInvalidUtf8(value);  // as StreamLabels() sends it
    if (value.size() > kLokiMaxLabelValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat("label ", label.name, " would be ",
                                                     value.size(), " bytes, over Loki's ",
                                                     kLokiMaxLabelValueBytes));
    }
  }
  // The entry is serialized now and kept for Encode().
  const size_t begin = measured_.bytes().size();
  const EntryText text = AppendRequestEntry(stored.record, time_ns, measured_.bytes());
  if (text.line_size > config_.max_line_bytes) {
    measured_.Drop(begin);
    return absl::InvalidArgumentError(absl::StrCat("line of ", text.line_size,
                                                   " bytes is over max_line_bytes (",
                                                   config_.max_line_bytes, ")"));
  }
  measured_.Keep(stored.key, RecordFingerprint(stored, time_ns), text.repaired ? kRepaired : 0,
                 begin);
  return text.estimate;
}

absl::StatusOr<collector::Payload> LokiEncoder::Encode(
    std::span<const collector::StoredRecord> records) {
  measured_.Encoded();
  struct Entry {
    uint64_t time_ns;
    uint32_t stream;
    // Its bytes: [begin, end) of entry_bytes_, or of the measured entry when there is one.
    const MeasuredEntries::Entry* measured;
    size_t begin;
    size_t end;
  };
  std::vector<Entry> entries;
  entries.reserve(records.size());
  streams_.clear();
  labels_index_.clear();
  key_index_.clear();
  entry_bytes_.clear();
  for (const collector::StoredRecord& stored : records) {
    Entry entry{LokiEntryTimeNanos(stored), 0, nullptr, 0, 0};
    bool repaired = false;
    if (stored.record.has_received_log()) {
      ReceivedEntry received = Received(stored.record.received_log());
      entry.stream = StreamOf(std::move(received.labels));
      repaired = received.repaired;
      entry.begin = entry_bytes_.size();
      AppendTimestamp(entry.time_ns, entry_bytes_);
      AppendString(kEntryLine, received.line, entry_bytes_);
      for (const auto& [name, value] : received.metadata) AppendPair(name, value, entry_bytes_);
      entry.end = entry_bytes_.size();
    } else {
      entry.stream = RequestStream(stored.record, &repaired);
      entry.measured = measured_.empty()
                           ? nullptr
                           : measured_.Find(stored.key, RecordFingerprint(stored, entry.time_ns));
      if (entry.measured != nullptr) {
        if ((entry.measured->flags & kRepaired) != 0) repaired = true;
      } else {
        entry.begin = entry_bytes_.size();
        if (AppendRequestEntry(stored.record, entry.time_ns, entry_bytes_).repaired) {
          repaired = true;
        }
        entry.end = entry_bytes_.size();
      }
    }
    if (repaired) ++repaired_entries_;
    entries.push_back(entry);
  }
  // Streams in labels order; within a stream, entries in time order (ties keep key order).
  std::vector<uint32_t> order(streams_.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [this](uint32_t a, uint32_t b) { return streams_[a] < streams_[b]; });
  std::vector<uint32_t> rank(streams_.size());
  for (uint32_t i = 0; i < order.size(); ++i) rank[order[i]] = i;
  std::stable_sort(entries.begin(), entries.end(), [&rank](const Entry& a, const Entry& b) {
    if (rank[a.stream] != rank[b.stream]) return rank[a.stream] < rank[b.stream];
    return a.time_ns < b.time_ns;
  });
  const auto bytes_of = [this](const Entry& entry) {
    return entry.measured != nullptr
               ? measured_.BytesOf(*entry.measured)
               : std::string_view(entry_bytes_).substr(entry.begin, entry.end - entry.begin);
  };
  // Each stream's size first (a length-delimited field), then its bytes.
  serialized_.clear();
  for (size_t first = 0; first < entries.size();) {
    const uint32_t stream = entries[first].stream;
    size_t last = first;
    const std::string& labels = streams_[stream];
    size_t size = 1 + VarintSize(labels.size()) + labels.size();
    for (; last < entries.size() && entries[last].stream == stream; ++last) {
      const size_t entry_size = bytes_of(entries[last]).size();
      size += 1 + VarintSize(entry_size) + entry_size;
    }
    serialized_.reserve(serialized_.size() + 1 + VarintSize(size) + size);
    serialized_.push_back(kPushStreams);
    AppendVarint(size, serialized_);
    AppendString(kStreamLabels, labels, serialized_);
    for (size_t i = first; i < last; ++i) {
      const std::string_view entry = bytes_of(entries[i]);
      serialized_.push_back(kStreamEntries);
      AppendVarint(entry.size(), serialized_);
      serialized_.append(entry);
    }
    first = last;
  }
  collector::Payload payload;
  snappy::Compress(serialized_.data(), serialized_.size(), &payload.body);
  payload.content_type = "application/x-protobuf";
  payload.entries = records.size();
  return payload;
}

}  // namespace meshtel::exporters
