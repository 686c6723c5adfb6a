#include "exporters/fluentd/msgpack.h"

#include <bit>
#include <cstring>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace meshtel::exporters::fluentd {

void MsgpackWriter::BigEndian(uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
    Byte(static_cast<uint8_t>(value >> shift));
  }
}

void MsgpackWriter::Nil() { Byte(0xc0); }

void MsgpackWriter::Bool(bool value) { Byte(value ? 0xc3 : 0xc2); }

void MsgpackWriter::Uint(uint64_t value) {
  if (value <= 0x7f) {
    Byte(static_cast<uint8_t>(value));
  } else if (value <= 0xff) {
    Byte(0xcc);
    BigEndian(value, 1);
  } else if (value <= 0xffff) {
    Byte(0xcd);
    BigEndian(value, 2);
  } else if (value <= 0xffffffffu) {
    Byte(0xce);
    BigEndian(value, 4);
  } else {
    Byte(0xcf);
    BigEndian(value, 8);
  }
}

void MsgpackWriter::Int(int64_t value) {
  if (value >= 0) {
    Uint(static_cast<uint64_t>(value));
    return;
  }
  const uint64_t bits = static_cast<uint64_t>(value);
  if (value >= -32) {
    Byte(static_cast<uint8_t>(bits));  // negative fixint: 111xxxxx
  } else if (value >= INT8_MIN) {
    Byte(0xd0);
    BigEndian(bits, 1);
  } else if (value >= INT16_MIN) {
    Byte(0xd1);
    BigEndian(bits, 2);
  } else if (value >= INT32_MIN) {
    Byte(0xd2);
    BigEndian(bits, 4);
  } else {
    Byte(0xd3);
    BigEndian(bits, 8);
  }
}

void MsgpackWriter::Double(double value) {
  Byte(0xcb);
  BigEndian(std::bit_cast<uint64_t>(value), 8);
}

void MsgpackWriter::Str(std::string_view value) {
  const uint64_t size = value.size();
  if (size <= 31) {
    Byte(static_cast<uint8_t>(0xa0 | size));
  } else if (size <= 0xff) {
    Byte(0xd9);
    BigEndian(size, 1);
  } else if (size <= 0xffff) {
    Byte(0xda);
    BigEndian(size, 2);
  } else {
    Byte(0xdb);
    BigEndian(size, 4);
  }
  out_.append(value);
}

void MsgpackWriter::Bin(std::string_view value) {
  const uint64_t size = value.size();
  if (size <= 0xff) {
    Byte(0xc4);
    BigEndian(size, 1);
  } else if (size <= 0xffff) {
    Byte(0xc5);
    BigEndian(size, 2);
  } else {
    Byte(0xc6);
    BigEndian(size, 4);
  }
  out_.append(value);
}

void MsgpackWriter::ArrayHeader(uint32_t size) {
  if (size <= 15) {
    Byte(static_cast<uint8_t>(0x90 | size));
  } else if (size <= 0xffff) {
    Byte(0xdc);
    BigEndian(size, 2);
  } else {
    Byte(0xdd);
    BigEndian(size, 4);
  }
}

void MsgpackWriter::MapHeader(uint32_t size) {
  if (size <= 15) {
    Byte(static_cast<uint8_t>(0x80 | size));
  } else if (size <= 0xffff) {
    Byte(0xde);
    BigEndian(size, 2);
  } else {
    Byte(0xdf);
    BigEndian(size, 4);
  }
}

void MsgpackWriter::Ext(int8_t type, std::string_view data) {
  const uint64_t size = data.size();
  switch (size) {
    case 1:
      Byte(0xd4);
      break;
    case 2:
      Byte(0xd5);
      break;
    case 4:
      Byte(0xd6);
      break;
    case 8:
      Byte(0xd7);
      break;
    case 16:
      Byte(0xd8);
      break;
    default:
      if (size <= 0xff) {
        Byte(0xc7);
        BigEndian(size, 1);
      } else if (size <= 0xffff) {
        Byte(0xc8);
        BigEndian(size, 2);
      } else {
        Byte(0xc9);
        BigEndian(size, 4);
      }
  }
  Byte(static_cast<uint8_t>(type));
  out_.append(data);
}

void MsgpackWriter::EventTime(uint32_t seconds, uint32_t nanoseconds) {
  Byte(0xd7);
  Byte(static_cast<uint8_t>(kEventTimeExtType));
  BigEndian(seconds, 4);
  BigEndian(nanoseconds, 4);
}

const MsgpackValue* MsgpackValue::Find(std::string_view key) const {
  if (type != Type::kMap) return nullptr;
  for (const auto& [k, v] : map) {
    if (k.type == Type::kStr && k.bytes == key) return &v;
  }
  return nullptr;
}

std::optional<int64_t> MsgpackValue::AsInt() const {
  if (type == Type::kInt) return int_value;
  if (type == Type::kUint && uint_value <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(uint_value);
  }
  return std::nullopt;
}

namespace {

// Reads one object; with a null `out` it only checks it and moves past it (no allocation).
class Decoder {
 public:
  explicit Decoder(std::string_view data) : data_(data) {}

  absl::Status Decode(MsgpackValue* out, int depth) {
    if (depth > kMaxMsgpackDepth) {
      return absl::InvalidArgumentError(
          fmt::format("msgpack: containers nested deeper than {}", kMaxMsgpackDepth));
    }
    uint8_t tag = 0;
    if (absl::Status s = Byte(tag); !s.ok()) return s;
    if (tag <= 0x7f) return SetUint(out, tag);
    if (tag >= 0xe0) return SetInt(out, static_cast<int8_t>(tag));
    if ((tag & 0xe0) == 0xa0) return Bytes(out, MsgpackValue::Type::kStr, tag & 0x1f);
    if ((tag & 0xf0) == 0x90) return Array(out, tag & 0x0f, depth);
    if ((tag & 0xf0) == 0x80) return Map(out, tag & 0x0f, depth);
    uint64_t n = 0;
    absl::Status s;
    switch (tag) {
      case 0xc0:
        if (out != nullptr) out->type = MsgpackValue::Type::kNil;
        return absl::OkStatus();
      case 0xc2:
      case 0xc3:
        if (out != nullptr) {
          out->type = MsgpackValue::Type::kBool;
          out->boolean = tag == 0xc3;
        }
        return absl::OkStatus();
      case 0xc4:
      case 0xc5:
      case 0xc6:
        if (s = BigEndian(n, 1 << (tag - 0xc4)); !s.ok()) return s;
        return Bytes(out, MsgpackValue::Type::kBin, n);
      case 0xc7:
      case 0xc8:
      case 0xc9:
        if (s = BigEndian(n, 1 << (tag - 0xc7)); !s.ok()) return s;
        return ExtBody(out, n);
      case 0xca: {
        if (s = BigEndian(n, 4); !s.ok()) return s;
        if (out != nullptr) {
          out->type = MsgpackValue::Type::kFloat;
          out->float_value = std::bit_cast<float>(static_cast<uint32_t>(n));
        }
        return absl::OkStatus();
      }
      case 0xcb:
        if (s = BigEndian(n, 8); !s.ok()) return s;
        if (out != nullptr) {
          out->type = MsgpackValue::Type::kFloat;
          out->float_value = std::bit_cast<double>(n);
        }
        return absl::OkStatus();
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf:
        if (s = BigEndian(n, 1 << (tag - 0xcc)); !s.ok()) return s;
        return SetUint(out, n);
      case 0xd0:
        if (s = BigEndian(n, 1); !s.ok()) return s;
        return SetInt(out, static_cast<int8_t>(n));
      case 0xd1:
        if (s = BigEndian(n, 2); !s.ok()) return s;
        return SetInt(out, static_cast<int16_t>(n));
      case 0xd2:
        if (s = BigEndian(n, 4); !s.ok()) return s;
        return SetInt(out, static_cast<int32_t>(n));
      case 0xd3:
        if (s = BigEndian(n, 8); !s.ok()) return s;
        return SetInt(out, static_cast<int64_t>(n));
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return ExtBody(out, uint64_t{1} << (tag - 0xd4));
      case 0xd9:
      case 0xda:
      case 0xdb:
        if (s = BigEndian(n, 1 << (tag - 0xd9)); !s.ok()) return s;
        return Bytes(out, MsgpackValue::Type::kStr, n);
      case 0xdc:
      case 0xdd:
        if (s = BigEndian(n, tag == 0xdc ? 2 : 4); !s.ok()) return s;
        return Array(out, n, depth);
      case 0xde:
      case 0xdf:
        if (s = BigEndian(n, tag == 0xde ? 2 : 4); !s.ok()) return s;
        return Map(out, n, depth);
      default:
        return absl::InvalidArgumentError(
            fmt::format("msgpack: byte 0x{:02x} at offset {} is not a type", tag, pos_ - 1));
    }
  }

  size_t position() const { return pos_; }

 private:
  static absl::Status Truncated() {
    return absl::OutOfRangeError("msgpack: the data ends inside an object");
  }
  absl::Status Byte(uint8_t& out) {
    if (pos_ >= data_.size()) return Truncated();
    out = static_cast<uint8_t>(data_[pos_++]);
    return absl::OkStatus();
  }
  absl::Status BigEndian(uint64_t& out, int bytes) {
    if (data_.size() - pos_ < static_cast<size_t>(bytes)) return Truncated();
    out = 0;
    for (int i = 0; i < bytes; ++i) out = (out << 8) | static_cast<uint8_t>(data_[pos_++]);
    return absl::OkStatus();
  }
  absl::Status SetUint(MsgpackValue* out, uint64_t value) {
    if (out != nullptr) {
      out->type = MsgpackValue::Type::kUint;
      out->uint_value = value;
    }
    return absl::OkStatus();
  }
  absl::Status SetInt(MsgpackValue* out, int64_t value) {
    if (value >= 0) return SetUint(out, static_cast<uint64_t>(value));
    if (out != nullptr) {
      out->type = MsgpackValue::Type::kInt;
      out->int_value = value;
    }
    return absl::OkStatus();
  }
  absl::Status Bytes(MsgpackValue* out, MsgpackValue::Type type, uint64_t size) {
    if (data_.size() - pos_ < size) return Truncated();
    if (out != nullptr) {
      out->type = type;
      out->bytes.assign(data_.substr(pos_, size));
    }
    pos_ += size;
    return absl::OkStatus();
  }
  absl::Status ExtBody(MsgpackValue* out, uint64_t size) {
    uint64_t type = 0;
    if (absl::Status s = BigEndian(type, 1); !s.ok()) return s;
    if (absl::Status s = Bytes(out, MsgpackValue::Type::kExt, size); !s.ok()) return s;
    if (out != nullptr) out->ext_type = static_cast<int8_t>(type);
    return absl::OkStatus();
  }
  absl::Status Array(MsgpackValue* out, uint64_t size, int depth) {
    // Every element takes at least one byte: a count beyond the data left needs more data.
    if (data_.size() - pos_ < size) return Truncated();
    if (out == nullptr) {
      for (uint64_t i = 0; i < size; ++i) {
        if (absl::Status s = Decode(nullptr, depth + 1); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    out->type = MsgpackValue::Type::kArray;
    out->array.resize(size);
    for (MsgpackValue& element : out->array) {
      if (absl::Status s = Decode(&element, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::Status Map(MsgpackValue* out, uint64_t size, int depth) {
    if ((data_.size() - pos_) / 2 < size) return Truncated();
    if (out == nullptr) {
      for (uint64_t i = 0; i < 2 * size; ++i) {
        if (absl::Status s = Decode(nullptr, depth + 1); !s.ok()) return s;
      }
      return absl::OkStatus();
    }
    out->type = MsgpackValue::Type::kMap;
    out->map.resize(size);
    for (auto& [key, value] : out->map) {
      if (absl::Status s = Decode(&key, depth + 1); !s.ok()) return s;
      if (absl::Status s = Decode(&value, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<MsgpackValue> DecodeMsgpack(std::string_view data, size_t& consumed) {
  Decoder decoder(data);
  MsgpackValue value;
  if (absl::Status s = decoder.Decode(&value, 0); !s.ok()) return s;
  consumed = decoder.position();
  return value;
}

absl::StatusOr<size_t> MsgpackObjectSize(std::string_view data) {
  Decoder decoder(data);
  if (absl::Status s = decoder.Decode(nullptr, 0); !s.ok()) return s;
  return decoder.position();
}

}  // namespace meshtel::exporters::fluentd
