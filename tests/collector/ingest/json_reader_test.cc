#include "collector/ingest/json_reader.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

TEST(JsonReaderTest, ReadsValuesAndKeepsNumberText) {
  absl::StatusOr<JsonValue> value = ParseJson(
      R"( {"a": [1, -2.5e3, "x", true, false, null], "b": {"c": 18446744073709551615}} )");
  ASSERT_TRUE(value.ok()) << value.status();
  ASSERT_TRUE(value->is_object());
  ASSERT_EQ(value->members.size(), 2u);
  const JsonValue& a = value->members[0].second;
  ASSERT_TRUE(a.is_array());
  ASSERT_EQ(a.items.size(), 6u);
  EXPECT_EQ(a.items[0].text, "1");
  EXPECT_EQ(a.items[1].text, "-2.5e3");
  EXPECT_EQ(a.items[2].text, "x");
  EXPECT_TRUE(a.items[3].boolean);
  EXPECT_FALSE(a.items[4].boolean);
  EXPECT_TRUE(a.items[5].is_null());
  EXPECT_EQ(value->members[1].second.members[0].second.text, "18446744073709551615");
}

TEST(JsonReaderTest, UnescapesStringsAndSurrogatePairs) {
  absl::StatusOr<JsonValue> value = ParseJson(R"("a\"b\\c\/d\n\t\u00e9\ud83d\ude00 é")");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->text, "a\"b\\c/d\n\t\xC3\xA9\xF0\x9F\x98\x80 \xC3\xA9");
}

TEST(JsonReaderTest, KeepsDuplicateKeysInOrder) {
  absl::StatusOr<JsonValue> value = ParseJson(R"({"k":1,"k":2})");
  ASSERT_TRUE(value.ok());
  ASSERT_EQ(value->members.size(), 2u);
  EXPECT_EQ(value->members[1].second.text, "2");
}

TEST(JsonReaderTest, RejectsWhatRfc8259Rejects) {
  for (const char* text : {"",
                           "{",
                           "[1,]",
                           "{\"a\":1,}",
                           "01",
                           "1.",
                           ".5",
                           "-",
                           "1e",
                           "+1",
                           "NaN",
                           "Infinity",
                           "'a'",
                           "{a:1}",
                           "\"\\x\"",
                           "\"\\ud800\"",
                           "\"\\udc00\"",
                           "\"\\ud800\\u0041\"",
                           "\"a\x01\"",
                           "\"\xC3\"",
                           "\"\xC0\xAF\"",
                           "\"\xED\xA0\x80\"",
                           "\"\xF4\x90\x80\x80\"",
                           "1 2",
                           "{} x",
                           "tru",
                           "nul",
                           "[1 2]",
                           "{\"a\" 1}",
                           "\"abc"}) {
    EXPECT_FALSE(ParseJson(text).ok()) << "accepted: " << text;
  }
}

TEST(JsonReaderTest, BoundsTheNesting) {
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  absl::StatusOr<JsonValue> refused = ParseJson(deep);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("nesting too deep"), std::string::npos);
  EXPECT_TRUE(ParseJson(deep, 256).ok());
}

TEST(JsonReaderTest, ErrorsNameTheOffset) {
  absl::StatusOr<JsonValue> value = ParseJson("{\"a\": tx}");
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().message(), "JSON: invalid literal at byte 6");
}

}  // namespace
}  // namespace meshtel::collector
