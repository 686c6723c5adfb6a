#include "exporters/fluentd/fluentd_encoder.h"

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "collector/common/gzip.h"
#include "collector/common/record_names.h"
#include "collector/common/response_flag_codes.h"
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

std::string ResponseFlags(uint64_t flags) {
  std::string out;
  common::AppendResponseFlagCodes(out, flags);
  return out;
}

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

// The record's time: its start, or the time the collector stored it.
uint64_t EventTimeNanos(const collector::StoredRecord& record) {
  const uint64_t start = record.record.start_time_unix_nano();
  return start != 0 ? start : record.key.time_unix_nano;
}

}  // namespace

FluentdEncoder::FluentdEncoder(FluentdConfig config, collector::AccessLogFormat line_format)
    : config_(std::move(config)), line_format_(std::move(line_format)) {}

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
  if (config_.record_format == FluentdRecordFormat::kLine) {
    AppendLine(record.record, out);
  } else {
    AppendFields(record.record, out);
  }
  return absl::OkStatus();
}

void FluentdEncoder::AppendLine(const meshtel::v1::RequestRecord& record, std::string& out) {
  line_.clear();
  line_format_.Render(record, line_);
  while (!line_.empty() && (line_.back() == '\n' || line_.back() == '\r')) line_.pop_back();
  MsgpackWriter writer(out);
  writer.MapHeader(1);
  writer.Str(config_.line_key);
  writer.Str(line_);
}

void FluentdEncoder::AppendFields(const meshtel::v1::RequestRecord& r, std::string& out) {
  std::string body;
  FieldWriter f(body);
  if (r.start_time_unix_nano() != 0) {
    f.Str("start_time",
          absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ",
                           absl::FromUnixNanos(static_cast<int64_t>(r.start_time_unix_nano())),
                           absl::UTCTimeZone()));
  } else {
    f.Nil("start_time");
  }
  f.Str("method", r.method());
  f.Str("path", r.path());
  f.Str("protocol", r.protocol());
  f.Uint("response_code", r.response_code());
  f.Str("response_flags", ResponseFlags(r.response_flags()));
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
  f.Str("trace_id", Hex(r.trace_id()));
  f.Str("span_id", Hex(r.span_id()));
  f.Str("request_protocol", common::RequestProtocolName(r.request_protocol()));
  f.Str("reporter", common::ReporterName(r.reporter()));
  f.Str("source_workload", r.source().workload());
  f.Str("source_namespace", r.source().namespace_());
  f.Str("source_principal", r.source().principal());
  f.Str("destination_workload", r.destination().workload());
  f.Str("destination_namespace", r.destination().namespace_());
  f.Str("destination_principal", r.destination().principal());
  f.Str("destination_service", r.destination_service().host());
  MsgpackWriter writer(out);
  writer.MapHeader(f.count());
  out.append(body);
}

absl::StatusOr<size_t> FluentdEncoder::Measure(const collector::StoredRecord& record) {
  entries_.clear();
  if (absl::Status status = AppendEntry(record, entries_); !status.ok()) return status;
  return entries_.size();
}

absl::StatusOr<collector::Payload> FluentdEncoder::Encode(
    std::span<const collector::StoredRecord> records) {
  entries_.clear();
  for (const collector::StoredRecord& record : records) {
    if (absl::Status status = AppendEntry(record, entries_); !status.ok()) return status;
  }
  const bool gzip = config_.compression == FluentdCompression::kGzip;
  std::string compressed;
  if (gzip) {
    absl::StatusOr<std::string> packed = meshtel::common::GzipCompress(entries_, /*level=*/-1);
    if (!packed.ok()) return packed.status();
    compressed = *std::move(packed);
  }

  collector::Payload payload;
  payload.entries = records.size();
  if (config_.require_ack) payload.ack_token = NewChunkId();
  MsgpackWriter writer(payload.body);
  writer.ArrayHeader(3);
  writer.Str(config_.tag);
  writer.Bin(gzip ? compressed : entries_);
  writer.MapHeader(1 + (config_.require_ack ? 1 : 0) + (gzip ? 1 : 0));
  writer.Str("size");
  writer.Uint(records.size());
  if (config_.require_ack) {
    writer.Str("chunk");
    writer.Str(payload.ack_token);
  }
  if (gzip) {
    writer.Str("compressed");
    writer.Str("gzip");
  }
  return payload;
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
