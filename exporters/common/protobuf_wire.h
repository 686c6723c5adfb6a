#pragma once
// Protobuf wire-format pieces for the encoders that write protobuf bytes by hand (Loki's push,
// Jaeger's batch framing): base-128 varints, encoded by protobuf's own CodedOutputStream.
// Pure functions; safe from any thread.

#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/io/coded_stream.h"

namespace meshtel::exporters {

// Bytes of `value` as a varint.
inline size_t VarintSize(uint64_t value) {
  return google::protobuf::io::CodedOutputStream::VarintSize64(value);
}

// Appends `value` to `out` as a varint.
inline void AppendVarint(uint64_t value, std::string& out) {
  uint8_t bytes[10];  // a 64-bit varint's most
  const uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(value, bytes);
  out.append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(end - bytes));
}

}  // namespace meshtel::exporters
