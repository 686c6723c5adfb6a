#include "proxy/reporter/record_queue.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

QueuedRecord Numbered(uint64_t number) {
  meshtel::v1::RequestRecord record;
  record.set_duration_ns(number);
  record.set_path("/item");
  QueuedRecord queued;
  queued.Encode(record);
  return queued;
}

uint64_t NumberOf(const QueuedRecord& queued) {
  meshtel::v1::RequestRecord record;
  EXPECT_TRUE(record.ParseFromString(queued.bytes));
  return record.duration_ns();
}

TEST(QueuedRecordTest, EncodesTheRecordAndItsRoutingFacts) {
  meshtel::v1::RequestRecord record;
  record.set_path("/a");
  record.set_trace_id(std::string(16, '\x7f'));
  record.set_sampled(true);
  QueuedRecord queued;
  queued.Encode(record);
  EXPECT_EQ(queued.bytes, record.SerializeAsString());
  EXPECT_EQ(queued.TraceId(), record.trace_id());
  EXPECT_TRUE(queued.sampled);
  // Encoding again reuses the object: nothing of the first record is left.
  queued.Encode(meshtel::v1::RequestRecord());
  EXPECT_EQ(queued.bytes, "");
  EXPECT_EQ(queued.TraceId(), "");
  EXPECT_FALSE(queued.sampled);
}

TEST(RecordQueueTest, FirstInFirstOutUpToCapacity) {
  RecordQueue queue(3);  // rounded up to 4
  EXPECT_EQ(queue.capacity(), 4u);
  for (uint64_t i = 1; i <= 4; ++i) EXPECT_TRUE(queue.TryPush(Numbered(i)));
  QueuedRecord refused = Numbered(5);
  EXPECT_FALSE(queue.TryPush(std::move(refused)));
  EXPECT_EQ(NumberOf(refused), 5u);  // a refused record is left as it was
  EXPECT_EQ(queue.ApproximateSize(), 4u);
  QueuedRecord out;
  for (uint64_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(queue.TryPop(out));
    EXPECT_EQ(NumberOf(out), i);
  }
  EXPECT_FALSE(queue.TryPop(out));
  // The ring wraps around.
  for (uint64_t round = 0; round < 10; ++round) {
    EXPECT_TRUE(queue.TryPush(Numbered(round)));
    ASSERT_TRUE(queue.TryPop(out));
    EXPECT_EQ(NumberOf(out), round);
  }
}

// Four producers and a consumer at full speed: every record arrives exactly once, and each
// producer's records in the order it pushed them.
TEST(RecordQueueTest, ConcurrentProducersLoseAndDuplicateNothing) {
  constexpr uint64_t kProducers = 4;
  constexpr uint64_t kPerProducer = 50000;
  RecordQueue queue(1024);
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> producers;
  for (uint64_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        QueuedRecord record = Numbered(p * kPerProducer + i);
        while (!queue.TryPush(std::move(record))) {
          refused.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
      }
    });
  }
  std::vector<uint64_t> next(kProducers, 0);
  std::vector<bool> seen(kProducers * kPerProducer, false);
  uint64_t received = 0;
  QueuedRecord out;
  while (received < kProducers * kPerProducer) {
    if (!queue.TryPop(out)) {
      std::this_thread::yield();
      continue;
    }
    const uint64_t number = NumberOf(out);
    ASSERT_LT(number, seen.size());
    ASSERT_FALSE(seen[number]) << number << " arrived twice";
    seen[number] = true;
    const uint64_t producer = number / kPerProducer;
    ASSERT_EQ(number % kPerProducer, next[producer]) << "out of order";
    ++next[producer];
    ++received;
  }
  for (auto& producer : producers) producer.join();
  EXPECT_FALSE(queue.TryPop(out));
  EXPECT_EQ(received, kProducers * kPerProducer);
}

}  // namespace
}  // namespace meshtel::proxy
