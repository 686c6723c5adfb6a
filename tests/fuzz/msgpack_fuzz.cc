// Fuzzes the msgpack reader the Fluentd exporter uses on what a server sends (HELO, PONG, ack).
// Input: any bytes, read as a sequence of objects. Invariants: the reader never reads past the
// input, and every object it returns, written again with MsgpackWriter, reads back the same.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exporters/fluentd/msgpack.h"

using meshtel::exporters::fluentd::DecodeMsgpack;
using meshtel::exporters::fluentd::MsgpackValue;
using meshtel::exporters::fluentd::MsgpackWriter;

namespace {

void Write(const MsgpackValue& v, MsgpackWriter& w) {
  switch (v.type) {
    case MsgpackValue::Type::kNil:
      w.Nil();
      break;
    case MsgpackValue::Type::kBool:
      w.Bool(v.boolean);
      break;
    case MsgpackValue::Type::kInt:
      w.Int(v.int_value);
      break;
    case MsgpackValue::Type::kUint:
      w.Uint(v.uint_value);
      break;
    case MsgpackValue::Type::kFloat:
      w.Double(v.float_value);
      break;
    case MsgpackValue::Type::kStr:
      w.Str(v.bytes);
      break;
    case MsgpackValue::Type::kBin:
      w.Bin(v.bytes);
      break;
    case MsgpackValue::Type::kExt:
      w.Ext(v.ext_type, v.bytes);
      break;
    case MsgpackValue::Type::kArray:
      w.ArrayHeader(static_cast<uint32_t>(v.array.size()));
      for (const MsgpackValue& element : v.array) Write(element, w);
      break;
    case MsgpackValue::Type::kMap:
      w.MapHeader(static_cast<uint32_t>(v.map.size()));
      for (const auto& entry : v.map) {
        Write(entry.key, w);
        Write(entry.value, w);
      }
      break;
  }
}

bool Same(const MsgpackValue& a, const MsgpackValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case MsgpackValue::Type::kNil:
      return true;
    case MsgpackValue::Type::kBool:
      return a.boolean == b.boolean;
    case MsgpackValue::Type::kInt:
      return a.int_value == b.int_value;
    case MsgpackValue::Type::kUint:
      return a.uint_value == b.uint_value;
    case MsgpackValue::Type::kFloat:  // NaN payloads survive float64 bit for bit
      return std::bit_cast<uint64_t>(a.float_value) == std::bit_cast<uint64_t>(b.float_value);
    case MsgpackValue::Type::kStr:
    case MsgpackValue::Type::kBin:
      return a.bytes == b.bytes;
    case MsgpackValue::Type::kExt:
      return a.ext_type == b.ext_type && a.bytes == b.bytes;
    case MsgpackValue::Type::kArray:
      if (a.array.size() != b.array.size()) return false;
      for (size_t i = 0; i < a.array.size(); ++i) {
        if (!Same(a.array[i], b.array[i])) return false;
      }
      return true;
    case MsgpackValue::Type::kMap:
      if (a.map.size() != b.map.size()) return false;
      for (size_t i = 0; i < a.map.size(); ++i) {
        if (!Same(a.map[i].key, b.map[i].key) || !Same(a.map[i].value, b.map[i].value)) {
          return false;
        }
      }
      return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    size_t consumed = 0;
    const auto value = DecodeMsgpack(input, consumed);
    if (!value.ok()) break;
    if (consumed == 0 || consumed > input.size()) std::abort();
    input.remove_prefix(consumed);

    std::string again;
    MsgpackWriter writer(again);
    Write(*value, writer);
    size_t again_consumed = 0;
    const auto reread = DecodeMsgpack(again, again_consumed);
    if (!reread.ok() || again_consumed != again.size() || !Same(*value, *reread)) std::abort();
  }
  return 0;
}
