#include "proxy/http/record_text.h"

#include <algorithm>
#include <string>
#include <vector>

#include "collector/common/protobuf_wire.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

std::string Sanitized(std::string text) {
  SanitizeUtf8(text);
  return text;
}

TEST(RecordTextTest, ValidUtf8IsLeftAsItIs) {
  for (const std::string& text :
       {std::string(), std::string("/index.html?q=1"), std::string("caf\xc3\xa9"),
        std::string("\xe2\x82\xac 10"), std::string("\xf0\x9f\x98\x80 smile"),
        std::string("\xef\xbf\xbd"), std::string("\xf4\x8f\xbf\xbf"), std::string("a\0b", 3)}) {
    std::string copy = text;
    EXPECT_FALSE(SanitizeUtf8(copy));
    EXPECT_EQ(copy, text);
  }
}

TEST(RecordTextTest, EachByteOutsideAValidSequenceBecomesAnExclamationMark) {
  EXPECT_EQ(Sanitized("caf\xe9"), "caf!");           // Latin-1
  EXPECT_EQ(Sanitized("\xff\xfe/1"), "!!/1");        // never in UTF-8
  EXPECT_EQ(Sanitized("a\x80z"), "a!z");             // a lone continuation byte
  EXPECT_EQ(Sanitized("\xc3"), "!");                 // truncated at the end
  EXPECT_EQ(Sanitized("\xe2\x82z"), "!!z");          // truncated in the middle
  EXPECT_EQ(Sanitized("\xc0\xaf"), "!!");            // overlong '/'
  EXPECT_EQ(Sanitized("\xe0\x80\xaf"), "!!!");       // overlong, 3 bytes
  EXPECT_EQ(Sanitized("\xed\xa0\x80"), "!!!");       // a surrogate
  EXPECT_EQ(Sanitized("\xf4\x90\x80\x80"), "!!!!");  // above U+10FFFF
  EXPECT_EQ(Sanitized("\xf5\x80\x80\x80"), "!!!!");  // no such lead byte
  EXPECT_EQ(Sanitized("ok \xc3\xa9 \xe9 \xe2\x82\xac"), "ok \xc3\xa9 ! \xe2\x82\xac");  // mixed
  for (int byte = 0; byte < 256; ++byte) {
    std::string one(1, static_cast<char>(byte));
    SanitizeUtf8(one);
    EXPECT_TRUE(common::ValidUtf8(one)) << byte;
  }
}

// Sets every string field reachable from `message` to `value`, except in the fields named
// `skip` (messages only the collector fills); repeated fields get one element.
void FillStrings(google::protobuf::Message& message, const std::string& value,
                 const std::vector<std::string>& skip, size_t& filled) {
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const google::protobuf::FieldDescriptor& field = *descriptor.field(i);
    if (std::find(skip.begin(), skip.end(), field.name()) != skip.end()) continue;
    if (field.type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      if (field.is_repeated()) {
        reflection.AddString(&message, &field, value);
      } else {
        reflection.SetString(&message, &field, value);
      }
      ++filled;
    } else if (field.type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      google::protobuf::Message* child = field.is_repeated()
                                             ? reflection.AddMessage(&message, &field)
                                             : reflection.MutableMessage(&message, &field);
      FillStrings(*child, value, skip, filled);
    }
  }
}

// Every text field of a record the proxy fills is sanitized: a field added to the schema later
// fails this test until SanitizeRecordText covers it.
TEST(RecordTextTest, EveryTextFieldOfARecordIsMadeValid) {
  meshtel::v1::RequestRecord record;
  size_t filled = 0;
  FillStrings(record, "x\xe9y", {"received_span", "received_log"}, filled);
  EXPECT_GT(filled, 30u);
  EXPECT_EQ(SanitizeRecordText(record), filled);
  std::string serialized;
  ASSERT_TRUE(record.SerializeToString(&serialized));
  meshtel::v1::RequestRecord parsed;
  EXPECT_TRUE(parsed.ParseFromString(serialized));  // a proto3 parse checks every string
  EXPECT_EQ(parsed.path(), "x!y");
  EXPECT_EQ(parsed.destination().principal(), "x!y");
  EXPECT_EQ(parsed.custom_tags(0).value(), "x!y");
  // Already valid: nothing changes.
  EXPECT_EQ(SanitizeRecordText(record), 0u);
}

}  // namespace
}  // namespace meshtel::proxy
