#include "exporters/loki/loki_encoder.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collector/policy/policy_enforcer.h"
#include "gtest/gtest.h"
#include "loki/push.pb.h"
#include "snappy.h"

namespace meshtel::exporters {
namespace {

using collector::AccessLogEncoding;
using collector::AccessLogFormat;
using collector::StoredRecord;

constexpr std::string_view kLineFormat = "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%\n";

AccessLogFormat Format(std::string_view format = kLineFormat,
                       AccessLogEncoding encoding = AccessLogEncoding::kText) {
  absl::StatusOr<AccessLogFormat> compiled = AccessLogFormat::Compile(format, encoding);
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return *compiled;
}

uint64_t NanosAgo(absl::Duration ago) {
  return static_cast<uint64_t>(absl::ToUnixNanos(absl::Now() - ago));
}

// A record one hour old (plus `offset_ns`), served by `workload` in namespace shop.
StoredRecord Record(std::string workload, uint64_t base_ns, uint64_t offset_ns,
                    std::string path = "/cart") {
  StoredRecord stored;
  stored.key.time_unix_nano = base_ns + offset_ns + 5000;
  stored.key.sequence = offset_ns;
  stored.record.set_start_time_unix_nano(base_ns + offset_ns);
  stored.record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  stored.record.set_method("GET");
  stored.record.set_path(std::move(path));
  stored.record.set_response_code(200);
  stored.record.mutable_destination()->set_workload(std::move(workload));
  stored.record.mutable_destination()->set_namespace_("shop");
  return stored;
}

logproto::PushRequest Decode(const collector::Payload& payload) {
  std::string serialized;
  EXPECT_TRUE(snappy::Uncompress(payload.body.data(), payload.body.size(), &serialized));
  logproto::PushRequest request;
  EXPECT_TRUE(request.ParseFromString(serialized));
  return request;
}

uint64_t EntryNanos(const logproto::EntryAdapter& entry) {
  return static_cast<uint64_t>(entry.timestamp().seconds()) * 1000000000 +
         static_cast<uint64_t>(entry.timestamp().nanos());
}

TEST(FormatLokiLabelsTest, SortsNamesAndEscapesValues) {
  EXPECT_EQ(FormatLokiLabels({{"zone", "a"}, {"app", "q\"uo\\te"}, {"job", "x\ny\tz\r"}}),
            "{app=\"q\\\"uo\\\\te\", job=\"x\\ny\\tz\\r\", zone=\"a\"}");
  EXPECT_EQ(FormatLokiLabels({{"job", "meshtel"}}), "{job=\"meshtel\"}");
}

TEST(LokiLabelValueTest, ReadsEachFieldFamily) {
  StoredRecord stored = Record("cart-v1", NanosAgo(absl::Hours(1)), 0);
  meshtel::v1::RequestRecord& record = stored.record;
  record.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_GRPC);
  record.mutable_destination_service()->set_name("cart");
  record.set_response_code(503);
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kReporter), "destination");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kDestinationWorkload), "cart-v1");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kDestinationNamespace), "shop");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kDestinationServiceName), "cart");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kRequestProtocol), "grpc");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kResponseCode), "503");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kResponseCodeClass), "5xx");
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kSourceWorkload), "");
  record.set_reporter(meshtel::v1::REPORTER_SOURCE);
  EXPECT_EQ(LokiLabelValue(record, LokiLabelField::kReporter), "source");
}

TEST(LokiEncoderTest, DefaultStreamLabelsAndUnknownForMissingFields) {
  LokiEncoder encoder(LokiConfig{}, Format());
  StoredRecord stored = Record("cart-v1", NanosAgo(absl::Hours(1)), 0);
  EXPECT_EQ(encoder.StreamLabels(stored.record),
            "{job=\"meshtel\", namespace=\"shop\", reporter=\"destination\", "
            "workload=\"cart-v1\"}");
  stored.record.clear_destination();
  stored.record.clear_reporter();
  EXPECT_EQ(encoder.StreamLabels(stored.record),
            "{job=\"meshtel\", namespace=\"unknown\", reporter=\"unknown\", "
            "workload=\"unknown\"}");
}

TEST(LokiEncoderTest, ConfiguredAndStaticLabels) {
  LokiConfig config;
  config.labels = {{"app", LokiLabelField::kDestinationApp},
                   {"code", LokiLabelField::kResponseCodeClass}};
  config.static_labels = {{"cluster", "east"}};
  LokiEncoder encoder(config, Format());
  StoredRecord stored = Record("cart-v1", NanosAgo(absl::Hours(1)), 0);
  stored.record.mutable_destination()->set_app("cart");
  stored.record.set_response_code(404);
  EXPECT_EQ(encoder.StreamLabels(stored.record), "{app=\"cart\", cluster=\"east\", code=\"4xx\"}");
  stored.record.set_response_code(0);  // no response sent
  EXPECT_EQ(encoder.StreamLabels(stored.record), "{app=\"cart\", cluster=\"east\", code=\"0xx\"}");
}

TEST(LokiEncoderTest, GroupsStreamsAndOrdersEntriesByTime) {
  LokiEncoder encoder(LokiConfig{}, Format());
  const uint64_t base = NanosAgo(absl::Hours(1));
  // Key order (as the engine passes them) is not time order.
  std::vector<StoredRecord> records = {
      Record("cart-v1", base, 300, "/a300"), Record("pay-v1", base, 100, "/b100"),
      Record("cart-v1", base, 200, "/a200-first"), Record("cart-v1", base, 200, "/a200-second"),
      Record("cart-v1", base, 250, "/a250")};
  // No start time: the store key's time stands in (base + 250 + 5000).
  records[4].record.set_start_time_unix_nano(0);
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->entries, 5u);
  EXPECT_EQ(payload->content_type, "application/x-protobuf");
  EXPECT_EQ(payload->content_encoding, "");
  const logproto::PushRequest request = Decode(*payload);
  ASSERT_EQ(request.streams_size(), 2);
  const logproto::StreamAdapter& cart = request.streams(0);
  const logproto::StreamAdapter& pay = request.streams(1);
  EXPECT_EQ(cart.labels(),
            "{job=\"meshtel\", namespace=\"shop\", reporter=\"destination\", "
            "workload=\"cart-v1\"}");
  EXPECT_EQ(pay.labels(),
            "{job=\"meshtel\", namespace=\"shop\", reporter=\"destination\", "
            "workload=\"pay-v1\"}");
  ASSERT_EQ(cart.entries_size(), 4);
  EXPECT_EQ(cart.entries(0).line(), "GET /a200-first 200");
  EXPECT_EQ(cart.entries(1).line(), "GET /a200-second 200");
  EXPECT_EQ(cart.entries(2).line(), "GET /a300 200");
  EXPECT_EQ(cart.entries(3).line(), "GET /a250 200");
  EXPECT_EQ(EntryNanos(cart.entries(0)), base + 200);
  EXPECT_EQ(EntryNanos(cart.entries(2)), base + 300);
  EXPECT_EQ(EntryNanos(cart.entries(3)), base + 250 + 5000);
  for (int i = 1; i < cart.entries_size(); ++i) {
    EXPECT_LE(EntryNanos(cart.entries(i - 1)), EntryNanos(cart.entries(i)));
  }
  ASSERT_EQ(pay.entries_size(), 1);
  EXPECT_EQ(pay.entries(0).line(), "GET /b100 200");
}

TEST(LokiEncoderTest, BodyIsSnappyBlockFormat) {
  LokiEncoder encoder(LokiConfig{}, Format());
  std::vector<StoredRecord> records = {Record("cart-v1", NanosAgo(absl::Hours(1)), 0)};
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  // Block format starts with the uncompressed length; framed format would start with ff 06.
  ASSERT_FALSE(payload->body.empty());
  EXPECT_NE(static_cast<unsigned char>(payload->body[0]), 0xff);
  size_t length = 0;
  ASSERT_TRUE(snappy::GetUncompressedLength(payload->body.data(), payload->body.size(), &length));
  std::string serialized;
  ASSERT_TRUE(snappy::Uncompress(payload->body.data(), payload->body.size(), &serialized));
  EXPECT_EQ(serialized.size(), length);
  logproto::PushRequest request;
  ASSERT_TRUE(request.ParseFromString(serialized));
  EXPECT_EQ(request.streams(0).entries(0).line(), "GET /cart 200");
}

TEST(LokiEncoderTest, LinesAreTheAccessLogWithoutItsNewline) {
  StoredRecord stored = Record("cart-v1", NanosAgo(absl::Hours(1)), 0);
  for (AccessLogEncoding encoding : {AccessLogEncoding::kText, AccessLogEncoding::kJson}) {
    const AccessLogFormat format = Format("", encoding);
    std::string rendered;
    format.Render(stored.record, rendered);
    ASSERT_EQ(rendered.back(), '\n');
    LokiEncoder encoder(LokiConfig{}, format);
    EXPECT_EQ(encoder.Line(stored.record), rendered.substr(0, rendered.size() - 1));
  }
}

TEST(LokiEncoderTest, StructuredMetadataCarriesTraceAndRequestIds) {
  const uint64_t base = NanosAgo(absl::Hours(1));
  std::vector<StoredRecord> records = {Record("cart-v1", base, 0), Record("cart-v1", base, 1)};
  records[0].record.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d"
                  "\x0e\x0e\x47\x36",
                  16));
  records[0].record.set_request_id("9f0c-11");
  records[1].record.set_trace_id(std::string(16, '\0'));  // all zero: no trace
  LokiEncoder encoder(LokiConfig{}, Format());
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const logproto::PushRequest request = Decode(*payload);
  const logproto::EntryAdapter& traced = request.streams(0).entries(0);
  ASSERT_EQ(traced.structuredmetadata_size(), 2);
  EXPECT_EQ(traced.structuredmetadata(0).name(), "trace_id");
  EXPECT_EQ(traced.structuredmetadata(0).value(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(traced.structuredmetadata(1).name(), "request_id");
  EXPECT_EQ(traced.structuredmetadata(1).value(), "9f0c-11");
  EXPECT_EQ(request.streams(0).entries(1).structuredmetadata_size(), 0);

  LokiConfig off;
  off.structured_metadata = false;
  LokiEncoder plain(off, Format());
  EXPECT_TRUE(plain.Metadata(records[0].record).empty());
}

TEST(LokiEncoderTest, MeasureRefusesLinesOverTheLimit) {
  StoredRecord stored = Record("cart-v1", NanosAgo(absl::Hours(1)), 0, std::string(100, 'p'));
  const size_t line_size = std::string("GET  200").size() + 100;
  LokiConfig config;
  config.max_line_bytes = line_size;
  LokiEncoder at_limit(config, Format());
  absl::StatusOr<size_t> bytes = at_limit.Measure(stored);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_GE(*bytes, line_size);
  config.max_line_bytes = line_size - 1;
  LokiEncoder over(config, Format());
  absl::StatusOr<size_t> refused = over.Measure(stored);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      refused.status().message(),
      absl::StrCat("line of ", line_size, " bytes is over max_line_bytes (", line_size - 1, ")"));
}

TEST(LokiEncoderTest, MeasureRefusesEntriesOlderThanTheLimit) {
  LokiEncoder encoder(LokiConfig{}, Format());
  EXPECT_TRUE(encoder.Measure(Record("cart-v1", NanosAgo(absl::Hours(6 * 24)), 0)).ok());
  absl::StatusOr<size_t> old = encoder.Measure(Record("cart-v1", NanosAgo(absl::Hours(8 * 24)), 0));
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("is older than reject_older_than (168h)"),
            absl::string_view::npos)
      << old.status();
  // Without a start time the store key's time counts.
  StoredRecord keyed = Record("cart-v1", NanosAgo(absl::Hours(8 * 24)), 0);
  keyed.record.set_start_time_unix_nano(0);
  EXPECT_FALSE(encoder.Measure(keyed).ok());
  LokiConfig longer;
  longer.reject_older_than = absl::Hours(30 * 24);
  LokiEncoder lenient(longer, Format());
  EXPECT_TRUE(lenient.Measure(Record("cart-v1", NanosAgo(absl::Hours(8 * 24)), 0)).ok());
}

TEST(LokiEncoderTest, MeasureRefusesLabelValuesLokiWouldRefuse) {
  LokiEncoder encoder(LokiConfig{}, Format());
  StoredRecord stored =
      Record(std::string(kLokiMaxLabelValueBytes, 'w'), NanosAgo(absl::Hours(1)), 0);
  EXPECT_TRUE(encoder.Measure(stored).ok());
  stored.record.mutable_destination()->set_workload(std::string(kLokiMaxLabelValueBytes + 1, 'w'));
  absl::StatusOr<size_t> refused = encoder.Measure(stored);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "label workload would be 2049 bytes, over Loki's 2048");
}

TEST(LokiEncoderTest, MeasureRefusesEntriesTooFarInTheFuture) {
  LokiEncoder encoder(LokiConfig{}, Format());
  // A little ahead (clock skew within Loki's creation_grace_period, 10 minutes) is fine.
  EXPECT_TRUE(encoder.Measure(Record("cart-v1", NanosAgo(-absl::Minutes(5)), 0)).ok());
  absl::StatusOr<size_t> ahead =
      encoder.Measure(Record("cart-v1", NanosAgo(-absl::Minutes(20)), 0));
  ASSERT_FALSE(ahead.ok());
  EXPECT_EQ(ahead.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ahead.status().message().find(
                "is more than creation_grace_period (10m) in the future: Loki would refuse it "
                "(too_far_in_future)"),
            absl::string_view::npos)
      << ahead.status();
  LokiConfig wider;
  wider.creation_grace_period = absl::Hours(1);
  LokiEncoder lenient(wider, Format());
  EXPECT_TRUE(lenient.Measure(Record("cart-v1", NanosAgo(-absl::Minutes(20)), 0)).ok());
}

TEST(LokiEncoderTest, InvalidUtf8IsReplacedAndCounted) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  LokiEncoder encoder(LokiConfig{}, Format());
  const uint64_t base = NanosAgo(absl::Hours(1));
  std::vector<StoredRecord> records = {Record("cart-v1", base, 0, "/ok"),
                                       Record("cart-v1", base, 1, "/caf\xC3\xA9\xFF"),
                                       Record("cart\xC3", base, 2, "/ok")};
  records[0].record.set_request_id("id-\x80");
  // Measure accepts them all (nothing is refused for its bytes); the size counts the repair.
  for (const StoredRecord& stored : records) EXPECT_TRUE(encoder.Measure(stored).ok());

  bool repaired = false;
  EXPECT_EQ(encoder.Line(records[1].record, &repaired), "GET /caf\xC3\xA9" + r + " 200");
  EXPECT_TRUE(repaired);
  repaired = false;
  EXPECT_EQ(encoder.Line(records[0].record, &repaired), "GET /ok 200");
  EXPECT_FALSE(repaired);

  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  // The payload parses with a strict (UTF-8 checking) protobuf parser.
  logproto::PushRequest request = Decode(*payload);
  ASSERT_EQ(request.streams_size(), 2);
  std::vector<std::string> lines;
  std::vector<std::string> labels;
  for (const auto& stream : request.streams()) {
    labels.push_back(stream.labels());
    for (const auto& entry : stream.entries()) {
      lines.push_back(entry.line());
      for (const auto& pair : entry.structuredmetadata()) {
        if (pair.name() == "request_id") {
          EXPECT_EQ(pair.value(), "id-" + r);
        }
      }
    }
  }
  EXPECT_NE(std::find(lines.begin(), lines.end(), "GET /caf\xC3\xA9" + r + " 200"), lines.end());
  EXPECT_NE(std::find(labels.begin(), labels.end(),
                      "{job=\"meshtel\", namespace=\"shop\", reporter=\"destination\", "
                      "workload=\"cart" +
                          r + "\"}"),
            labels.end());
  // Each of the three had one field repaired: the request id, the path, the workload label.
  EXPECT_EQ(encoder.repaired_entries(), 3u);
}

}  // namespace
}  // namespace meshtel::exporters

namespace meshtel::exporters {
namespace {

void AddAttribute(google::protobuf::RepeatedPtrField<meshtel::v1::SpanAttribute>& to,
                  const std::string& key, const std::string& value) {
  meshtel::v1::SpanAttribute* attribute = to.Add();
  attribute->set_key(key);
  attribute->set_string_value(value);
}

// A log record an OTLP receiver stored: an SDK's ERROR log of checkout in namespace shop.
StoredRecord ReceivedLog(uint64_t time_ns, const std::string& body = "payment declined") {
  StoredRecord stored;
  stored.key.time_unix_nano = time_ns + 5000;
  meshtel::v1::LogEntry& log = *stored.record.mutable_received_log();
  log.set_time_unix_nano(time_ns);
  log.set_observed_time_unix_nano(time_ns + 1000);
  log.set_severity_number(17);
  log.set_severity_text("ERROR");
  log.set_body(body);
  log.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  log.set_span_id(std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  log.set_flags(1);
  log.set_service_name("checkout");
  AddAttribute(*log.mutable_resource_attributes(), "service.namespace", "shop");
  AddAttribute(*log.mutable_resource_attributes(), "k8s.pod.name", "checkout-7d9f-x2x9z");
  AddAttribute(*log.mutable_resource_attributes(), "host.arch", "amd64");
  meshtel::v1::SpanAttribute* pid = log.add_resource_attributes();
  pid->set_key("process.pid");
  pid->set_int_value(4242);
  AddAttribute(*log.mutable_attributes(), "order.id", "o-17");
  meshtel::v1::SpanAttribute* retry = log.add_attributes();
  retry->set_key("retry");
  retry->set_bool_value(false);
  log.set_scope_name("com.shop.payments");
  log.set_scope_version("3.2");
  return stored;
}

std::vector<std::pair<std::string, std::string>> MetadataOf(const logproto::EntryAdapter& entry) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& pair : entry.structuredmetadata()) pairs.emplace_back(pair.name(), pair.value());
  return pairs;
}

TEST(LokiEncoderReceivedLogTest, SentAsTheLogRecordItIsWithLokisOtlpLabelsAndMetadata) {
  const uint64_t time = NanosAgo(absl::Hours(1));
  LokiEncoder encoder(LokiConfig{}, Format());
  std::vector<StoredRecord> records = {ReceivedLog(time), Record("cart-v1", time, 7)};
  ASSERT_TRUE(encoder.Delivers(records[0]));
  absl::StatusOr<size_t> size = encoder.Measure(records[0]);
  ASSERT_TRUE(size.ok()) << size.status();
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const logproto::PushRequest request = Decode(*payload);
  ASSERT_EQ(request.streams_size(), 2);
  // Streams in labels order: the log record's {job, k8s_pod_name, ...}, then the access log's.
  const logproto::StreamAdapter& logs = request.streams(0);
  const logproto::StreamAdapter& access = request.streams(1);
  EXPECT_EQ(access.entries(0).line(), "GET /cart 200");
  EXPECT_EQ(logs.labels(),
            "{job=\"meshtel\", k8s_pod_name=\"checkout-7d9f-x2x9z\", service_name=\"checkout\", "
            "service_namespace=\"shop\"}");
  ASSERT_EQ(logs.entries_size(), 1);
  const logproto::EntryAdapter& entry = logs.entries(0);
  EXPECT_EQ(entry.line(), "payment declined");  // the body, not an access-log line
  EXPECT_EQ(EntryNanos(entry), time);
  EXPECT_EQ(MetadataOf(entry), (std::vector<std::pair<std::string, std::string>>{
                                   {"host_arch", "amd64"},
                                   {"process_pid", "4242"},
                                   {"scope_name", "com.shop.payments"},
                                   {"scope_version", "3.2"},
                                   {"order_id", "o-17"},
                                   {"retry", "false"},
                                   {"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"},
                                   {"span_id", "00f067aa0ba902b7"},
                                   {"severity_text", "ERROR"},
                                   {"severity_number", "17"},
                                   {"detected_level", "error"},
                                   {"flags", "1"},
                                   {"observed_timestamp", std::to_string(time + 1000)},
                               }));
}

TEST(LokiEncoderReceivedLogTest, ReceivedSpansAreNotForTheLogExporter) {
  LokiEncoder encoder(LokiConfig{}, Format());
  StoredRecord span;
  span.record.mutable_received_span()->set_name("GET /cart");
  EXPECT_FALSE(encoder.Delivers(span));
  EXPECT_TRUE(encoder.Delivers(Record("cart-v1", NanosAgo(absl::Hours(1)), 0)));
}

TEST(LokiEncoderReceivedLogTest, LabelsFollowTheMappingAndLokisLimit) {
  const uint64_t time = NanosAgo(absl::Hours(1));
  LokiConfig config;
  config.static_labels = {{"cluster", "east"}};
  config.resource_labels = {{"service.name", "app"}, {"host.arch", "arch"}};
  LokiEncoder encoder(config, Format());
  StoredRecord stored = ReceivedLog(time);
  LokiEncoder::ReceivedEntry entry = encoder.Received(stored.record.received_log());
  EXPECT_EQ(entry.labels, "{app=\"checkout\", arch=\"amd64\", cluster=\"east\"}");
  // Unmapped resource attributes are metadata under their Loki names; service.name is a label.
  EXPECT_EQ(entry.metadata[0],
            std::make_pair(std::string("service_namespace"), std::string("shop")));
  EXPECT_EQ(entry.metadata[1],
            std::make_pair(std::string("k8s_pod_name"), std::string("checkout-7d9f-x2x9z")));

  // No service name at all: Loki's unknown_service; a service.name left in the resource counts.
  stored.record.mutable_received_log()->clear_service_name();
  EXPECT_EQ(encoder.Received(stored.record.received_log()).labels,
            "{app=\"unknown_service\", arch=\"amd64\", cluster=\"east\"}");
  AddAttribute(*stored.record.mutable_received_log()->mutable_resource_attributes(), "service.name",
               "checkout-legacy");
  EXPECT_EQ(encoder.Received(stored.record.received_log()).labels,
            "{app=\"checkout-legacy\", arch=\"amd64\", cluster=\"east\"}");

  // Past 15 labels, the mapped attributes left over stay metadata.
  LokiConfig many;
  many.static_labels = {{"job", "meshtel"}};
  many.resource_labels.clear();
  StoredRecord crowded = ReceivedLog(time);
  for (int i = 0; i < 20; ++i) {
    const std::string name = absl::StrCat("a", i);
    many.resource_labels.emplace_back(name, name);
    AddAttribute(*crowded.record.mutable_received_log()->mutable_resource_attributes(), name, "v");
  }
  LokiEncoder crowded_encoder(many, Format());
  LokiEncoder::ReceivedEntry crowded_entry =
      crowded_encoder.Received(crowded.record.received_log());
  EXPECT_NE(crowded_entry.labels.find("a13=\"v\""), std::string::npos);
  EXPECT_EQ(crowded_entry.labels.find("a14="), std::string::npos);
  EXPECT_EQ(std::count(crowded_entry.labels.begin(), crowded_entry.labels.end(), '='), 15);
  EXPECT_NE(std::find(crowded_entry.metadata.begin(), crowded_entry.metadata.end(),
                      std::make_pair(std::string("a14"), std::string("v"))),
            crowded_entry.metadata.end());
}

TEST(LokiEncoderReceivedLogTest, WithoutStructuredMetadataTheFieldsFollowTheBodyAsLogfmt) {
  LokiConfig config;
  config.structured_metadata = false;
  config.resource_labels = {{"service.name", "service_name"}};
  LokiEncoder encoder(config, Format());
  StoredRecord stored = ReceivedLog(NanosAgo(absl::Hours(1)), "card \"4111\" declined");
  meshtel::v1::LogEntry& log = *stored.record.mutable_received_log();
  log.clear_resource_attributes();
  log.clear_attributes();
  log.clear_scope_name();
  log.clear_scope_version();
  log.clear_observed_time_unix_nano();
  AddAttribute(*log.mutable_attributes(), "reason", "insufficient funds");
  LokiEncoder::ReceivedEntry entry = encoder.Received(log);
  EXPECT_TRUE(entry.metadata.empty());
  EXPECT_EQ(entry.line,
            "card \"4111\" declined reason=\"insufficient funds\" "
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 "
            "severity_text=ERROR severity_number=17 level=error flags=1");
}

TEST(LokiEncoderReceivedLogTest, TimeFallsBackAndMeasureRefusesWhatLokiWould) {
  LokiEncoder encoder(LokiConfig{}, Format());
  const uint64_t observed = NanosAgo(absl::Hours(2));
  StoredRecord stored = ReceivedLog(0);
  stored.record.mutable_received_log()->set_observed_time_unix_nano(observed);
  stored.key.time_unix_nano = NanosAgo(absl::Hours(1));
  EXPECT_EQ(LokiEntryTimeNanos(stored), observed);
  stored.record.mutable_received_log()->clear_observed_time_unix_nano();
  EXPECT_EQ(LokiEntryTimeNanos(stored), stored.key.time_unix_nano);

  StoredRecord old = ReceivedLog(NanosAgo(absl::Hours(8 * 24)));
  EXPECT_FALSE(encoder.Measure(old).ok());
  LokiConfig short_lines;
  short_lines.max_line_bytes = 8;
  LokiEncoder short_encoder(short_lines, Format());
  absl::StatusOr<size_t> refused = short_encoder.Measure(ReceivedLog(NanosAgo(absl::Hours(1))));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("over max_line_bytes"), std::string::npos);
  StoredRecord long_label = ReceivedLog(NanosAgo(absl::Hours(1)));
  long_label.record.mutable_received_log()->set_service_name(std::string(3000, 'x'));
  EXPECT_FALSE(encoder.Measure(long_label).ok());
}

TEST(LokiEncoderReceivedLogTest, InvalidUtf8InABodyIsRepairedAndCounted) {
  LokiEncoder encoder(LokiConfig{}, Format());
  std::vector<StoredRecord> records = {ReceivedLog(NanosAgo(absl::Hours(1)), "bad \xff byte")};
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(Decode(*payload).streams(0).entries(0).line(), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(encoder.repaired_entries(), 1u);
}

// The telemetry policy per record: a workload's side format, filter, disabled side and
// providers decide which records this exporter delivers and how their lines read.
TEST(LokiEncoderPolicyTest, EachWorkloadsSideDecidesDeliveryAndFormat) {
  using collector::PolicySide;
  std::map<std::string, collector::WorkloadPolicy> policies;
  collector::AccessLogPolicy& cart =
      policies["cart-v1"].access_logging[static_cast<size_t>(PolicySide::kServer)];
  cart.filter = "response.code >= 500";
  cart.format = collector::AccessLogConfig{.format = "cart %RESPONSE_CODE% %REQ(:PATH)%\n"};
  cart.providers = {"loki"};
  policies["pay-v1"].access_logging[static_cast<size_t>(PolicySide::kServer)].disabled = true;
  collector::MeshDefaults mesh;
  mesh.extension_providers = {{"loki", {"loki-main"}}};
  collector::PolicyDefaults defaults;
  defaults.access_log.format = std::string(kLineFormat);
  defaults.exporters = {{"loki-main", false}, {"loki-other", false}};
  auto enforcer = collector::PolicyEnforcer::Create(
      defaults,
      [&policies](const collector::PolicyWorkload& workload) {
        auto it = policies.find(workload.name);
        return it == policies.end() ? collector::WorkloadPolicy{} : it->second;
      },
      [mesh] { return mesh; });
  ASSERT_TRUE(enforcer.ok()) << enforcer.status();
  const collector::AccessLogLines lines(
      std::shared_ptr<const collector::AccessLogRouting>(*std::move(enforcer)));
  LokiEncoder primary(LokiConfig{}, lines, "loki-main");
  LokiEncoder other(LokiConfig{}, lines, "loki-other");

  const uint64_t base = NanosAgo(absl::Hours(1));
  StoredRecord cart_ok = Record("cart-v1", base, 1, "/ok");
  StoredRecord cart_error = Record("cart-v1", base, 2, "/error");
  cart_error.record.set_response_code(503);
  StoredRecord cart_client = Record("cart-v1", base, 3, "/client");  // CLIENT side: defaults
  cart_client.record.set_reporter(meshtel::v1::REPORTER_SOURCE);
  cart_client.record.mutable_source()->set_workload("cart-v1");
  cart_client.record.mutable_destination()->set_workload("pay-v1");
  const StoredRecord pay = Record("pay-v1", base, 4, "/pay");
  const StoredRecord shop = Record("shop-v1", base, 5, "/shop");
  StoredRecord received;
  received.record.mutable_received_log()->set_body("hello");
  StoredRecord span;
  span.record.mutable_received_span()->set_name("x");

  EXPECT_FALSE(primary.Delivers(cart_ok));     // filtered out
  EXPECT_TRUE(primary.Delivers(cart_error));   // passes, routed to loki-main
  EXPECT_FALSE(other.Delivers(cart_error));    // not its provider
  EXPECT_TRUE(primary.Delivers(cart_client));  // the client side has no policy
  EXPECT_FALSE(primary.Delivers(pay));         // side disabled
  EXPECT_FALSE(other.Delivers(pay));
  EXPECT_TRUE(primary.Delivers(shop));
  EXPECT_TRUE(other.Delivers(shop));
  EXPECT_TRUE(primary.Delivers(received));  // received log records: no workload policy
  EXPECT_FALSE(primary.Delivers(span));

  EXPECT_EQ(primary.Line(cart_error.record), "cart 503 /error");
  EXPECT_EQ(primary.Line(cart_client.record), "GET /client 200");
  EXPECT_EQ(primary.Line(shop.record), "GET /shop 200");
  absl::StatusOr<size_t> measured = primary.Measure(cart_error);
  ASSERT_TRUE(measured.ok()) << measured.status();
  const std::vector<StoredRecord> batch = {cart_error, shop};
  absl::StatusOr<collector::Payload> payload = primary.Encode(batch);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const logproto::PushRequest request = Decode(*payload);
  std::vector<std::string> got;
  for (const auto& stream : request.streams()) {
    for (const auto& entry : stream.entries()) got.push_back(entry.line());
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"GET /shop 200", "cart 503 /error"}));
}

}  // namespace
}  // namespace meshtel::exporters

namespace meshtel::exporters {
namespace {

std::string Uncompressed(const collector::Payload& payload) {
  std::string serialized;
  EXPECT_TRUE(snappy::Uncompress(payload.body.data(), payload.body.size(), &serialized));
  return serialized;
}

// A batch of request records (with and without metadata, in two streams) and a received log.
std::vector<StoredRecord> MixedBatch() {
  const uint64_t base = NanosAgo(absl::Hours(1));
  std::vector<StoredRecord> records = {Record("cart-v1", base, 300, "/a"),
                                       Record("pay-v1", base, 100, "/b"),
                                       Record("cart-v1", base, 200, "/c\xFF")};
  records[0].record.set_trace_id(
      std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"
                  "\x0d\x0e\x0f\x10",
                  16));
  records[0].record.set_request_id("req-1");
  records[2].record.set_start_time_unix_nano(base / 1000000000 * 1000000000);  // nanos 0
  records.push_back(ReceivedLog(base + 400));
  records.back().key.sequence = 400;
  return records;
}

// The encoder writes the wire form itself: exactly what the protobuf library would serialize.
TEST(LokiEncoderWireTest, IsWhatTheProtobufLibraryWrites) {
  LokiEncoder encoder(LokiConfig{}, Format());
  absl::StatusOr<collector::Payload> payload = encoder.Encode(MixedBatch());
  ASSERT_TRUE(payload.ok()) << payload.status();
  const std::string serialized = Uncompressed(*payload);
  logproto::PushRequest request;
  ASSERT_TRUE(request.ParseFromString(serialized));
  ASSERT_EQ(request.streams_size(), 3);
  std::string again;
  ASSERT_TRUE(request.SerializeToString(&again));
  EXPECT_EQ(again, serialized);
  EXPECT_EQ(encoder.repaired_entries(), 1u);
}

// Measure() keeps each entry for Encode(); a record Encode() gets under a measured key but with
// other contents is encoded afresh.
TEST(LokiEncoderWireTest, MeasuredEntriesGiveTheSamePayload) {
  const std::vector<StoredRecord> records = MixedBatch();
  LokiEncoder fresh(LokiConfig{}, Format());
  absl::StatusOr<collector::Payload> expected = fresh.Encode(records);
  ASSERT_TRUE(expected.ok());
  LokiEncoder measuring(LokiConfig{}, Format());
  for (const StoredRecord& stored : records) ASSERT_TRUE(measuring.Measure(stored).ok());
  absl::StatusOr<collector::Payload> payload = measuring.Encode(records);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(Uncompressed(*payload), Uncompressed(*expected));
  EXPECT_EQ(measuring.repaired_entries(), fresh.repaired_entries());
  // A split batch encodes its halves from the same measured entries.
  absl::StatusOr<collector::Payload> half =
      measuring.Encode(std::span<const StoredRecord>(records).subspan(2));
  ASSERT_TRUE(half.ok());
  const logproto::PushRequest half_request = Decode(*half);
  ASSERT_EQ(half_request.streams_size(), 2);  // the received log's stream sorts first
  EXPECT_EQ(half_request.streams(1).entries(0).line(), "GET /c\xEF\xBF\xBD 200");

  std::vector<StoredRecord> changed = records;
  changed[1].record.set_path("/changed");
  for (const StoredRecord& stored : records) ASSERT_TRUE(measuring.Measure(stored).ok());
  absl::StatusOr<collector::Payload> other = measuring.Encode(changed);
  ASSERT_TRUE(other.ok());
  std::vector<std::string> lines;
  const logproto::PushRequest decoded = Decode(*other);
  for (const auto& stream : decoded.streams()) {
    for (const auto& entry : stream.entries()) lines.push_back(entry.line());
  }
  EXPECT_NE(std::find(lines.begin(), lines.end(), "GET /changed 200"), lines.end());
  EXPECT_EQ(std::find(lines.begin(), lines.end(), "GET /b 200"), lines.end());
}

}  // namespace
}  // namespace meshtel::exporters
