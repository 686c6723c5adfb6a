#include "exporters/fluentd/fluentd_sender.h"

#include <memory>
#include <string>
#include <vector>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "exporters/fluentd/fluentd_encoder.h"
#include "gtest/gtest.h"
#include "tests/support/fluentd_receiver.h"
#include "tests/support/process.h"

namespace meshtel::exporters::fluentd {
namespace {

using collector::SendResult;
using collector::SendVerdict;
using testing::FluentdReceiver;

constexpr uint64_t kStartNanos = 1733065200'123456789;

FluentdConfig ConfigFor(uint16_t port) {
  FluentdConfig config;
  config.address = {"127.0.0.1", port};
  config.tag = "mesh.access";
  config.timeout = absl::Seconds(10);
  return config;
}

// Encodes `paths.size()` records with the encoder of `config`.
collector::Payload PayloadOf(const FluentdConfig& config, const std::vector<std::string>& paths) {
  absl::StatusOr<collector::AccessLogFormat> format =
      collector::AccessLogFormat::Compile("", collector::AccessLogEncoding::kText);
  EXPECT_TRUE(format.ok());
  FluentdEncoder encoder(config, *format);
  std::vector<collector::StoredRecord> records;
  for (const std::string& path : paths) {
    collector::StoredRecord stored;
    stored.key = {kStartNanos, records.size()};
    stored.record.set_start_time_unix_nano(kStartNanos + records.size());
    stored.record.set_method("GET");
    stored.record.set_path(path);
    stored.record.set_response_code(200);
    records.push_back(std::move(stored));
  }
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  EXPECT_TRUE(payload.ok()) << payload.status();
  return payload.ok() ? *std::move(payload) : collector::Payload{};
}

std::vector<std::string> Paths(const FluentdReceiver& receiver) {
  std::vector<std::string> paths;
  for (const FluentdReceiver::Event& event : receiver.events()) {
    const MsgpackValue* path = event.record.Find("path");
    paths.push_back(path != nullptr ? path->bytes : "<no path>");
  }
  return paths;
}

TEST(FluentdSenderTest, AckedPayloadsShareOneConnection) {
  FluentdReceiver receiver;
  const FluentdConfig config = ConfigFor(receiver.port());
  FluentdSender sender(config);
  const collector::Payload first = PayloadOf(config, {"/a", "/b"});
  SendResult result = sender.Send(first);
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  result = sender.Send(PayloadOf(config, {"/c"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_TRUE(sender.connected());

  EXPECT_EQ(Paths(receiver), (std::vector<std::string>{"/a", "/b", "/c"}));
  EXPECT_EQ(receiver.connections(), 1u);
  EXPECT_TRUE(receiver.errors().empty()) << receiver.errors().front();
  const std::vector<FluentdReceiver::Request> requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].mode, "PackedForward");
  EXPECT_EQ(requests[0].tag, "mesh.access");
  EXPECT_EQ(requests[0].option.Find("chunk")->bytes, first.ack_token);
  const FluentdReceiver::Event event = receiver.events().front();
  EXPECT_TRUE(event.event_time);
  EXPECT_EQ(event.seconds, 1733065200u);
  EXPECT_EQ(event.nanoseconds, 123456789u);
}

TEST(FluentdSenderTest, APayloadOfTwoMessagesWaitsForBothAcks) {
  FluentdReceiver receiver;
  const FluentdConfig config = ConfigFor(receiver.port());
  absl::StatusOr<collector::AccessLogFormat> format =
      collector::AccessLogFormat::Compile("", collector::AccessLogEncoding::kText);
  ASSERT_TRUE(format.ok());
  FluentdEncoder encoder(config, *format);
  std::vector<collector::StoredRecord> records(2);
  records[0].record.set_start_time_unix_nano(kStartNanos);
  records[0].record.set_path("/a");
  records[1].record.mutable_received_log()->set_time_unix_nano(kStartNanos + 1);
  records[1].record.mutable_received_log()->set_body("stock low");
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  FluentdSender sender(config);
  const SendResult result = sender.Send(*payload);
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_TRUE(receiver.errors().empty()) << receiver.errors().front();
  const std::vector<FluentdReceiver::Request> requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].tag, "mesh.access");
  EXPECT_EQ(requests[1].tag, "meshtel.log");
  EXPECT_EQ(requests[0].option.Find("chunk")->bytes + " " + requests[1].option.Find("chunk")->bytes,
            payload->ack_token);
  const std::vector<FluentdReceiver::Event> events = receiver.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].tag, "meshtel.log");
  EXPECT_EQ(events[1].record.Find("message")->bytes, "stock low");

  // The second message never acknowledged: retryable, as for one message.
  receiver.set_ack_mode(FluentdReceiver::AckMode::kWrongId);
  FluentdConfig quick = config;
  quick.timeout = absl::Seconds(2);
  FluentdSender impatient(quick);
  EXPECT_EQ(impatient.Send(*payload).verdict, SendVerdict::kRetryable);
}

TEST(FluentdSenderTest, GzipArrivesAsCompressedPackedForward) {
  FluentdReceiver receiver;
  FluentdConfig config = ConfigFor(receiver.port());
  config.compression = FluentdCompression::kGzip;
  FluentdSender sender(config);
  const SendResult result = sender.Send(PayloadOf(config, {"/z1", "/z2", "/z3"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  ASSERT_EQ(receiver.requests().size(), 1u);
  EXPECT_EQ(receiver.requests()[0].mode, "CompressedPackedForward");
  EXPECT_EQ(Paths(receiver), (std::vector<std::string>{"/z1", "/z2", "/z3"}));
  EXPECT_TRUE(receiver.errors().empty()) << receiver.errors().front();
}

TEST(FluentdSenderTest, WithoutAckWritingIsEnough) {
  FluentdReceiver receiver;
  receiver.set_ack_mode(FluentdReceiver::AckMode::kNoAck);
  FluentdConfig config = ConfigFor(receiver.port());
  config.require_ack = false;
  FluentdSender sender(config);
  const SendResult result = sender.Send(PayloadOf(config, {"/n"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_TRUE(
      testing::WaitFor([&] { return receiver.events().size() == 1; }, std::chrono::seconds(10)));
  EXPECT_EQ(receiver.requests()[0].option.Find("chunk"), nullptr);
}

// The benchmarks' receiver keeps no events but still checks each one and counts it.
TEST(FluentdSenderTest, AReceiverKeepingNoEventsChecksAndCountsThem) {
  FluentdReceiver::Options options;
  options.keep_events = false;
  FluentdReceiver receiver(options);
  for (FluentdCompression compression : {FluentdCompression::kNone, FluentdCompression::kGzip}) {
    FluentdConfig config = ConfigFor(receiver.port());
    config.compression = compression;
    FluentdSender sender(config);
    const SendResult result = sender.Send(PayloadOf(config, {"/k1", "/k2", "/k3"}));
    EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  }
  EXPECT_EQ(receiver.event_count(), 6u);
  EXPECT_TRUE(receiver.events().empty());
  EXPECT_TRUE(receiver.errors().empty()) << receiver.errors().front();

  // An entry whose record is not a map, and one with a key that is not a str: both refused.
  for (const bool int_key : {false, true}) {
    std::string entries;
    MsgpackWriter entry(entries);
    entry.ArrayHeader(2);
    entry.EventTime(1, 2);
    if (int_key) {
      entry.MapHeader(1);
      entry.Uint(7);
      entry.Str("value");
    } else {
      entry.Str("not a map");
    }
    collector::Payload bad;
    MsgpackWriter message(bad.body);
    message.ArrayHeader(3);
    message.Str("mesh.access");
    message.Bin(entries);
    message.MapHeader(1);
    message.Str("size");
    message.Uint(1);
    FluentdConfig config = ConfigFor(receiver.port());
    config.require_ack = false;
    FluentdSender sender(config);
    EXPECT_EQ(sender.Send(bad).verdict, SendVerdict::kOk);
    EXPECT_TRUE(testing::WaitFor([&] { return receiver.errors().size() == (int_key ? 2u : 1u); },
                                 std::chrono::seconds(10)));
  }
  EXPECT_EQ(receiver.event_count(), 6u);
}

TEST(FluentdSenderTest, NoAckIsRetryableAfterTheTimeout) {
  FluentdReceiver receiver;
  receiver.set_ack_mode(FluentdReceiver::AckMode::kNoAck);
  FluentdConfig config = ConfigFor(receiver.port());
  config.timeout = absl::Milliseconds(300);
  FluentdSender sender(config);
  SendResult result = sender.Send(PayloadOf(config, {"/lost"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("no ack"), std::string::npos) << result.detail;
  EXPECT_FALSE(sender.connected());

  // The engine sends the same payload again; this time the server answers, on a new connection.
  receiver.set_ack_mode(FluentdReceiver::AckMode::kAck);
  result = sender.Send(PayloadOf(config, {"/again"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_EQ(receiver.connections(), 2u);
}

TEST(FluentdSenderTest, WrongAckIsRetryable) {
  FluentdReceiver receiver;
  receiver.set_ack_mode(FluentdReceiver::AckMode::kWrongId);
  const FluentdConfig config = ConfigFor(receiver.port());
  FluentdSender sender(config);
  const SendResult result = sender.Send(PayloadOf(config, {"/w"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("acknowledged chunk"), std::string::npos) << result.detail;
  EXPECT_FALSE(sender.connected());
}

TEST(FluentdSenderTest, ClosedInsteadOfAckIsRetryable) {
  FluentdReceiver receiver;
  receiver.set_ack_mode(FluentdReceiver::AckMode::kClose);
  const FluentdConfig config = ConfigFor(receiver.port());
  FluentdSender sender(config);
  const SendResult result = sender.Send(PayloadOf(config, {"/c"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("closed the connection"), std::string::npos) << result.detail;
}

TEST(FluentdSenderTest, ReconnectsAfterTheReceiverRestarts) {
  auto receiver = std::make_unique<FluentdReceiver>();
  const uint16_t port = receiver->port();
  const FluentdConfig config = ConfigFor(port);
  FluentdSender sender(config);
  SendResult result = sender.Send(PayloadOf(config, {"/before"}));
  ASSERT_EQ(result.verdict, SendVerdict::kOk) << result.detail;

  receiver.reset();  // the server goes away
  result = sender.Send(PayloadOf(config, {"/while-down"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("cannot connect"), std::string::npos) << result.detail;

  FluentdReceiver::Options options;
  options.port = port;
  receiver = std::make_unique<FluentdReceiver>(options);
  result = sender.Send(PayloadOf(config, {"/after"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_EQ(Paths(*receiver), (std::vector<std::string>{"/after"}));
}

TEST(FluentdSenderTest, ReconnectsWhenTheServerClosedTheIdleConnection) {
  auto receiver = std::make_unique<FluentdReceiver>();
  const uint16_t port = receiver->port();
  const FluentdConfig config = ConfigFor(port);
  FluentdSender sender(config);
  ASSERT_EQ(sender.Send(PayloadOf(config, {"/1"})).verdict, SendVerdict::kOk);
  FluentdReceiver::Options options;
  options.port = port;
  receiver.reset();
  receiver = std::make_unique<FluentdReceiver>(options);
  // The kept connection is dead; the sender notices before writing and opens a new one.
  const SendResult result = sender.Send(PayloadOf(config, {"/2"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_EQ(Paths(*receiver), (std::vector<std::string>{"/2"}));
}

TEST(FluentdSenderTest, HandshakeWithTheSharedKey) {
  FluentdReceiver::Options options;
  options.shared_key = "s3cret";
  FluentdReceiver receiver(options);
  FluentdConfig config = ConfigFor(receiver.port());
  config.shared_key = "s3cret";
  config.self_hostname = "collector-0";
  FluentdSender sender(config);
  EXPECT_EQ(sender.Send(PayloadOf(config, {"/s1"})).verdict, SendVerdict::kOk);
  const SendResult result = sender.Send(PayloadOf(config, {"/s2"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
  EXPECT_EQ(Paths(receiver), (std::vector<std::string>{"/s1", "/s2"}));
  EXPECT_EQ(receiver.connections(), 1u);
  EXPECT_TRUE(receiver.errors().empty()) << receiver.errors().front();
}

TEST(FluentdSenderTest, HandshakeWithUserAuthentication) {
  FluentdReceiver::Options options;
  options.shared_key = "s3cret";
  options.username = "mesh";
  options.password = "pa55";
  FluentdReceiver receiver(options);
  FluentdConfig config = ConfigFor(receiver.port());
  config.shared_key = "s3cret";
  config.self_hostname = "collector-0";
  config.username = "mesh";
  config.password = "pa55";
  SendResult result = FluentdSender(config).Send(PayloadOf(config, {"/u"}));
  EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;

  config.password = "wrong";
  result = FluentdSender(config).Send(PayloadOf(config, {"/u2"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_NE(result.detail.find("username/password mismatch"), std::string::npos) << result.detail;
  EXPECT_EQ(Paths(receiver), (std::vector<std::string>{"/u"}));
}

TEST(FluentdSenderTest, WrongSharedKeyPausesTheExporter) {
  FluentdReceiver::Options options;
  options.shared_key = "s3cret";
  FluentdReceiver receiver(options);
  FluentdConfig config = ConfigFor(receiver.port());
  config.shared_key = "guess";
  config.self_hostname = "collector-0";
  FluentdSender sender(config);
  const SendResult result = sender.Send(PayloadOf(config, {"/x"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_NE(result.detail.find("refused the handshake: shared_key mismatch"), std::string::npos)
      << result.detail;
  EXPECT_FALSE(sender.connected());
  EXPECT_TRUE(receiver.events().empty());
}

TEST(FluentdSenderTest, ServerWithAnotherKeyPausesTheExporter) {
  FluentdReceiver::Options options;
  options.shared_key = "s3cret";
  options.pong_key = "impostor";
  FluentdReceiver receiver(options);
  FluentdConfig config = ConfigFor(receiver.port());
  config.shared_key = "s3cret";
  config.self_hostname = "collector-0";
  const SendResult result = FluentdSender(config).Send(PayloadOf(config, {"/x"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_NE(result.detail.find("does not match shared_key"), std::string::npos) << result.detail;
  EXPECT_TRUE(receiver.events().empty());
}

TEST(FluentdSenderTest, ServerAskingForAHandshakeWithoutKeyPausesTheExporter) {
  FluentdReceiver::Options options;
  options.shared_key = "s3cret";
  FluentdReceiver receiver(options);
  const FluentdConfig config = ConfigFor(receiver.port());
  const SendResult result = FluentdSender(config).Send(PayloadOf(config, {"/x"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_TRUE(result.throttled);
  EXPECT_NE(result.detail.find("set shared_key"), std::string::npos) << result.detail;
  EXPECT_TRUE(receiver.events().empty());
}

TEST(FluentdSenderTest, ServerThatSendsNoHeloIsRetryableAfterTheTimeout) {
  FluentdReceiver receiver;  // no shared_key: it never starts a handshake
  FluentdConfig config = ConfigFor(receiver.port());
  config.shared_key = "s3cret";
  config.self_hostname = "collector-0";
  config.timeout = absl::Milliseconds(300);
  FluentdSender sender(config);
  const SendResult result = sender.Send(PayloadOf(config, {"/x"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("no HELO"), std::string::npos) << result.detail;
  EXPECT_FALSE(sender.connected());
  EXPECT_TRUE(receiver.events().empty());
}

TEST(FluentdSenderTest, ServerWithoutKeepaliveGetsAConnectionPerPayload) {
  FluentdReceiver::Options options;
  options.shared_key = "s3cret";
  options.keepalive = false;
  FluentdReceiver receiver(options);
  FluentdConfig config = ConfigFor(receiver.port());
  config.shared_key = "s3cret";
  config.self_hostname = "collector-0";
  FluentdSender sender(config);
  for (const char* path : {"/k1", "/k2"}) {
    const SendResult result = sender.Send(PayloadOf(config, {path}));
    EXPECT_EQ(result.verdict, SendVerdict::kOk) << result.detail;
    EXPECT_FALSE(sender.connected());
  }
  EXPECT_EQ(Paths(receiver), (std::vector<std::string>{"/k1", "/k2"}));
  EXPECT_EQ(receiver.connections(), 2u);
}

TEST(FluentdSenderTest, AServerThatDoesNotReadEndsTheWriteAtTheTimeout) {
  // A listening socket whose connections are never accepted nor read: the kernel takes what
  // fits in its buffers, and the rest of the write waits.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  FluentdConfig config = ConfigFor(acceptor.local_endpoint().port());
  config.timeout = absl::Milliseconds(300);
  FluentdSender sender(config);
  collector::Payload payload;
  payload.body.assign(64 << 20, 'x');
  payload.ack_token = "unused";
  const SendResult result = sender.Send(payload);
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("writing"), std::string::npos) << result.detail;
  EXPECT_FALSE(sender.connected());
}

TEST(FluentdSenderTest, NothingListeningIsRetryable) {
  std::unique_ptr<FluentdReceiver> receiver = std::make_unique<FluentdReceiver>();
  const uint16_t port = receiver->port();
  receiver.reset();
  const FluentdConfig config = ConfigFor(port);
  const SendResult result = FluentdSender(config).Send(PayloadOf(config, {"/x"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("cannot connect to 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << result.detail;
}

TEST(FluentdSenderTest, UnresolvableHostIsRetryable) {
  FluentdConfig config = ConfigFor(24224);
  config.address.host = "no-such-host.invalid";
  const SendResult result = FluentdSender(config).Send(PayloadOf(config, {"/x"}));
  EXPECT_EQ(result.verdict, SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("no-such-host.invalid"), std::string::npos) << result.detail;
}

TEST(FluentdSenderTest, Sha512HexMatchesTheKnownDigest) {
  // SHA-512("abc"), FIPS 180-2 appendix C.1, split over parts as the handshake concatenates.
  EXPECT_EQ(Sha512Hex({"a", "", "bc"}),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

}  // namespace
}  // namespace meshtel::exporters::fluentd
