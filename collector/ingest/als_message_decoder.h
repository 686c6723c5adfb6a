#pragma once
// AlsStreamDecoder: the serialized StreamAccessLogsMessages of one Envoy ALS stream → the
// RequestRecords of their entries (als_converter.h says how an entry maps to a record).
//
// HTTP entries are read straight from their wire format (ReadHttpEntryWire) into the converter's
// view: no StreamAccessLogsMessage is decoded, and no string is copied before it goes into its
// record. What the walk does not vouch for goes through protobuf, with the same result:
//   - an entry with a field the walk does not read in a form it does not handle (metadata, a
//     message field given twice, a field of an unexpected wire type, a group, malformed bytes) is
//     decoded alone by protobuf, at the depth it has in the message;
//   - text that is not UTF-8 in a field the walk reads (a client's User-Agent or path, which Envoy
//     logs as it came) is where protobuf and the walk part: protobuf refuses the whole message,
//     and with it every other entry; the walk takes the entry, and its record's text is made
//     valid UTF-8 (each bad byte U+FFFD, collector/logs/record_text.h), counted in
//     AlsConversion::text_repaired. Where protobuf decodes an entry or a message and refuses it
//     for such text, it decodes it again with its text repaired (wire_text_repair.h): no entry is
//     lost for its text, and each entry repaired is counted the same way;
//   - a message that is irregular above its entries (TCP entries, http_logs given twice, a
//     malformed top level), that protobuf refuses in any part, or that has no identifier while the
//     stream has none yet, is decoded whole by protobuf and converted by ConvertAlsMessage.
// The identifier is taken from the first message that carries one; a later identifier is checked
// (a message protobuf would refuse is refused) but not used, as Envoy sends it only once.
//
// Threading: one decoder per stream, used by one thread at a time. Ownership: the records are
// created on the caller's arena; views of the message bytes do not outlive Decode().

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "collector/ingest/als_converter.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

// Fills `view` (cleared first) from an HTTPAccessLogEntry's wire format, as ReadHttpEntryView
// fills it from the decoded entry. False when the walk does not vouch for the bytes (see above);
// `view` is then unspecified. With `invalid_text`, strings that are not UTF-8 are taken as they
// are and counted there (the caller repairs them in its record) instead of not vouched for.
bool ReadHttpEntryWire(std::string_view bytes, AlsHttpEntryView& view,
                       size_t* invalid_text = nullptr);

class AlsStreamDecoder {
 public:
  enum class Outcome {
    kOk,            // entries converted (or none; intermediate ones skipped)
    kInvalid,       // not a StreamAccessLogsMessage protobuf accepts; nothing appended
    kNoIdentifier,  // no identifier yet on this stream, none in the message; nothing appended
  };

  // How the entries and messages were decoded so far (tests, benchmarks).
  struct Paths {
    uint64_t wire_entries = 0;       // read by the walk
    uint64_t protobuf_entries = 0;   // an entry decoded alone by protobuf
    uint64_t protobuf_messages = 0;  // a message decoded whole by protobuf
  };

  // Decodes one message into `records`: its content is replaced by the records of the
  // message's entries. The record objects `records` holds are reused (the stream's receiver keeps
  // one RepeatedPtrField, so converting allocates nothing once it has warmed up). What protobuf
  // decodes goes on `arena`.
  Outcome Decode(std::string_view bytes, google::protobuf::Arena& arena,
                 google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
                 AlsConversion& conversion);

  // The stream's Envoy, once a message carried the identifier.
  const std::optional<AlsNodeIdentity>& node() const { return node_; }
  const Paths& paths() const { return paths_; }

 private:
  // False when the message must be decoded whole by protobuf (`records` and `conversion` are then
  // to be reset).
  bool DecodeFromWire(std::string_view bytes, google::protobuf::Arena& arena,
                      google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
                      AlsConversion& conversion);
  bool DecodeEntriesFromWire(
      std::string_view http_logs, const AlsNodeIdentity& node, google::protobuf::Arena& arena,
      google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
      AlsConversion& conversion);
  Outcome DecodeWithProtobuf(
      std::string_view bytes, google::protobuf::Arena& arena,
      google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
      AlsConversion& conversion);

  std::optional<AlsNodeIdentity> node_;
  std::string identifier_bytes_;  // the identifier node_ came from, as sent
  AlsHttpEntryView view_;
  Paths paths_;
};

}  // namespace meshtel::collector
