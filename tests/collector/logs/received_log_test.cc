#include "collector/logs/received_log.h"

#include <string>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

meshtel::v1::LogEntry Entry(int32_t number, const std::string& text) {
  meshtel::v1::LogEntry entry;
  entry.set_severity_number(number);
  entry.set_severity_text(text);
  return entry;
}

TEST(ReceivedLogTest, SeverityLevelFollowsTheNumberThenTheText) {
  EXPECT_EQ(SeverityLevel(Entry(1, "")), "trace");
  EXPECT_EQ(SeverityLevel(Entry(5, "")), "debug");
  EXPECT_EQ(SeverityLevel(Entry(9, "")), "info");
  EXPECT_EQ(SeverityLevel(Entry(12, "")), "info");
  EXPECT_EQ(SeverityLevel(Entry(13, "")), "warn");
  EXPECT_EQ(SeverityLevel(Entry(17, "whatever")), "error");  // the number wins
  EXPECT_EQ(SeverityLevel(Entry(24, "")), "fatal");
  EXPECT_EQ(SeverityLevel(Entry(0, "WARNING")), "warn");
  EXPECT_EQ(SeverityLevel(Entry(0, "Err")), "error");
  EXPECT_EQ(SeverityLevel(Entry(0, "critical")), "fatal");
  EXPECT_EQ(SeverityLevel(Entry(0, "")), "unknown");
  EXPECT_EQ(SeverityLevel(Entry(25, "noisy")), "unknown");
}

TEST(ReceivedLogTest, AttributeTextIsTheValueAsLokiShowsIt) {
  meshtel::v1::SpanAttribute attribute;
  attribute.set_string_value("a b");
  EXPECT_EQ(AttributeText(attribute), "a b");
  attribute.set_bool_value(true);
  EXPECT_EQ(AttributeText(attribute), "true");
  attribute.set_int_value(-42);
  EXPECT_EQ(AttributeText(attribute), "-42");
  attribute.set_double_value(0.25);
  EXPECT_EQ(AttributeText(attribute), "0.25");
  attribute.clear_value();
  EXPECT_EQ(AttributeText(attribute), "");
}

TEST(ReceivedLogTest, TimeIsTheEventsElseWhenObservedElseTheFallback) {
  meshtel::v1::LogEntry entry;
  EXPECT_EQ(LogEntryTimeNanos(entry, 7), 7u);
  entry.set_observed_time_unix_nano(20);
  EXPECT_EQ(LogEntryTimeNanos(entry, 7), 20u);
  entry.set_time_unix_nano(10);
  EXPECT_EQ(LogEntryTimeNanos(entry, 7), 10u);
}

TEST(ReceivedLogTest, SummariesAreOneReadableLine) {
  meshtel::v1::LogEntry entry = Entry(17, "");
  entry.set_time_unix_nano(1'755'000'000'123'456'789ull);
  entry.set_service_name("checkout");
  entry.set_body("payment declined");
  entry.set_trace_id(std::string(15, '\0') + "\x01");
  EXPECT_EQ(ReceivedLogSummary(entry),
            "2025-08-12T12:00:00.123456789Z error checkout: payment declined "
            "trace_id=00000000000000000000000000000001");
  entry.set_severity_text("E");
  entry.clear_service_name();
  entry.clear_trace_id();
  entry.set_span_id(std::string(8, '\x0a'));
  EXPECT_EQ(ReceivedLogSummary(entry),
            "2025-08-12T12:00:00.123456789Z E -: payment declined span_id=0a0a0a0a0a0a0a0a");

  meshtel::v1::Span span;
  span.set_trace_id(std::string(16, '\x11'));
  span.set_span_id(std::string(8, '\x22'));
  span.set_parent_span_id(std::string(8, '\x33'));
  span.set_service_name("cart");
  span.set_name("GET /cart");
  span.set_kind(meshtel::v1::SPAN_KIND_SERVER);
  span.set_start_time_unix_nano(1'000'000);
  span.set_end_time_unix_nano(13'345'000);
  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  EXPECT_EQ(SpanSummary(span),
            "span 11111111111111111111111111111111/2222222222222222 parent=3333333333333333 "
            "cart \"GET /cart\" server 12.345ms status=ERROR");
}

}  // namespace
}  // namespace meshtel::collector
