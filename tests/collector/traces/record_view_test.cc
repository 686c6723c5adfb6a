#include "collector/traces/record_view.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using meshtel::v1::RequestRecord;

// Sets every field of `message` (and of its messages, but for the received span and log) to a
// value of its own: strings "<name>-<salt>", numbers from the field number and `salt`, repeated
// fields twice.
void FillEveryField(Message& message, int salt) {
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor& field = *descriptor.field(i);
    if (field.name() == "received_span" || field.name() == "received_log") continue;
    const uint64_t number = static_cast<uint64_t>(field.number()) * 1000 + salt;
    const std::string text = field.name() + "-" + std::to_string(salt);
    const int count = field.is_repeated() ? 2 : 1;
    for (int n = 0; n < count; ++n) {
      switch (field.cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          if (field.is_repeated()) {
            reflection.AddString(&message, &field, text + "-" + std::to_string(n));
          } else {
            reflection.SetString(&message, &field, text);
          }
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          reflection.SetUInt64(&message, &field, number);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          reflection.SetUInt32(&message, &field, static_cast<uint32_t>(number));
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          reflection.SetBool(&message, &field, true);
          break;
        case FieldDescriptor::CPPTYPE_ENUM:
          reflection.SetEnumValue(&message, &field, 1);
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE:
          FillEveryField(field.is_repeated() ? *reflection.AddMessage(&message, &field)
                                             : *reflection.MutableMessage(&message, &field),
                         salt + n);
          break;
        default:
          FAIL() << "a field type the test does not fill: " << field.full_name();
      }
    }
  }
}

// The view holds what protobuf parsed, for every accessor it has.
void ExpectSameAsParsed(const RecordView& view, const RequestRecord& parsed) {
  EXPECT_EQ(view.start_time_unix_nano(), parsed.start_time_unix_nano());
  EXPECT_EQ(view.duration_ns(), parsed.duration_ns());
  EXPECT_EQ(view.phases().SerializeAsString(), parsed.phases().SerializeAsString());
  EXPECT_EQ(view.reporter(), parsed.reporter());
  EXPECT_EQ(view.method(), parsed.method());
  EXPECT_EQ(view.scheme(), parsed.scheme());
  EXPECT_EQ(view.authority(), parsed.authority());
  EXPECT_EQ(view.path(), parsed.path());
  EXPECT_EQ(view.protocol(), parsed.protocol());
  EXPECT_EQ(view.user_agent(), parsed.user_agent());
  EXPECT_EQ(view.forwarded_for(), parsed.forwarded_for());
  EXPECT_EQ(view.request_id(), parsed.request_id());
  EXPECT_EQ(view.response_code(), parsed.response_code());
  EXPECT_EQ(view.has_grpc_status(), parsed.has_grpc_status());
  EXPECT_EQ(view.grpc_status(), parsed.grpc_status());
  EXPECT_EQ(view.response_flags(), parsed.response_flags());
  EXPECT_EQ(view.response_code_details(), parsed.response_code_details());
  EXPECT_EQ(view.request_bytes(), parsed.request_bytes());
  EXPECT_EQ(view.response_bytes(), parsed.response_bytes());
  EXPECT_EQ(view.upstream_host(), parsed.upstream_host());
  EXPECT_EQ(view.upstream_cluster(), parsed.upstream_cluster());
  EXPECT_EQ(view.downstream_remote_address(), parsed.downstream_remote_address());
  EXPECT_EQ(view.downstream_local_address(), parsed.downstream_local_address());
  EXPECT_EQ(view.upstream_local_address(), parsed.upstream_local_address());
  EXPECT_EQ(view.route_name(), parsed.route_name());
  EXPECT_EQ(view.trace_id(), parsed.trace_id());
  EXPECT_EQ(view.span_id(), parsed.span_id());
  EXPECT_EQ(view.parent_span_id(), parsed.parent_span_id());
  EXPECT_EQ(view.sampled(), parsed.sampled());
  for (const auto& [seen, expected] : {std::pair(&view.source(), &parsed.source()),
                                       std::pair(&view.destination(), &parsed.destination())}) {
    EXPECT_EQ(seen->workload(), expected->workload());
    EXPECT_EQ(seen->namespace_(), expected->namespace_());
    EXPECT_EQ(seen->app(), expected->app());
    EXPECT_EQ(seen->version(), expected->version());
    EXPECT_EQ(seen->canonical_service(), expected->canonical_service());
    EXPECT_EQ(seen->canonical_revision(), expected->canonical_revision());
    EXPECT_EQ(seen->cluster(), expected->cluster());
    EXPECT_EQ(seen->principal(), expected->principal());
  }
  EXPECT_EQ(view.destination_service().host(), parsed.destination_service().host());
  EXPECT_EQ(view.destination_service().name(), parsed.destination_service().name());
  EXPECT_EQ(view.destination_service().namespace_(), parsed.destination_service().namespace_());
  ASSERT_EQ(view.custom_tags().size(), static_cast<size_t>(parsed.custom_tags_size()));
  for (int i = 0; i < parsed.custom_tags_size(); ++i) {
    EXPECT_EQ(view.custom_tags()[i].name(), parsed.custom_tags(i).name());
    EXPECT_EQ(view.custom_tags()[i].value(), parsed.custom_tags(i).value());
  }
}

// Reads `bytes` with the view and with protobuf; both must accept them and agree.
void ExpectReadAsParsed(const std::string& bytes, RecordView& view) {
  RequestRecord parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_TRUE(view.Read(bytes));
  ExpectSameAsParsed(view, parsed);
}

TEST(RecordViewTest, EveryFieldIsReadAsProtobufParsesIt) {
  RequestRecord record;
  FillEveryField(record, 1);
  record.mutable_phases()->set_upstream_connection_reused(true);
  RecordView view;
  ExpectReadAsParsed(record.SerializeAsString(), view);
  EXPECT_EQ(view.method(), "method-1");
  EXPECT_EQ(view.source().cluster(), "cluster-1");
  EXPECT_EQ(view.destination_service().host(), "host-1");
  EXPECT_EQ(view.custom_tags().size(), 2u);
  EXPECT_TRUE(view.has_grpc_status());
  EXPECT_EQ(view.response_code(), 14001u);
}

TEST(RecordViewTest, FieldsGivenTwiceAreReadAsProtobufMergesThem) {
  RequestRecord first;
  FillEveryField(first, 1);
  first.clear_phases();  // phases given twice are left to protobuf (below)
  RequestRecord second;
  second.set_method("POST");
  second.set_response_code(503);
  second.set_grpc_status(0);
  second.set_sampled(false);  // proto3: not written, so the first value stays
  second.mutable_source()->set_workload("other-workload");  // the source's other fields stay
  second.mutable_destination_service()->set_name("other-name");
  second.add_custom_tags()->set_name("appended");
  second.mutable_phases()->set_route_chosen_ns(7);
  RecordView view;
  ExpectReadAsParsed(first.SerializeAsString() + second.SerializeAsString(), view);
  EXPECT_EQ(view.method(), "POST");
  EXPECT_EQ(view.source().workload(), "other-workload");
  EXPECT_EQ(view.source().namespace_(), "namespace-1");
  EXPECT_EQ(view.custom_tags().size(), 3u);
}

TEST(RecordViewTest, UnknownFieldsAndAnyFieldOrderAreRead) {
  RequestRecord record;
  FillEveryField(record, 3);
  // Each field serialized alone, last field first, with fields this schema does not know between.
  const std::string unknown = std::string("\xa0\x06\x05", 3)                 // 100: varint 5
                              + std::string("\xaa\x06\x03xyz", 6)            // 101: bytes
                              + std::string("\xb5\x06\x01\x02\x03\x04", 6);  // 102: fixed32
  std::vector<const FieldDescriptor*> fields;
  record.GetReflection()->ListFields(record, &fields);
  std::string bytes = unknown;
  for (auto field = fields.rbegin(); field != fields.rend(); ++field) {
    RequestRecord single = record;
    std::vector<const FieldDescriptor*> others;
    single.GetReflection()->ListFields(single, &others);
    for (const FieldDescriptor* other : others) {
      if (other != *field) single.GetReflection()->ClearField(&single, other);
    }
    bytes += single.SerializeAsString() + unknown;
  }
  RecordView view;
  ExpectReadAsParsed(bytes, view);
  EXPECT_EQ(view.custom_tags().size(), 2u);
}

TEST(RecordViewTest, AReusedViewKeepsNothingOfTheLastRecord) {
  RequestRecord full;
  FillEveryField(full, 1);
  RequestRecord bare;
  bare.set_trace_id(std::string(16, '\x01'));
  bare.set_span_id(std::string(8, '\x02'));
  RecordView view;
  ASSERT_TRUE(view.Read(full.SerializeAsString()));
  ExpectReadAsParsed(bare.SerializeAsString(), view);
  EXPECT_TRUE(view.custom_tags().empty());
  EXPECT_FALSE(view.has_grpc_status());
  EXPECT_EQ(view.source().workload(), "");
  EXPECT_EQ(view.phases().route_chosen_ns(), 0u);
}

TEST(RecordViewTest, WhatProtobufMustDecideIsRefused) {
  RequestRecord base;
  FillEveryField(base, 1);
  const std::string bytes = base.SerializeAsString();
  RecordView view;

  RequestRecord received;
  received.mutable_received_span()->set_name("GET /");
  EXPECT_FALSE(view.Read(received.SerializeAsString()));
  RequestRecord log;
  log.mutable_received_log()->set_body("a line");
  EXPECT_FALSE(view.Read(log.SerializeAsString()));

  RequestRecord phases;
  phases.mutable_phases()->set_route_chosen_ns(1);
  EXPECT_FALSE(view.Read(bytes + phases.SerializeAsString()));  // phases twice

  EXPECT_FALSE(view.Read(bytes + std::string("\x28\x01", 2)));    // method (5) as a varint
  EXPECT_FALSE(view.Read(bytes + std::string("\x10\x80", 2)));    // a varint cut short
  EXPECT_FALSE(view.Read(bytes + std::string("\x2a\x05GE", 4)));  // a string cut short
  EXPECT_FALSE(view.Read(bytes + std::string("\xa3\x06", 2)));    // a group (100, start)
  EXPECT_FALSE(view.Read(bytes.substr(0, bytes.size() - 1)));
  // A source whose field has the wrong wire type.
  EXPECT_FALSE(view.Read(bytes + std::string("\x82\x02\x02\x08\x01", 5)));
}

}  // namespace
}  // namespace meshtel::collector
