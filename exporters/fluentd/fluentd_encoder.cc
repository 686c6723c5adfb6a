#include "exporters/fluentd/fluentd_encoder.h"

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "collector/common/gzip.h"
#include "collector/common/record_names.h"
#include "collector/common/response_flag_codes.h"
#include "collector/logs/iso_time.h"
#include "collector/logs/received_log.h"
#include "exporters/fluentd/msgpack.h"
#include "fmt/format.h"

namespace meshtel::exporters::fluentd {
namespace {

constexpr uint64_t kNanosPerSecond = 1'000'000'000;

// Writes the map entries of the `fields` format and counts them.
class FieldWriter {
 public:
  explicit FieldWriter(std::string& out) : writer_(out) {}

  void Str(std::string_view key, std::string_view value) {
    Key(key);
    if (value.empty()) {
      writer_.Nil();
    } else {
      writer_.Str(value);
    }
  }
  void Uint(std::string_view key, uint64_t value) {
    Key(key);
    writer_.Uint(value);
  }
  void Nil(std::string_view key) {
    Key(key);
    writer_.Nil();
  }
  uint32_t count() const { return count_; }

 private:
  void Key(std::string_view key) {
    writer_.Str(key);
    ++count_;
  }
  MsgpackWriter writer_;
  uint32_t count_ = 0;
};

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

// `bytes` as lower-case hex, in `out` (replacing what it held).
void AppendHex(const std::string& bytes, std::string& out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out.clear();
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
}

// The record's time: its start, or the time the collector stored it (a received log record: its
// time, else its observed time, else the time the collector stored it).
uint64_t EventTimeNanos(const collector::StoredRecord& record) {
  if (record.record.has_received_log()) {
    return collector::LogEntryTimeNanos(record.record.received_log(), record.key.time_unix_nano);
  }
  const uint64_t start = record.record.start_time_unix_nano();
  return start != 0 ? start : record.key.time_unix_nano;
}

}  // namespace

FluentdEncoder::FluentdEncoder(FluentdConfig config, collector::AccessLogLines lines,
                               std::string exporter)
    : config_(std::move(config)), lines_(std::move(lines)), exporter_(std::move(exporter)) {}

absl::Status FluentdEncoder::AppendEntry(const collector::StoredRecord& record, std::string& out) {
  const uint64_t nanos = EventTimeNanos(record);
  const uint64_t seconds = nanos / kNanosPerSecond;
  if (seconds > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(fmt::format(
        "fluentd: record time {} ns is past what EventTime can carry (32-bit seconds)", nanos));
  }
  MsgpackWriter writer(out);
  writer.ArrayHeader(2);
  writer.EventTime(static_cast<uint32_t>(seconds), static_cast<uint32_t>(nanos % kNanosPerSecond));
  if (record.record.has_received_log()) {
    AppendReceivedLog(record.record.received_log(), out);
  } else if (config_.record_format == FluentdRecordFormat::kLine) {
    AppendLine(record.record, out);
  } else {
    AppendFields(record.record, out);
  }
  return absl::OkStatus();
}

void FluentdEncoder::AppendLine(const meshtel::v1::RequestRecord& record, std::string& out) {
  line_.clear();
  const collector::AccessLogRouting::Line routed = lines_.Route(record, exporter_);
  routed.format->Render(record, line_);
  while (!line_.empty() && (line_.back() == '\n' || line_.back() == '\r')) line_.pop_back();
  MsgpackWriter writer(out);
  writer.MapHeader(1);
  writer.Str(config_.line_key);
  writer.Str(line_);
}

namespace {

void AppendAttributeValue(const meshtel::v1::SpanAttribute& attribute, MsgpackWriter& writer) {
  switch (attribute.value_case()) {
    case meshtel::v1::SpanAttribute::kStringValue:
      writer.Str(attribute.string_value());
      return;
    case meshtel::v1::SpanAttribute::kBoolValue:
      writer.Bool(attribute.bool_value());
      return;
    case meshtel::v1::SpanAttribute::kIntValue:
      writer.Int(attribute.int_value());
      return;
    case meshtel::v1::SpanAttribute::kDoubleValue:
      writer.Double(attribute.double_value());
      return;
    case meshtel::v1::SpanAttribute::VALUE_NOT_SET:
      break;
  }
  writer.Nil();
}

bool NonZero(const std::string& id) {
  for (char c : id) {
    if (c != 0) return true;
  }
  return false;
}

}  // namespace

void FluentdEncoder::AppendReceivedLog(const meshtel::v1::LogEntry& entry, std::string& out) {
  std::string service = entry.service_name();
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (service.empty() && attribute.key() == "service.name" && attribute.has_string_value()) {
      service = attribute.string_value();
    }
  }
  const std::string_view level = collector::SeverityLevel(entry);
  MsgpackWriter writer(out);
  writer.MapHeader(13);
  writer.Str("message");
  writer.Str(entry.body());
  writer.Str("severity");
  writer.Str(entry.severity_text().empty() ? level : std::string_view(entry.severity_text()));
  writer.Str("severity_number");
  writer.Int(entry.severity_number());
  writer.Str("level");
  writer.Str(level);
  const auto str_or_nil = [&writer](std::string_view key, std::string_view value) {
    writer.Str(key);
    if (value.empty()) {
      writer.Nil();
    } else {
      writer.Str(value);
    }
  };
  str_or_nil("service_name", service);
  str_or_nil("trace_id", NonZero(entry.trace_id()) ? Hex(entry.trace_id()) : "");
  str_or_nil("span_id", NonZero(entry.span_id()) ? Hex(entry.span_id()) : "");
  str_or_nil("event_name", entry.event_name());
  str_or_nil("scope_name", entry.scope_name());
  str_or_nil("scope_version", entry.scope_version());
  writer.Str("attributes");
  writer.MapHeader(static_cast<uint32_t>(entry.attributes_size()));
  for (const meshtel::v1::SpanAttribute& attribute : entry.attributes()) {
    writer.Str(attribute.key());
    AppendAttributeValue(attribute, writer);
  }
  writer.Str("resource");
  uint32_t resource_size = service.empty() ? 0 : 1;
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (attribute.key() != "service.name") ++resource_size;
  }
  writer.MapHeader(resource_size);
  if (!service.empty()) {
    writer.Str("service.name");
    writer.Str(service);
  }
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (attribute.key() == "service.name") continue;
    writer.Str(attribute.key());
    AppendAttributeValue(attribute, writer);
  }
  writer.Str("observed_time");
  if (entry.observed_time_unix_nano() != 0) {
    writer.Str(
        absl::FormatTime("%Y-%m-%d%ET%H:%M:%E9SZ",
                         absl::FromUnixNanos(static_cast<int64_t>(entry.observed_time_unix_nano())),
                         absl::UTCTimeZone()));
  } else {
    writer.Nil();
  }
}

void FluentdEncoder::AppendFields(const meshtel::v1::RequestRecord& r, std::string& out) {
  // The map's header is written last, once the fields are counted: three bytes are kept for it
  // (a map16, what more than 15 fields take) and closed up when it is shorter.
  const size_t header = out.size();
  out.append(3, '\0');
  FieldWriter f(out);
  if (r.start_time_unix_nano() != 0) {
    scratch_.clear();
    collector::AppendIsoTimeMillis(scratch_, r.start_time_unix_nano());
    f.Str("start_time", scratch_);
  } else {
    f.Nil("start_time");
  }
  f.Str("method", r.method());
  f.Str("path", r.path());
  f.Str("protocol", r.protocol());
  f.Uint("response_code", r.response_code());
  scratch_.clear();
  common::AppendResponseFlagCodes(scratch_, r.response_flags());
  f.Str("response_flags", scratch_);
  f.Str("response_code_details", r.response_code_details());
  if (r.has_grpc_status()) {
    f.Uint("grpc_status", r.grpc_status());
  } else {
    f.Nil("grpc_status");
  }
  f.Uint("bytes_received", r.request_bytes());
  f.Uint("bytes_sent", r.response_bytes());
  f.Uint("duration", r.duration_ns() / 1'000'000);  // ms, truncated, as %DURATION%
  f.Str("upstream_host", r.upstream_host());
  f.Str("upstream_cluster", r.upstream_cluster());
  f.Str("upstream_local_address", r.upstream_local_address());
  f.Str("downstream_local_address", r.downstream_local_address());
  f.Str("downstream_remote_address", r.downstream_remote_address());
  f.Str("route_name", r.route_name());
  f.Str("x_forwarded_for", r.forwarded_for());
  f.Str("user_agent", r.user_agent());
  f.Str("request_id", r.request_id());
  f.Str("authority", r.authority());
  AppendHex(r.trace_id(), scratch_);
  f.Str("trace_id", scratch_);
  AppendHex(r.span_id(), scratch_);
  f.Str("span_id", scratch_);
  f.Str("request_protocol", common::RequestProtocolName(r.request_protocol()));
  f.Str("reporter", common::ReporterName(r.reporter()));
  f.Str("source_workload", r.source().workload());
  f.Str("source_namespace", r.source().namespace_());
  f.Str("source_principal", r.source().principal());
  f.Str("destination_workload", r.destination().workload());
  f.Str("destination_namespace", r.destination().namespace_());
  f.Str("destination_principal", r.destination().principal());
  f.Str("destination_service", r.destination_service().host());
  std::string map_header;
  MsgpackWriter(map_header).MapHeader(f.count());
  if (map_header.size() == 3) {
    out.replace(header, 3, map_header);
  } else {
    out.erase(header, 3 - map_header.size());
    out.replace(header, map_header.size(), map_header);
  }
}

absl::StatusOr<size_t> FluentdEncoder::Measure(const collector::StoredRecord& record) {
  // The entry is encoded now and kept for Encode().
  measured_.StartMeasure(record.key);
  const size_t begin = measured_.bytes().size();
  if (absl::Status status = AppendEntry(record, measured_.bytes()); !status.ok()) {
    measured_.Drop(begin);
    return status;
  }
  const size_t size = measured_.bytes().size() - begin;
  measured_.Keep(record.key, RecordFingerprint(record, EventTimeNanos(record)), 0, begin);
  return size;
}

absl::StatusOr<collector::Payload> FluentdEncoder::Encode(
    std::span<const collector::StoredRecord> records) {
  measured_.Encoded();
  entries_.clear();
  received_entries_.clear();
  size_t access_count = 0;
  size_t received_count = 0;
  const bool one_tag = config_.tag == config_.received_log_tag;
  for (const collector::StoredRecord& record : records) {
    // With one tag for both kinds, every event goes into one message.
    const bool received = record.record.has_received_log() && !one_tag;
    std::string& out = received ? received_entries_ : entries_;
    const MeasuredEntries::Entry* measured =
        measured_.empty()
            ? nullptr
            : measured_.Find(record.key, RecordFingerprint(record, EventTimeNanos(record)));
    if (measured != nullptr) {
      out.append(measured_.BytesOf(*measured));
    } else if (absl::Status status = AppendEntry(record, out); !status.ok()) {
      return status;
    }
    ++(received ? received_count : access_count);
  }
  collector::Payload payload;
  payload.entries = records.size();
  std::vector<std::string> chunks;
  if (access_count > 0 || received_count == 0) {
    absl::StatusOr<std::string> chunk =
        AppendMessage(config_.tag, entries_, access_count, payload.body);
    if (!chunk.ok()) return chunk.status();
    chunks.push_back(*std::move(chunk));
  }
  if (received_count > 0) {
    absl::StatusOr<std::string> chunk =
        AppendMessage(config_.received_log_tag, received_entries_, received_count, payload.body);
    if (!chunk.ok()) return chunk.status();
    chunks.push_back(*std::move(chunk));
  }
  if (config_.require_ack) payload.ack_token = absl::StrJoin(chunks, " ");
  return payload;
}

absl::StatusOr<std::string> FluentdEncoder::AppendMessage(const std::string& tag,
                                                          std::string_view entries, size_t count,
                                                          std::string& out) {
  const bool gzip = config_.compression == FluentdCompression::kGzip;
  std::string compressed;
  if (gzip) {
    absl::StatusOr<std::string> packed = meshtel::common::GzipCompress(entries, /*level=*/-1);
    if (!packed.ok()) return packed.status();
    compressed = *std::move(packed);
  }
  std::string chunk;
  if (config_.require_ack) chunk = NewChunkId();
  MsgpackWriter writer(out);
  writer.ArrayHeader(3);
  writer.Str(tag);
  writer.Bin(gzip ? std::string_view(compressed) : entries);
  writer.MapHeader(1 + (config_.require_ack ? 1 : 0) + (gzip ? 1 : 0));
  writer.Str("size");
  writer.Uint(count);
  if (config_.require_ack) {
    writer.Str("chunk");
    writer.Str(chunk);
  }
  if (gzip) {
    writer.Str("compressed");
    writer.Str("gzip");
  }
  return chunk;
}

std::string NewChunkId() {
  std::array<unsigned char, 16> id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
    // The OpenSSL generator failed (it should not): the id only has to be unique per connection.
    std::random_device device;
    for (unsigned char& byte : id) byte = static_cast<unsigned char>(device());
  }
  return absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

}  // namespace meshtel::exporters::fluentd
