#include "collector/store/store_key.h"

#include "absl/strings/str_format.h"

namespace meshtel::collector {
namespace {

void StoreBigEndian(uint64_t value, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}

uint64_t LoadBigEndian(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(in[i]);
  return value;
}

}  // namespace

std::string StoreKey::Encode() const {
  std::string encoded(kEncodedSize, '\0');
  EncodeTo(encoded.data());
  return encoded;
}

void StoreKey::EncodeTo(char* out) const {
  StoreBigEndian(time_unix_nano, out);
  StoreBigEndian(sequence, out + 8);
}

std::optional<StoreKey> StoreKey::Decode(std::string_view encoded) {
  if (encoded.size() != kEncodedSize) return std::nullopt;
  return StoreKey{LoadBigEndian(encoded.data()), LoadBigEndian(encoded.data() + 8)};
}

std::string StoreKey::ToString() const {
  return absl::StrFormat("%d.%09d#%d", time_unix_nano / 1'000'000'000,
                         time_unix_nano % 1'000'000'000, sequence);
}

}  // namespace meshtel::collector
