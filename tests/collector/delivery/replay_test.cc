// Replays against a store on disk and the scripted backend (tests/support/scripted_backend.h).

#include "collector/delivery/replay.h"

#include <thread>

#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/scripted_backend.h"

namespace meshtel::collector {
namespace {

using std::chrono::seconds;
using testing::Backend;

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreConfig config;
    config.data_dir = testing::MakeTempDir("replay");
    config.durability = "process";
    auto store = RecordStore::Open(config, registry_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    manager_ = std::make_unique<ReplayManager>(
        *store_, [this](const ReplayRequest& request) -> absl::StatusOr<DeliveryTarget> {
          if (request.exporter != "loki-main") {
            return absl::NotFoundError("no exporter named '" + request.exporter + "'");
          }
          DeliveryTarget target;
          target.exporter.name = request.exporter;
          target.exporter.encoder = std::make_unique<testing::LineEncoder>();
          target.exporter.sender = std::make_unique<testing::ScriptedSender>(backend_);
          target.batch.max_records = 4;
          target.retry.initial_backoff = absl::Milliseconds(5);
          target.retry.max_backoff = absl::Milliseconds(20);
          return target;
        });
  }
  // Stores one batch; returns the storage time of its first record.
  uint64_t Append(const std::vector<std::string>& paths) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("proxy-a");
    batch.set_sequence(++sequence_);
    for (const std::string& path : paths) {
      if (path.starts_with("span:")) {  // a received span: not for the test (log) encoder
        batch.add_records()->mutable_received_span()->set_name(path.substr(5));
      } else {
        batch.add_records()->set_path(path);
      }
    }
    EXPECT_TRUE(store_->AppendBatch(batch, {sequence_, 0}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // distinct storage times
    auto all = store_->Read(RecordFamily::kLogs, StoreKey{}, StoreKey{~0ull, ~0ull}, 100000);
    return (*all)[all->size() - paths.size()].key.time_unix_nano;
  }
  ReplayStatus WaitFinished() {
    ReplayStatus last;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          last = manager_->List().back();
          return last.state == "done" || last.state == "cancelled" || last.state == "failed";
        },
        seconds(10)));
    return last;
  }

  prometheus::Registry registry_;
  std::unique_ptr<RecordStore> store_;
  Backend backend_;
  std::unique_ptr<ReplayManager> manager_;
  uint64_t sequence_ = 0;
};

TEST_F(ReplayTest, ARangeYieldsExactlyItsRecordsInOrderAndNoCursorMoves) {
  Append({"/early0", "/early1"});
  const uint64_t from = Append({"/in0", "/in1", "/in2", "/in3", "/in4"});
  Append({"/in5", "/in6"});
  const uint64_t to = Append({"/late0"});
  ASSERT_TRUE(store_->SaveCursor("loki-main", StoreKey{from - 1, 7}).ok());

  auto started =
      manager_->Start({.exporter = "loki-main", .from_unix_nano = from, .to_unix_nano = to});
  ASSERT_TRUE(started.ok()) << started.status();
  const ReplayStatus done = WaitFinished();
  EXPECT_EQ(done.state, "done") << done.error;
  EXPECT_EQ(done.total, 7u);
  EXPECT_EQ(done.checked, 7u);
  EXPECT_EQ(done.sent, 7u);
  EXPECT_EQ(backend_.AllAccepted(),
            (std::vector<std::string>{"/in0", "/in1", "/in2", "/in3", "/in4", "/in5", "/in6"}));
  // Pages of batch.max_records.
  std::lock_guard<std::mutex> lock(backend_.mutex);
  EXPECT_EQ(backend_.payload_sizes, (std::vector<size_t>{4, 3}));
  // The live exporter's cursor is where it was.
  EXPECT_EQ(*store_->LoadCursor("loki-main"), (StoreKey{from - 1, 7}));
}

TEST_F(ReplayTest, SpansReplayLikeLogs) {
  const auto append_spans = [this](const std::vector<std::string>& names) {
    std::vector<meshtel::v1::Span> spans;
    for (const std::string& name : names) {
      meshtel::v1::Span& span = spans.emplace_back();
      span.set_trace_id(std::string(16, 't'));
      span.set_span_id(std::string(7, 's') + std::string(1, static_cast<char>(spans.size())));
      span.set_name(name);
    }
    EXPECT_TRUE(store_->AppendSpans(spans, "@trace-assembly", StoreKey{}, StoreKey{}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    auto all = store_->Read(RecordFamily::kSpans, StoreKey{}, StoreKey{~0ull, ~0ull}, 100000);
    return (*all)[all->size() - names.size()].key.time_unix_nano;
  };
  append_spans({"early"});
  const uint64_t from = append_spans({"in0", "in1", "in2"});
  Append({"/a-log-in-the-range"});
  const uint64_t to = append_spans({"late"});
  ASSERT_TRUE(store_->SaveCursor("loki-main", StoreKey{from - 1, 3}).ok());
  ASSERT_TRUE(manager_
                  ->Start({.exporter = "loki-main",
                           .family = RecordFamily::kSpans,
                           .from_unix_nano = from,
                           .to_unix_nano = to})
                  .ok());
  const ReplayStatus done = WaitFinished();
  EXPECT_EQ(done.state, "done") << done.error;
  EXPECT_EQ(done.family, "spans");
  EXPECT_EQ(done.sent, 3u);
  EXPECT_EQ(backend_.AllAccepted(), (std::vector<std::string>{"in0", "in1", "in2"}));
  EXPECT_EQ(*store_->LoadCursor("loki-main"), (StoreKey{from - 1, 3}));
}

TEST_F(ReplayTest, WhatTheBackendWouldRefuseIsReportedAndNotSent) {
  const uint64_t from = Append({"/a", "/huge-1", "/b", "/huge-2"});
  const uint64_t to = Append({"/after"});
  ASSERT_TRUE(
      manager_->Start({.exporter = "loki-main", .from_unix_nano = from, .to_unix_nano = to}).ok());
  const ReplayStatus done = WaitFinished();
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.refused_before_send, 2u);
  EXPECT_EQ(done.refusal_reasons, (std::vector<std::string>{"line over the backend's limit"}));
  EXPECT_EQ(done.sent, 2u);
  EXPECT_EQ(backend_.AllAccepted(), (std::vector<std::string>{"/a", "/b"}));
}

TEST_F(ReplayTest, RecordsTheExporterDoesNotDeliverAreCountedAsFilteredAndNotSent) {
  const uint64_t from = Append({"/a", "span:s0", "/b", "span:s1", "span:s2"});
  const uint64_t to = Append({"/after"});
  ASSERT_TRUE(
      manager_->Start({.exporter = "loki-main", .from_unix_nano = from, .to_unix_nano = to}).ok());
  const ReplayStatus done = WaitFinished();
  EXPECT_EQ(done.state, "done");
  EXPECT_EQ(done.total, 5u);
  EXPECT_EQ(done.checked, 5u);
  EXPECT_EQ(done.filtered, 3u);
  EXPECT_EQ(done.refused_before_send, 0u);
  EXPECT_EQ(done.sent, 2u);
  EXPECT_EQ(backend_.AllAccepted(), (std::vector<std::string>{"/a", "/b"}));
}

TEST_F(ReplayTest, OneReplayPerExporterAndCancelStopsIt) {
  backend_.down = true;  // every send is retried: the replay keeps running
  const uint64_t from = Append({"/x0", "/x1"});
  const uint64_t to = from + 60'000'000'000ull;
  ASSERT_TRUE(
      manager_->Start({.exporter = "loki-main", .from_unix_nano = from, .to_unix_nano = to}).ok());
  ASSERT_TRUE(
      testing::WaitFor([&] { return manager_->List().back().state == "sending"; }, seconds(10)));
  auto second =
      manager_->Start({.exporter = "loki-main", .from_unix_nano = from, .to_unix_nano = to});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(manager_->Cancel("loki-main").ok());
  const ReplayStatus cancelled = WaitFinished();
  EXPECT_EQ(cancelled.state, "cancelled");
  EXPECT_EQ(cancelled.sent, 0u);
  EXPECT_EQ(manager_->Cancel("loki-main").code(), absl::StatusCode::kNotFound);
  // Bad requests are refused before anything runs.
  EXPECT_EQ(manager_->Start({.exporter = "nobody", .from_unix_nano = 1, .to_unix_nano = 2})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Start({.exporter = "loki-main", .from_unix_nano = 5, .to_unix_nano = 5})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshtel::collector
