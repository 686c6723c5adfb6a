#pragma once
// Protobuf wire format by hand, for the code that writes or walks protobuf bytes without a
// message object (the exporters' encoders, the store's chunk framing, the receivers' transcoders):
// base-128 varints and a reader of one message level's fields.
//
// Pure functions and a value type over a view; safe from any thread. WireReader holds a view of
// the bytes it reads, which must outlive it. ValidUtf8 and ParseNested check and parse as
// protobuf's own parser does, for the parts a walk leaves to protobuf. Errors: the readers return
// false on bytes that are not well-formed (a truncated varint, fixed value or length; a varint over
// 10 bytes; field number 0; a tag or length over 5 bytes or 32 bits; a group or an undefined wire
// type), and what they were reading is then unspecified. They accept no bytes protobuf's own parser
// refuses.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/message_lite.h"
#include "google/protobuf/stubs/common.h"

namespace meshtel::common {

// Wire types (protobuf encoding): what follows a field's tag.
enum class WireType : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// A varint takes at most this many bytes.
inline constexpr size_t kMaxVarintBytes = 10;

// Bytes of `value` as a varint.
inline size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Writes `value` as a varint to `out` (room for kMaxVarintBytes); returns the bytes written.
inline size_t EncodeVarint(uint64_t value, char* out) {
  size_t written = 0;
  while (value >= 0x80) {
    out[written++] = static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out[written++] = static_cast<char>(value);
  return written;
}

// Appends `value` to `out` as a varint.
inline void AppendVarint(uint64_t value, std::string& out) {
  char bytes[kMaxVarintBytes];
  out.append(bytes, EncodeVarint(value, bytes));
}

// The tag of field `field` with `wire_type`, as a varint value.
constexpr uint64_t FieldTag(uint32_t field, WireType wire_type) {
  return (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type);
}

// Bytes of a field's tag, of a whole length-delimited field holding `length` bytes, and of a whole
// varint field holding `value`.
inline size_t TagSize(uint32_t field) { return VarintSize(FieldTag(field, WireType::kVarint)); }
inline size_t LengthDelimitedSize(uint32_t field, size_t length) {
  return TagSize(field) + VarintSize(length) + length;
}
inline size_t VarintFieldSize(uint32_t field, uint64_t value) {
  return TagSize(field) + VarintSize(value);
}

// Appends protobuf fields to a string, in the order they are given (a writer that wants the
// bytes protobuf's serializer makes gives the fields in field-number order and leaves out proto3
// defaults as it does).
class WireAppender {
 public:
  explicit WireAppender(std::string& out) : out_(out) {}
  std::string& out() { return out_; }

  void Varint(uint64_t value) {
    if (value < 0x80) {
      out_.push_back(static_cast<char>(value));
    } else {
      AppendVarint(value, out_);
    }
  }
  void Tag(uint32_t field, WireType wire_type) { Varint(FieldTag(field, wire_type)); }
  void VarintField(uint32_t field, uint64_t value) {
    Tag(field, WireType::kVarint);
    Varint(value);
  }
  void Fixed64Field(uint32_t field, uint64_t value) {
    Tag(field, WireType::kFixed64);
    char bytes[8];
    std::memcpy(bytes, &value, 8);  // little-endian hosts only, as the readers here
    out_.append(bytes, 8);
  }
  void Fixed32Field(uint32_t field, uint32_t value) {
    Tag(field, WireType::kFixed32);
    char bytes[4];
    std::memcpy(bytes, &value, 4);  // little-endian hosts only, as the readers here
    out_.append(bytes, 4);
  }
  void BytesField(uint32_t field, std::string_view value) {
    Tag(field, WireType::kLengthDelimited);
    Varint(value.size());
    out_.append(value);
  }
  // A length-delimited field whose value is `pieces` concatenated.
  void BytesField(uint32_t field, std::initializer_list<std::string_view> pieces) {
    size_t size = 0;
    for (std::string_view piece : pieces) size += piece.size();
    Tag(field, WireType::kLengthDelimited);
    Varint(size);
    for (std::string_view piece : pieces) out_.append(piece);
  }

 private:
  std::string& out_;
};

// Reads a varint at bytes[pos] and moves `pos` past it; false when it is truncated, longer than
// `max_bytes` (at most 10) or, at 10 bytes, over 64 bits.
inline bool ReadVarint(std::string_view bytes, size_t& pos, uint64_t& value,
                       size_t max_bytes = kMaxVarintBytes) {
  // Most tags, lengths and small numbers take one byte.
  if (pos < bytes.size() && static_cast<uint8_t>(bytes[pos]) < 0x80) {
    value = static_cast<uint8_t>(bytes[pos++]);
    return true;
  }
  uint64_t result = 0;
  for (size_t i = 0; i < max_bytes && pos < bytes.size(); ++i) {
    const auto byte = static_cast<uint8_t>(bytes[pos++]);
    if (i == 9 && byte > 1) return false;
    result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      value = result;
      return true;
    }
  }
  return false;
}

// The fields of one message level, in wire order:
//
//   WireReader reader(bytes);
//   while (reader.Next()) { switch (reader.field()) { ... reader.ReadBytes(view) ...
//                                                      default: reader.Skip(); } }
//   if (!reader.ok()) { malformed }
//
// Next() reads a tag; then exactly one of the Read*() or Skip() consumes the field's value (the
// Read* of the field's wire type; a Read* of another wire type fails).
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : bytes_(bytes) {}

  // Reads the next field's tag. False at the end of the bytes, or when the tag is malformed (then
  // ok() is false too).
  bool Next() {
    if (pos_ >= bytes_.size()) return false;
    uint64_t tag = 0;
    if (!ReadVarint(bytes_, pos_, tag, kMaxTagOrLengthBytes) || (tag >> 3) == 0 ||
        tag > UINT32_MAX) {
      return Fail();
    }
    field_ = static_cast<uint32_t>(tag >> 3);
    wire_type_ = static_cast<WireType>(tag & 7);
    return true;
  }

  uint32_t field() const { return field_; }
  WireType wire_type() const { return wire_type_; }
  // False once anything read was malformed; stays false.
  bool ok() const { return ok_; }

  bool ReadVarintValue(uint64_t& value) {
    if (wire_type_ != WireType::kVarint || !ReadVarint(bytes_, pos_, value)) return Fail();
    return true;
  }
  bool ReadFixed64(uint64_t& value) {
    if (wire_type_ != WireType::kFixed64 || bytes_.size() - pos_ < 8) return Fail();
    std::memcpy(&value, bytes_.data() + pos_, 8);  // little-endian hosts only (x86-64, arm64)
    pos_ += 8;
    return true;
  }
  bool ReadFixed32(uint32_t& value) {
    if (wire_type_ != WireType::kFixed32 || bytes_.size() - pos_ < 4) return Fail();
    std::memcpy(&value, bytes_.data() + pos_, 4);
    pos_ += 4;
    return true;
  }
  // A length-delimited value (bytes, string, embedded message), as a view into the bytes.
  bool ReadBytes(std::string_view& value) {
    uint64_t length = 0;
    if (wire_type_ != WireType::kLengthDelimited ||
        !ReadVarint(bytes_, pos_, length, kMaxTagOrLengthBytes) || length > INT32_MAX ||
        length > bytes_.size() - pos_) {
      return Fail();
    }
    value = bytes_.substr(pos_, static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return true;
  }
  // Steps over the current field's value. Groups (wire types 3 and 4) and the undefined wire
  // types 6 and 7 are refused as malformed.
  bool Skip() {
    switch (wire_type_) {
      case WireType::kVarint: {
        uint64_t ignored = 0;
        return ReadVarintValue(ignored);
      }
      case WireType::kFixed64: {
        uint64_t ignored = 0;
        return ReadFixed64(ignored);
      }
      case WireType::kLengthDelimited: {
        std::string_view ignored;
        return ReadBytes(ignored);
      }
      case WireType::kFixed32: {
        uint32_t ignored = 0;
        return ReadFixed32(ignored);
      }
      default:
        return Fail();
    }
  }

 private:
  // Tags and lengths are 32-bit, so at most 5 bytes (and a length fits an int32), as protobuf's
  // parser reads them.
  static constexpr size_t kMaxTagOrLengthBytes = 5;

  bool Fail() {
    ok_ = false;
    pos_ = bytes_.size();
    return false;
  }

  std::string_view bytes_;
  size_t pos_ = 0;
  uint32_t field_ = 0;
  WireType wire_type_ = WireType::kVarint;
  bool ok_ = true;
};

// Calls `read_field(reader)` for each field of the message in `bytes`, after its tag; it must
// consume the field's value (a Read*() or Skip()). False as soon as it returns false or the bytes
// are malformed. Always inlined: it is the inner loop of the receivers' walks, and a call per
// message level (with `read_field` called through it) cost them about a tenth in the benchmarks.
template <typename ReadField>
[[gnu::always_inline]] inline bool ForEachField(std::string_view bytes, ReadField&& read_field) {
  WireReader reader(bytes);
  while (reader.Next()) {
    if (!read_field(reader)) return false;
  }
  return reader.ok();
}

// Whether `text` is valid UTF-8, as protobuf's parser checks a proto3 string field.
inline bool ValidUtf8(std::string_view text) {
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, text.data() + i, 8);
    if ((word & 0x8080808080808080ULL) != 0) break;
  }
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0x80) != 0) {
      return google::protobuf::internal::IsStructurallyValidUTF8(text.data() + i,
                                                                 static_cast<int>(text.size() - i));
    }
  }
  return true;
}

// protobuf's nesting limit for a parse (io::CodedInputStream's default).
inline constexpr int kProtobufRecursionLimit = 100;

// Parses `bytes` into `message` as protobuf would parse them `depth` levels below the message a
// parse started from: with the nesting limit less `depth`, so a message parsed on its own refuses
// exactly what parsing it inside its parent refuses.
inline bool ParseNested(std::string_view bytes, int depth, google::protobuf::MessageLite& message) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               static_cast<int>(bytes.size()));
  input.SetRecursionLimit(kProtobufRecursionLimit - depth);
  return message.ParseFromCodedStream(&input) && input.ConsumedEntireMessage();
}

}  // namespace meshtel::common
