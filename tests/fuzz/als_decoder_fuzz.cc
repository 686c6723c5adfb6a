// Fuzzes the Envoy ALS receiver's decode + convert path (collector/ingest/als_converter.h): the
// bytes of one StreamAccessLogsMessage as Envoy would write them on a stream.
// Invariants: decoding never crashes; when the message decodes and carries (or, for a later
// message, reuses) an identifier, converting its entries never crashes, every record it gives
// serializes and parses back equal, converted + skipped equals the entries of the message, and
// converting twice gives the same records (span ids are derived, not random).

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "collector/ingest/als_converter.h"
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StreamAccessLogsMessage message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  const AlsNodeIdentity node = AlsNodeIdentity::FromIdentifier(message.identifier());
  google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> records;
  const AlsConversion conversion = ConvertAlsMessage(message, node, records);
  const size_t entries = message.has_http_logs()  ? message.http_logs().log_entry_size()
                         : message.has_tcp_logs() ? message.tcp_logs().log_entry_size()
                                                  : 0;
  Check(conversion.converted + conversion.skipped == entries);
  Check(static_cast<size_t>(records.size()) == conversion.converted);
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
