#include "collector/ingest/als_converter.h"

#include <cstdint>

#include <string>

#include "collector/metrics/istio_labels.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "tests/support/als_messages.h"

namespace meshtel::collector {
namespace {

using meshtel::testing::LengthDelimitedField;
using meshtel::testing::SetSocketAddress;
using meshtel::testing::SetStructString;

using envoy::data::accesslog::v3::AccessLogCommon;
using envoy::data::accesslog::v3::HTTPAccessLogEntry;
using envoy::data::accesslog::v3::TCPAccessLogEntry;
using envoy::service::accesslog::v3::StreamAccessLogsMessage;
using google::protobuf::Struct;
using meshtel::v1::RequestRecord;

// An Istio sidecar's identifier: pod reviews-v1-abc in namespace shop.
StreamAccessLogsMessage::Identifier IstioIdentifier() {
  StreamAccessLogsMessage::Identifier identifier;
  identifier.set_log_name("http_envoy_accesslog");
  auto& node = *identifier.mutable_node();
  node.set_id("sidecar~10.0.1.7~reviews-v1-abc.shop~shop.svc.cluster.local");
  Struct& metadata = *node.mutable_metadata();
  SetStructString(metadata, "NAME", "reviews-v1-abc");
  SetStructString(metadata, "NAMESPACE", "shop");
  SetStructString(metadata, "WORKLOAD_NAME", "reviews-v1");
  SetStructString(metadata, "CLUSTER_ID", "east");
  SetStructString(metadata, "MESH_ID", "mesh1");
  Struct& labels = *(*metadata.mutable_fields())["LABELS"].mutable_struct_value();
  SetStructString(labels, "app", "reviews");
  SetStructString(labels, "version", "v1");
  SetStructString(labels, "service.istio.io/canonical-name", "reviews-canonical");
  SetStructString(labels, "service.istio.io/canonical-revision", "r1");
  return identifier;
}

// Istio's peer-metadata object (WorkloadMetadataObject::serializeAsProto) packed in an Any.
google::protobuf::Any PeerObject(const std::string& workload, const std::string& ns) {
  Struct object;
  SetStructString(object, "type", "deployment");
  SetStructString(object, "workload", workload);
  SetStructString(object, "name", workload + "-xyz");
  SetStructString(object, "namespace", ns);
  SetStructString(object, "cluster", "west");
  SetStructString(object, "service", workload + "-svc");
  SetStructString(object, "revision", "v7");
  SetStructString(object, "app", workload);
  SetStructString(object, "version", "v2");
  google::protobuf::Any any;
  any.PackFrom(object);
  return any;
}

void SetDuration(google::protobuf::Duration& duration, int64_t nanos) {
  duration.set_seconds(nanos / 1'000'000'000);
  duration.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

// An inbound HTTP/1.1 GET as the server-side sidecar of reviews logs it.
HTTPAccessLogEntry InboundEntry() {
  HTTPAccessLogEntry entry;
  entry.set_protocol_version(HTTPAccessLogEntry::HTTP11);
  AccessLogCommon& common = *entry.mutable_common_properties();
  common.mutable_start_time()->set_seconds(1'755'000'000);
  common.mutable_start_time()->set_nanos(123'000'000);
  SetDuration(*common.mutable_time_to_last_rx_byte(), 1'000'000);
  SetDuration(*common.mutable_time_to_first_upstream_tx_byte(), 2'000'000);
  SetDuration(*common.mutable_time_to_last_upstream_tx_byte(), 3'000'000);
  SetDuration(*common.mutable_time_to_first_upstream_rx_byte(), 9'000'000);
  SetDuration(*common.mutable_time_to_last_upstream_rx_byte(), 10'000'000);
  SetDuration(*common.mutable_time_to_first_downstream_tx_byte(), 9'500'000);
  SetDuration(*common.mutable_time_to_last_downstream_tx_byte(), 11'000'000);
  SetDuration(*common.mutable_duration(), 12'000'000);
  SetSocketAddress(*common.mutable_downstream_remote_address(), "10.0.1.5", 41234);
  SetSocketAddress(*common.mutable_downstream_local_address(), "10.0.1.7", 9080);
  SetSocketAddress(*common.mutable_upstream_remote_address(), "127.0.0.1", 9080);
  SetSocketAddress(*common.mutable_upstream_local_address(), "127.0.0.6", 40001);
  common.set_upstream_cluster("inbound|9080||");
  common.set_route_name("default");
  common.set_downstream_wire_bytes_received(321);
  common.set_downstream_wire_bytes_sent(1432);
  (*common.mutable_filter_state_objects())["downstream_peer"] = PeerObject("productpage", "shop");
  auto& request = *entry.mutable_request();
  request.set_request_method(envoy::config::core::v3::GET);
  request.set_scheme("http");
  request.set_authority("reviews.shop.svc.cluster.local:9080");
  request.set_path("/reviews/1?x=1");
  request.set_user_agent("curl/8.5.0");
  request.set_forwarded_for("10.0.0.1");
  request.set_request_id("c5b7e1a2-1111-2222-3333-444455556666");
  request.set_request_headers_bytes(100);
  request.set_request_body_bytes(0);
  auto& response = *entry.mutable_response();
  response.mutable_response_code()->set_value(200);
  response.set_response_code_details("via_upstream");
  response.set_response_headers_bytes(200);
  response.set_response_body_bytes(1000);
  return entry;
}

TEST(AlsConverterTest, NodeMetadataGivesTheReportingWorkload) {
  const AlsNodeIdentity node = AlsNodeIdentity::FromIdentifier(IstioIdentifier());
  EXPECT_EQ(node.log_name, "http_envoy_accesslog");
  EXPECT_EQ(node.node_id, "sidecar~10.0.1.7~reviews-v1-abc.shop~shop.svc.cluster.local");
  EXPECT_EQ(node.workload.workload(), "reviews-v1");
  EXPECT_EQ(node.workload.namespace_(), "shop");
  EXPECT_EQ(node.workload.app(), "reviews");
  EXPECT_EQ(node.workload.version(), "v1");
  EXPECT_EQ(node.workload.canonical_service(), "reviews-canonical");
  EXPECT_EQ(node.workload.canonical_revision(), "r1");
  EXPECT_EQ(node.workload.cluster(), "east");
}

TEST(AlsConverterTest, WorkloadNameFallsBackToPodName) {
  StreamAccessLogsMessage::Identifier identifier;
  SetStructString(*identifier.mutable_node()->mutable_metadata(), "NAME", "job-pod");
  EXPECT_EQ(AlsNodeIdentity::FromIdentifier(identifier).workload.workload(), "job-pod");
}

TEST(AlsConverterTest, InboundHttpEntry) {
  const AlsNodeIdentity node = AlsNodeIdentity::FromIdentifier(IstioIdentifier());
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(InboundEntry(), node, record));
  EXPECT_EQ(record.reporter(), meshtel::v1::REPORTER_DESTINATION);
  EXPECT_EQ(record.destination().workload(), "reviews-v1");
  EXPECT_EQ(record.destination().cluster(), "east");
  EXPECT_EQ(record.source().workload(), "productpage");
  EXPECT_EQ(record.source().namespace_(), "shop");
  EXPECT_EQ(record.source().cluster(), "west");
  EXPECT_EQ(record.source().canonical_service(), "productpage-svc");
  EXPECT_EQ(record.source().canonical_revision(), "v7");
  EXPECT_EQ(record.source().app(), "productpage");
  EXPECT_EQ(record.source().version(), "v2");
  EXPECT_EQ(record.destination_service().host(), "reviews.shop.svc.cluster.local");
  EXPECT_EQ(record.destination_service().name(), "reviews");
  EXPECT_EQ(record.destination_service().namespace_(), "shop");
  EXPECT_EQ(record.start_time_unix_nano(), 1'755'000'000'123'000'000u);
  EXPECT_EQ(record.duration_ns(), 12'000'000u);
  EXPECT_EQ(record.phases().upstream_headers_sent_ns(), 2'000'000u);
  EXPECT_EQ(record.phases().upstream_request_done_ns(), 3'000'000u);
  EXPECT_EQ(record.phases().upstream_first_byte_ns(), 9'000'000u);
  EXPECT_EQ(record.phases().upstream_last_byte_ns(), 10'000'000u);
  EXPECT_EQ(record.phases().downstream_last_byte_ns(), 11'000'000u);
  EXPECT_EQ(record.method(), "GET");
  EXPECT_EQ(record.scheme(), "http");
  EXPECT_EQ(record.authority(), "reviews.shop.svc.cluster.local:9080");
  EXPECT_EQ(record.path(), "/reviews/1?x=1");
  EXPECT_EQ(record.protocol(), "HTTP/1.1");
  EXPECT_EQ(record.request_protocol(), meshtel::v1::REQUEST_PROTOCOL_HTTP);
  EXPECT_EQ(record.user_agent(), "curl/8.5.0");
  EXPECT_EQ(record.forwarded_for(), "10.0.0.1");
  EXPECT_EQ(record.request_id(), "c5b7e1a2-1111-2222-3333-444455556666");
  EXPECT_EQ(record.response_code(), 200u);
  EXPECT_FALSE(record.has_grpc_status());
  EXPECT_EQ(record.response_code_details(), "via_upstream");
  EXPECT_EQ(record.request_bytes(), 321u);
  EXPECT_EQ(record.response_bytes(), 1432u);
  EXPECT_EQ(record.upstream_host(), "127.0.0.1:9080");
  EXPECT_EQ(record.upstream_cluster(), "inbound|9080||");
  EXPECT_EQ(record.downstream_remote_address(), "10.0.1.5:41234");
  EXPECT_EQ(record.downstream_local_address(), "10.0.1.7:9080");
  EXPECT_EQ(record.upstream_local_address(), "127.0.0.6:40001");
  EXPECT_EQ(record.route_name(), "default");
  EXPECT_FALSE(record.mutual_tls());
  EXPECT_TRUE(record.trace_id().empty());
}

TEST(AlsConverterTest, WireBytesMissingFallBackToHeadersAndBody) {
  HTTPAccessLogEntry entry = InboundEntry();
  entry.mutable_common_properties()->clear_downstream_wire_bytes_received();
  entry.mutable_common_properties()->clear_downstream_wire_bytes_sent();
  entry.mutable_common_properties()->clear_duration();
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.request_bytes(), 100u);
  EXPECT_EQ(record.response_bytes(), 1200u);
  EXPECT_EQ(record.duration_ns(), 11'000'000u);  // time_to_last_downstream_tx_byte
}

TEST(AlsConverterTest, MutualTlsPrincipalsOnTheServerSide) {
  HTTPAccessLogEntry entry = InboundEntry();
  auto& tls = *entry.mutable_common_properties()->mutable_tls_properties();
  tls.mutable_peer_certificate_properties()->add_subject_alt_name()->set_uri(
      "spiffe://cluster.local/ns/shop/sa/productpage");
  tls.mutable_local_certificate_properties()->add_subject_alt_name()->set_dns("ignored");
  tls.mutable_local_certificate_properties()->add_subject_alt_name()->set_uri(
      "spiffe://cluster.local/ns/shop/sa/reviews");
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_TRUE(record.mutual_tls());
  EXPECT_EQ(record.source().principal(), "spiffe://cluster.local/ns/shop/sa/productpage");
  EXPECT_EQ(record.destination().principal(), "spiffe://cluster.local/ns/shop/sa/reviews");
  IstioLabelScratch scratch;
  EXPECT_EQ(IstioRequestLabelValues(record, scratch)[24], "mutual_tls");
}

TEST(AlsConverterTest, OutboundEntryWithNodeMetadataStylePeer) {
  const AlsNodeIdentity node = AlsNodeIdentity::FromIdentifier(IstioIdentifier());
  HTTPAccessLogEntry entry = InboundEntry();
  AccessLogCommon& common = *entry.mutable_common_properties();
  common.set_upstream_cluster("outbound|9080|v2|ratings.shop.svc.cluster.local");
  common.mutable_filter_state_objects()->clear();
  Struct peer;
  SetStructString(peer, "WORKLOAD_NAME", "ratings-v2");
  SetStructString(peer, "NAMESPACE", "shop");
  Struct& labels = *(*peer.mutable_fields())["LABELS"].mutable_struct_value();
  SetStructString(labels, "app", "ratings");
  SetStructString(labels, "version", "v2");
  (*common.mutable_filter_state_objects())["upstream_peer"].PackFrom(peer);
  entry.mutable_request()->set_authority("ratings:9080");
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, node, record));
  EXPECT_EQ(record.reporter(), meshtel::v1::REPORTER_SOURCE);
  EXPECT_EQ(record.source().workload(), "reviews-v1");
  EXPECT_EQ(record.destination().workload(), "ratings-v2");
  EXPECT_EQ(record.destination().app(), "ratings");
  EXPECT_EQ(record.destination().version(), "v2");
  EXPECT_EQ(record.destination_service().host(), "ratings.shop.svc.cluster.local");
  EXPECT_EQ(record.destination_service().name(), "ratings");
  EXPECT_EQ(record.destination_service().namespace_(), "shop");
  IstioLabelScratch scratch;
  const auto labels_out = IstioRequestLabelValues(record, scratch);
  EXPECT_EQ(labels_out[0], "source");
  EXPECT_EQ(labels_out[24], "unknown");  // connection_security_policy on the client side
}

TEST(AlsConverterTest, PeerAsKeyValueString) {
  HTTPAccessLogEntry entry = InboundEntry();
  google::protobuf::StringValue text;
  text.set_value(
      "type=deployment,workload=details-v1,name=details-v1-x,namespace=books,app=details");
  (*entry.mutable_common_properties()->mutable_filter_state_objects())["downstream_peer"].PackFrom(
      text);
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.source().workload(), "details-v1");
  EXPECT_EQ(record.source().namespace_(), "books");
  EXPECT_EQ(record.source().app(), "details");
}

TEST(AlsConverterTest, NoPeerMeansUnknownAsIstio) {
  HTTPAccessLogEntry entry = InboundEntry();
  entry.mutable_common_properties()->mutable_filter_state_objects()->clear();
  // An object of a type the converter does not know is ignored too.
  google::protobuf::UInt32Value other;
  (*entry.mutable_common_properties()->mutable_filter_state_objects())["downstream_peer"].PackFrom(
      other);
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, AlsNodeIdentity::FromIdentifier(IstioIdentifier()), record));
  IstioLabelScratch scratch;
  const auto labels = IstioRequestLabelValues(record, scratch);
  EXPECT_EQ(labels[0], "destination");
  EXPECT_EQ(labels[1], "unknown");  // source_workload
  EXPECT_EQ(labels[2], "unknown");  // source_canonical_service
  EXPECT_EQ(labels[3], "latest");   // source_canonical_revision
  EXPECT_EQ(labels[9], "reviews-v1");
  EXPECT_EQ(labels[15], "reviews-canonical");
  EXPECT_EQ(labels[19], "east");
}

TEST(AlsConverterTest, GrpcFromContentTypeAndStatusFromTrailers) {
  HTTPAccessLogEntry entry = InboundEntry();
  entry.set_protocol_version(HTTPAccessLogEntry::HTTP2);
  entry.mutable_request()->set_request_method(envoy::config::core::v3::POST);
  (*entry.mutable_request()->mutable_request_headers())["content-type"] = "application/grpc+proto";
  (*entry.mutable_response()->mutable_response_trailers())["grpc-status"] = "5";
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.protocol(), "HTTP/2");
  EXPECT_EQ(record.method(), "POST");
  EXPECT_EQ(record.request_protocol(), meshtel::v1::REQUEST_PROTOCOL_GRPC);
  ASSERT_TRUE(record.has_grpc_status());
  EXPECT_EQ(record.grpc_status(), 5u);
  ASSERT_EQ(record.captured_headers_size(), 1);
  EXPECT_EQ(record.captured_headers(0).name(), "content-type");
}

TEST(AlsConverterTest, TrailersOnlyGrpcStatusMarksGrpc) {
  HTTPAccessLogEntry entry = InboundEntry();
  (*entry.mutable_response()->mutable_response_headers())["grpc-status"] = "14";
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.request_protocol(), meshtel::v1::REQUEST_PROTOCOL_GRPC);
  EXPECT_EQ(record.grpc_status(), 14u);
}

TEST(AlsConverterTest, ResponseFlagsBecomeTheBitSet) {
  HTTPAccessLogEntry entry = InboundEntry();
  auto& flags = *entry.mutable_common_properties()->mutable_response_flags();
  flags.set_upstream_connection_failure(true);
  flags.set_upstream_retry_limit_exceeded(true);
  flags.mutable_unauthorized_details()->set_reason(
      envoy::data::accesslog::v3::ResponseFlags::Unauthorized::EXTERNAL_SERVICE);
  flags.set_downstream_remote_reset(true);
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  std::string codes;
  AppendResponseFlags(record.response_flags(), codes);
  EXPECT_EQ(codes, "UF,UAEX,URX,DR");
}

TEST(AlsConverterTest, EveryResponseFlagHasItsBit) {
  const auto* descriptor = envoy::data::accesslog::v3::ResponseFlags::descriptor();
  const auto* reflection = envoy::data::accesslog::v3::ResponseFlags::GetReflection();
  uint64_t all = 0;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_BOOL) continue;
    HTTPAccessLogEntry entry = InboundEntry();
    reflection->SetBool(entry.mutable_common_properties()->mutable_response_flags(), field, true);
    RequestRecord record;
    ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
    EXPECT_EQ(__builtin_popcountll(record.response_flags()), 1) << field->name();
    EXPECT_EQ(all & record.response_flags(), 0u) << field->name() << " reuses a bit";
    all |= record.response_flags();
  }
  EXPECT_EQ(__builtin_popcountll(all), 27);  // 28 flags, UAEX is the enum
}

TEST(AlsConverterTest, TraceparentGivesTraceIdAndParent) {
  HTTPAccessLogEntry entry = InboundEntry();
  (*entry.mutable_request()->mutable_request_headers())["traceparent"] =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.trace_id(), std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e"
                                           "\x0e\x47\x36",
                                           16));
  EXPECT_EQ(record.parent_span_id(), std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  ASSERT_EQ(record.span_id().size(), 8u);
  EXPECT_NE(record.span_id(), record.parent_span_id());
  EXPECT_TRUE(record.sampled());
  // The same entry gives the same span; the other side of the hop a different one.
  RequestRecord again;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, again));
  EXPECT_EQ(again.span_id(), record.span_id());
  entry.mutable_common_properties()->set_upstream_cluster("outbound|9080||x");
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, again));
  EXPECT_NE(again.span_id(), record.span_id());
}

TEST(AlsConverterTest, InvalidTraceparentIsIgnored) {
  for (const char* bad : {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "garbage"}) {
    HTTPAccessLogEntry entry = InboundEntry();
    (*entry.mutable_request()->mutable_request_headers())["traceparent"] = bad;
    RequestRecord record;
    ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
    EXPECT_TRUE(record.trace_id().empty()) << bad;
  }
}

TEST(AlsConverterTest, B3SingleAndMultiHeaders) {
  HTTPAccessLogEntry entry = InboundEntry();
  (*entry.mutable_request()->mutable_request_headers())["b3"] =
      "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.trace_id().size(), 16u);
  EXPECT_EQ(record.parent_span_id(), std::string("\xe4\x57\xb5\xa2\xe4\xd8\x6b\xd1", 8));
  EXPECT_TRUE(record.sampled());

  entry = InboundEntry();
  auto& headers = *entry.mutable_request()->mutable_request_headers();
  headers["X-B3-TraceId"] = "64fe8b2a57d3eff7";  // 64-bit trace id: left-padded
  headers["x-b3-spanid"] = "e457b5a2e4d86bd1";
  headers["x-b3-sampled"] = "0";
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.trace_id(), std::string("\0\0\0\0\0\0\0\0\x64\xfe\x8b\x2a\x57\xd3\xef\xf7", 16));
  EXPECT_FALSE(record.sampled());
}

TEST(AlsConverterTest, OriginalPathAndMethodFallback) {
  HTTPAccessLogEntry entry = InboundEntry();
  entry.mutable_request()->set_original_path("/api/v1/reviews");
  entry.mutable_request()->set_request_method(envoy::config::core::v3::METHOD_UNSPECIFIED);
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.path(), "/api/v1/reviews");
  EXPECT_EQ(record.method(), "");
}

TEST(AlsConverterTest, PassthroughClusterNamesItself) {
  HTTPAccessLogEntry entry = InboundEntry();
  entry.mutable_common_properties()->set_upstream_cluster("PassthroughCluster");
  entry.mutable_request()->set_authority("example.com");
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.reporter(), meshtel::v1::REPORTER_SOURCE);
  EXPECT_EQ(record.destination_service().host(), "example.com");
  EXPECT_EQ(record.destination_service().name(), "PassthroughCluster");
}

TEST(AlsConverterTest, TcpEntryAndIntermediateEntries) {
  TCPAccessLogEntry entry;
  AccessLogCommon& common = *entry.mutable_common_properties();
  common.set_upstream_cluster("outbound|5432||db.data.svc.cluster.local");
  common.set_access_log_type(envoy::data::accesslog::v3::TcpConnectionEnd);
  common.mutable_response_flags()->set_upstream_connection_failure(true);
  SetDuration(*common.mutable_duration(), 5'000'000'000);
  entry.mutable_connection_properties()->set_received_bytes(1000);
  entry.mutable_connection_properties()->set_sent_bytes(2000);
  const AlsNodeIdentity node = AlsNodeIdentity::FromIdentifier(IstioIdentifier());
  RequestRecord record;
  ASSERT_TRUE(ConvertTcpEntry(entry, node, record));
  EXPECT_EQ(record.request_protocol(), meshtel::v1::REQUEST_PROTOCOL_TCP);
  EXPECT_EQ(record.reporter(), meshtel::v1::REPORTER_SOURCE);
  EXPECT_EQ(record.request_bytes(), 1000u);
  EXPECT_EQ(record.response_bytes(), 2000u);
  EXPECT_EQ(record.duration_ns(), 5'000'000'000u);
  EXPECT_EQ(record.destination_service().name(), "db");
  EXPECT_EQ(record.source().workload(), "reviews-v1");

  StreamAccessLogsMessage message;
  *message.mutable_tcp_logs()->add_log_entry() = entry;
  TCPAccessLogEntry periodic = entry;
  periodic.mutable_common_properties()->set_access_log_type(
      envoy::data::accesslog::v3::TcpPeriodic);
  *message.mutable_tcp_logs()->add_log_entry() = periodic;
  TCPAccessLogEntry legacy = entry;
  legacy.mutable_common_properties()->set_access_log_type(envoy::data::accesslog::v3::NotSet);
  legacy.mutable_common_properties()->set_intermediate_log_entry(true);
  *message.mutable_tcp_logs()->add_log_entry() = legacy;
  google::protobuf::RepeatedPtrField<RequestRecord> records;
  const AlsConversion conversion = ConvertAlsMessage(message, node, records);
  EXPECT_EQ(conversion.converted, 1u);
  EXPECT_EQ(conversion.skipped, 2u);
  ASSERT_EQ(records.size(), 1);
  EXPECT_EQ(records[0].request_protocol(), meshtel::v1::REQUEST_PROTOCOL_TCP);
}

TEST(AlsConverterTest, HttpMessageConvertsEveryEntry) {
  StreamAccessLogsMessage message;
  *message.mutable_identifier() = IstioIdentifier();
  for (int i = 0; i < 3; ++i) *message.mutable_http_logs()->add_log_entry() = InboundEntry();
  google::protobuf::RepeatedPtrField<RequestRecord> records;
  const AlsConversion conversion =
      ConvertAlsMessage(message, AlsNodeIdentity::FromIdentifier(message.identifier()), records);
  EXPECT_EQ(conversion.converted, 3u);
  EXPECT_EQ(conversion.skipped, 0u);
  ASSERT_EQ(records.size(), 3);
  EXPECT_EQ(records[2].destination().workload(), "reviews-v1");
}

TEST(AlsConverterTest, IpV6AndPipeAddresses) {
  HTTPAccessLogEntry entry = InboundEntry();
  SetSocketAddress(*entry.mutable_common_properties()->mutable_upstream_remote_address(), "fd00::1",
                   8080);
  entry.mutable_common_properties()->mutable_downstream_remote_address()->mutable_pipe()->set_path(
      "/var/run/app.sock");
  RequestRecord record;
  ASSERT_TRUE(ConvertHttpEntry(entry, {}, record));
  EXPECT_EQ(record.upstream_host(), "[fd00::1]:8080");
  EXPECT_EQ(record.downstream_remote_address(), "/var/run/app.sock");
}

// A Struct entry (fields = 1) of `key` and the Value bytes `value`.
std::string StructEntry(const std::string& key, const std::string& value) {
  return LengthDelimitedField(1, LengthDelimitedField(1, key) + LengthDelimitedField(2, value));
}

std::string StringValueBytes(const std::string& text) { return LengthDelimitedField(3, text); }

// The identity ReadPeerIdentity gives for `struct_bytes` packed as a Struct, checked against the
// protobuf decode of the same bytes.
meshtel::v1::WorkloadIdentity PeerFromStructBytes(const std::string& struct_bytes) {
  const std::string type_url = "type.googleapis.com/google.protobuf.Struct";
  meshtel::v1::WorkloadIdentity read;
  ReadPeerIdentity(AlsAnyView{.present = true, .type_url = type_url, .value = struct_bytes}, read);
  meshtel::v1::WorkloadIdentity decoded;
  DecodePeerIdentity(type_url, struct_bytes, decoded);
  EXPECT_EQ(read.SerializeAsString(), decoded.SerializeAsString())
      << "read: " << read.ShortDebugString() << "\ndecoded: " << decoded.ShortDebugString();
  return read;
}

TEST(AlsConverterTest, PeerStructReadFromItsWireFormatAgreesWithProtobuf) {
  // Istio's object, with labels, and every other kind of value beside it.
  Struct object;
  ASSERT_TRUE(PeerObject("productpage", "shop").UnpackTo(&object));
  Struct& labels = *(*object.mutable_fields())["labels"].mutable_struct_value();
  SetStructString(labels, "app.kubernetes.io/version", "v9");
  SetStructString(labels, "service.istio.io/canonical-name", "pp");
  (*object.mutable_fields())["count"].set_number_value(2.5);
  (*object.mutable_fields())["on"].set_bool_value(true);
  (*object.mutable_fields())["nothing"].set_null_value(google::protobuf::NULL_VALUE);
  auto& list = *(*object.mutable_fields())["list"].mutable_list_value();
  list.add_values()->set_string_value("a");
  SetStructString(*list.add_values()->mutable_struct_value(), "workload", "not-this-one");
  const auto identity = PeerFromStructBytes(object.SerializeAsString());
  EXPECT_EQ(identity.workload(), "productpage");
  EXPECT_EQ(identity.version(), "v2");
  EXPECT_EQ(identity.canonical_service(), "productpage-svc");

  // Node-metadata keys.
  Struct node;
  SetStructString(node, "NAME", "pod-1");
  SetStructString(node, "NAMESPACE", "ns");
  SetStructString(*(*node.mutable_fields())["LABELS"].mutable_struct_value(), "app", "a1");
  EXPECT_EQ(PeerFromStructBytes(node.SerializeAsString()).app(), "a1");

  // A key given twice: the last value counts; a Value whose members change: the last counts.
  EXPECT_EQ(PeerFromStructBytes(StructEntry("workload", StringValueBytes("first")) +
                                StructEntry("workload", StringValueBytes("second")))
                .workload(),
            "second");
  EXPECT_EQ(PeerFromStructBytes(
                StructEntry("workload", StringValueBytes("text") + std::string("\x20\x01", 2)))
                .workload(),
            "");
  EXPECT_EQ(PeerFromStructBytes(
                StructEntry("app", std::string("\x20\x01", 2) + StringValueBytes("later")))
                .app(),
            "later");
  // A Struct member given twice (protobuf merges them), an entry given its value twice, unknown
  // fields, a group, a wrong wire type, invalid UTF-8 in a value the identity does not read,
  // truncated bytes, nesting deeper than the walk goes and deeper than protobuf allows.
  const std::string labels_a = LengthDelimitedField(5, StructEntry("app", StringValueBytes("x")));
  const std::string labels_b =
      LengthDelimitedField(5, StructEntry("version", StringValueBytes("y")));
  EXPECT_EQ(PeerFromStructBytes(StructEntry("labels", labels_a + labels_b)).version(), "y");
  EXPECT_EQ(PeerFromStructBytes(
                LengthDelimitedField(1, LengthDelimitedField(1, "app") +
                                            LengthDelimitedField(2, StringValueBytes("p")) +
                                            LengthDelimitedField(2, StringValueBytes("q"))))
                .app(),
            "q");
  PeerFromStructBytes(StructEntry("app", StringValueBytes("a")) + std::string("\x10\x05", 2) +
                      LengthDelimitedField(9, "zz"));
  PeerFromStructBytes(StructEntry("app", StringValueBytes("a")) + std::string("\x2b\x2c", 2));
  PeerFromStructBytes(StructEntry("app", std::string("\x18\x01", 2)));
  PeerFromStructBytes(StructEntry("app", StringValueBytes("a")) +
                      StructEntry("other", StringValueBytes("\xff")));
  const std::string whole = object.SerializeAsString();
  PeerFromStructBytes(whole.substr(0, whole.size() - 3));
  // Each level of struct_value is three message levels (Value, Struct, entry): 5 levels are
  // walked, 20 are left to protobuf, which accepts them, 40 are over protobuf's limit of 100.
  for (int depth : {5, 20, 40}) {
    std::string value = StringValueBytes("deep");
    for (int i = 0; i < depth; ++i) value = LengthDelimitedField(5, StructEntry("k", value));
    EXPECT_EQ(PeerFromStructBytes(StructEntry("app", StringValueBytes("a")) +
                                  StructEntry("nested", value))
                  .app(),
              depth < 40 ? "a" : "")
        << depth;
  }
  std::string too_deep = StringValueBytes("deep");
  for (int i = 0; i < 60; ++i)
    too_deep = LengthDelimitedField(6, LengthDelimitedField(1, too_deep));
  EXPECT_EQ(PeerFromStructBytes(StructEntry("app", StringValueBytes("a")) +
                                StructEntry("nested", too_deep))
                .app(),
            "");  // 120 levels of lists: protobuf refuses the Struct
}

}  // namespace
}  // namespace meshtel::collector
