#include "collector/ingest/wire_text_repair.h"

#include <optional>
#include <string>

#include "envoy/data/accesslog/v3/accesslog.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/als_messages.h"

namespace meshtel::collector {
namespace {

using envoy::data::accesslog::v3::HTTPAccessLogEntry;
using meshtel::testing::LengthDelimitedField;
using meshtel::testing::SetStructString;

constexpr char kReplacement[] = "\xef\xbf\xbd";

// An entry with text at several depths: `bad` bytes appended to each string.
HTTPAccessLogEntry EntryWithText(const std::string& bad) {
  HTTPAccessLogEntry entry;
  entry.mutable_request()->set_path("/p" + bad);                                     // depth 1
  (*entry.mutable_request()->mutable_request_headers())["x-key" + bad] = "v" + bad;  // map entry
  entry.mutable_common_properties()->set_route_name("route" + bad);
  SetStructString(  // metadata → map entry → Struct → map entry → Value
      (*entry.mutable_common_properties()->mutable_metadata()->mutable_filter_metadata())["m"], "k",
      "s" + bad);
  entry.mutable_response()->mutable_response_code()->set_value(200);
  entry.mutable_common_properties()->set_sample_rate(0.5);  // a fixed64 field
  return entry;
}

TEST(WireTextRepairTest, EveryStringAtAnyDepthIsRepairedAndTheRestKeptAsItIs) {
  HTTPAccessLogEntry bad = EntryWithText("\xff");
  // Bytes that are not text keep their bytes: an Any's value, and an unknown field.
  (*bad.mutable_common_properties()->mutable_filter_state_objects())["state"].set_value("\xff\xfe");
  const std::string bytes = bad.SerializeAsString() + LengthDelimitedField(999, "\xc3");
  HTTPAccessLogEntry refused;
  ASSERT_FALSE(refused.ParseFromString(bytes));

  const std::optional<RepairedWireText> repaired =
      RepairWireText(bytes, *HTTPAccessLogEntry::descriptor());
  ASSERT_TRUE(repaired.has_value());
  EXPECT_EQ(repaired->strings, 5u);
  HTTPAccessLogEntry got;
  ASSERT_TRUE(got.ParseFromString(repaired->bytes));
  HTTPAccessLogEntry want = EntryWithText(kReplacement);
  (*want.mutable_common_properties()->mutable_filter_state_objects())["state"].set_value(
      "\xff\xfe");
  ASSERT_TRUE(want.ParseFromString(want.SerializeAsString() + LengthDelimitedField(999, "\xc3")));
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(want, got)) << difference;
  const google::protobuf::UnknownFieldSet& unknown = got.GetReflection()->GetUnknownFields(got);
  ASSERT_EQ(unknown.field_count(), 1);
  EXPECT_EQ(unknown.field(0).number(), 999);
  EXPECT_EQ(unknown.field(0).length_delimited(), "\xc3");
}

TEST(WireTextRepairTest, AMessageWithValidTextIsRewrittenToTheSameBytes) {
  const std::string bytes = EntryWithText("é").SerializeAsString();
  const std::optional<RepairedWireText> repaired =
      RepairWireText(bytes, *HTTPAccessLogEntry::descriptor());
  ASSERT_TRUE(repaired.has_value());
  EXPECT_EQ(repaired->strings, 0u);
  EXPECT_EQ(repaired->bytes, bytes);
}

// An unknown group (protobuf takes it; this walk does not read groups) inside the remote
// address: that message is copied as it is, and the text elsewhere is still repaired.
TEST(WireTextRepairTest, AMessageItCannotReadIsCopiedAsItIs) {
  const std::string group = "\x9b\x06\x08\x01\x9c\x06";  // field 99: start, a varint, end
  HTTPAccessLogEntry bad;
  bad.mutable_request()->set_path("/p\xff");
  const std::string bytes =
      LengthDelimitedField(1, LengthDelimitedField(2, group)) + bad.SerializeAsString();
  HTTPAccessLogEntry entry;
  ASSERT_FALSE(entry.ParseFromString(bytes));
  const std::optional<RepairedWireText> repaired =
      RepairWireText(bytes, *HTTPAccessLogEntry::descriptor());
  ASSERT_TRUE(repaired.has_value());
  EXPECT_EQ(repaired->strings, 1u);
  ASSERT_TRUE(entry.ParseFromString(repaired->bytes));
  EXPECT_EQ(entry.request().path(), std::string("/p") + kReplacement);
  EXPECT_TRUE(entry.common_properties().has_downstream_remote_address());
  EXPECT_NE(repaired->bytes.find(group), std::string::npos);
}

TEST(WireTextRepairTest, WhatProtobufRefusesForItsFormStaysRefused) {
  const std::string bytes = EntryWithText("\xff").SerializeAsString();
  const google::protobuf::Descriptor& type = *HTTPAccessLogEntry::descriptor();
  for (size_t cut : {bytes.size() - 1, bytes.size() / 2, size_t{1}}) {
    EXPECT_FALSE(RepairWireText(bytes.substr(0, cut), type).has_value()) << cut;
  }
  // A group (wire type 3) at the top level.
  EXPECT_FALSE(RepairWireText(bytes + "\x0b\x0c", type).has_value());
  // Structs nested past protobuf's recursion limit: the deepest ones are copied as they are, and
  // protobuf refuses the result.
  google::protobuf::Struct deep;
  google::protobuf::Struct* level = &deep;
  for (int i = 0; i < 120; ++i) {
    level = (*level->mutable_fields())["s"].mutable_struct_value();
  }
  SetStructString(*level, "k", "\xff");
  const std::string deep_bytes = deep.SerializeAsString();
  google::protobuf::Struct parsed;
  ASSERT_FALSE(parsed.ParseFromString(deep_bytes));
  const std::optional<RepairedWireText> too_deep =
      RepairWireText(deep_bytes, *google::protobuf::Struct::descriptor());
  ASSERT_TRUE(too_deep.has_value());
  EXPECT_FALSE(parsed.ParseFromString(too_deep->bytes));
  // Less deep, it is repaired.
  google::protobuf::Struct shallow;
  SetStructString(*(*shallow.mutable_fields())["s"].mutable_struct_value(), "k", "\xff");
  const std::optional<RepairedWireText> repaired =
      RepairWireText(shallow.SerializeAsString(), *google::protobuf::Struct::descriptor());
  ASSERT_TRUE(repaired.has_value());
  EXPECT_EQ(repaired->strings, 1u);
  ASSERT_TRUE(parsed.ParseFromString(repaired->bytes));
  EXPECT_EQ(parsed.fields().at("s").struct_value().fields().at("k").string_value(), kReplacement);
}

TEST(WireTextRepairTest, ParseRepairingTextParsesAsItIsOrRepairedOrNotAtAll) {
  HTTPAccessLogEntry entry;
  const std::string valid = EntryWithText("é").SerializeAsString();
  EXPECT_EQ(ParseRepairingText(valid, 0, entry), std::optional<size_t>(0));
  EXPECT_EQ(entry.request().path(), "/pé");
  const std::string bad = EntryWithText("\xff").SerializeAsString();
  EXPECT_EQ(ParseRepairingText(bad, 0, entry), std::optional<size_t>(5));
  EXPECT_EQ(entry.request().path(), std::string("/p") + kReplacement);
  EXPECT_FALSE(ParseRepairingText(bad.substr(0, bad.size() - 1), 0, entry).has_value());
  // The depth counts against protobuf's recursion limit, as for ParseNested.
  EXPECT_FALSE(ParseRepairingText(bad, 98, entry).has_value());
}

}  // namespace
}  // namespace meshtel::collector
