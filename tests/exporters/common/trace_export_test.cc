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

TEST(SpanResourceKeyTest, SameResourceSameKey) {
  const meshtel::v1::Span web =
      SampleSpan("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "", "web");
  std::string a;
  std::string b;
  SpanResourceKey(web, a);
  meshtel::v1::Span other_span = web;  // span fields do not matter
  other_span.set_name("other");
  other_span.clear_attributes();
  SpanResourceKey(other_span, b);
  EXPECT_EQ(a, b);

  meshtel::v1::Span other_service = web;
  other_service.set_service_name("cart");
  SpanResourceKey(other_service, b);
  EXPECT_NE(a, b);
  meshtel::v1::Span other_value = web;
  other_value.mutable_resource_attributes(0)->set_string_value("other-ns");
  SpanResourceKey(other_value, b);
  EXPECT_NE(a, b);
  meshtel::v1::Span other_type = web;
  other_type.mutable_resource_attributes(0)->set_int_value(0);
  SpanResourceKey(other_type, b);
  EXPECT_NE(a, b);
  // A name or value cannot run into the next: "ab"+"c" differs from "a"+"bc".
  meshtel::v1::Span split1;
  testing::AddString(*split1.mutable_resource_attributes(), "ab", "c");
  meshtel::v1::Span split2;
  testing::AddString(*split2.mutable_resource_attributes(), "a", "bc");
  SpanResourceKey(split1, a);
  SpanResourceKey(split2, b);
  EXPECT_NE(a, b);
  // service.name in the resource is the service, not an attribute of the key twice.
  meshtel::v1::Span by_resource;
  testing::AddString(*by_resource.mutable_resource_attributes(), "service.name", "web");
  meshtel::v1::Span by_field;
  by_field.set_service_name("web");
  SpanResourceKey(by_resource, a);
  SpanResourceKey(by_field, b);
  EXPECT_EQ(a, b);
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
