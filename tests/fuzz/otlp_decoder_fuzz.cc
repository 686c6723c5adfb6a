// libFuzzer target: the OTLP receiver's decoding and conversion (collector/ingest/otlp_convert.h,
// otlp_json.h, json_reader.h). The first input byte picks the case — bit 0: logs (else traces),
// bit 1: JSON (else protobuf), bit 2: the rest is gzip-inflated first (limit 1 MiB) — and the rest
// is the body. Checked: no crash, sanitizer finding or leak; every converted record holds exactly
// one received item with ids of valid lengths; the response encodes. For protobuf traces, the
// receiver's fast path (otlp_span_transcoder.h) is checked against the conversion: whenever it
// takes a body, the conversion takes it too and gives the same records and rejections.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collector/common/gzip.h"
#include "collector/ingest/otlp_convert.h"
#include "collector/ingest/otlp_span_transcoder.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using meshtel::collector::otlp::Encoding;
  using meshtel::collector::otlp::Signal;
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const Signal signal = (selector & 1) != 0 ? Signal::kLogs : Signal::kTraces;
  const Encoding encoding = (selector & 2) != 0 ? Encoding::kJson : Encoding::kProtobuf;
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((selector & 4) != 0) {
    absl::StatusOr<std::string> inflated = meshtel::common::GzipDecompress(body, 1 << 20);
    if (!inflated.ok()) return 0;
    Check(inflated->size() <= (1u << 20));
    body = *std::move(inflated);
  }
  meshtel::collector::otlp::Converted converted;
  const absl::Status status =
      meshtel::collector::otlp::DecodeAndConvert(signal, encoding, body, 1, converted);
  if (signal == Signal::kTraces && encoding == Encoding::kProtobuf) {
    meshtel::collector::otlp::EncodedRecords encoded;
    if (meshtel::collector::otlp::TranscodeTraceRequest(body, encoded)) {
      Check(status.ok());
      Check(encoded.size() == static_cast<size_t>(converted.records.size()));
      Check(encoded.rejected == converted.rejected && encoded.message == converted.message);
      for (size_t i = 0; i < encoded.size(); ++i) {
        meshtel::v1::RequestRecord transcoded;
        Check(transcoded.ParseFromString(std::string(encoded.record(i))));
        Check(transcoded.SerializeAsString() ==
              converted.records[static_cast<int>(i)].SerializeAsString());
      }
    }
  }
  if (!status.ok()) {
    Check(status.code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  Check(converted.rejected >= 0);
  Check((converted.rejected == 0) == converted.message.empty());
  for (const meshtel::v1::RequestRecord& record : converted.records) {
    if (signal == Signal::kTraces) {
      Check(record.has_received_span() && !record.has_received_log());
      const meshtel::v1::Span& span = record.received_span();
      Check(span.trace_id().size() == 16 && span.span_id().size() == 8);
      Check(span.parent_span_id().empty() || span.parent_span_id().size() == 8);
      Check(span.flags() <= 0xFF);
    } else {
      Check(record.has_received_log() && !record.has_received_span());
      const meshtel::v1::LogEntry& log = record.received_log();
      Check(log.trace_id().empty() || log.trace_id().size() == 16);
      Check(log.span_id().empty() || log.span_id().size() == 8);
      Check(log.observed_time_unix_nano() != 0);
    }
    std::string serialized;
    Check(record.SerializeToString(&serialized));
  }
  const std::string response = meshtel::collector::otlp::ExportResponse(
      signal, encoding, converted.rejected, converted.message);
  Check(!response.empty() || encoding == Encoding::kProtobuf);
  return 0;
}
