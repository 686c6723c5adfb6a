#include "exporters/fluentd/fluentd_encoder.h"

#include <array>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "collector/common/gzip.h"
#include "collector/policy/policy_enforcer.h"
#include "exporters/fluentd/msgpack.h"
#include "gtest/gtest.h"

namespace meshtel::exporters::fluentd {
namespace {

using collector::StoredRecord;
using Type = MsgpackValue::Type;

// 2024-12-01T15:00:00.123456789Z
constexpr uint64_t kStartNanos = 1733065200'123456789;

collector::AccessLogFormat TextFormat(std::string_view format) {
  absl::StatusOr<collector::AccessLogFormat> compiled =
      collector::AccessLogFormat::Compile(format, collector::AccessLogEncoding::kText);
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return *std::move(compiled);
}

StoredRecord Record(uint64_t start_nanos, std::string_view path) {
  StoredRecord stored;
  stored.key = collector::StoreKey{1733065299'000000000, 7};
  meshtel::v1::RequestRecord& r = stored.record;
  r.set_start_time_unix_nano(start_nanos);
  r.set_duration_ns(12'999'999);
  r.set_method("GET");
  r.set_path(std::string(path));
  r.set_protocol("HTTP/1.1");
  r.set_authority("reviews:9080");
  r.set_response_code(503);
  r.set_response_flags((1u << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE) |
                       (1u << meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED));
  r.set_request_bytes(321);
  r.set_response_bytes(70000);
  r.set_request_id("4f5c-req");
  r.set_trace_id(
      std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16));
  r.set_reporter(meshtel::v1::REPORTER_SOURCE);
  r.set_request_protocol(meshtel::v1::REQUEST_PROTOCOL_HTTP);
  r.mutable_source()->set_workload("productpage-v1");
  r.mutable_source()->set_namespace_("default");
  r.mutable_destination()->set_workload("reviews-v2");
  r.mutable_destination()->set_namespace_("shop");
  r.mutable_destination_service()->set_host("reviews.shop.svc.cluster.local");
  r.set_upstream_cluster("outbound|9080||reviews.shop.svc.cluster.local");
  return stored;
}

MsgpackValue Decode(std::string_view data) {
  size_t consumed = 0;
  absl::StatusOr<MsgpackValue> value = DecodeMsgpack(data, consumed);
  EXPECT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(consumed, data.size());
  return value.ok() ? *value : MsgpackValue{};
}

std::vector<MsgpackValue> DecodeAll(std::string data) {
  std::vector<MsgpackValue> out;
  while (!data.empty()) {
    size_t consumed = 0;
    absl::StatusOr<MsgpackValue> value = DecodeMsgpack(data, consumed);
    if (!value.ok()) {
      ADD_FAILURE() << value.status();
      break;
    }
    out.push_back(*std::move(value));
    data.erase(0, consumed);
  }
  return out;
}

std::string Gunzip(const std::string& data) {
  absl::StatusOr<std::string> plain = meshtel::common::GzipDecompress(data, size_t{1} << 32);
  EXPECT_TRUE(plain.ok()) << plain.status();
  return plain.ok() ? *std::move(plain) : std::string();
}

FluentdConfig Config() {
  FluentdConfig config;
  config.address = {"127.0.0.1", 24224};
  config.tag = "mesh.access";
  return config;
}

TEST(FluentdEncoderTest, PackedForwardShape) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  const std::vector<StoredRecord> records = {Record(kStartNanos, "/a"), Record(kStartNanos, "/b")};
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->entries, 2u);

  const MsgpackValue message = Decode(payload->body);
  ASSERT_EQ(message.type, Type::kArray);
  ASSERT_EQ(message.array.size(), 3u);
  EXPECT_EQ(message.array[0].type, Type::kStr);
  EXPECT_EQ(message.array[0].bytes, "mesh.access");
  EXPECT_EQ(message.array[1].type, Type::kBin);
  const MsgpackValue& option = message.array[2];
  ASSERT_EQ(option.type, Type::kMap);
  EXPECT_EQ(option.map.size(), 2u);
  ASSERT_NE(option.Find("size"), nullptr);
  EXPECT_EQ(option.Find("size")->AsInt(), 2);
  ASSERT_NE(option.Find("chunk"), nullptr);
  EXPECT_EQ(option.Find("chunk")->bytes, payload->ack_token);
  EXPECT_EQ(option.Find("compressed"), nullptr);

  const std::vector<MsgpackValue> entries = DecodeAll(message.array[1].bytes);
  ASSERT_EQ(entries.size(), 2u);
  for (const MsgpackValue& entry : entries) {
    ASSERT_EQ(entry.array.size(), 2u);
    EXPECT_EQ(entry.array[0].type, Type::kExt);
    EXPECT_EQ(entry.array[0].ext_type, 0);
    EXPECT_EQ(entry.array[1].type, Type::kMap);
  }
  EXPECT_EQ(entries[0].array[1].Find("path")->bytes, "/a");
  EXPECT_EQ(entries[1].array[1].Find("path")->bytes, "/b");
}

TEST(FluentdEncoderTest, EntryStartsWithEventTimeBytes) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  std::string entry;
  ASSERT_TRUE(encoder.AppendEntry(Record(kStartNanos, "/"), entry).ok());
  // fixarray(2), fixext 8 type 0, seconds 1733065200 = 0x674c79f0, nanos 123456789 = 0x075bcd15.
  const std::string expected("\x92\xd7\x00\x67\x4c\x79\xf0\x07\x5b\xcd\x15", 11);
  EXPECT_EQ(entry.substr(0, expected.size()), expected);
}

TEST(FluentdEncoderTest, RecordWithoutStartTimeTakesTheStoreKeyTime) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  std::string entry;
  ASSERT_TRUE(encoder.AppendEntry(Record(0, "/"), entry).ok());
  const MsgpackValue decoded = Decode(entry);
  // key time 1733065299 s = 0x674c7a53, 0 ns.
  EXPECT_EQ(decoded.array[0].bytes, std::string("\x67\x4c\x7a\x53\x00\x00\x00\x00", 8));
  EXPECT_EQ(decoded.array[1].Find("start_time")->type, Type::kNil);
}

TEST(FluentdEncoderTest, FieldsAreTyped) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  std::string entry;
  ASSERT_TRUE(encoder.AppendEntry(Record(kStartNanos, "/reviews/1"), entry).ok());
  const MsgpackValue record = Decode(entry).array[1];
  auto str = [&](std::string_view key) {
    const MsgpackValue* v = record.Find(key);
    EXPECT_NE(v, nullptr) << key;
    if (v == nullptr) return std::string("<absent>");
    return v->type == Type::kStr ? v->bytes : std::string("<not a str>");
  };
  auto uint = [&](std::string_view key) -> int64_t {
    const MsgpackValue* v = record.Find(key);
    EXPECT_NE(v, nullptr) << key;
    EXPECT_EQ(v == nullptr ? Type::kNil : v->type, Type::kUint) << key;
    return v != nullptr ? v->AsInt().value_or(-1) : -1;
  };
  auto is_nil = [&](std::string_view key) {
    const MsgpackValue* v = record.Find(key);
    return v != nullptr && v->type == Type::kNil;
  };
  EXPECT_EQ(str("start_time"), "2024-12-01T15:00:00.123Z");
  EXPECT_EQ(str("method"), "GET");
  EXPECT_EQ(str("path"), "/reviews/1");
  EXPECT_EQ(str("protocol"), "HTTP/1.1");
  EXPECT_EQ(uint("response_code"), 503);
  EXPECT_EQ(str("response_flags"), "UF,URX");
  EXPECT_EQ(uint("bytes_received"), 321);
  EXPECT_EQ(uint("bytes_sent"), 70000);
  EXPECT_EQ(uint("duration"), 12);
  EXPECT_EQ(str("authority"), "reviews:9080");
  EXPECT_EQ(str("request_id"), "4f5c-req");
  EXPECT_EQ(str("trace_id"), "0102030405060708090a0b0c0d0e0f10");
  EXPECT_EQ(str("upstream_cluster"), "outbound|9080||reviews.shop.svc.cluster.local");
  EXPECT_EQ(str("reporter"), "source");
  EXPECT_EQ(str("request_protocol"), "http");
  EXPECT_EQ(str("source_workload"), "productpage-v1");
  EXPECT_EQ(str("source_namespace"), "default");
  EXPECT_EQ(str("destination_workload"), "reviews-v2");
  EXPECT_EQ(str("destination_namespace"), "shop");
  EXPECT_EQ(str("destination_service"), "reviews.shop.svc.cluster.local");
  EXPECT_TRUE(is_nil("user_agent"));
  EXPECT_TRUE(is_nil("x_forwarded_for"));
  EXPECT_TRUE(is_nil("upstream_host"));
  EXPECT_TRUE(is_nil("grpc_status"));
  EXPECT_TRUE(is_nil("span_id"));
}

TEST(FluentdEncoderTest, NoFlagsAndGrpcStatus) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  StoredRecord stored = Record(kStartNanos, "/");
  stored.record.set_response_flags(0);
  stored.record.set_grpc_status(14);
  std::string entry;
  ASSERT_TRUE(encoder.AppendEntry(stored, entry).ok());
  const MsgpackValue record = Decode(entry).array[1];
  EXPECT_EQ(record.Find("response_flags")->bytes, "-");
  EXPECT_EQ(record.Find("grpc_status")->AsInt(), 14);
}

TEST(FluentdEncoderTest, LineFormatHoldsTheRenderedLine) {
  FluentdConfig config = Config();
  config.record_format = FluentdRecordFormat::kLine;
  FluentdEncoder encoder(config, TextFormat("%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%\n"));
  std::string entry;
  ASSERT_TRUE(encoder.AppendEntry(Record(kStartNanos, "/x"), entry).ok());
  const MsgpackValue record = Decode(entry).array[1];
  ASSERT_EQ(record.map.size(), 1u);
  ASSERT_NE(record.Find("message"), nullptr);
  EXPECT_EQ(record.Find("message")->bytes, "GET /x 503");

  config.line_key = "log";
  FluentdEncoder log_encoder(config, TextFormat(""));
  entry.clear();
  ASSERT_TRUE(log_encoder.AppendEntry(Record(kStartNanos, "/x"), entry).ok());
  const MsgpackValue istio = Decode(entry).array[1];
  ASSERT_NE(istio.Find("log"), nullptr);
  EXPECT_EQ(istio.Find("log")->bytes.rfind(
                "[2024-12-01T15:00:00.123Z] \"GET /x HTTP/1.1\" 503 UF,URX", 0),
            0u)
      << istio.Find("log")->bytes;
  EXPECT_NE(istio.Find("log")->bytes.back(), '\n');
}

// The telemetry policy per record: the workload's side format, its filter and its providers.
TEST(FluentdEncoderPolicyTest, EachWorkloadsSideDecidesDeliveryAndLine) {
  collector::WorkloadPolicy productpage;
  collector::AccessLogPolicy& client =
      productpage.access_logging[static_cast<size_t>(collector::PolicySide::kClient)];
  client.filter = "response.code >= 500 && request.method == 'GET'";
  client.format = collector::AccessLogConfig{.format = "%REQ(:METHOD)% %RESPONSE_CODE% pp\n"};
  client.providers = {"fluentd-main"};  // an exporter name stands for itself
  collector::PolicyDefaults defaults;
  defaults.exporters = {{"fluentd-main", false}, {"fluentd-other", false}};
  auto enforcer = collector::PolicyEnforcer::Create(
      defaults, [&productpage](const collector::PolicyWorkload& workload) {
        return workload.name == "productpage-v1" ? productpage : collector::WorkloadPolicy{};
      });
  ASSERT_TRUE(enforcer.ok()) << enforcer.status();
  const collector::AccessLogLines lines(
      std::shared_ptr<const collector::AccessLogRouting>(*std::move(enforcer)));
  FluentdConfig config = Config();
  config.record_format = FluentdRecordFormat::kLine;
  FluentdEncoder primary(config, lines, "fluentd-main");
  FluentdEncoder other(config, lines, "fluentd-other");

  const StoredRecord error_get = Record(kStartNanos, "/x");  // CLIENT side of productpage-v1
  StoredRecord error_post = Record(kStartNanos, "/x");
  error_post.record.set_method("POST");
  StoredRecord server = Record(kStartNanos, "/y");  // SERVER side of reviews-v2: no policy
  server.record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  EXPECT_TRUE(primary.Delivers(error_get));
  EXPECT_FALSE(other.Delivers(error_get));
  EXPECT_FALSE(primary.Delivers(error_post));
  EXPECT_TRUE(primary.Delivers(server));
  EXPECT_TRUE(other.Delivers(server));

  std::string entry;
  ASSERT_TRUE(primary.AppendEntry(error_get, entry).ok());
  EXPECT_EQ(Decode(entry).array[1].Find("message")->bytes, "GET 503 pp");
  entry.clear();
  ASSERT_TRUE(primary.AppendEntry(server, entry).ok());
  EXPECT_EQ(Decode(entry).array[1].Find("message")->bytes.rfind("[2024-12-01T15:00:00.123Z]", 0),
            0u);
}

TEST(FluentdEncoderTest, GzipRoundTrip) {
  const std::vector<StoredRecord> records = {Record(kStartNanos, "/a"), Record(kStartNanos, "/b"),
                                             Record(0, "/c")};
  FluentdEncoder plain(Config(), TextFormat(""));
  FluentdConfig gzip_config = Config();
  gzip_config.compression = FluentdCompression::kGzip;
  FluentdEncoder gzip(gzip_config, TextFormat(""));
  absl::StatusOr<collector::Payload> plain_payload = plain.Encode(records);
  absl::StatusOr<collector::Payload> gzip_payload = gzip.Encode(records);
  ASSERT_TRUE(plain_payload.ok() && gzip_payload.ok());

  const MsgpackValue message = Decode(gzip_payload->body);
  ASSERT_EQ(message.array.size(), 3u);
  EXPECT_EQ(message.array[1].type, Type::kBin);
  ASSERT_NE(message.array[2].Find("compressed"), nullptr);
  EXPECT_EQ(message.array[2].Find("compressed")->bytes, "gzip");
  EXPECT_EQ(message.array[2].Find("size")->AsInt(), 3);
  EXPECT_EQ(Gunzip(message.array[1].bytes), Decode(plain_payload->body).array[1].bytes);
}

TEST(FluentdEncoderTest, MeasureIsTheEntrySize) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  const std::vector<StoredRecord> records = {Record(kStartNanos, "/a"),
                                             Record(kStartNanos, std::string(500, 'p'))};
  size_t total = 0;
  for (const StoredRecord& record : records) {
    absl::StatusOr<size_t> size = encoder.Measure(record);
    ASSERT_TRUE(size.ok()) << size.status();
    total += *size;
  }
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(Decode(payload->body).array[1].bytes.size(), total);
}

// Measure() keeps each entry for Encode(): the same entries as encoding afresh; a record under a
// measured key but with other contents is encoded afresh.
TEST(FluentdEncoderTest, MeasuredEntriesGiveTheSameEntries) {
  std::vector<StoredRecord> records = {Record(kStartNanos, "/a"), Record(kStartNanos + 1, "/b"),
                                       Record(0, "/c")};
  for (size_t i = 0; i < records.size(); ++i) records[i].key.sequence = 10 + i;
  FluentdEncoder fresh(Config(), TextFormat(""));
  absl::StatusOr<collector::Payload> expected = fresh.Encode(records);
  ASSERT_TRUE(expected.ok());
  FluentdEncoder measuring(Config(), TextFormat(""));
  for (const StoredRecord& record : records) ASSERT_TRUE(measuring.Measure(record).ok());
  absl::StatusOr<collector::Payload> payload = measuring.Encode(records);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(Decode(payload->body).array[1].bytes, Decode(expected->body).array[1].bytes);

  std::vector<StoredRecord> changed = records;
  changed[1].record.set_path("/changed");
  for (const StoredRecord& record : records) ASSERT_TRUE(measuring.Measure(record).ok());
  absl::StatusOr<collector::Payload> other = measuring.Encode(changed);
  ASSERT_TRUE(other.ok());
  const std::vector<MsgpackValue> entries = DecodeAll(Decode(other->body).array[1].bytes);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[1].array[1].Find("path")->bytes, "/changed");
  EXPECT_EQ(entries[1].array[1].map.size(), 32u);
}

TEST(FluentdEncoderTest, MeasureRefusesTimesPastEventTime) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  absl::StatusOr<size_t> size = encoder.Measure(Record((uint64_t{1} << 32) * 1'000'000'000, "/"));
  EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(size.status().message().find("EventTime"), absl::string_view::npos);
}

TEST(FluentdEncoderTest, ChunkIdsAreFreshRandom128Bit) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  const std::vector<StoredRecord> records = {Record(kStartNanos, "/")};
  absl::StatusOr<collector::Payload> first = encoder.Encode(records);
  absl::StatusOr<collector::Payload> second = encoder.Encode(records);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(first->ack_token, second->ack_token);
  std::string raw;
  ASSERT_TRUE(absl::Base64Unescape(first->ack_token, &raw));
  EXPECT_EQ(raw.size(), 16u);
}

TEST(FluentdEncoderTest, WithoutAckNoChunk) {
  FluentdConfig config = Config();
  config.require_ack = false;
  FluentdEncoder encoder(config, TextFormat(""));
  absl::StatusOr<collector::Payload> payload =
      encoder.Encode(std::vector<StoredRecord>{Record(kStartNanos, "/")});
  ASSERT_TRUE(payload.ok());
  EXPECT_TRUE(payload->ack_token.empty());
  const MsgpackValue option = Decode(payload->body).array[2];
  EXPECT_EQ(option.Find("chunk"), nullptr);
  EXPECT_EQ(option.Find("size")->AsInt(), 1);
}

}  // namespace
}  // namespace meshtel::exporters::fluentd

namespace meshtel::exporters::fluentd {
namespace {

// A log record an OTLP receiver stored.
StoredRecord ReceivedLog(uint64_t time_nanos, std::string_view body) {
  StoredRecord stored;
  stored.key = collector::StoreKey{1733065299'000000000, 9};
  meshtel::v1::LogEntry& log = *stored.record.mutable_received_log();
  log.set_time_unix_nano(time_nanos);
  log.set_observed_time_unix_nano(1733065201'000000000);
  log.set_severity_number(13);
  log.set_body(std::string(body));
  log.set_trace_id(std::string(15, '\0') + "\x2a");
  log.set_service_name("checkout");
  meshtel::v1::SpanAttribute* attribute = log.add_attributes();
  attribute->set_key("order.id");
  attribute->set_string_value("o-17");
  attribute = log.add_attributes();
  attribute->set_key("attempt");
  attribute->set_int_value(-3);
  attribute = log.add_attributes();
  attribute->set_key("ratio");
  attribute->set_double_value(0.5);
  attribute = log.add_attributes();
  attribute->set_key("retry");
  attribute->set_bool_value(true);
  attribute = log.add_resource_attributes();
  attribute->set_key("k8s.namespace.name");
  attribute->set_string_value("shop");
  log.set_scope_name("com.shop.payments");
  return stored;
}

TEST(FluentdEncoderReceivedLogTest, OneEventPerLogRecordWithItsFields) {
  FluentdEncoder encoder(Config(), TextFormat("%REQ(:PATH)%"));
  const std::vector<StoredRecord> records = {ReceivedLog(kStartNanos, "stock low")};
  ASSERT_TRUE(encoder.Delivers(records[0]));
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const MsgpackValue message = Decode(payload->body);
  ASSERT_EQ(message.array.size(), 3u);
  EXPECT_EQ(message.array[0].bytes, "meshtel.log");  // received_log_tag's default
  EXPECT_EQ(message.array[2].Find("chunk")->bytes, payload->ack_token);
  const std::vector<MsgpackValue> entries = DecodeAll(message.array[1].bytes);
  ASSERT_EQ(entries.size(), 1u);
  // EventTime: the record's time.
  const std::string& time = entries[0].array[0].bytes;
  ASSERT_EQ(time.size(), 8u);
  EXPECT_EQ(time, std::string("\x67\x4c\x79\xf0\x07\x5b\xcd\x15", 8));
  const MsgpackValue& record = entries[0].array[1];
  EXPECT_EQ(record.Find("message")->bytes, "stock low");
  EXPECT_EQ(record.Find("severity")->bytes, "warn");  // no text: the level
  EXPECT_EQ(record.Find("severity_number")->AsInt(), 13);
  EXPECT_EQ(record.Find("level")->bytes, "warn");
  EXPECT_EQ(record.Find("service_name")->bytes, "checkout");
  EXPECT_EQ(record.Find("trace_id")->bytes, "0000000000000000000000000000002a");
  EXPECT_EQ(record.Find("span_id")->type, Type::kNil);
  EXPECT_EQ(record.Find("event_name")->type, Type::kNil);
  EXPECT_EQ(record.Find("scope_name")->bytes, "com.shop.payments");
  EXPECT_EQ(record.Find("scope_version")->type, Type::kNil);
  EXPECT_EQ(record.Find("observed_time")->bytes, "2024-12-01T15:00:01.000000000Z");
  EXPECT_EQ(record.Find("path"), nullptr);  // not an access-log event
  const MsgpackValue* attributes = record.Find("attributes");
  ASSERT_NE(attributes, nullptr);
  ASSERT_EQ(attributes->map.size(), 4u);
  EXPECT_EQ(attributes->Find("order.id")->bytes, "o-17");
  EXPECT_EQ(attributes->Find("attempt")->AsInt(), -3);
  EXPECT_EQ(attributes->Find("ratio")->float_value, 0.5);
  EXPECT_TRUE(attributes->Find("retry")->boolean);
  const MsgpackValue* resource = record.Find("resource");
  ASSERT_NE(resource, nullptr);
  ASSERT_EQ(resource->map.size(), 2u);
  EXPECT_EQ(resource->map[0].key.bytes, "service.name");
  EXPECT_EQ(resource->map[0].value.bytes, "checkout");
  EXPECT_EQ(resource->Find("k8s.namespace.name")->bytes, "shop");

  // record_format line does not change a received log record's event.
  FluentdConfig line = Config();
  line.record_format = FluentdRecordFormat::kLine;
  FluentdEncoder line_encoder(line, TextFormat("%REQ(:PATH)%"));
  absl::StatusOr<collector::Payload> same = line_encoder.Encode(records);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(DecodeAll(Decode(same->body).array[1].bytes)[0].array[1].Find("message")->bytes,
            "stock low");
}

TEST(FluentdEncoderReceivedLogTest, AMixedBatchIsTwoMessagesEachWithItsTagAndChunk) {
  FluentdConfig config = Config();
  config.compression = FluentdCompression::kGzip;
  FluentdEncoder encoder(config, TextFormat(""));
  const std::vector<StoredRecord> records = {
      Record(kStartNanos, "/a"), ReceivedLog(kStartNanos + 1, "one"), Record(kStartNanos + 2, "/b"),
      ReceivedLog(kStartNanos + 3, "two")};
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->entries, 4u);
  const std::vector<MsgpackValue> messages = DecodeAll(payload->body);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].array[0].bytes, "mesh.access");
  EXPECT_EQ(messages[1].array[0].bytes, "meshtel.log");
  EXPECT_EQ(payload->ack_token, messages[0].array[2].Find("chunk")->bytes + " " +
                                    messages[1].array[2].Find("chunk")->bytes);
  EXPECT_NE(messages[0].array[2].Find("chunk")->bytes, messages[1].array[2].Find("chunk")->bytes);
  const std::vector<MsgpackValue> access = DecodeAll(Gunzip(messages[0].array[1].bytes));
  const std::vector<MsgpackValue> logs = DecodeAll(Gunzip(messages[1].array[1].bytes));
  ASSERT_EQ(access.size(), 2u);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(messages[0].array[2].Find("size")->AsInt(), 2);
  EXPECT_EQ(messages[1].array[2].Find("size")->AsInt(), 2);
  EXPECT_EQ(access[1].array[1].Find("path")->bytes, "/b");
  EXPECT_EQ(logs[1].array[1].Find("message")->bytes, "two");

  // One tag for both: one message.
  config.received_log_tag = config.tag;
  FluentdEncoder one_tag(config, TextFormat(""));
  payload = one_tag.Encode(records);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(DecodeAll(payload->body).size(), 1u);
  EXPECT_EQ(payload->ack_token.find(' '), std::string::npos);
}

TEST(FluentdEncoderReceivedLogTest, ReceivedSpansAreNotForTheLogExporter) {
  FluentdEncoder encoder(Config(), TextFormat(""));
  StoredRecord span;
  span.record.mutable_received_span()->set_name("GET /cart");
  EXPECT_FALSE(encoder.Delivers(span));
  EXPECT_TRUE(encoder.Delivers(Record(kStartNanos, "/a")));
}

}  // namespace
}  // namespace meshtel::exporters::fluentd
