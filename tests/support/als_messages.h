#pragma once
// Test support: building Envoy ALS messages and protobuf bytes by hand for the ALS converter and
// decoder tests — a Struct's string field, a socket address, and a length-delimited field (for
// bytes protobuf itself would not write: fields given twice, reordered, merged).
//
// Pure functions.

#include <cstdint>
#include <string>

#include "collector/common/protobuf_wire.h"
#include "envoy/config/core/v3/address.pb.h"
#include "google/protobuf/struct.pb.h"

namespace meshtel::testing {

inline void SetStructString(google::protobuf::Struct& fields, const std::string& key,
                            const std::string& value) {
  (*fields.mutable_fields())[key].set_string_value(value);
}

inline void SetSocketAddress(envoy::config::core::v3::Address& address, const std::string& ip,
                             uint32_t port) {
  address.mutable_socket_address()->set_address(ip);
  address.mutable_socket_address()->set_port_value(port);
}

// Field `field`, length-delimited, holding `bytes`.
inline std::string LengthDelimitedField(uint32_t field, const std::string& bytes) {
  std::string out;
  common::AppendVarint(common::FieldTag(field, common::WireType::kLengthDelimited), out);
  common::AppendVarint(bytes.size(), out);
  return out + bytes;
}

}  // namespace meshtel::testing
