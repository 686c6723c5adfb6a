// The delivery engine against a store on disk and a scripted in-process backend
// (tests/support/scripted_backend.h).

#include "collector/delivery/delivery_engine.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "tests/support/process.h"
#include "tests/support/scripted_backend.h"

namespace meshtel::collector {
namespace {

using testing::Backend;
using testing::LineEncoder;
using testing::ScriptedSender;

using std::chrono::seconds;

class DeliveryEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("delivery");
    OpenStore();
  }
  void OpenStore() {
    StoreConfig config;
    config.data_dir = dir_;
    config.durability = "process";
    registries_.push_back(std::make_unique<prometheus::Registry>());
    auto store = RecordStore::Open(config, *registries_.back());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  // Stores one batch of records with the given paths; a "span:NAME" is a received span (an entry
  // with only received_span set), which the test encoder does not deliver.
  void Append(const std::vector<std::string>& paths) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("proxy-a");
    batch.set_sequence(++sequence_);
    for (const std::string& path : paths) {
      if (path.starts_with("span:")) {
        batch.add_records()->mutable_received_span()->set_name(path.substr(5));
      } else {
        batch.add_records()->set_path(path);
      }
    }
    ASSERT_TRUE(store_->AppendBatch(batch, {sequence_, 0}).ok());
  }
  static std::vector<std::string> Paths(const std::string& prefix, int count) {
    std::vector<std::string> paths;
    for (int i = 0; i < count; ++i) paths.push_back(prefix + std::to_string(i));
    return paths;
  }
  DeliveryTarget Target(const std::string& name, Backend& backend) {
    DeliveryTarget target;
    target.exporter.name = name;
    target.exporter.type = "scripted";
    target.exporter.encoder = std::make_unique<LineEncoder>();
    target.exporter.sender = std::make_unique<ScriptedSender>(backend);
    target.batch.max_records = 10;
    target.batch.max_wait = absl::ZeroDuration();
    target.retry.initial_backoff = absl::Milliseconds(5);
    target.retry.max_backoff = absl::Milliseconds(40);
    return target;
  }
  std::unique_ptr<DeliveryEngine> Start(std::vector<DeliveryTarget> targets) {
    registries_.push_back(std::make_unique<prometheus::Registry>());
    auto engine = std::make_unique<DeliveryEngine>(*store_, *registries_.back());
    EXPECT_TRUE(engine->Start(std::move(targets)).ok());
    return engine;
  }
  std::unique_ptr<DeliveryEngine> Start(DeliveryTarget target) {
    std::vector<DeliveryTarget> targets;
    targets.push_back(std::move(target));
    return Start(std::move(targets));
  }
  // The engine's counter for `exporter` and `outcome` in the newest registry.
  double Records(const std::string& exporter, const std::string& outcome) {
    const std::string text = prometheus::TextSerializer().Serialize(registries_.back()->Collect());
    const std::string key = "meshtel_exporter_records_total{exporter=\"" + exporter +
                            "\",outcome=\"" + outcome + "\"} ";
    const size_t at = text.find(key);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
  }
  // The engine's send counter for `exporter` and `verdict` in the newest registry.
  double Sends(const std::string& exporter, const std::string& verdict) {
    const std::string text = prometheus::TextSerializer().Serialize(registries_.back()->Collect());
    const std::string key =
        "meshtel_exporter_send_total{exporter=\"" + exporter + "\",verdict=\"" + verdict + "\"} ";
    const size_t at = text.find(key);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
  }
  DeliveryStatus Status(DeliveryEngine& engine, const std::string& name) {
    for (const DeliveryStatus& status : engine.statuses()) {
      if (status.name == name) return status;
    }
    ADD_FAILURE() << "no exporter " << name;
    return {};
  }

  std::string dir_;
  uint64_t sequence_ = 0;
  std::vector<std::unique_ptr<prometheus::Registry>> registries_;
  std::unique_ptr<RecordStore> store_;
};

TEST_F(DeliveryEngineTest, DeliversEveryRecordOnceInOrderAndResumesAfterItsCursor) {
  Backend backend;
  Append(Paths("/a", 25));
  {
    auto engine = Start(std::vector<DeliveryTarget>());
    engine.reset();
  }
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 25; }, seconds(10)));
  EXPECT_EQ(backend.AllAccepted(), Paths("/a", 25));
  for (size_t size : backend.payload_sizes) EXPECT_LE(size, 10u);
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "delivered") == 25; }, seconds(5)));
  ASSERT_TRUE(
      testing::WaitFor([&] { return Status(*engine, "main").lag_records == 0; }, seconds(5)));
  engine->Stop();

  // A restart (new engine, same store) goes on after the cursor: only the new records go out.
  Append(Paths("/b", 5));
  engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 30; }, seconds(10)));
  engine->Stop();
  std::vector<std::string> expected = Paths("/a", 25);
  for (const std::string& path : Paths("/b", 5)) expected.push_back(path);
  EXPECT_EQ(backend.AllAccepted(), expected);
}

// While a payload is on its way, the next batch is read, measured and encoded; it is sent only
// after the one in flight was answered, so payloads still arrive one at a time, in order.
TEST_F(DeliveryEngineTest, TheNextBatchIsEncodedWhileAPayloadIsInFlight) {
  Backend backend;
  backend.hold = true;
  Append(Paths("/a", 30));
  DeliveryTarget target = Target("main", backend);
  const auto* encoder = static_cast<const LineEncoder*>(target.exporter.encoder.get());
  auto engine = Start(std::move(target));
  // The first send is held by the backend; the second payload gets encoded meanwhile, and is
  // not sent before the first is answered.
  ASSERT_TRUE(testing::WaitFor([&] { return encoder->encoded_payloads() >= 2; }, seconds(5)));
  EXPECT_EQ(backend.sends_started.load(), 1);
  EXPECT_TRUE(backend.AllAccepted().empty());
  backend.hold = false;
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 30; }, seconds(10)));
  EXPECT_EQ(backend.AllAccepted(), Paths("/a", 30));
  EXPECT_EQ(backend.sends_started.load(), 3);
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "delivered") == 30; }, seconds(5)));
  engine->Stop();
  EXPECT_EQ(Sends("main", "ok"), 3);
}

// A payload in flight that the backend does not take at once is retried before the batch that
// was prepared meanwhile goes, and nothing is lost or sent out of order.
TEST_F(DeliveryEngineTest, ARetriedPayloadInFlightGoesBeforeTheBatchPreparedMeanwhile) {
  Backend backend;
  backend.fail_next = 2;
  Append(Paths("/a", 30));
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 30; }, seconds(10)));
  EXPECT_EQ(backend.AllAccepted(), Paths("/a", 30));
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "delivered") == 30; }, seconds(5)));
  engine->Stop();
  EXPECT_EQ(Sends("main", "retryable"), 2);
  EXPECT_EQ(Sends("main", "ok"), 3);
}

TEST_F(DeliveryEngineTest, RecordsTheExporterDoesNotDeliverAreFilteredAndCountedOnce) {
  Backend backend;
  // Batches of 10: the second read holds only spans, the last ends with them.
  Append({"/a0", "span:s0", "/a1", "span:s1", "span:s2", "/a2", "/a3", "/a4", "/a5", "/a6"});
  Append({"span:s3", "span:s4", "span:s5", "span:s6", "span:s7", "span:s8", "span:s9", "span:s10",
          "span:s11", "span:s12"});
  Append({"/a7", "span:s13"});
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Records("main", "delivered") == 8 && Records("main", "filtered") == 14; },
      seconds(10)));
  engine->Stop();
  EXPECT_EQ(backend.AllAccepted(), Paths("/a", 8));
  EXPECT_EQ(Records("main", "delivered"), 8);
  EXPECT_EQ(Records("main", "filtered"), 14);
  EXPECT_EQ(Records("main", "rejected"), 0);
  const DeliveryStatus status = Status(*engine, "main");
  EXPECT_EQ(status.delivered, 8u);
  EXPECT_EQ(status.filtered, 14u);
  // No empty payload for the read of spans only; the cursor passed them all.
  for (size_t size : backend.payload_sizes) EXPECT_GT(size, 0u);
  auto all = store_->Read(RecordFamily::kLogs, StoreKey{}, StoreKey{~0ull, ~0ull}, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*store_->LoadCursor("main"), all->back().key);
}

TEST_F(DeliveryEngineTest, CountsTheEntriesTheEncoderRepaired) {
  Backend backend;
  Append({"/a0", "/fix1", "/a2", "/fix3", "/fix4"});
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "delivered") == 5; }, seconds(10)));
  // The counter follows the encoder once the batch is resolved.
  const auto repaired = [&] {
    const std::string text = prometheus::TextSerializer().Serialize(registries_.back()->Collect());
    const std::string key = "meshtel_exporter_entries_repaired_total{exporter=\"main\"} ";
    const size_t at = text.find(key);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
  };
  ASSERT_TRUE(testing::WaitFor([&] { return repaired() == 3; }, seconds(10))) << repaired();
  engine->Stop();
  EXPECT_EQ(repaired(), 3);
}

TEST_F(DeliveryEngineTest, RetriesTheSamePayloadUntilTheBackendTakesIt) {
  Backend backend;
  backend.fail_next = 3;
  Append(Paths("/r", 4));
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 4; }, seconds(10)));
  engine->Stop();
  std::lock_guard<std::mutex> lock(backend.mutex);
  EXPECT_EQ(backend.payload_sizes, (std::vector<size_t>{4, 4, 4, 4}));  // 3 failures, then ok
  EXPECT_EQ(Records("main", "delivered"), 4);
  EXPECT_EQ(Records("main", "rejected"), 0);
  EXPECT_EQ(Status(*engine, "main").retrying, 0u);
  // Every send is counted with its verdict, retries included.
  EXPECT_EQ(Sends("main", "retryable"), 3);
  EXPECT_EQ(Sends("main", "ok"), 1);
}

TEST_F(DeliveryEngineTest, ThrottledBackendPausesTheExporterForItsRetryAfter) {
  Backend backend;
  backend.fail_next = 1;
  backend.retry_after = absl::Milliseconds(300);
  Append(Paths("/t", 2));
  DeliveryTarget target = Target("main", backend);
  const absl::Time started = absl::Now();
  auto engine = Start(std::move(target));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 2; }, seconds(10)));
  // The second try came no sooner than the backend asked (the backoff alone is at most 5 ms).
  EXPECT_GE(absl::Now() - started, absl::Milliseconds(300));
  engine->Stop();
}

TEST_F(DeliveryEngineTest, ARefusedEntryIsFoundBySplittingAndSetAsideWhileTheRestGoes) {
  Backend backend;
  backend.refuse_bad = true;
  std::vector<std::string> paths = Paths("/g", 9);
  paths.insert(paths.begin() + 6, "/bad-entry");
  Append(paths);
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "rejected") == 1; }, seconds(10)));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 9; }, seconds(10)));
  engine->Stop();
  EXPECT_EQ(backend.AllAccepted(), Paths("/g", 9));
  EXPECT_EQ(Records("main", "delivered"), 9);
  auto letters = store_->ListDeadLetters("main", 10);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].record.path(), "/bad-entry");
  EXPECT_EQ((*letters)[0].reason, "HTTP 400: bad entry");
  EXPECT_FALSE((*letters)[0].maybe_delivered);
}

TEST_F(DeliveryEngineTest, APartlyStoredRefusalIsNotResentAndMarkedMaybeDelivered) {
  Backend backend;
  backend.refuse_bad = true;
  backend.partly_stored = true;
  Append({"/p0", "/bad", "/p2"});
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "rejected") == 3; }, seconds(10)));
  engine->Stop();
  EXPECT_EQ(backend.payload_sizes, (std::vector<size_t>{3}));  // sent once, never split
  auto letters = store_->ListDeadLetters("main", 10);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 3u);
  for (const auto& letter : *letters) EXPECT_TRUE(letter.maybe_delivered);
}

TEST_F(DeliveryEngineTest, ARefusedRequestIsSetAsideWholeWithoutSplitting) {
  Backend backend;
  backend.refuse_requests = true;
  Append(Paths("/r", 8));
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "rejected") == 8; }, seconds(10)));
  engine->Stop();
  EXPECT_EQ(backend.payload_sizes, (std::vector<size_t>{8}));  // sent once, never split
  EXPECT_EQ(Records("main", "delivered"), 0);
  auto letters = store_->ListDeadLetters("main", 10);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 8u);
  for (const auto& letter : *letters) {
    EXPECT_EQ(letter.reason, "HTTP 401: unauthorized");
    EXPECT_FALSE(letter.maybe_delivered);
  }
}

TEST_F(DeliveryEngineTest, ARecordTheEncoderRefusesIsSetAsideWithoutBeingSent) {
  Backend backend;
  Append({"/ok0", "/huge", "/ok1"});
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 2; }, seconds(10)));
  ASSERT_TRUE(testing::WaitFor([&] { return Records("main", "rejected") == 1; }, seconds(5)));
  engine->Stop();
  EXPECT_EQ(backend.AllAccepted(), (std::vector<std::string>{"/ok0", "/ok1"}));
  auto letters = store_->ListDeadLetters("", 10);
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].reason, "line over the backend's limit");
}

TEST_F(DeliveryEngineTest, BatchesStayUnderTheByteCap) {
  Backend backend;
  Append(Paths("/0123456789abcdef", 10));  // 19 or 20 bytes each with the newline
  DeliveryTarget target = Target("main", backend);
  target.batch.max_bytes = 60;
  auto engine = Start(std::move(target));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 10; }, seconds(10)));
  engine->Stop();
  EXPECT_EQ(backend.AllAccepted(), Paths("/0123456789abcdef", 10));
  for (size_t size : backend.payload_sizes) EXPECT_LE(size, 3u);
}

TEST_F(DeliveryEngineTest, ADeadBackendHoldsBackOnlyItsOwnExporter) {
  Backend dead;
  dead.down = true;
  Backend alive;
  std::vector<DeliveryTarget> targets;
  targets.push_back(Target("dead", dead));
  targets.push_back(Target("alive", alive));
  auto engine = Start(std::move(targets));
  for (int round = 0; round < 5; ++round) Append(Paths("/x" + std::to_string(round) + "-", 20));
  ASSERT_TRUE(testing::WaitFor([&] { return alive.AllAccepted().size() == 100; }, seconds(10)));
  EXPECT_TRUE(dead.AllAccepted().empty());
  ASSERT_TRUE(
      testing::WaitFor([&] { return Status(*engine, "dead").lag_records == 100; }, seconds(5)));
  EXPECT_EQ(Status(*engine, "dead").retrying, 10u);
  EXPECT_EQ(Status(*engine, "dead").last_error, "down");
  // The backend comes back: everything it missed arrives, in order.
  dead.down = false;
  ASSERT_TRUE(testing::WaitFor([&] { return dead.AllAccepted().size() == 100; }, seconds(10)));
  EXPECT_EQ(dead.AllAccepted(), alive.AllAccepted());
  engine->Stop();
}

TEST_F(DeliveryEngineTest, StopDuringRetriesLeavesTheCursorBeforeTheBatch) {
  Backend backend;
  backend.down = true;
  Append(Paths("/s", 3));
  {
    auto engine = Start(Target("main", backend));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(backend.mutex);
          return backend.payload_sizes.size() >= 2;
        },
        seconds(5)));
    engine->Stop();
  }
  EXPECT_EQ(*store_->LoadCursor("main"), StoreKey{});
  backend.down = false;
  auto engine = Start(Target("main", backend));
  ASSERT_TRUE(testing::WaitFor([&] { return backend.AllAccepted().size() == 3; }, seconds(10)));
  engine->Stop();
}

}  // namespace
}  // namespace meshtel::collector
