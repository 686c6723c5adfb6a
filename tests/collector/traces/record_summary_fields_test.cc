#include "collector/traces/record_summary_fields.h"

#include <string>
#include <vector>

#include "collector/traces/span_builder.h"
#include "collector/traces/traces_config.h"
#include "gtest/gtest.h"
#include "tests/support/als_messages.h"

namespace meshtel::collector {
namespace {

using meshtel::testing::LengthDelimitedField;
using meshtel::v1::RequestRecord;

RequestRecord ProxyRecord() {
  RequestRecord record;
  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  record.set_start_time_unix_nano(1'700'000'000'000'000'000ull);
  record.set_duration_ns(10'000'000);
  record.set_method("GET");
  record.set_authority("backend.demo:8080");
  record.set_path("/items?id=1");
  record.set_response_code(503);
  record.set_response_flags(1u << 3);
  record.set_request_bytes(120);
  record.set_upstream_cluster("inbound|8080||");
  record.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  record.set_span_id(std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  record.set_parent_span_id(std::string("\x11\x22\x33\x44\x55\x66\x77\x88", 8));
  record.set_sampled(true);
  record.mutable_source()->set_workload("frontend-v1");
  record.mutable_source()->set_namespace_("demo");
  record.mutable_source()->set_app("frontend");
  record.mutable_destination()->set_workload("backend-v2");
  record.mutable_destination()->set_namespace_("demo");
  record.mutable_destination()->set_version("v2");
  record.mutable_destination()->set_principal("spiffe://cluster.local/ns/demo/sa/backend");
  record.mutable_destination_service()->set_host("backend.demo.svc.cluster.local");
  record.set_mutual_tls(true);
  auto* header = record.add_captured_headers();
  header->set_name("x-team");
  header->set_value("blue");
  auto* phases = record.mutable_phases();
  phases->set_downstream_headers_done_ns(100'000);
  phases->set_upstream_connected_ns(400'000);
  phases->set_upstream_connection_reused(true);
  phases->set_upstream_first_byte_ns(9'000'000);
  phases->set_downstream_last_byte_ns(9'900'000);
  auto* tag = record.add_custom_tags();
  tag->set_name("http.status_code");
  tag->set_value("502");
  tag = record.add_custom_tags();
  tag->set_name("team");
  tag->set_value("blue");
  return record;
}

// When the walk vouches for `bytes`, protobuf parses them too, the fields read are the parsed
// ones, and the summaries (with and without phase spans) are the same. Returns whether it did.
bool ExpectSameAsParsed(const std::string& bytes, RequestRecord& reused) {
  const bool read = ReadSummaryFields(bytes, reused);
  if (!read) return false;
  RequestRecord parsed;
  EXPECT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(reused.trace_id(), parsed.trace_id());
  EXPECT_EQ(reused.span_id(), parsed.span_id());
  EXPECT_EQ(reused.parent_span_id(), parsed.parent_span_id());
  EXPECT_EQ(reused.sampled(), parsed.sampled());
  EXPECT_EQ(reused.start_time_unix_nano(), parsed.start_time_unix_nano());
  EXPECT_EQ(reused.duration_ns(), parsed.duration_ns());
  EXPECT_EQ(reused.response_code(), parsed.response_code());
  EXPECT_EQ(reused.reporter(), parsed.reporter());
  for (const auto& [a, b] : {std::pair(&reused.source(), &parsed.source()),
                             std::pair(&reused.destination(), &parsed.destination())}) {
    EXPECT_EQ(a->workload(), b->workload());
    EXPECT_EQ(a->namespace_(), b->namespace_());
    EXPECT_EQ(a->app(), b->app());
    EXPECT_EQ(a->version(), b->version());
  }
  EXPECT_EQ(reused.has_grpc_status(), parsed.has_grpc_status());
  EXPECT_EQ(reused.grpc_status(), parsed.grpc_status());
  // Values, not serialized forms: the parsed messages keep unknown fields, which no summary reads.
  const auto& a = reused.phases();
  const auto& b = parsed.phases();
  EXPECT_EQ(a.downstream_headers_done_ns(), b.downstream_headers_done_ns());
  EXPECT_EQ(a.route_chosen_ns(), b.route_chosen_ns());
  EXPECT_EQ(a.upstream_connected_ns(), b.upstream_connected_ns());
  EXPECT_EQ(a.upstream_connection_reused(), b.upstream_connection_reused());
  EXPECT_EQ(a.upstream_headers_sent_ns(), b.upstream_headers_sent_ns());
  EXPECT_EQ(a.upstream_request_done_ns(), b.upstream_request_done_ns());
  EXPECT_EQ(a.upstream_first_byte_ns(), b.upstream_first_byte_ns());
  EXPECT_EQ(a.upstream_last_byte_ns(), b.upstream_last_byte_ns());
  EXPECT_EQ(a.downstream_last_byte_ns(), b.downstream_last_byte_ns());
  EXPECT_EQ(reused.custom_tags_size(), parsed.custom_tags_size());
  for (int i = 0; i < reused.custom_tags_size() && i < parsed.custom_tags_size(); ++i) {
    EXPECT_EQ(reused.custom_tags(i).name(), parsed.custom_tags(i).name());
    EXPECT_EQ(reused.custom_tags(i).value(), parsed.custom_tags(i).value());
  }
  for (const bool phase_spans : {false, true}) {
    TracesConfig config;
    config.phase_spans = phase_spans;
    const SpanBuilder builder(config);
    std::vector<SpanSummary> from_fields;
    std::vector<SpanSummary> from_parsed;
    EXPECT_EQ(builder.Summarize(reused, from_fields), builder.Summarize(parsed, from_parsed));
    EXPECT_EQ(from_fields.size(), from_parsed.size());
    for (size_t i = 0; i < from_fields.size() && i < from_parsed.size(); ++i) {
      EXPECT_EQ(from_fields[i].span_id, from_parsed[i].span_id);
      EXPECT_EQ(from_fields[i].parent_span_id, from_parsed[i].parent_span_id);
      EXPECT_EQ(from_fields[i].start_time_unix_nano, from_parsed[i].start_time_unix_nano);
      EXPECT_EQ(from_fields[i].end_time_unix_nano, from_parsed[i].end_time_unix_nano);
      EXPECT_EQ(from_fields[i].error, from_parsed[i].error);
    }
  }
  return true;
}

TEST(RecordSummaryFieldsTest, TheFieldsASummaryReadsComeFromTheBytes) {
  RequestRecord reused;
  const RequestRecord record = ProxyRecord();
  ASSERT_TRUE(ExpectSameAsParsed(record.SerializeAsString(), reused));
  EXPECT_TRUE(reused.sampled());
  EXPECT_EQ(reused.custom_tags_size(), 2);
  EXPECT_TRUE(reused.path().empty());  // not read

  // Reused for a record with less: no tags, a gRPC status, no phases, other ids.
  RequestRecord grpc = ProxyRecord();
  grpc.clear_custom_tags();
  grpc.clear_phases();
  grpc.set_grpc_status(14);
  grpc.set_response_code(200);
  grpc.set_sampled(false);
  grpc.set_parent_span_id("");
  grpc.clear_destination();  // the last record's destination must not stay
  grpc.set_reporter(meshtel::v1::REPORTER_SOURCE);
  ASSERT_TRUE(ExpectSameAsParsed(grpc.SerializeAsString(), reused));
  EXPECT_TRUE(reused.destination().workload().empty());
  EXPECT_TRUE(reused.has_grpc_status());
  // And back: the status is gone again.
  ASSERT_TRUE(ExpectSameAsParsed(record.SerializeAsString(), reused));
  EXPECT_FALSE(reused.has_grpc_status());

  // Fields given twice keep the last value; unknown fields of every wire type are skipped.
  RequestRecord later;
  later.set_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  later.set_response_code(200);
  later.mutable_source()->set_app("other");  // merged into the first source, as protobuf does
  const std::string twice = record.SerializeAsString() + later.SerializeAsString() +
                            std::string("\xa0\x06\x05", 3) +                     // 100, varint
                            std::string("\xa5\x06\x01\x02\x03\x04", 6) +         // fixed32
                            std::string("\xa1\x06", 2) + std::string(8, '\7') +  // fixed64
                            LengthDelimitedField(100, "\xff\xfe");               // bytes, unknown
  ASSERT_TRUE(ExpectSameAsParsed(twice, reused));
  EXPECT_EQ(reused.response_code(), 200u);
  EXPECT_EQ(reused.source().workload(), "frontend-v1");
  EXPECT_EQ(reused.source().app(), "other");
}

TEST(RecordSummaryFieldsTest, WhatTheWalkDoesNotVouchForIsLeftToProtobuf) {
  RequestRecord reused;
  RequestRecord bad = ProxyRecord();
  bad.set_path("a\xff");  // invalid UTF-8: protobuf refuses the record
  EXPECT_FALSE(ReadSummaryFields(bad.SerializeAsString(), reused));
  bad = ProxyRecord();
  bad.mutable_source()->set_namespace_("\xc3");
  EXPECT_FALSE(ReadSummaryFields(bad.SerializeAsString(), reused));
  bad = ProxyRecord();
  bad.mutable_custom_tags(1)->set_value("\xe2\x28\xa1");
  EXPECT_FALSE(ReadSummaryFields(bad.SerializeAsString(), reused));
  RequestRecord received;
  received.mutable_received_span()->set_name("GET /");
  EXPECT_FALSE(ReadSummaryFields(received.SerializeAsString(), reused));
  RequestRecord log;
  log.mutable_received_log();
  EXPECT_FALSE(ReadSummaryFields(log.SerializeAsString(), reused));
  // phases given twice (protobuf merges them).
  RequestRecord phases;
  phases.mutable_phases()->set_route_chosen_ns(5);
  EXPECT_FALSE(
      ReadSummaryFields(ProxyRecord().SerializeAsString() + phases.SerializeAsString(), reused));
  // A group.
  EXPECT_FALSE(ReadSummaryFields(ProxyRecord().SerializeAsString() + "\x2b\x2c", reused));
}

TEST(RecordSummaryFieldsTest, DamagedBytesAreReadOnlyWhenProtobufReadsThemTheSame) {
  // Every prefix and every single-byte change of a record: whenever the walk vouches for the
  // bytes, protobuf parses them and agrees (ExpectSameAsParsed).
  const std::string bytes = ProxyRecord().SerializeAsString();
  RequestRecord reused;
  size_t vouched = 0;
  for (size_t size = 0; size <= bytes.size(); ++size) {
    vouched += ExpectSameAsParsed(bytes.substr(0, size), reused) ? 1 : 0;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string changed = bytes;
      changed[i] = static_cast<char>(static_cast<unsigned char>(changed[i]) ^ flip);
      vouched += ExpectSameAsParsed(changed, reused) ? 1 : 0;
    }
  }
  EXPECT_GT(vouched, bytes.size());  // most changes still decode (values, not framing)
}

}  // namespace
}  // namespace meshtel::collector
