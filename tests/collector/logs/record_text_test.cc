#include "collector/logs/record_text.h"

#include <algorithm>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

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
  EXPECT_EQ(parsed.path(), "x\xef\xbf\xbdy");       // U+FFFD for the byte that is not UTF-8
  EXPECT_EQ(parsed.destination().principal(), "x\xef\xbf\xbdy");
  EXPECT_EQ(parsed.custom_tags(0).value(), "x\xef\xbf\xbdy");
  // Already valid: nothing changes.
  EXPECT_EQ(SanitizeRecordText(record), 0u);
}

}  // namespace
}  // namespace meshtel::collector
