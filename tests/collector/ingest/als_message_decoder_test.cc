#include "collector/ingest/als_message_decoder.h"

#include <cstdint>

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/arena.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/message_differencer.h"
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
using envoy::service::accesslog::v3::StreamAccessLogsMessage;
using google::protobuf::Struct;
using meshtel::v1::RequestRecord;
using Records = google::protobuf::RepeatedPtrField<RequestRecord>;

StreamAccessLogsMessage::Identifier Identifier(const std::string& workload) {
  StreamAccessLogsMessage::Identifier identifier;
  identifier.set_log_name("http_envoy_accesslog");
  auto& node = *identifier.mutable_node();
  node.set_id("sidecar~10.0.1.7~" + workload + "-abc.shop~shop.svc.cluster.local");
  Struct& metadata = *node.mutable_metadata();
  SetStructString(metadata, "NAME", workload + "-abc");
  SetStructString(metadata, "NAMESPACE", "shop");
  SetStructString(metadata, "WORKLOAD_NAME", workload);
  SetStructString(metadata, "CLUSTER_ID", "east");
  Struct& labels = *(*metadata.mutable_fields())["LABELS"].mutable_struct_value();
  SetStructString(labels, "app", "reviews");
  SetStructString(labels, "version", "v1");
  return identifier;
}

google::protobuf::Any PeerObject(const std::string& workload) {
  Struct object;
  SetStructString(object, "workload", workload);
  SetStructString(object, "namespace", "shop");
  SetStructString(object, "cluster", "west");
  SetStructString(object, "service", workload + "-svc");
  SetStructString(object, "app", workload);
  Struct& labels = *(*object.mutable_fields())["labels"].mutable_struct_value();
  SetStructString(labels, "version", "v3");
  SetStructString(labels, "service.istio.io/canonical-revision", "r9");
  google::protobuf::Any any;
  any.PackFrom(object);
  return any;
}

// An Istio-like entry, inbound (even n) or outbound (odd n).
HTTPAccessLogEntry TypicalEntry(int n) {
  HTTPAccessLogEntry entry;
  entry.set_protocol_version(HTTPAccessLogEntry::HTTP11);
  AccessLogCommon& common = *entry.mutable_common_properties();
  common.mutable_start_time()->set_seconds(1'755'000'000 + n);
  common.mutable_start_time()->set_nanos(123'000'000);
  common.mutable_time_to_last_rx_byte()->set_nanos(1'000'000);
  common.mutable_time_to_first_upstream_tx_byte()->set_nanos(2'000'000);
  common.mutable_time_to_last_upstream_tx_byte()->set_nanos(3'000'000);
  common.mutable_time_to_first_upstream_rx_byte()->set_nanos(9'000'000);
  common.mutable_time_to_last_upstream_rx_byte()->set_nanos(10'000'000);
  common.mutable_time_to_first_downstream_tx_byte()->set_nanos(9'500'000);
  common.mutable_time_to_last_downstream_tx_byte()->set_seconds(1);
  common.mutable_duration()->set_nanos(12'000'000 + n);
  const bool inbound = n % 2 == 0;
  SetSocketAddress(*common.mutable_downstream_remote_address(), "10.0.1.5", 41234 + n);
  SetSocketAddress(*common.mutable_downstream_local_address(), "10.0.1.7", 9080);
  SetSocketAddress(*common.mutable_upstream_remote_address(), inbound ? "127.0.0.1" : "10.0.3.9",
                   9080);
  SetSocketAddress(*common.mutable_upstream_local_address(), "127.0.0.6", 40001);
  common.set_upstream_cluster(inbound ? "inbound|9080||"
                                      : "outbound|9080||ratings.shop.svc.cluster.local");
  common.set_route_name("default");
  common.set_downstream_wire_bytes_received(321);
  common.set_downstream_wire_bytes_sent(1432);
  common.set_access_log_type(envoy::data::accesslog::v3::DownstreamEnd);
  (*common.mutable_filter_state_objects())[inbound ? "downstream_peer" : "upstream_peer"] =
      PeerObject(inbound ? "productpage" : "ratings");
  auto& request = *entry.mutable_request();
  request.set_request_method(envoy::config::core::v3::GET);
  request.set_scheme("http");
  request.set_authority(inbound ? "reviews.shop.svc.cluster.local:9080" : "ratings:9080");
  request.set_path("/reviews/" + std::to_string(n));
  request.set_user_agent("curl/8.5.0");
  request.set_forwarded_for("10.0.0.1");
  request.set_request_id("c5b7e1a2-1111-2222-3333-44445555" + std::to_string(1000 + n));
  request.set_request_headers_bytes(100);
  (*request.mutable_request_headers())["traceparent"] =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto& response = *entry.mutable_response();
  response.mutable_response_code()->set_value(n % 3 == 0 ? 503 : 200);
  response.set_response_code_details("via_upstream");
  response.set_response_headers_bytes(200);
  response.set_response_body_bytes(1000);
  return entry;
}

// Every field the subset knows, in unusual values.
HTTPAccessLogEntry FullEntry() {
  HTTPAccessLogEntry entry = TypicalEntry(1);
  entry.set_protocol_version(HTTPAccessLogEntry::HTTP2);
  AccessLogCommon& common = *entry.mutable_common_properties();
  common.set_sample_rate(0.5);
  common.mutable_downstream_remote_address()->mutable_socket_address()->set_address("fe80::1");
  common.mutable_downstream_local_address()->mutable_socket_address()->set_named_port("http");
  common.mutable_upstream_remote_address()->mutable_pipe()->set_path("/run/app.sock");
  common.mutable_upstream_remote_address()->mutable_pipe()->set_mode(0600);
  auto& internal = *common.mutable_upstream_local_address()->mutable_envoy_internal_address();
  internal.set_server_listener_name("listener-a");
  internal.set_endpoint_id("ep-1");
  SetSocketAddress(*common.mutable_downstream_direct_remote_address(), "10.9.9.9", 1);
  common.mutable_downstream_direct_remote_address()->mutable_socket_address()->set_resolver_name(
      "dns");
  common.set_upstream_cluster("inbound|9080|http|reviews.shop.svc.cluster.local");
  auto& tls = *common.mutable_tls_properties();
  tls.set_tls_version(envoy::data::accesslog::v3::TLSProperties::TLSv1_3);
  tls.mutable_tls_cipher_suite()->set_value(0x1301);
  tls.set_tls_sni_hostname("reviews.shop");
  tls.mutable_peer_certificate_properties()->add_subject_alt_name()->set_dns("peer.example");
  tls.mutable_peer_certificate_properties()->add_subject_alt_name()->set_uri("");
  tls.mutable_peer_certificate_properties()->add_subject_alt_name()->set_uri(
      "spiffe://cluster.local/ns/shop/sa/productpage");
  tls.mutable_peer_certificate_properties()->set_subject("CN=peer");
  tls.mutable_local_certificate_properties()->add_subject_alt_name()->set_uri(
      "spiffe://cluster.local/ns/shop/sa/reviews");
  tls.mutable_local_certificate_properties()->set_issuer("CN=ca");
  tls.set_tls_session_id("abcd");
  tls.set_ja3_fingerprint("769,47-53");
  auto& flags = *common.mutable_response_flags();
  flags.set_upstream_connection_failure(true);
  flags.set_no_route_found(true);
  flags.set_downstream_remote_reset(true);
  flags.mutable_unauthorized_details()->set_reason(
      envoy::data::accesslog::v3::ResponseFlags::Unauthorized::EXTERNAL_SERVICE);
  common.set_upstream_transport_failure_reason("reset");
  (*common.mutable_custom_tags())["team"] = "blue";
  (*common.mutable_filter_state_objects())["other"] = PeerObject("nobody");
  google::protobuf::StringValue pairs;
  pairs.set_value("workload=productpage-v1,namespace=shop,cluster=west");
  (*common.mutable_filter_state_objects())["downstream_peer"].PackFrom(pairs);
  common.set_upstream_request_attempt_count(2);
  common.set_connection_termination_details("none");
  common.set_stream_id("s-1");
  common.set_downstream_transport_failure_reason("");
  common.set_upstream_wire_bytes_sent(7);
  common.set_upstream_wire_bytes_received(8);
  common.clear_duration();
  auto& request = *entry.mutable_request();
  request.set_request_method(envoy::config::core::v3::METHOD_UNSPECIFIED);
  request.mutable_port()->set_value(9080);
  request.set_referer("http://front/");
  request.set_original_path("/original");
  request.set_request_body_bytes(12);
  request.set_upstream_header_bytes_sent(5);
  request.set_downstream_header_bytes_received(6);
  auto& headers = *request.mutable_request_headers();
  headers.clear();
  headers[":method"] = "PATCH";
  headers["Content-Type"] = "application/grpc+proto";
  headers["content-type"] = "application/json";
  headers["X-B3-TraceId"] = "80f198ee56343ba864fe8b2a57d3eff7";
  headers["x-b3-spanid"] = "e457b5a2e4d86bd1";
  headers["x-b3-sampled"] = "1";
  auto& response = *entry.mutable_response();
  (*response.mutable_response_headers())["Grpc-Status"] = "7";
  (*response.mutable_response_trailers())["grpc-status"] = "14";
  response.set_upstream_header_bytes_received(9);
  response.set_downstream_header_bytes_sent(10);
  return entry;
}

StreamAccessLogsMessage MessageOf(const std::vector<HTTPAccessLogEntry>& entries,
                                  bool identifier = true) {
  StreamAccessLogsMessage message;
  if (identifier) *message.mutable_identifier() = Identifier("reviews-v1");
  for (const auto& entry : entries) *message.mutable_http_logs()->add_log_entry() = entry;
  return message;
}

// A message whose only entry has the given bytes.
std::string MessageWithEntryBytes(const std::string& entry_bytes) {
  return MessageOf({}).SerializeAsString() +
         LengthDelimitedField(2, LengthDelimitedField(1, entry_bytes));
}

struct Decoded {
  AlsStreamDecoder::Outcome outcome;
  std::vector<RequestRecord> records;
  AlsConversion conversion;
};

Decoded DecodeWith(AlsStreamDecoder& decoder, const std::string& bytes) {
  google::protobuf::Arena arena;
  auto& records = *google::protobuf::Arena::Create<Records>(&arena);
  Decoded decoded;
  decoded.outcome = decoder.Decode(bytes, arena, records, decoded.conversion);
  for (const auto& record : records) decoded.records.push_back(record);
  return decoded;
}

// What the protobuf path gives for `bytes` as the first message of a stream.
Decoded DecodeWithProtobuf(const std::string& bytes) {
  Decoded decoded;
  StreamAccessLogsMessage message;
  if (!message.ParseFromString(bytes)) {
    decoded.outcome = AlsStreamDecoder::Outcome::kInvalid;
    return decoded;
  }
  if (!message.has_identifier()) {
    decoded.outcome = AlsStreamDecoder::Outcome::kNoIdentifier;
    return decoded;
  }
  Records records;
  decoded.conversion =
      ConvertAlsMessage(message, AlsNodeIdentity::FromIdentifier(message.identifier()), records);
  decoded.outcome = AlsStreamDecoder::Outcome::kOk;
  for (const auto& record : records) decoded.records.push_back(record);
  return decoded;
}

void ExpectSameRecords(const Decoded& want, const Decoded& got) {
  EXPECT_EQ(got.records.size(), want.records.size());
  for (size_t i = 0; i < got.records.size() && i < want.records.size(); ++i) {
    std::string difference;
    google::protobuf::util::MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&difference);
    EXPECT_TRUE(differencer.Compare(want.records[i], got.records[i]))
        << "record " << i << ": " << difference;
  }
}

// Decodes `bytes` as a stream's first message and checks the result against the protobuf path.
AlsStreamDecoder::Paths ExpectSameAsProtobuf(const std::string& bytes) {
  AlsStreamDecoder decoder;
  const Decoded got = DecodeWith(decoder, bytes);
  const Decoded want = DecodeWithProtobuf(bytes);
  EXPECT_EQ(got.outcome, want.outcome);
  EXPECT_EQ(got.conversion.converted, want.conversion.converted);
  EXPECT_EQ(got.conversion.skipped, want.conversion.skipped);
  EXPECT_EQ(got.conversion.text_repaired, 0u);
  ExpectSameRecords(want, got);
  return decoder.paths();
}

TEST(AlsMessageDecoderTest, TypicalEntriesAreReadFromTheWireAsProtobufReadsThem) {
  std::vector<HTTPAccessLogEntry> entries;
  for (int n = 0; n < 6; ++n) entries.push_back(TypicalEntry(n));
  const AlsStreamDecoder::Paths paths =
      ExpectSameAsProtobuf(MessageOf(entries).SerializeAsString());
  EXPECT_EQ(paths.wire_entries, 6u);
  EXPECT_EQ(paths.protobuf_entries, 0u);
  EXPECT_EQ(paths.protobuf_messages, 0u);
}

TEST(AlsMessageDecoderTest, EveryFieldOfTheSubsetIsReadFromTheWire) {
  const AlsStreamDecoder::Paths paths =
      ExpectSameAsProtobuf(MessageOf({FullEntry()}).SerializeAsString());
  EXPECT_EQ(paths.wire_entries, 1u);
  EXPECT_EQ(paths.protobuf_entries + paths.protobuf_messages, 0u);
  // And the result is what the conversion documents (a few spot checks).
  AlsStreamDecoder decoder;
  const Decoded decoded = DecodeWith(decoder, MessageOf({FullEntry()}).SerializeAsString());
  ASSERT_EQ(decoded.records.size(), 1u);
  const RequestRecord& record = decoded.records[0];
  EXPECT_EQ(record.method(), "PATCH");
  EXPECT_EQ(record.path(), "/original");
  EXPECT_EQ(record.protocol(), "HTTP/2");
  EXPECT_EQ(record.downstream_remote_address(), "[fe80::1]:41235");
  EXPECT_EQ(record.downstream_local_address(), "10.0.1.7:http");
  EXPECT_EQ(record.upstream_host(), "/run/app.sock");
  EXPECT_EQ(record.upstream_local_address(), "envoy://listener-a/ep-1");
  EXPECT_EQ(record.source().principal(), "spiffe://cluster.local/ns/shop/sa/productpage");
  EXPECT_EQ(record.source().workload(), "productpage-v1");
  EXPECT_TRUE(record.mutual_tls());
  EXPECT_EQ(record.request_protocol(), meshtel::v1::REQUEST_PROTOCOL_GRPC);
  EXPECT_EQ(record.grpc_status(), 14u);
  EXPECT_EQ(record.duration_ns(), 1'000'000'000u);
  EXPECT_EQ(record.response_flags(),
            (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE) |
                (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND) |
                (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_REMOTE_RESET) |
                (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UNAUTHORIZED_EXTERNAL_SERVICE));
  EXPECT_EQ(record.trace_id().size(), 16u);
  ASSERT_EQ(record.captured_headers_size(), 6);
  EXPECT_EQ(record.captured_headers(0).name(), ":method");
  EXPECT_EQ(record.captured_headers(1).name(), "content-type");
  EXPECT_EQ(record.captured_headers(1).value(), "application/grpc+proto");  // "Content-Type"
  EXPECT_EQ(record.captured_headers(2).value(), "application/json");
}

TEST(AlsMessageDecoderTest, IntermediateAndOddlyEncodedEntriesMatchProtobuf) {
  HTTPAccessLogEntry periodic = TypicalEntry(2);
  periodic.mutable_common_properties()->set_access_log_type(
      envoy::data::accesslog::v3::DownstreamPeriodic);
  HTTPAccessLogEntry legacy = TypicalEntry(3);
  legacy.mutable_common_properties()->set_access_log_type(envoy::data::accesslog::v3::NotSet);
  legacy.mutable_common_properties()->set_intermediate_log_entry(true);
  HTTPAccessLogEntry empty;
  EXPECT_EQ(ExpectSameAsProtobuf(
                MessageOf({periodic, legacy, empty, TypicalEntry(4)}).SerializeAsString())
                .wire_entries,
            4u);

  // Fields in reverse order, unknown fields of every wire type, strings given twice (the last
  // counts), the port oneof switched within one socket address.
  const HTTPAccessLogEntry typical = TypicalEntry(0);
  HTTPAccessLogEntry only;
  *only.mutable_response() = typical.response();
  std::string entry_bytes = only.SerializeAsString();

  auto request = typical.request();
  std::string request_bytes = request.SerializeAsString();
  request.Clear();
  request.set_path("/second");
  request_bytes += request.SerializeAsString();
  request_bytes += std::string("\xa0\x06\x05", 3);                       // field 100, varint
  request_bytes += std::string("\xa5\x06\x01\x02\x03\x04", 6);           // fixed32
  request_bytes += std::string("\xa1\x06", 2) + std::string(8, '\x07');  // fixed64
  request_bytes += std::string("\xa2\x06\x02hi", 5);                     // length-delimited
  entry_bytes += LengthDelimitedField(3, request_bytes);

  only.Clear();
  only.set_protocol_version(HTTPAccessLogEntry::HTTP10);
  entry_bytes += only.SerializeAsString();

  AccessLogCommon common = typical.common_properties();
  common.clear_downstream_remote_address();
  std::string common_bytes = common.SerializeAsString();
  envoy::config::core::v3::SocketAddress named;
  named.set_address("10.1.1.1");
  named.set_named_port("x");
  envoy::config::core::v3::SocketAddress numbered;
  numbered.set_port_value(77);
  common_bytes += LengthDelimitedField(
      2, LengthDelimitedField(1, named.SerializeAsString() + numbered.SerializeAsString()));
  AccessLogCommon common_tail;
  common_tail.set_route_name("second-route");
  common_bytes += common_tail.SerializeAsString();
  entry_bytes += LengthDelimitedField(1, common_bytes);

  const std::string entries = LengthDelimitedField(1, entry_bytes) +
                              std::string("\x10\x01", 2);  // HTTPAccessLogEntries: field 2
  const std::string message_bytes = MessageOf({}).SerializeAsString() +
                                    LengthDelimitedField(2, entries) +
                                    std::string("\xa0\x06\x01", 3);  // the message: field 100
  const AlsStreamDecoder::Paths paths = ExpectSameAsProtobuf(message_bytes);
  EXPECT_EQ(paths.wire_entries, 1u);
  EXPECT_EQ(paths.protobuf_messages, 0u);
  AlsStreamDecoder decoder;
  const Decoded decoded = DecodeWith(decoder, message_bytes);
  ASSERT_EQ(decoded.records.size(), 1u);
  EXPECT_EQ(decoded.records[0].path(), "/second");
  EXPECT_EQ(decoded.records[0].route_name(), "second-route");
  EXPECT_EQ(decoded.records[0].protocol(), "HTTP/1.0");
  EXPECT_EQ(decoded.records[0].downstream_remote_address(), "10.1.1.1:77");
}

TEST(AlsMessageDecoderTest, EntriesTheWalkDoesNotVouchForGoThroughProtobufAlone) {
  // metadata; a message field given twice (protobuf merges); a known field of another wire type;
  // a group; the Address oneof given two members.
  HTTPAccessLogEntry with_metadata = TypicalEntry(0);
  SetStructString((*with_metadata.mutable_common_properties()
                        ->mutable_metadata()
                        ->mutable_filter_metadata())["istio"],
                  "k", "v");
  const AlsStreamDecoder::Paths metadata =
      ExpectSameAsProtobuf(MessageOf({with_metadata, TypicalEntry(1)}).SerializeAsString());
  EXPECT_EQ(metadata.protobuf_entries, 1u);
  EXPECT_EQ(metadata.wire_entries, 1u);

  HTTPAccessLogEntry first;
  first.mutable_response()->mutable_response_code()->set_value(200);
  HTTPAccessLogEntry second;
  second.mutable_response()->set_response_code_details("merged");
  EXPECT_EQ(ExpectSameAsProtobuf(
                MessageWithEntryBytes(first.SerializeAsString() + second.SerializeAsString()))
                .protobuf_entries,
            1u);

  // protocol_version (2) as a fixed32: protobuf keeps it as an unknown field.
  EXPECT_EQ(ExpectSameAsProtobuf(MessageWithEntryBytes(std::string("\x15\x01\x00\x00\x00", 5)))
                .protobuf_entries,
            1u);
  // A group (field 5): protobuf skips it.
  EXPECT_EQ(ExpectSameAsProtobuf(MessageWithEntryBytes(std::string("\x2b\x08\x01\x2c", 4)))
                .protobuf_entries,
            1u);
  // An Address with a socket address and then a pipe: the last member counts.
  envoy::config::core::v3::Address socket;
  SetSocketAddress(socket, "10.0.0.1", 80);
  envoy::config::core::v3::Address pipe;
  pipe.mutable_pipe()->set_path("/p");
  const std::string entry = LengthDelimitedField(
      1, LengthDelimitedField(13, socket.SerializeAsString() + pipe.SerializeAsString()));
  EXPECT_EQ(ExpectSameAsProtobuf(MessageWithEntryBytes(entry)).protobuf_entries, 1u);
}

TEST(AlsMessageDecoderTest, MalformedMessagesAreInvalidAndAppendNothing) {
  const std::string good = MessageOf({TypicalEntry(0), TypicalEntry(1)}).SerializeAsString();
  for (size_t cut : {good.size() - 1, good.size() / 2, size_t{3}}) {
    ExpectSameAsProtobuf(good.substr(0, cut));
  }
  // A bad message after a good one: the stream's identity stays, nothing is appended.
  AlsStreamDecoder decoder;
  EXPECT_EQ(DecodeWith(decoder, good).outcome, AlsStreamDecoder::Outcome::kOk);
  const std::string truncated = MessageOf({TypicalEntry(2)}, false).SerializeAsString();
  const Decoded after = DecodeWith(decoder, truncated.substr(0, truncated.size() - 1));
  EXPECT_EQ(after.outcome, AlsStreamDecoder::Outcome::kInvalid);
  EXPECT_TRUE(after.records.empty());
  EXPECT_EQ(decoder.node()->workload.workload(), "reviews-v1");
}

// Decodes `bytes` (which protobuf refuses for text that is not UTF-8) as a stream's first
// message and checks that every entry is kept: the records are what protobuf gives for
// `repaired_bytes` (the same message with the text repaired), `text_repaired` of them counted.
// Returns the records and the decoder's paths.
std::pair<Decoded, AlsStreamDecoder::Paths> ExpectKeptRepaired(const std::string& bytes,
                                                               const std::string& repaired_bytes,
                                                               size_t converted,
                                                               size_t text_repaired) {
  EXPECT_EQ(DecodeWithProtobuf(bytes).outcome, AlsStreamDecoder::Outcome::kInvalid);
  AlsStreamDecoder decoder;
  Decoded got = DecodeWith(decoder, bytes);
  const Decoded want = DecodeWithProtobuf(repaired_bytes);
  EXPECT_EQ(got.outcome, AlsStreamDecoder::Outcome::kOk);
  EXPECT_EQ(want.outcome, AlsStreamDecoder::Outcome::kOk);
  EXPECT_EQ(got.conversion.converted, converted);
  EXPECT_EQ(got.conversion.text_repaired, text_repaired);
  ExpectSameRecords(want, got);
  for (const RequestRecord& record : got.records) {
    RequestRecord parsed;
    EXPECT_TRUE(parsed.ParseFromString(record.SerializeAsString()));
  }
  return {std::move(got), decoder.paths()};
}

// Envoy logs a client's header values and path as they came, so an entry's text may not be
// UTF-8; protobuf refuses the whole message for it. The walk keeps every entry: the bad bytes
// become U+FFFD in the record (counted), and the other entries are what protobuf gives.
TEST(AlsMessageDecoderTest, TextThatIsNotUtf8IsRepairedAndNoEntryIsLost) {
  HTTPAccessLogEntry bad = TypicalEntry(0);
  bad.mutable_request()->set_authority("a\xff");
  bad.mutable_request()->set_user_agent("curl\xc3(");
  HTTPAccessLogEntry repaired = bad;
  repaired.mutable_request()->set_authority("a\xef\xbf\xbd");
  repaired.mutable_request()->set_user_agent("curl\xef\xbf\xbd(");
  const auto [got, paths] = ExpectKeptRepaired(
      MessageOf({TypicalEntry(1), bad, TypicalEntry(2)}).SerializeAsString(),
      MessageOf({TypicalEntry(1), repaired, TypicalEntry(2)}).SerializeAsString(), 3, 1);
  ASSERT_EQ(got.records.size(), 3u);
  EXPECT_EQ(got.records[1].authority(), "a\xef\xbf\xbd");
  EXPECT_EQ(paths.wire_entries, 3u);
  EXPECT_EQ(paths.protobuf_messages, 0u);

  // Bad text in strings the record does not keep (a stream id, a trailer name): the entry is
  // taken as protobuf would take it with valid text, and nothing needed repair.
  for (int field = 0; field < 2; ++field) {
    HTTPAccessLogEntry odd = TypicalEntry(0);
    HTTPAccessLogEntry valid = odd;
    if (field == 0) {
      odd.mutable_common_properties()->set_stream_id("\xc3");
      valid.mutable_common_properties()->set_stream_id("c");
    } else {
      (*odd.mutable_response()->mutable_response_trailers())["\xe2\x28"] = "x";
      (*valid.mutable_response()->mutable_response_trailers())["e"] = "x";
    }
    AlsStreamDecoder odd_decoder;
    const Decoded odd_got = DecodeWith(odd_decoder, MessageOf({odd}).SerializeAsString());
    const Decoded odd_want = DecodeWithProtobuf(MessageOf({valid}).SerializeAsString());
    ASSERT_EQ(odd_got.outcome, AlsStreamDecoder::Outcome::kOk) << field;
    EXPECT_EQ(odd_got.conversion.text_repaired, 0u) << field;
    ASSERT_EQ(odd_got.records.size(), 1u) << field;
    ASSERT_EQ(odd_want.records.size(), 1u) << field;
    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(odd_want.records[0], odd_got.records[0]))
        << field;
  }
}

// Text that is not UTF-8 in what the walk leaves to protobuf — an entry with metadata (decoded
// alone by protobuf) or a TCP entry (its message decoded whole) — is repaired too: no entry is
// lost, each repaired entry is counted, and the records are what protobuf gives for the text
// repaired.
TEST(AlsMessageDecoderTest, TextThatIsNotUtf8IsRepairedWhereProtobufDecodesTheEntry) {
  HTTPAccessLogEntry bad = TypicalEntry(0);
  bad.mutable_request()->set_authority("a\xff");
  SetStructString(
      (*bad.mutable_common_properties()->mutable_metadata()->mutable_filter_metadata())["m"], "k",
      "v\xc3");
  HTTPAccessLogEntry repaired = bad;
  repaired.mutable_request()->set_authority("a\xef\xbf\xbd");
  SetStructString(
      (*repaired.mutable_common_properties()->mutable_metadata()->mutable_filter_metadata())["m"],
      "k", "v\xef\xbf\xbd");
  const auto [got, paths] =
      ExpectKeptRepaired(MessageOf({TypicalEntry(1), bad}).SerializeAsString(),
                         MessageOf({TypicalEntry(1), repaired}).SerializeAsString(), 2, 1);
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[1].authority(), "a\xef\xbf\xbd");
  EXPECT_EQ(paths.wire_entries, 1u);
  EXPECT_EQ(paths.protobuf_entries, 1u);
  EXPECT_EQ(paths.protobuf_messages, 0u);

  // TCP entries, one with bad text, in a message protobuf decodes whole.
  StreamAccessLogsMessage tcp = MessageOf({});
  for (int i = 0; i < 2; ++i) {
    auto& entry = *tcp.mutable_tcp_logs()->add_log_entry();
    *entry.mutable_common_properties() = TypicalEntry(i).common_properties();
    entry.mutable_connection_properties()->set_received_bytes(10);
  }
  StreamAccessLogsMessage tcp_repaired = tcp;
  tcp.mutable_tcp_logs()
      ->mutable_log_entry(1)
      ->mutable_common_properties()
      ->set_upstream_transport_failure_reason("tls\xff");
  tcp_repaired.mutable_tcp_logs()
      ->mutable_log_entry(1)
      ->mutable_common_properties()
      ->set_upstream_transport_failure_reason("tls\xef\xbf\xbd");
  EXPECT_EQ(ExpectKeptRepaired(tcp.SerializeAsString(), tcp_repaired.SerializeAsString(), 2, 1)
                .second.protobuf_messages,
            1u);
}

TEST(AlsMessageDecoderTest, TheIdentifierComesFromTheFirstMessageThatCarriesOne) {
  AlsStreamDecoder decoder;
  // No identifier yet: refused, as by protobuf.
  const std::string anonymous = MessageOf({TypicalEntry(0)}, false).SerializeAsString();
  EXPECT_EQ(DecodeWith(decoder, anonymous).outcome, AlsStreamDecoder::Outcome::kNoIdentifier);
  EXPECT_FALSE(decoder.node().has_value());
  // An identifier with a malformed entry: invalid, and the identifier is not taken.
  std::string broken = MessageOf({TypicalEntry(0)}).SerializeAsString();
  broken.pop_back();
  EXPECT_EQ(DecodeWith(decoder, broken).outcome, AlsStreamDecoder::Outcome::kInvalid);
  EXPECT_FALSE(decoder.node().has_value());
  // The first good one sets it; later identifiers are checked but not used.
  EXPECT_EQ(DecodeWith(decoder, MessageOf({TypicalEntry(0)}).SerializeAsString()).outcome,
            AlsStreamDecoder::Outcome::kOk);
  ASSERT_TRUE(decoder.node().has_value());
  EXPECT_EQ(decoder.node()->log_name, "http_envoy_accesslog");
  StreamAccessLogsMessage other = MessageOf({TypicalEntry(1)});
  *other.mutable_identifier() = Identifier("ratings-v1");
  const Decoded later = DecodeWith(decoder, other.SerializeAsString());
  EXPECT_EQ(later.outcome, AlsStreamDecoder::Outcome::kOk);
  ASSERT_EQ(later.records.size(), 1u);
  EXPECT_EQ(later.records[0].source().workload(), "reviews-v1");
  EXPECT_EQ(DecodeWith(decoder, anonymous).records.size(), 1u);
  // A later identifier with text that is not UTF-8 (in log_name): protobuf refuses the message,
  // the decoder takes it with the text repaired, and its entry is kept.
  StreamAccessLogsMessage repaired = MessageOf({TypicalEntry(1)});
  repaired.mutable_identifier()->set_log_name("\xff");
  const Decoded kept = DecodeWith(decoder, repaired.SerializeAsString());
  EXPECT_EQ(kept.outcome, AlsStreamDecoder::Outcome::kOk);
  EXPECT_EQ(kept.records.size(), 1u);
  EXPECT_EQ(kept.conversion.text_repaired, 0u);      // no entry had bad text
  EXPECT_EQ(decoder.paths().protobuf_messages, 3u);  // no identifier, invalid, repaired
}

TEST(AlsMessageDecoderTest, TcpEntriesTakeTheProtobufPath) {
  StreamAccessLogsMessage message = MessageOf({});
  auto& entry = *message.mutable_tcp_logs()->add_log_entry();
  *entry.mutable_common_properties() = TypicalEntry(0).common_properties();
  entry.mutable_connection_properties()->set_received_bytes(10);
  entry.mutable_connection_properties()->set_sent_bytes(20);
  const AlsStreamDecoder::Paths paths = ExpectSameAsProtobuf(message.SerializeAsString());
  EXPECT_EQ(paths.protobuf_messages, 1u);
}

TEST(AlsMessageDecoderTest, ReusedRecordsGiveWhatFreshOnesGive) {
  // One RepeatedPtrField across messages, as the receiver keeps it: larger, smaller, with an
  // intermediate entry, an inbound entry where an outbound one was, and through the protobuf
  // path. Each time the records equal a fresh decode's.
  HTTPAccessLogEntry periodic = TypicalEntry(5);
  periodic.mutable_common_properties()->set_access_log_type(
      envoy::data::accesslog::v3::DownstreamPeriodic);
  HTTPAccessLogEntry with_tls = FullEntry();
  HTTPAccessLogEntry with_metadata = TypicalEntry(7);
  SetStructString((*with_metadata.mutable_common_properties()
                        ->mutable_metadata()
                        ->mutable_filter_metadata())["istio"],
                  "k", "v");
  std::string invalid = MessageOf({TypicalEntry(1)}).SerializeAsString();
  invalid.pop_back();
  const std::vector<std::string> messages = {
      MessageOf({TypicalEntry(0), TypicalEntry(1), with_tls}).SerializeAsString(),
      MessageOf({TypicalEntry(1), periodic}).SerializeAsString(),
      MessageOf({with_tls, TypicalEntry(2), TypicalEntry(3), TypicalEntry(4)}).SerializeAsString(),
      invalid,
      MessageOf({with_metadata, TypicalEntry(0)}).SerializeAsString(),
      MessageOf({}).SerializeAsString(),
      MessageOf({TypicalEntry(3), TypicalEntry(2)}).SerializeAsString(),
  };
  AlsStreamDecoder reusing;
  google::protobuf::Arena arena;
  Records records;
  for (size_t m = 0; m < messages.size(); ++m) {
    arena.Reset();
    AlsConversion conversion;
    const AlsStreamDecoder::Outcome outcome =
        reusing.Decode(messages[m], arena, records, conversion);
    AlsStreamDecoder fresh;
    const Decoded want = DecodeWith(fresh, messages[m]);
    EXPECT_EQ(outcome, want.outcome) << m;
    if (outcome != AlsStreamDecoder::Outcome::kOk) continue;
    ASSERT_EQ(static_cast<size_t>(records.size()), want.records.size()) << m;
    for (int i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].SerializeAsString(), want.records[i].SerializeAsString())
          << "message " << m << ", record " << i;
    }
  }
}

}  // namespace
}  // namespace meshtel::collector
