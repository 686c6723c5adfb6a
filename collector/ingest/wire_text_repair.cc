#include "collector/ingest/wire_text_repair.h"

// Tested by: tests/collector/ingest/wire_text_repair_test.cc

#include <cstdint>

#include "collector/common/protobuf_wire.h"
#include "collector/logs/json_escape.h"

namespace meshtel::collector {
namespace {

using common::WireAppender;
using common::WireReader;
using common::WireType;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

bool Repair(std::string_view bytes, const Descriptor& type, int depth, std::string& out,
            size_t& strings) {
  if (depth > common::kProtobufRecursionLimit) return false;
  WireAppender writer(out);
  WireReader reader(bytes);
  while (reader.Next()) {
    const uint32_t number = reader.field();
    switch (reader.wire_type()) {
      case WireType::kVarint: {
        uint64_t value = 0;
        if (!reader.ReadVarintValue(value)) return false;
        writer.VarintField(number, value);
        break;
      }
      case WireType::kFixed64: {
        uint64_t value = 0;
        if (!reader.ReadFixed64(value)) return false;
        writer.Fixed64Field(number, value);
        break;
      }
      case WireType::kFixed32: {
        uint32_t value = 0;
        if (!reader.ReadFixed32(value)) return false;
        writer.Fixed32Field(number, value);
        break;
      }
      case WireType::kLengthDelimited: {
        std::string_view value;
        if (!reader.ReadBytes(value)) return false;
        const FieldDescriptor* field = type.FindFieldByNumber(static_cast<int>(number));
        if (field != nullptr && field->type() == FieldDescriptor::TYPE_STRING &&
            !common::ValidUtf8(value)) {
          std::string text(value);
          ReplaceInvalidUtf8(text);
          ++strings;
          writer.BytesField(number, text);
        } else if (field != nullptr && field->type() == FieldDescriptor::TYPE_MESSAGE) {
          // A message this walk cannot read (a group in its unknown fields, which protobuf takes)
          // is copied as it is: the parse that follows says whether protobuf takes it.
          std::string nested;
          const size_t strings_before = strings;
          if (Repair(value, *field->message_type(), depth + 1, nested, strings)) {
            writer.BytesField(number, nested);
          } else {
            strings = strings_before;
            writer.BytesField(number, value);
          }
        } else {
          writer.BytesField(number, value);
        }
        break;
      }
      default:
        return false;  // groups and undefined wire types: WireReader refuses them
    }
  }
  return reader.ok();
}

}  // namespace

std::optional<RepairedWireText> RepairWireText(std::string_view bytes, const Descriptor& type,
                                               int depth) {
  RepairedWireText repaired;
  repaired.bytes.reserve(bytes.size() + 16);
  if (!Repair(bytes, type, depth, repaired.bytes, repaired.strings)) return std::nullopt;
  return repaired;
}

std::optional<size_t> ParseRepairingText(std::string_view bytes, int depth,
                                         google::protobuf::Message& message) {
  if (common::ParseNested(bytes, depth, message)) return 0;
  std::optional<RepairedWireText> repaired = RepairWireText(bytes, *message.GetDescriptor(), depth);
  if (!repaired || repaired->strings == 0 ||
      !common::ParseNested(repaired->bytes, depth, message)) {
    return std::nullopt;
  }
  return repaired->strings;
}

}  // namespace meshtel::collector
