#include "collector/store/store_key.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

TEST(StoreKeyTest, RoundTripsThroughSixteenBigEndianBytes) {
  const StoreKey key{0x0102030405060708, 0x1112131415161718};
  const std::string encoded = key.Encode();
  ASSERT_EQ(encoded.size(), 16u);
  EXPECT_EQ(encoded, std::string("\x01\x02\x03\x04\x05\x06\x07\x08"
                                 "\x11\x12\x13\x14\x15\x16\x17\x18",
                                 16));
  EXPECT_EQ(StoreKey::Decode(encoded), key);
}

TEST(StoreKeyTest, RejectsKeysOfAnotherSize) {
  EXPECT_EQ(StoreKey::Decode(""), std::nullopt);
  EXPECT_EQ(StoreKey::Decode(std::string(15, 'a')), std::nullopt);
  EXPECT_EQ(StoreKey::Decode(std::string(17, 'a')), std::nullopt);
}

TEST(StoreKeyTest, BytewiseOrderIsTimeThenSequenceOrder) {
  std::mt19937_64 random(7);
  std::vector<StoreKey> keys;
  for (int i = 0; i < 2000; ++i) {
    // Few distinct times, so that sequences decide often; values span all 64 bits.
    keys.push_back(StoreKey{random() % 4 == 0 ? random() : random() % 8, random()});
  }
  std::vector<StoreKey> by_value = keys;
  std::sort(by_value.begin(), by_value.end());
  std::vector<std::string> by_bytes;
  for (const StoreKey& key : keys) by_bytes.push_back(key.Encode());
  std::sort(by_bytes.begin(), by_bytes.end());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(StoreKey::Decode(by_bytes[i]), by_value[i]) << i;
  }
}

TEST(StoreKeyTest, PrintsSecondsNanosecondsAndSequence) {
  EXPECT_EQ((StoreKey{1'733'065'200'000'000'123, 42}.ToString()), "1733065200.000000123#42");
}

}  // namespace
}  // namespace meshtel::collector
