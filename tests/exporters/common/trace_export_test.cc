#include "exporters/common/trace_export.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/span_samples.h"

namespace meshtel::exporters {
namespace {

using testing::SampleSpan;
using testing::StoredSpan;
using testing::Unhex;

TEST(CheckExportableSpanTest, IdsAndFamily) {
  const collector::StoredRecord good =
      StoredSpan(SampleSpan("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "", "web"));
  EXPECT_TRUE(CheckExportableSpan(good).ok());
  collector::StoredRecord child = good;
  child.span.set_parent_span_id(Unhex("b7ad6b7169203331"));
  EXPECT_TRUE(CheckExportableSpan(child).ok());

  collector::StoredRecord bad = good;
  bad.span.set_trace_id(std::string(16, '\0'));
  EXPECT_EQ(CheckExportableSpan(bad).message(),
            "trace id of 16 bytes is not 16 bytes, not all zero");
  bad = good;
  bad.span.set_span_id(Unhex("00f067aa0ba9"));
  EXPECT_EQ(CheckExportableSpan(bad).message(), "span id of 6 bytes is not 8 bytes, not all zero");
  bad = good;
  bad.span.set_parent_span_id("x");
  EXPECT_EQ(CheckExportableSpan(bad).message(), "parent span id of 1 bytes is not 8 bytes");
  bad = good;
  bad.family = collector::RecordFamily::kLogs;
  EXPECT_EQ(CheckExportableSpan(bad).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SpanAnomalyTextTest, NamesInBitOrder) {
  EXPECT_EQ(SpanAnomalyText(0), "");
  EXPECT_EQ(SpanAnomalyText(1u << meshtel::v1::SPAN_ANOMALY_ORPHAN), "orphan");
  EXPECT_EQ(SpanAnomalyText(0xF), "ends_before_start,duplicate_span_id,orphan,trace_evicted");
  EXPECT_EQ(SpanAnomalyText((1u << 9) | 2), "duplicate_span_id,bit9");
}

TEST(SpanServiceNameTest, SpanThenResourceThenUnknown) {
  meshtel::v1::Span span;
  EXPECT_EQ(SpanServiceName(span), "unknown_service");
  testing::AddString(*span.mutable_resource_attributes(), "service.name", "from-resource");
  EXPECT_EQ(SpanServiceName(span), "from-resource");
  span.set_service_name("own");
  EXPECT_EQ(SpanServiceName(span), "own");
}

TEST(CheckHeadersTest, HttpAndGrpcRules) {
  std::vector<std::pair<std::string, std::string>> http = {{"X-Scope-OrgID", "a"}};
  EXPECT_TRUE(CheckHeaders(http, "p.headers", false).ok());
  EXPECT_EQ(http[0].first, "X-Scope-OrgID");
  std::vector<std::pair<std::string, std::string>> grpc = http;
  EXPECT_TRUE(CheckHeaders(grpc, "p.headers", true).ok());
  EXPECT_EQ(grpc[0].first, "x-scope-orgid");

  std::vector<std::pair<std::string, std::string>> bad = {{"a b", "x"}};
  EXPECT_EQ(CheckHeaders(bad, "p.headers", false).message(),
            "p.headers.a b: 'a b' is not a valid header name");
  bad = {{"x", "a\r\nb"}};
  EXPECT_EQ(CheckHeaders(bad, "p.headers", false).message(),
            "p.headers.x: the value holds CR, LF or NUL");
  bad = {{"grpc-timeout", "1S"}};
  EXPECT_FALSE(CheckHeaders(bad, "p.headers", true).ok());
  EXPECT_TRUE(CheckHeaders(bad, "p.headers", false).ok());
  bad = {{"trace-bin", "x"}};
  EXPECT_FALSE(CheckHeaders(bad, "p.headers", true).ok());
  bad = {{"", "x"}};
  EXPECT_FALSE(CheckHeaders(bad, "p.headers", false).ok());
}

}  // namespace
}  // namespace meshtel::exporters
