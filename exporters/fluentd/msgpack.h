#pragma once
// A small MessagePack writer and reader: the subset of the format the Fluentd forward protocol
// uses (nil, bool, integers, float64, str, bin, array, map and extension types, with Fluentd's
// EventTime: extension type 0).
//
// MsgpackWriter appends to a caller-owned string and always picks the shortest encoding of an
// integer, a string/binary length and a container header. It writes containers as a header
// (element count) followed by the elements the caller writes next; it does not check that the
// caller writes as many elements as the header announced.
//
// DecodeMsgpack() reads one complete object from the front of a buffer (MsgpackObjectSize()
// only checks it and says how long it is). It accepts every
// encoding of the format (float32 too, read as a double), so it can read what other writers
// produce. Errors: OutOfRange when the buffer ends before the object does (a stream reader
// reads more bytes and tries again), InvalidArgument for bytes that are not MessagePack (the
// reserved 0xc1, nesting deeper than kMaxMsgpackDepth).
//
// Threading: none; values and writers are plain objects used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace meshtel::exporters::fluentd {

// Fluentd's EventTime extension type.
inline constexpr int8_t kEventTimeExtType = 0;
// Containers nested deeper than this are refused by the reader (hostile input must not exhaust
// the stack).
inline constexpr int kMaxMsgpackDepth = 64;

class MsgpackWriter {
 public:
  // Appends to `out`, which must outlive the writer.
  explicit MsgpackWriter(std::string& out) : out_(out) {}

  void Nil();
  void Bool(bool value);
  void Int(int64_t value);  // negative values as negative fixint/int*, others as Uint()
  void Uint(uint64_t value);
  void Double(double value);  // always float64
  void Str(std::string_view value);
  void Bin(std::string_view value);
  void ArrayHeader(uint32_t size);
  void MapHeader(uint32_t size);
  void Ext(int8_t type, std::string_view data);
  // Fluentd's EventTime: fixext 8, type 0, big-endian uint32 seconds then uint32 nanoseconds.
  void EventTime(uint32_t seconds, uint32_t nanoseconds);

 private:
  void Byte(uint8_t byte) { out_.push_back(static_cast<char>(byte)); }
  void BigEndian(uint64_t value, int bytes);

  std::string& out_;
};

struct MsgpackMapEntry;

// One decoded object.
struct MsgpackValue {
  enum class Type { kNil, kBool, kInt, kUint, kFloat, kStr, kBin, kArray, kMap, kExt };

  Type type = Type::kNil;
  bool boolean = false;
  int64_t int_value = 0;    // kInt: a negative integer
  uint64_t uint_value = 0;  // kUint: a non-negative integer
  double float_value = 0;   // kFloat (float32 or float64)
  std::string bytes;        // kStr, kBin, kExt (the extension's data)
  int8_t ext_type = 0;      // kExt
  std::vector<MsgpackValue> array;
  std::vector<MsgpackMapEntry> map;  // in the order received

  bool is_str() const { return type == Type::kStr; }
  // The first value in a map under the str key `key`, or nullptr (also when not a map).
  const MsgpackValue* Find(std::string_view key) const;
  // The integer as int64 when it is one and fits.
  std::optional<int64_t> AsInt() const;
};

struct MsgpackMapEntry {
  MsgpackValue key;
  MsgpackValue value;
};

// Decodes one object from the front of `data`; on success `consumed` is its length in bytes.
absl::StatusOr<MsgpackValue> DecodeMsgpack(std::string_view data, size_t& consumed);

// The length in bytes of the one complete object at the front of `data`, checked as
// DecodeMsgpack() checks it (same errors) but without building a value: no allocation.
absl::StatusOr<size_t> MsgpackObjectSize(std::string_view data);

}  // namespace meshtel::exporters::fluentd
