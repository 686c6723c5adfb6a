#include "proxy/reporter/record_queue.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

meshtel::v1::RequestRecord Numbered(uint64_t number) {
  meshtel::v1::RequestRecord record;
  record.set_duration_ns(number);
  record.set_path("/item");
  return record;
}

TEST(RecordQueueTest, FirstInFirstOutUpToCapacity) {
  RecordQueue queue(3);  // rounded up to 4
  EXPECT_EQ(queue.capacity(), 4u);
  for (uint64_t i = 1; i <= 4; ++i) EXPECT_TRUE(queue.TryPush(Numbered(i)));
  meshtel::v1::RequestRecord refused = Numbered(5);
  EXPECT_FALSE(queue.TryPush(std::move(refused)));
  EXPECT_EQ(refused.duration_ns(), 5u);  // a refused record is left as it was
  EXPECT_EQ(queue.ApproximateSize(), 4u);
  meshtel::v1::RequestRecord out;
  for (uint64_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(queue.TryPop(out));
    EXPECT_EQ(out.duration_ns(), i);
    EXPECT_EQ(out.path(), "/item");
  }
  EXPECT_FALSE(queue.TryPop(out));
  // The ring wraps around.
  for (uint64_t round = 0; round < 10; ++round) {
    EXPECT_TRUE(queue.TryPush(Numbered(round)));
    ASSERT_TRUE(queue.TryPop(out));
    EXPECT_EQ(out.duration_ns(), round);
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
        meshtel::v1::RequestRecord record = Numbered(p * kPerProducer + i);
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
  meshtel::v1::RequestRecord out;
  while (received < kProducers * kPerProducer) {
    if (!queue.TryPop(out)) {
      std::this_thread::yield();
      continue;
    }
    const uint64_t number = out.duration_ns();
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
