#include "collector/traces/trace_assembler.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

// A span of trace `trace` (16 such bytes) as the assembler holds it: its summary.
struct Span {
  std::string trace_id;
  SpanSummary summary;
};

Span MakeSpan(char trace, char id, char parent, uint64_t start = 100, uint64_t end = 200) {
  Span span;
  span.trace_id = std::string(16, trace);
  span.summary.span_id = SpanIdValue(std::string(8, id));
  if (parent != 0) span.summary.parent_span_id = SpanIdValue(std::string(8, parent));
  span.summary.start_time_unix_nano = start;
  span.summary.end_time_unix_nano = end;
  return span;
}

class TraceAssemblerTest : public ::testing::Test {
 protected:
  TraceAssemblyConfig Config() {
    TraceAssemblyConfig config;
    config.idle_timeout = absl::Seconds(1);
    config.max_wait = absl::Seconds(10);
    return config;
  }
  std::vector<AssembledTrace> Take(TraceAssembler& assembler, absl::Time now) {
    std::vector<AssembledTrace> out;
    assembler.TakeDecided(now, out);
    return out;
  }
  // Adds the spans of one record stored at `key` (the record's bytes name the key).
  void Add(TraceAssembler& assembler, const StoreKey& key, const std::vector<Span>& spans,
           bool head_sampled, absl::Time now) {
    std::vector<SpanSummary> summaries;
    for (const Span& span : spans) summaries.push_back(span.summary);
    assembler.Add(spans.front().trace_id, summaries,
                  TraceRecord{.key = key, .bytes = key.ToString()}, head_sampled, now);
  }
  uint64_t key_ = 0;
  StoreKey NextKey() { return StoreKey{1000, ++key_}; }
  prometheus::Registry registry_;
};

TEST_F(TraceAssemblerTest, ATraceIsDecidedOnceItsRootArrivedAndItWentIdle) {
  TraceAssembler assembler(Config(), registry_);
  Add(assembler, NextKey(), {MakeSpan('a', '2', '1')}, false, kStart);
  // No root yet: idle does not decide it.
  EXPECT_TRUE(Take(assembler, kStart + absl::Seconds(2)).empty());
  Add(assembler, NextKey(), {MakeSpan('a', '1', 0)}, true, kStart + absl::Seconds(2));
  EXPECT_TRUE(Take(assembler, kStart + absl::Milliseconds(2500)).empty());
  std::vector<AssembledTrace> decided = Take(assembler, kStart + absl::Seconds(3));
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].spans.size(), 2u);
  // Each span's record comes with the trace, in arrival order.
  ASSERT_EQ(decided[0].records.size(), 2u);
  EXPECT_EQ(decided[0].records[0].key, (StoreKey{1000, 1}));
  EXPECT_EQ(decided[0].records[1].bytes, (StoreKey{1000, 2}.ToString()));
  EXPECT_EQ(decided[0].spans[0].record, 0u);
  EXPECT_EQ(decided[0].spans[1].record, 1u);
  EXPECT_TRUE(decided[0].head_sampled);
  EXPECT_EQ(decided[0].decided_by, TraceDecidedBy::kRootIdle);
  EXPECT_EQ(decided[0].spans[0].anomalies, 0u);
  EXPECT_EQ(assembler.traces_in_flight(), 0u);
  EXPECT_EQ(assembler.spans_in_flight(), 0u);
}

TEST_F(TraceAssemblerTest, EachTraceWaitsForItsOwnIdleTime) {
  TraceAssembler assembler(Config(), registry_);
  Add(assembler, NextKey(), {MakeSpan('a', '1', 0)}, false, kStart);
  Add(assembler, NextKey(), {MakeSpan('b', '1', 0)}, false, kStart + absl::Milliseconds(500));
  // 'a' keeps getting spans, 'b' does not.
  Add(assembler, NextKey(), {MakeSpan('a', '2', '1')}, false, kStart + absl::Milliseconds(900));
  std::vector<AssembledTrace> decided = Take(assembler, kStart + absl::Milliseconds(1600));
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].trace_id, std::string(16, 'b'));
  decided = Take(assembler, kStart + absl::Milliseconds(1900));
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].trace_id, std::string(16, 'a'));
}

TEST_F(TraceAssemblerTest, ARootlessTraceIsDecidedAtMaxWaitWithItsTopSpansMarkedOrphans) {
  TraceAssembler assembler(Config(), registry_);
  Add(assembler, NextKey(), {MakeSpan('a', '2', '1'), MakeSpan('a', '3', '2')}, false, kStart);
  EXPECT_TRUE(Take(assembler, kStart + absl::Seconds(5)).empty());
  // A span arriving after the trace was parked brings it back to the idle list.
  Add(assembler, NextKey(), {MakeSpan('a', '4', '2')}, false, kStart + absl::Seconds(6));
  EXPECT_TRUE(Take(assembler, kStart + absl::Seconds(8)).empty());
  std::vector<AssembledTrace> decided = Take(assembler, kStart + absl::Seconds(10));
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].decided_by, TraceDecidedBy::kMaxWait);
  const auto orphan = 1u << meshtel::v1::SPAN_ANOMALY_ORPHAN;
  EXPECT_EQ(decided[0].spans[0].anomalies, orphan);  // its parent '1' never came
  EXPECT_EQ(decided[0].spans[1].anomalies, 0u);
  EXPECT_EQ(decided[0].spans[2].anomalies, 0u);
}

// A decided trace's object is kept for a later trace: the new one starts with nothing of the old
// (no root, not head-sampled, no spans or records), in both lists' order.
TEST_F(TraceAssemblerTest, ANewTraceStartsCleanInTheObjectOfADecidedOne) {
  TraceAssembler assembler(Config(), registry_);
  Add(assembler, NextKey(), {MakeSpan('a', '1', 0), MakeSpan('a', '2', '1')}, true, kStart);
  ASSERT_EQ(Take(assembler, kStart + absl::Seconds(2)).size(), 1u);
  Add(assembler, NextKey(), {MakeSpan('b', '2', '1')}, false, kStart + absl::Seconds(3));
  Add(assembler, NextKey(), {MakeSpan('c', '1', 0)}, false, kStart + absl::Seconds(3));
  std::vector<AssembledTrace> decided = Take(assembler, kStart + absl::Seconds(5));
  ASSERT_EQ(decided.size(), 1u);  // 'c'; 'b' has no root
  EXPECT_EQ(decided[0].trace_id, std::string(16, 'c'));
  EXPECT_FALSE(decided[0].head_sampled);
  decided = Take(assembler, kStart + absl::Seconds(13));
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].trace_id, std::string(16, 'b'));
  EXPECT_EQ(decided[0].decided_by, TraceDecidedBy::kMaxWait);
  EXPECT_FALSE(decided[0].head_sampled);
  EXPECT_EQ(decided[0].spans.size(), 1u);
  ASSERT_EQ(decided[0].records.size(), 1u);
  EXPECT_EQ(decided[0].records[0].key, (StoreKey{1000, 2}));
  EXPECT_EQ(assembler.traces_in_flight(), 0u);
  EXPECT_EQ(assembler.spans_in_flight(), 0u);
  EXPECT_FALSE(assembler.OldestPendingKey().has_value());
}

TEST_F(TraceAssemblerTest, BadSpansAreKeptAndMarked) {
  TraceAssembler assembler(Config(), registry_);
  Add(assembler, NextKey(),
      {MakeSpan('a', '1', 0), MakeSpan('a', '2', '1', 500, 400), MakeSpan('a', '2', '1')}, false,
      kStart);
  std::vector<AssembledTrace> decided = Take(assembler, kStart + absl::Seconds(1));
  ASSERT_EQ(decided.size(), 1u);
  ASSERT_EQ(decided[0].spans.size(), 3u);
  EXPECT_EQ(decided[0].spans[1].anomalies, 1u << meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START);
  EXPECT_EQ(decided[0].spans[2].anomalies, 1u << meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID);
}

TEST_F(TraceAssemblerTest, ChildrenAreFittedIntoTheirParentsWindowParentsFirst) {
  TraceAssembler assembler(Config(), registry_);
  // root [100, 1000]; client [200, 900]; server [300, 950] ends after its client parent; the
  // server's phase [900, 950] must then fit the fitted server.
  Add(assembler, NextKey(),
      {MakeSpan('a', '1', 0, 100, 1000), MakeSpan('a', '3', '2', 300, 950),
       MakeSpan('a', '4', '3', 900, 950), MakeSpan('a', '2', '1', 200, 900)},
      false, kStart);
  std::vector<AssembledTrace> decided = Take(assembler, kStart + absl::Seconds(1));
  ASSERT_EQ(decided.size(), 1u);
  const std::vector<SpanSummary>& spans = decided[0].spans;
  EXPECT_EQ(spans[0].end_time_unix_nano, 1000u);  // the root is untouched
  EXPECT_EQ(spans[3].end_time_unix_nano, 900u);   // the client is inside the root already
  EXPECT_EQ(spans[1].start_time_unix_nano, 300u);
  EXPECT_EQ(spans[1].end_time_unix_nano, 900u);
  EXPECT_EQ(spans[2].start_time_unix_nano, 900u);
  EXPECT_EQ(spans[2].end_time_unix_nano, 900u);
  // The fitted spans, in the order fitted (each gets meshtel.fitted_to_parent_ns when built):
  // the server (trimmed 50), then its phase (trimmed 50); the client is not fitted.
  ASSERT_EQ(decided[0].fits.size(), 2u);
  EXPECT_EQ(decided[0].fits[0].span, 1u);
  EXPECT_EQ(decided[0].fits[0].trimmed_ns, 50u);
  EXPECT_EQ(decided[0].fits[1].span, 2u);
  EXPECT_EQ(decided[0].fits[1].trimmed_ns, 50u);
}

TEST_F(TraceAssemblerTest, TheMemoryBoundDecidesTheOldestTracesEarly) {
  TraceAssemblyConfig config = Config();
  config.max_traces = 2;
  config.max_spans = 100;
  TraceAssembler assembler(config, registry_);
  Add(assembler, NextKey(), {MakeSpan('a', '1', 0)}, false, kStart);
  Add(assembler, NextKey(), {MakeSpan('b', '1', 0)}, false, kStart);
  Add(assembler, NextKey(), {MakeSpan('c', '1', 0)}, false, kStart);
  EXPECT_EQ(assembler.traces_in_flight(), 2u);
  std::vector<AssembledTrace> decided = Take(assembler, kStart);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].trace_id, std::string(16, 'a'));
  EXPECT_EQ(decided[0].decided_by, TraceDecidedBy::kEvicted);
  EXPECT_EQ(decided[0].spans[0].anomalies, 1u << meshtel::v1::SPAN_ANOMALY_TRACE_EVICTED);

  config.max_traces = 100;
  config.max_spans = 3;
  TraceAssembler by_spans(config, registry_);
  Add(by_spans, NextKey(), {MakeSpan('a', '1', 0), MakeSpan('a', '2', '1')}, false, kStart);
  Add(by_spans, NextKey(), {MakeSpan('b', '1', 0), MakeSpan('b', '2', '1')}, false, kStart);
  EXPECT_EQ(by_spans.spans_in_flight(), 2u);
  decided = Take(by_spans, kStart);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].trace_id, std::string(16, 'a'));
}

TEST_F(TraceAssemblerTest, OldestPendingKeyIsTheFirstRecordOfTheOldestUndecidedTrace) {
  TraceAssembler assembler(Config(), registry_);
  EXPECT_FALSE(assembler.OldestPendingKey().has_value());
  const StoreKey a = NextKey();
  Add(assembler, a, {MakeSpan('a', '1', 0)}, false, kStart);
  const StoreKey b = NextKey();
  Add(assembler, b, {MakeSpan('b', '2', '1')}, false, kStart + absl::Milliseconds(500));
  Add(assembler, NextKey(), {MakeSpan('a', '2', '1')}, false, kStart + absl::Milliseconds(600));
  EXPECT_EQ(*assembler.OldestPendingKey(), a);
  Take(assembler, kStart + absl::Milliseconds(1700));  // 'a' decided; 'b' has no root
  EXPECT_EQ(*assembler.OldestPendingKey(), b);
}

}  // namespace
}  // namespace meshtel::collector
