#pragma once
// RepairWireText: a serialized message with each of its string fields made valid UTF-8.
//
// Protobuf refuses a whole message when one proto3 string field in it, at any depth, is not
// valid UTF-8, and a receiver loses every other entry of the message with it. Envoy logs a
// client's header values and path as they came (obs-text, RFC 9110 §5.5), so its access-log
// messages can hold such bytes. A receiver that keeps the message instead rewrites it with this
// and parses the result: each string field of `type` and of its message fields, at any depth (map
// entries and google.protobuf.Struct values included), has every byte that does not start or
// continue a valid UTF-8 sequence replaced by U+FFFD (ReplaceInvalidUtf8, the rule used
// everywhere in meshtel); every other field is copied as it is (unknown fields, which protobuf
// does not check either, included). A message field it cannot read (common::WireReader's rules:
// malformed, a group, nested deeper than protobuf's recursion limit) is copied as it is, text
// and all: the parse of the result says whether protobuf takes it.
//
// Threading: a pure function. Errors: nullopt when the top-level bytes are not readable by those
// rules.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace meshtel::collector {

struct RepairedWireText {
  std::string bytes;   // the message, rewritten
  size_t strings = 0;  // the string fields that were not valid UTF-8
};

// `depth`: how deep the message is nested in the one protobuf parses (its recursion limit counts
// from there).
std::optional<RepairedWireText> RepairWireText(std::string_view bytes,
                                               const google::protobuf::Descriptor& type,
                                               int depth = 0);

// Parses `bytes` into `message` as common::ParseNested does at `depth`; when protobuf refuses
// them, parses them again with their text repaired (RepairWireText). Returns the string fields
// repaired (0 when protobuf took the bytes as they were); nullopt when protobuf refuses them
// either way.
std::optional<size_t> ParseRepairingText(std::string_view bytes, int depth,
                                         google::protobuf::Message& message);

}  // namespace meshtel::collector
