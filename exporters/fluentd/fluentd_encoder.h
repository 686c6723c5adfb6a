#pragma once
// FluentdEncoder: stored records -> one Fluentd forward-protocol message (wire-facts §6).
//
// A payload is one PackedForward message, or CompressedPackedForward with `compression: gzip`:
//   [tag, bin(entries), {"size": n, "chunk": id, "compressed": "gzip"}]
// where entries is the concatenation of n msgpack arrays [EventTime, record] (gzip-compressed as
// one gzip member for CompressedPackedForward). "chunk" is present only with require_ack: a
// fresh random 128-bit id, base64, also returned as Payload::ack_token for the sender to match
// against the server's {"ack": id}; "compressed" only with gzip.
//
// EventTime is the record's start_time_unix_nano, or the store key's time when the record has
// none. The record is a map: with record_format `fields` one typed key per record field
// (Istio/Envoy access-log names; numbers as integers, unset strings as nil), with `line` a single
// key (line_key) holding the line the record's AccessLogFormat (AccessLogLines: the workload's
// policy, or the collector's access_log format) renders, without its trailing newline.
//
// Received log records (entries with only received_log, from OTLP) are sent as the log records
// they are, whatever record_format says: their events carry received_log_tag, and their record
// is the map
//   message (the body; a non-string body as its JSON), severity (the severity text, else the
//   level), severity_number, level (collector::SeverityLevel: trace .. fatal, unknown),
//   service_name, trace_id, span_id (lower-case hex), event_name, scope_name, scope_version
//   (nil when unset), attributes and resource (maps of the typed attribute values; resource
//   holds service.name first when known)
// with EventTime = the record's time, else its observed time, else the store key's time. A
// batch holding both kinds is one payload of two PackedForward messages (access events first),
// each with its own chunk id: Payload::ack_token then holds both ids, separated by a space, and
// the sender waits for both acks in order. Received spans are not log records: Delivers() is
// false for them (the delivery engine counts them as filtered).
//
// Measure() returns the size of a record's [EventTime, record] entry before compression; it
// refuses a record whose time does not fit EventTime's 32-bit seconds (after 2106). The entries
// it encodes are kept until the next batch is measured (MeasuredEntries), so that Encode()
// copies them instead of encoding the records again.
// Threading: one thread at a time (the exporter's delivery thread); the encoder keeps scratch
// buffers and the entries of the batch being measured between calls.

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "exporters/common/measured_entries.h"
#include "exporters/fluentd/fluentd_config.h"

namespace meshtel::exporters::fluentd {

class FluentdEncoder : public collector::Encoder {
 public:
  // `exporter` is the exporter's name, as `lines` routes records to it.
  FluentdEncoder(FluentdConfig config, collector::AccessLogLines lines, std::string exporter = "");

  // Received spans are not log records; request records only when their access-log line is
  // routed to this exporter (the telemetry policy: side enabled, filter, providers).
  bool Delivers(const collector::StoredRecord& record) const override {
    if (record.record.has_received_span()) return false;
    if (record.record.has_received_log()) return true;
    return lines_.Route(record.record, exporter_).deliver;
  }
  absl::StatusOr<size_t> Measure(const collector::StoredRecord& record) override;
  absl::StatusOr<collector::Payload> Encode(
      std::span<const collector::StoredRecord> records) override;

  // Appends the msgpack entry [EventTime, record] of `record` to `out`.
  absl::Status AppendEntry(const collector::StoredRecord& record, std::string& out);

 private:
  void AppendFields(const meshtel::v1::RequestRecord& record, std::string& out);
  void AppendLine(const meshtel::v1::RequestRecord& record, std::string& out);
  void AppendReceivedLog(const meshtel::v1::LogEntry& entry, std::string& out);
  // Appends one PackedForward (or CompressedPackedForward) message of `entries` under `tag`;
  // returns its chunk id ("" without require_ack).
  absl::StatusOr<std::string> AppendMessage(const std::string& tag, std::string_view entries,
                                            size_t count, std::string& out);

  const FluentdConfig config_;
  const collector::AccessLogLines lines_;
  const std::string exporter_;
  std::string entries_;           // scratch: the concatenated entries
  std::string received_entries_;  // scratch: the received log records' entries
  std::string line_;              // scratch: one rendered line
  std::string scratch_;           // scratch: one field's text
  MeasuredEntries measured_;      // the entries of the batch being measured
};

// A fresh random 128-bit chunk id, base64 (24 characters, padded).
std::string NewChunkId();

}  // namespace meshtel::exporters::fluentd
