#include "collector/traces/trace_pipeline.h"

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEnd{~uint64_t{0}, ~uint64_t{0}};

// One hop of trace `trace`: span `span` whose parent is `parent` (0 = a root).
meshtel::v1::RequestRecord Hop(char trace, char span, char parent, uint32_t code = 200,
                               bool sampled = true) {
  meshtel::v1::RequestRecord record;
  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  record.set_start_time_unix_nano(1'700'000'000'000'000'000ull);
  record.set_duration_ns(1'000'000);
  record.set_method("GET");
  record.set_authority("backend:8080");
  record.set_path("/");
  record.set_response_code(code);
  record.set_trace_id(std::string(16, trace));
  record.set_span_id(std::string(8, span));
  if (parent != 0) record.set_parent_span_id(std::string(8, parent));
  record.set_sampled(sampled);
  return record;
}

class TracePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("traces");
    config_.assembly.idle_timeout = absl::Milliseconds(200);
    config_.assembly.max_wait = absl::Seconds(60);
    config_.sampling.keep_head_sampled = true;
    OpenStore();
  }
  void OpenStore() {
    StoreConfig store_config;
    store_config.data_dir = dir_;
    store_config.durability = "process";
    registries_.push_back(std::make_unique<prometheus::Registry>());
    absl::StatusOr<std::unique_ptr<RecordStore>> store =
        RecordStore::Open(store_config, *registries_.back());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void Append(std::vector<meshtel::v1::RequestRecord> records) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("proxy-1");
    batch.set_sequence(++sequence_);
    for (auto& record : records) *batch.add_records() = std::move(record);
    ASSERT_TRUE(store_->AppendBatch(batch, InstanceProgress{sequence_, 0}).ok());
  }
  std::unique_ptr<TracePipeline> StartPipeline() {
    registries_.push_back(std::make_unique<prometheus::Registry>());
    auto pipeline = std::make_unique<TracePipeline>(config_, *store_, *registries_.back());
    EXPECT_TRUE(pipeline->Start().ok());
    return pipeline;
  }
  std::vector<StoredRecord> StoredSpans() {
    absl::StatusOr<std::vector<StoredRecord>> spans =
        store_->Read(RecordFamily::kSpans, StoreKey{}, kEnd, 100000);
    EXPECT_TRUE(spans.ok());
    return spans.ok() ? *std::move(spans) : std::vector<StoredRecord>{};
  }
  // Waits until `count` spans are stored (the test fails after 30 s).
  std::vector<StoredRecord> WaitForSpans(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::vector<StoredRecord> spans = StoredSpans();
    while (spans.size() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      spans = StoredSpans();
    }
    EXPECT_EQ(spans.size(), count);
    return spans;
  }

  std::string dir_;
  TracesConfig config_;
  std::vector<std::unique_ptr<prometheus::Registry>> registries_;
  std::unique_ptr<RecordStore> store_;
  uint64_t sequence_ = 0;
};

TEST_F(TracePipelineTest, StoredRecordsBecomeStoredTracesThatCanBeLookedUp) {
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  Append({Hop('a', '2', '1'), Hop('b', '1', 0, 200, /*sampled=*/false)});
  Append({Hop('a', '1', 0)});
  // 'b' is neither sampled nor an error: dropped. 'a' is kept whole.
  std::vector<StoredRecord> spans = WaitForSpans(2);
  for (const StoredRecord& stored : spans) EXPECT_EQ(stored.span.trace_id(), std::string(16, 'a'));
  absl::StatusOr<std::vector<StoredRecord>> trace = store_->ReadTrace(std::string(16, 'a'));
  ASSERT_TRUE(trace.ok());
  EXPECT_EQ(trace->size(), 2u);
  EXPECT_TRUE(store_->ReadTrace(std::string(16, 'b'))->empty());
  pipeline->Stop();
  // Everything is decided: the cursor is past every record.
  absl::StatusOr<std::vector<StoredRecord>> after =
      store_->Read(RecordFamily::kLogs, *store_->LoadCursor(TracePipeline::kReaderName), kEnd, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

TEST_F(TracePipelineTest, AnErrorTraceIsKeptEvenWhenNotSampled) {
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  Append({Hop('e', '2', '1', 503, false), Hop('e', '1', 0, 503, false)});
  std::vector<StoredRecord> spans = WaitForSpans(2);
  EXPECT_EQ(spans[0].span.status_code(), meshtel::v1::SPAN_STATUS_CODE_ERROR);
}

TEST_F(TracePipelineTest, ARestartLosesNoPendingTraceAndWritesNoKeptSpanTwice) {
  {
    std::unique_ptr<TracePipeline> pipeline = StartPipeline();
    Append({Hop('p', '2', '1')});  // pending: its root comes after the restart
    Append({Hop('a', '2', '1'), Hop('a', '1', 0)});
    WaitForSpans(2);  // 'a' decided and written while 'p' waits
    pipeline->Stop();
  }
  ASSERT_TRUE(store_->Close().ok());
  store_.reset();
  OpenStore();
  Append({Hop('p', '1', 0)});
  std::unique_ptr<TracePipeline> pipeline = StartPipeline();
  std::vector<StoredRecord> spans = WaitForSpans(4);
  std::map<std::string, int> per_trace;
  for (const StoredRecord& stored : spans) ++per_trace[stored.span.trace_id()];
  EXPECT_EQ(per_trace[std::string(16, 'a')], 2);
  EXPECT_EQ(per_trace[std::string(16, 'p')], 2);
  // Give a duplicate the time to appear if the pipeline were to write one.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(StoredSpans().size(), 4u);
}

}  // namespace
}  // namespace meshtel::collector
