// The record schema on the wire: field numbers and types are a contract with every deployed
// proxy, so the tests pin the bytes of a few fields and check a realistic record's size.

#include "meshtel/v1/record.pb.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::v1 {
namespace {

RequestRecord RealisticRecord() {
  RequestRecord record;
  record.set_start_time_unix_nano(1'790'000'000'123'456'789ull);
  record.set_duration_ns(12'345'678);
  auto* phases = record.mutable_phases();
  phases->set_downstream_headers_done_ns(20'000);
  phases->set_route_chosen_ns(25'000);
  phases->set_upstream_connected_ns(30'000);
  phases->set_upstream_connection_reused(true);
  phases->set_upstream_headers_sent_ns(40'000);
  phases->set_upstream_request_done_ns(41'000);
  phases->set_upstream_first_byte_ns(11'000'000);
  phases->set_upstream_last_byte_ns(12'000'000);
  phases->set_downstream_last_byte_ns(12'345'678);
  record.set_reporter(REPORTER_SOURCE);
  record.set_method("GET");
  record.set_scheme("http");
  record.set_authority("reviews.bookinfo:9080");
  record.set_path("/reviews/0");
  record.set_protocol("HTTP/1.1");
  record.set_request_protocol(REQUEST_PROTOCOL_HTTP);
  record.set_user_agent("python-requests/2.31");
  record.set_request_id("6b1c9f0e-8f1d-4c8e-9a4b-1d2e3f405162");
  record.set_response_code(200);
  record.set_response_code_details("via_upstream");
  record.set_request_bytes(312);
  record.set_response_bytes(1843);
  record.set_upstream_host("10.0.1.7:9080");
  record.set_upstream_cluster("outbound|9080||reviews.bookinfo.svc.cluster.local");
  record.set_downstream_remote_address("10.0.1.5:41234");
  record.set_trace_id(std::string(16, '\x11'));
  record.set_span_id(std::string(8, '\x22'));
  record.set_parent_span_id(std::string(8, '\x33'));
  record.set_sampled(true);
  record.mutable_source()->set_workload("productpage-v1");
  record.mutable_source()->set_namespace_("bookinfo");
  record.mutable_source()->set_app("productpage");
  record.mutable_source()->set_version("v1");
  record.mutable_destination()->set_workload("reviews-v2");
  record.mutable_destination()->set_namespace_("bookinfo");
  record.mutable_destination()->set_app("reviews");
  record.mutable_destination()->set_version("v2");
  record.mutable_destination_service()->set_host("reviews.bookinfo.svc.cluster.local");
  record.mutable_destination_service()->set_name("reviews");
  record.mutable_destination_service()->set_namespace_("bookinfo");
  return record;
}

TEST(RecordSchemaTest, RoundTripsThroughTheWire) {
  const RequestRecord record = RealisticRecord();
  RequestRecord decoded;
  ASSERT_TRUE(decoded.ParseFromString(record.SerializeAsString()));
  EXPECT_EQ(decoded.SerializeAsString(), record.SerializeAsString());
  EXPECT_EQ(decoded.phases().upstream_first_byte_ns(), 11'000'000u);
  EXPECT_EQ(decoded.destination().workload(), "reviews-v2");
  EXPECT_FALSE(decoded.has_grpc_status());
}

TEST(RecordSchemaTest, RealisticRecordStaysCompact) {
  // The store and the reporter budget 300–500 bytes per record.
  const size_t size = RealisticRecord().ByteSizeLong();
  EXPECT_GT(size, 300u);
  EXPECT_LT(size, 500u);
}

TEST(RecordSchemaTest, FieldNumbersAreStable) {
  RequestRecord record;
  record.set_start_time_unix_nano(1);  // field 1, fixed64 → tag 0x09
  EXPECT_EQ(record.SerializeAsString(), std::string("\x09\x01\x00\x00\x00\x00\x00\x00\x00", 9));
  record.Clear();
  record.set_response_code(200);  // field 14, varint → tag 0x70
  EXPECT_EQ(record.SerializeAsString(), std::string("\x70\xc8\x01", 3));
  record.Clear();
  record.set_grpc_status(0);  // optional: present even at 0; field 15 → tag 0x78
  EXPECT_EQ(record.SerializeAsString(), std::string("\x78\x00", 2));
  record.Clear();
  record.set_trace_id("ab");  // field 28, bytes → tag 0xe2 0x01
  EXPECT_EQ(record.SerializeAsString(), std::string("\xe2\x01\x02"
                                                    "ab",
                                                    5));

  RecordBatch batch;
  batch.set_proxy_instance_id("p");  // field 1 → 0x0a
  batch.set_sequence(5);             // field 2 → 0x10
  EXPECT_EQ(batch.SerializeAsString(), std::string("\x0a\x01p\x10\x05", 5));
  RecordAck ack;
  ack.set_highest_stored_sequence(9);  // field 2 → 0x10
  ack.set_status_code(3);              // field 3 → 0x18
  EXPECT_EQ(ack.SerializeAsString(), std::string("\x10\x09\x18\x03", 4));
}

TEST(RecordSchemaTest, UnknownFieldsAreSkipped) {
  // A newer proxy may send fields this collector does not know: they must not break decoding.
  std::string wire = RealisticRecord().SerializeAsString();
  wire += std::string("\xc0\x3e\x07", 3);  // field 1000, varint 7
  RequestRecord decoded;
  ASSERT_TRUE(decoded.ParseFromString(wire));
  EXPECT_EQ(decoded.response_code(), 200u);
}

}  // namespace
}  // namespace meshtel::v1
