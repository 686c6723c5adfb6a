// The project's Envoy ALS subset (proto/envoy/) against the official schema
// (../shared/specs/protos/envoy): every message, field and enum value the subset keeps must have
// the official name, number, type and cardinality, so what Envoy sends decodes the same.

#include <set>
#include <string>

#include "envoy/service/accesslog/v3/als.pb.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "tests/support/official_schema.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

const Descriptor* Official(const std::string& full_name, std::string& unavailable) {
  static std::vector<std::unique_ptr<google::protobuf::Message>> keep;
  meshtel::testing::OfficialMessage official = meshtel::testing::NewOfficialMessage(full_name);
  if (!official.unavailable.empty()) {
    unavailable = official.unavailable;
    return nullptr;
  }
  const Descriptor* descriptor = official.message->GetDescriptor();
  keep.push_back(std::move(official.message));
  return descriptor;
}

void CompareEnum(const EnumDescriptor& own, const EnumDescriptor& official) {
  EXPECT_EQ(own.full_name(), official.full_name());
  for (int i = 0; i < own.value_count(); ++i) {
    const auto* value = own.value(i);
    const auto* match = official.FindValueByName(value->name());
    ASSERT_NE(match, nullptr) << own.full_name() << "." << value->name() << " is not official";
    EXPECT_EQ(value->number(), match->number()) << own.full_name() << "." << value->name();
  }
}

void CompareMessage(const Descriptor& own, const Descriptor& official,
                    std::set<std::string>& seen) {
  if (!seen.insert(own.full_name()).second) return;
  SCOPED_TRACE(own.full_name());
  EXPECT_EQ(own.full_name(), official.full_name());
  for (int i = 0; i < own.field_count(); ++i) {
    const FieldDescriptor* field = own.field(i);
    const FieldDescriptor* match = official.FindFieldByNumber(field->number());
    ASSERT_NE(match, nullptr) << field->full_name() << " (" << field->number()
                              << ") is not an official field";
    EXPECT_EQ(field->name(), match->name()) << field->number();
    EXPECT_EQ(field->type(), match->type()) << field->full_name();
    EXPECT_EQ(field->is_repeated(), match->is_repeated()) << field->full_name();
    EXPECT_EQ(field->is_map(), match->is_map()) << field->full_name();
    EXPECT_EQ(field->is_packed(), match->is_packed()) << field->full_name();
    EXPECT_EQ(field->real_containing_oneof() == nullptr, match->real_containing_oneof() == nullptr)
        << field->full_name();
    if (field->message_type() != nullptr) {
      ASSERT_NE(match->message_type(), nullptr);
      CompareMessage(*field->message_type(), *match->message_type(), seen);
    }
    if (field->enum_type() != nullptr) {
      ASSERT_NE(match->enum_type(), nullptr);
      CompareEnum(*field->enum_type(), *match->enum_type());
    }
  }
}

TEST(AlsSchemaTest, SubsetMatchesTheOfficialSchema) {
  std::string unavailable;
  const Descriptor* official =
      Official("envoy.service.accesslog.v3.StreamAccessLogsMessage", unavailable);
  if (official == nullptr) GTEST_SKIP() << "official Envoy schema unavailable: " << unavailable;
  std::set<std::string> seen;
  CompareMessage(*envoy::service::accesslog::v3::StreamAccessLogsMessage::descriptor(), *official,
                 seen);
  // The walk reached every message of the subset that an ALS message can hold.
  EXPECT_TRUE(seen.contains("envoy.data.accesslog.v3.AccessLogCommon"));
  EXPECT_TRUE(seen.contains("envoy.data.accesslog.v3.TLSProperties.CertificateProperties"));
  EXPECT_TRUE(seen.contains("envoy.config.core.v3.SocketAddress"));
  EXPECT_TRUE(seen.contains("envoy.config.core.v3.Node"));
  EXPECT_TRUE(seen.contains("envoy.config.core.v3.Metadata"));
  EXPECT_TRUE(seen.contains("envoy.config.core.v3.Locality"));
}

TEST(AlsSchemaTest, ServiceAndMethodAreOfficial) {
  std::string unavailable;
  const Descriptor* official =
      Official("envoy.service.accesslog.v3.StreamAccessLogsResponse", unavailable);
  if (official == nullptr) GTEST_SKIP() << "official Envoy schema unavailable: " << unavailable;
  const auto* service = official->file()->FindServiceByName("AccessLogService");
  ASSERT_NE(service, nullptr);
  const auto* method = service->FindMethodByName("StreamAccessLogs");
  ASSERT_NE(method, nullptr);
  const auto* own = envoy::service::accesslog::v3::StreamAccessLogsMessage::descriptor()
                        ->file()
                        ->FindServiceByName("AccessLogService")
                        ->FindMethodByName("StreamAccessLogs");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->full_name(), method->full_name());
  EXPECT_EQ(own->client_streaming(), method->client_streaming());
  EXPECT_EQ(own->server_streaming(), method->server_streaming());
  EXPECT_EQ(own->input_type()->full_name(), method->input_type()->full_name());
  EXPECT_EQ(own->output_type()->full_name(), method->output_type()->full_name());
}

}  // namespace
