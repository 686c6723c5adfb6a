#pragma once
// StoreKey: the key of one stored record — (time, sequence), encoded so that RocksDB's bytewise
// order is time order.
//
// Encoding: 16 bytes, the time in nanoseconds since the Unix epoch then the sequence, each as an
// unsigned 64-bit big-endian integer. A time range [from, to) is the key range
// [StoreKey{from, 0}, StoreKey{to, 0}).
//
// Pure value type; no state, safe from any thread.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace meshtel::collector {

struct StoreKey {
  static constexpr size_t kEncodedSize = 16;

  uint64_t time_unix_nano = 0;
  uint64_t sequence = 0;

  std::string Encode() const;
  // Writes the kEncodedSize bytes of Encode() to `out`.
  void EncodeTo(char* out) const;
  // The key `encoded` holds, or nullopt when it is not exactly kEncodedSize bytes.
  static std::optional<StoreKey> Decode(std::string_view encoded);

  // "1733065200.123456789#42": for logs, errors and the admin API.
  std::string ToString() const;

  auto operator<=>(const StoreKey&) const = default;
};

}  // namespace meshtel::collector
