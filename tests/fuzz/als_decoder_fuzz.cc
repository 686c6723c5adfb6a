// Fuzzes the Envoy ALS receiver's decode + convert path (collector/ingest/als_converter.h): the
// bytes of one StreamAccessLogsMessage as Envoy would write them on a stream.
// Invariants: decoding never crashes; when the message decodes and carries (or, for a later
// message, reuses) an identifier, converting its entries never crashes, every record it gives
// serializes and parses back equal, converted + skipped equals the entries of the message, and
// converting twice gives the same records (span ids are derived, not random). Differential: the
// receiver's wire decoder (collector/ingest/als_message_decoder.h) gives, for the same bytes as a
// stream's first message, the outcome and the records of this protobuf path (where protobuf refuses
// text that is not UTF-8, the receiver keeps the entries with that text made valid: then, when
// protobuf takes the message with its text repaired (collector/ingest/wire_text_repair.h), it
// converts as many entries); and the
// same bytes read as a packed Struct peer object give the identity protobuf's decode of them
// gives.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "collector/ingest/als_converter.h"
#include "collector/ingest/als_message_decoder.h"
#include "collector/ingest/wire_text_repair.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"

namespace {

using envoy::service::accesslog::v3::StreamAccessLogsMessage;
using meshtel::collector::AlsConversion;
using meshtel::collector::AlsNodeIdentity;
using meshtel::collector::ConvertAlsMessage;

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

// protobuf logs every invalid UTF-8 string it refuses; the fuzzer would spend its time writing.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  {
    constexpr std::string_view kStructType = "type.googleapis.com/google.protobuf.Struct";
    meshtel::v1::WorkloadIdentity read;
    meshtel::collector::ReadPeerIdentity(
        meshtel::collector::AlsAnyView{.present = true, .type_url = kStructType, .value = bytes},
        read);
    meshtel::v1::WorkloadIdentity decoded;
    meshtel::collector::DecodePeerIdentity(kStructType, bytes, decoded);
    Check(google::protobuf::util::MessageDifferencer::Equals(read, decoded));
  }
  using Outcome = meshtel::collector::AlsStreamDecoder::Outcome;
  meshtel::collector::AlsStreamDecoder decoder;
  google::protobuf::Arena arena;
  auto& decoded = *google::protobuf::Arena::Create<
      google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>>(&arena);
  AlsConversion decoded_conversion;
  const Outcome outcome = decoder.Decode(bytes, arena, decoded, decoded_conversion);

  StreamAccessLogsMessage message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) {
    // Refused by protobuf: refused by the receiver too, unless it was text that is not UTF-8
    // (kept, with the text made valid): then every record the receiver gives is valid, and the
    // message with its text repaired, when protobuf takes it, gives as many.
    if (outcome != Outcome::kOk) {
      // kNoIdentifier: text repaired in a message that has no identifier.
      Check((outcome == Outcome::kInvalid || outcome == Outcome::kNoIdentifier) && decoded.empty());
      return 0;
    }
    const std::optional<meshtel::collector::RepairedWireText> repaired =
        meshtel::collector::RepairWireText(bytes, *StreamAccessLogsMessage::descriptor());
    StreamAccessLogsMessage repaired_message;
    if (repaired.has_value() && repaired->strings > 0 &&
        repaired_message.ParseFromString(repaired->bytes) && repaired_message.has_identifier()) {
      google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> repaired_records;
      const AlsConversion repaired_conversion = ConvertAlsMessage(
          repaired_message, AlsNodeIdentity::FromIdentifier(repaired_message.identifier()),
          repaired_records);
      Check(repaired_conversion.converted == decoded_conversion.converted);
      Check(repaired_conversion.skipped == decoded_conversion.skipped);
    }
    Check(static_cast<size_t>(decoded.size()) == decoded_conversion.converted);
    for (const meshtel::v1::RequestRecord& record : decoded) {
      meshtel::v1::RequestRecord parsed;
      Check(parsed.ParseFromString(record.SerializeAsString()));
      Check(google::protobuf::util::MessageDifferencer::Equals(parsed, record));
    }
    return 0;
  }
  if (!message.has_identifier()) {
    Check(outcome == Outcome::kNoIdentifier && decoded.empty());
  } else {
    Check(outcome == Outcome::kOk);
  }
  const AlsNodeIdentity node = AlsNodeIdentity::FromIdentifier(message.identifier());
  google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> records;
  const AlsConversion conversion = ConvertAlsMessage(message, node, records);
  const size_t entries = message.has_http_logs()  ? message.http_logs().log_entry_size()
                         : message.has_tcp_logs() ? message.tcp_logs().log_entry_size()
                                                  : 0;
  Check(conversion.converted + conversion.skipped == entries);
  Check(static_cast<size_t>(records.size()) == conversion.converted);
  if (outcome == Outcome::kOk) {
    Check(decoded_conversion.converted == conversion.converted);
    Check(decoded_conversion.skipped == conversion.skipped);
    Check(decoded.size() == records.size());
    for (int i = 0; i < records.size() && i < decoded.size(); ++i) {
      Check(google::protobuf::util::MessageDifferencer::Equals(decoded[i], records[i]));
    }
  }
  google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> again;
  ConvertAlsMessage(message, node, again);
  Check(again.size() == records.size());
  for (int i = 0; i < records.size(); ++i) {
    meshtel::v1::RequestRecord parsed;
    Check(parsed.ParseFromString(records[i].SerializeAsString()));
    Check(google::protobuf::util::MessageDifferencer::Equals(parsed, records[i]));
    Check(google::protobuf::util::MessageDifferencer::Equals(again[i], records[i]));
  }
  return 0;
}
