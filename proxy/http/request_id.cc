#include "proxy/http/request_id.h"

#include <cstdint>
#include <random>

namespace meshtel::proxy {

void WriteRequestId(char* out) {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  uint64_t high = generator();
  uint64_t low = generator();
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // variant 10xx
  static constexpr char kHex[] = "0123456789abcdef";
  char* id = out;
  for (size_t dash : {8, 13, 18, 23}) id[dash] = '-';
  size_t position = 0;
  const auto put = [&](uint64_t value, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (position == 8 || position == 13 || position == 18 || position == 23) ++position;
      id[position++] = kHex[(value >> (i * 4)) & 0xf];
    }
  };
  put(high, 16);
  put(low, 16);
}

std::string NewRequestId() {
  std::string id(kRequestIdSize, '-');
  WriteRequestId(id.data());
  return id;
}

}  // namespace meshtel::proxy
