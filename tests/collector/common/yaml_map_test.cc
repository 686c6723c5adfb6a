#include "collector/common/yaml_map.h"

#include "gtest/gtest.h"

namespace meshtel::common {
namespace {

TEST(YamlMapTest, AbsentKeysKeepDefaults) {
  YamlMap map(YAML::Load("{}"), "");
  std::string text = "default";
  uint64_t number = 7;
  absl::Duration duration = absl::Seconds(3);
  map.Read("text", text);
  map.Read("number", number);
  map.Read("duration", duration);
  EXPECT_TRUE(map.Finish().ok());
  EXPECT_EQ(text, "default");
  EXPECT_EQ(number, 7u);
  EXPECT_EQ(duration, absl::Seconds(3));
}

TEST(YamlMapTest, NullValueKeepsDefault) {
  YamlMap map(YAML::Load("text: ~"), "");
  std::string text = "default";
  map.Read("text", text);
  EXPECT_TRUE(map.Finish().ok());
  EXPECT_EQ(text, "default");
}

TEST(YamlMapTest, ReadsEveryType) {
  YamlMap map(YAML::Load(R"(
text: hello
flag: true
count: 42
ratio: 0.25
wait: 1m30s
address: "[::1]:9"
names: [a, b]
addresses: ["127.0.0.1:1", "h:2"]
)"),
              "");
  std::string text;
  bool flag = false;
  uint32_t count = 0;
  double ratio = 0;
  absl::Duration wait;
  HostPort address;
  std::vector<std::string> names;
  std::vector<HostPort> addresses;
  map.Read("text", text);
  map.Read("flag", flag);
  map.Read("count", count);
  map.Read("ratio", ratio);
  map.Read("wait", wait);
  map.Read("address", address);
  map.Read("names", names);
  map.Read("addresses", addresses);
  ASSERT_TRUE(map.Finish().ok()) << map.Finish();
  EXPECT_EQ(text, "hello");
  EXPECT_TRUE(flag);
  EXPECT_EQ(count, 42u);
  EXPECT_DOUBLE_EQ(ratio, 0.25);
  EXPECT_EQ(wait, absl::Seconds(90));
  EXPECT_EQ(address, (HostPort{"::1", 9}));
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(addresses.size(), 2u);
  EXPECT_EQ(addresses[1], (HostPort{"h", 2}));
}

TEST(YamlMapTest, FirstErrorWinsAndNamesNestedPath) {
  YamlMap top(YAML::Load("outer: {inner: {count: -3, other: x}}"), "");
  auto outer = top.Map("outer");
  ASSERT_TRUE(outer.has_value());
  auto inner = outer->Map("inner");
  ASSERT_TRUE(inner.has_value());
  uint64_t count = 0;
  inner->Read("count", count);
  outer->Fail(inner->Finish());
  top.Fail(outer->Finish());
  const absl::Status status = top.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "outer.inner.count: '-3' is not a non-negative integer");
}

TEST(YamlMapTest, UnknownKeyIsNamed) {
  YamlMap top(YAML::Load("known: 1\nunknwon: 2"), "section");
  uint64_t known = 0;
  top.Read("known", known);
  EXPECT_EQ(top.Finish().message(), "section.unknwon: unknown key");
}

TEST(YamlMapTest, Uint32Overflow) {
  YamlMap top(YAML::Load("n: 4294967296"), "");
  uint32_t n = 0;
  top.Read("n", n);
  EXPECT_EQ(top.Finish().message(), "n: '4294967296' is larger than 4294967295");
}

TEST(YamlMapTest, ListOfMappings) {
  YamlMap top(YAML::Load("items: [{a: 1}, {a: 2, b: 3}]"), "");
  std::vector<YamlMap> items = top.MapList("items");
  ASSERT_EQ(items.size(), 2u);
  uint64_t a = 0;
  items[1].Read("a", a);
  EXPECT_EQ(a, 2u);
  EXPECT_EQ(items[1].Finish().message(), "items[1].b: unknown key");
}

TEST(YamlMapTest, StringMapKeepsDocumentOrder) {
  YamlMap map(YAML::Load("fields: {b: \"%DURATION%\", a: x, c: 5, d: ''}"), "top");
  std::vector<std::pair<std::string, std::string>> fields;
  map.Read("fields", fields);
  ASSERT_TRUE(map.Finish().ok());
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"b", "%DURATION%"}, {"a", "x"}, {"c", "5"}, {"d", ""}};
  EXPECT_EQ(fields, expected);
}

TEST(YamlMapTest, StringMapErrorsNameTheEntry) {
  std::vector<std::pair<std::string, std::string>> fields = {{"kept", "default"}};
  YamlMap not_a_map(YAML::Load("fields: [a, b]"), "top");
  not_a_map.Read("fields", fields);
  EXPECT_EQ(not_a_map.Finish().message(), "top.fields: must be a mapping of strings to strings");
  YamlMap nested(YAML::Load("fields: {a: x, b: {c: d}}"), "top");
  nested.Read("fields", fields);
  EXPECT_EQ(nested.Finish().message(), "top.fields.b: must be a string");
  YamlMap null_value(YAML::Load("fields: {a: ~}"), "top");
  null_value.Read("fields", fields);
  EXPECT_EQ(null_value.Finish().message(), "top.fields.a: must be a string");
  const std::vector<std::pair<std::string, std::string>> untouched = {{"kept", "default"}};
  EXPECT_EQ(fields, untouched);
}

TEST(YamlMapTest, NonMappingDocumentIsAnError) {
  YamlMap top(YAML::Load("- a\n- b"), "");
  EXPECT_EQ(top.Finish().message(), "document: must be a mapping of keys to values");
}

TEST(YamlMapTest, HasTellsPresentKeysIncludingNull) {
  YamlMap map(YAML::Load("a: 1\nb: ~\n"), "");
  EXPECT_TRUE(map.Has("a"));
  EXPECT_TRUE(map.Has("b"));
  EXPECT_FALSE(map.Has("c"));
  YamlMap empty(YAML::Node(), "");
  EXPECT_FALSE(empty.Has("a"));
}

}  // namespace
}  // namespace meshtel::common
