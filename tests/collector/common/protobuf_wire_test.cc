#include "collector/common/protobuf_wire.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::common {
namespace {

TEST(ProtobufWireTest, VarintsRoundTrip) {
  for (uint64_t value : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{300},
                         uint64_t{1} << 35, ~uint64_t{0}}) {
    std::string bytes;
    AppendVarint(value, bytes);
    EXPECT_EQ(bytes.size(), VarintSize(value)) << value;
    size_t pos = 0;
    uint64_t read = 0;
    ASSERT_TRUE(ReadVarint(bytes, pos, read)) << value;
    EXPECT_EQ(read, value);
    EXPECT_EQ(pos, bytes.size());
  }
  EXPECT_EQ(VarintSize(~uint64_t{0}), kMaxVarintBytes);
}

TEST(ProtobufWireTest, RefusesTruncatedAndOverlongVarints) {
  size_t pos = 0;
  uint64_t value = 0;
  EXPECT_FALSE(ReadVarint(std::string("\x80"), pos, value));
  pos = 0;
  EXPECT_FALSE(ReadVarint(std::string(10, '\x80') + '\x00', pos, value));  // 11 bytes
  pos = 0;
  // Ten bytes whose last one carries bits past the 64th.
  EXPECT_FALSE(ReadVarint(std::string(9, '\xff') + '\x02', pos, value));
  pos = 0;
  EXPECT_TRUE(ReadVarint(std::string(9, '\xff') + '\x01', pos, value));
  EXPECT_EQ(value, ~uint64_t{0});
}

TEST(ProtobufWireTest, ReaderWalksFieldsOfEveryWireType) {
  std::string bytes;
  AppendVarint(FieldTag(1, WireType::kVarint), bytes);
  AppendVarint(300, bytes);
  AppendVarint(FieldTag(2, WireType::kFixed64), bytes);
  bytes.append("12345678");
  AppendVarint(FieldTag(3, WireType::kLengthDelimited), bytes);
  AppendVarint(5, bytes);
  bytes.append("hello");
  AppendVarint(FieldTag(4000, WireType::kFixed32), bytes);
  bytes.append("abcd");

  WireReader reader(bytes);
  uint64_t number = 0;
  uint32_t number32 = 0;
  std::string_view text;
  ASSERT_TRUE(reader.Next());
  EXPECT_EQ(reader.field(), 1u);
  EXPECT_FALSE(WireReader(bytes).ReadFixed64(number));  // no tag read: wire type mismatch
  ASSERT_TRUE(reader.ReadVarintValue(number));
  EXPECT_EQ(number, 300u);
  ASSERT_TRUE(reader.Next());
  EXPECT_EQ(reader.wire_type(), WireType::kFixed64);
  ASSERT_TRUE(reader.ReadFixed64(number));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&number), 8), "12345678");
  ASSERT_TRUE(reader.Next());
  ASSERT_TRUE(reader.ReadBytes(text));
  EXPECT_EQ(text, "hello");
  ASSERT_TRUE(reader.Next());
  EXPECT_EQ(reader.field(), 4000u);
  ASSERT_TRUE(reader.ReadFixed32(number32));
  EXPECT_FALSE(reader.Next());
  EXPECT_TRUE(reader.ok());

  // Skip steps over each of them the same way.
  WireReader skipper(bytes);
  int fields = 0;
  while (skipper.Next()) {
    ASSERT_TRUE(skipper.Skip());
    ++fields;
  }
  EXPECT_TRUE(skipper.ok());
  EXPECT_EQ(fields, 4);
}

TEST(ProtobufWireTest, ReaderRefusesWhatProtobufRefuses) {
  auto walks = [](const std::string& bytes) {
    WireReader reader(bytes);
    while (reader.Next()) {
      if (!reader.Skip()) break;
    }
    return reader.ok();
  };
  EXPECT_TRUE(walks(""));
  EXPECT_FALSE(walks(std::string("\x00", 1)));  // field number 0
  EXPECT_FALSE(
      walks(std::string("\x0a\x05"
                        "abc")));  // length past the end
  EXPECT_FALSE(
      walks(std::string("\x09"
                        "1234")));                                      // truncated fixed64
  EXPECT_FALSE(walks(std::string("\x0b\x0c")));                         // a group
  EXPECT_FALSE(walks(std::string("\x0e\x00", 2)));                      // wire type 6
  EXPECT_FALSE(walks(std::string("\x88\x80\x80\x80\x80\x00\x00", 7)));  // tag over 5 bytes
  EXPECT_FALSE(walks(std::string("\x0a\x80\x80\x80\x80\x08", 6)));      // length over int32
  EXPECT_TRUE(walks(std::string("\x0a\x80\x80\x80\x80\x00", 6)));       // 5-byte length 0
}

}  // namespace
}  // namespace meshtel::common
