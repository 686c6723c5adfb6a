#include "collector/store/serialized_spans.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

const std::string kTraceId(16, '\x4b');
const std::string kSpanId(8, '\x07');

TEST(SerializedSpansTest, SpansAddedAsBytesOrMessagesKeepTheirIds) {
  SerializedSpans spans;
  EXPECT_TRUE(spans.empty());
  spans.Begin(kTraceId, kSpanId).append("first");
  meshtel::v1::Span message;
  message.set_trace_id(std::string(16, '\x01'));
  message.set_span_id(std::string(8, '\x02'));
  message.set_name("second");
  spans.Add(message);
  std::string& third = spans.Begin(kTraceId, std::string(8, '\x03'));
  third.append("thi");
  third.append("rd");
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans.bytes(0), "first");
  EXPECT_EQ(spans.bytes(1), message.SerializeAsString());
  EXPECT_EQ(spans.bytes(2), "third");
  EXPECT_EQ(spans.total_bytes(), 5 + message.ByteSizeLong() + 5);
  EXPECT_EQ(spans.trace_id(0), kTraceId);
  EXPECT_EQ(spans.span_id(0), kSpanId);
  EXPECT_EQ(spans.trace_id(1), message.trace_id());
  EXPECT_EQ(spans.span_id(1), message.span_id());
  EXPECT_EQ(spans.span_id(2), std::string(8, '\x03'));
}

TEST(SerializedSpansTest, IdsOfAnotherSizeAreNotKept) {
  SerializedSpans spans;
  spans.Begin("short", kSpanId).append("a");
  spans.Begin(kTraceId, "").append("b");
  EXPECT_TRUE(spans.trace_id(0).empty());
  EXPECT_TRUE(spans.span_id(0).empty());
  EXPECT_TRUE(spans.trace_id(1).empty());
  EXPECT_EQ(spans.bytes(1), "b");
}

TEST(SerializedSpansTest, TruncateDropsTheLaterSpansAndTheirBytes) {
  SerializedSpans spans;
  spans.Begin(kTraceId, kSpanId).append("one");
  spans.Begin(kTraceId, kSpanId).append("two");
  spans.Begin(kTraceId, kSpanId).append("three");
  spans.Truncate(5);  // beyond the end: nothing
  EXPECT_EQ(spans.size(), 3u);
  spans.Truncate(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans.bytes(0), "one");
  spans.Begin(kTraceId, kSpanId).append("four");
  EXPECT_EQ(spans.bytes(1), "four");
  EXPECT_EQ(spans.total_bytes(), 7u);
  spans.clear();
  EXPECT_TRUE(spans.empty());
  EXPECT_EQ(spans.total_bytes(), 0u);
}

}  // namespace
}  // namespace meshtel::collector
