#include "collector/metrics/record_fields.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

TEST(RecordFieldsTest, EveryFieldHasOneUniqueName) {
  std::set<std::string_view> names;
  std::set<RecordField> fields;
  for (const RecordFieldName& field : kRecordFields) {
    names.insert(field.expression);
    fields.insert(field.field);
  }
  EXPECT_EQ(names.size(), kRecordFields.size());
  EXPECT_EQ(fields.size(), kRecordFields.size());
}

TEST(RecordFieldsTest, TextFieldsAreViewsIntoTheRecordAndNumbersAreLeftToTheCaller) {
  meshtel::v1::RequestRecord record;
  record.set_method("POST");
  record.set_path("/cart?item=3");
  record.set_authority("cart.shop:8080");
  record.mutable_source()->set_workload("frontend-v1");
  record.mutable_destination()->set_namespace_("shop");
  record.mutable_destination_service()->set_name("cart");
  record.set_response_code(503);
  EXPECT_EQ(RecordFieldText(RecordField::kRequestMethod, record), "POST");
  EXPECT_EQ(RecordFieldText(RecordField::kRequestPath, record), "/cart?item=3");
  EXPECT_EQ(RecordFieldText(RecordField::kRequestUrlPath, record), "/cart");
  EXPECT_EQ(RecordFieldText(RecordField::kRequestHost, record), "cart.shop:8080");
  EXPECT_EQ(RecordFieldText(RecordField::kSourceWorkload, record), "frontend-v1");
  EXPECT_EQ(RecordFieldText(RecordField::kDestinationNamespace, record), "shop");
  EXPECT_EQ(RecordFieldText(RecordField::kDestinationServiceName, record), "cart");
  EXPECT_EQ(RecordFieldText(RecordField::kRouteName, record), "");
  EXPECT_EQ(RecordFieldText(RecordField::kResponseCode, record), std::nullopt);
  EXPECT_EQ(RecordFieldText(RecordField::kResponseGrpcStatus, record), std::nullopt);
  EXPECT_EQ(RecordFieldText(RecordField::kResponseFlags, record), std::nullopt);
}

}  // namespace
}  // namespace meshtel::collector
