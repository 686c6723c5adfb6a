#include "collector/traces/trace_json.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

StoredRecord Stored(const std::string& service, char id, char parent, const std::string& name) {
  StoredRecord stored;
  stored.family = RecordFamily::kSpans;
  meshtel::v1::Span& span = stored.span;
  span.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  span.set_span_id(std::string(7, '\0') + std::string(1, id));
  if (parent != 0) span.set_parent_span_id(std::string(7, '\0') + std::string(1, parent));
  span.set_name(name);
  span.set_kind(meshtel::v1::SPAN_KIND_SERVER);
  span.set_start_time_unix_nano(1755000000000000000ull);
  span.set_end_time_unix_nano(1755000000012000000ull);
  span.set_service_name(service);
  span.set_scope_name("meshtel-proxy");
  span.set_scope_version("0.1.0");
  auto* attribute = span.add_attributes();
  attribute->set_key("http.status_code");
  attribute->set_string_value("200");
  attribute = span.add_attributes();
  attribute->set_key("http.response.status_code");
  attribute->set_int_value(200);
  attribute = span.add_attributes();
  attribute->set_key("error");
  attribute->set_bool_value(true);
  return stored;
}

TEST(TraceJsonTest, RendersOtlpJsonWithHexIdsGroupedByResource) {
  std::vector<StoredRecord> spans = {Stored("frontend.demo", 1, 0, "GET \"/\""),
                                     Stored("backend.demo", 2, 1, "b"),
                                     Stored("frontend.demo", 3, 1, "c")};
  spans[2].span.set_anomalies(1u << meshtel::v1::SPAN_ANOMALY_ORPHAN);
  spans[1].span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  spans[1].span.set_status_message("HTTP 503");
  const std::string json = TraceToOtlpJson(spans);
  EXPECT_EQ(
      json.find("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
                "\"value\":{\"stringValue\":\"frontend.demo\"}}]},\"scopeSpans\":[{\"scope\":"
                "{\"name\":\"meshtel-proxy\",\"version\":\"0.1.0\"},\"spans\":[{\"traceId\":"
                "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"0000000000000001\","),
      0u)
      << json;
  EXPECT_NE(json.find("\"name\":\"GET \\\"/\\\"\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"parentSpanId\":\"0000000000000001\""), std::string::npos);
  EXPECT_NE(json.find("\"kind\":2"), std::string::npos);
  EXPECT_NE(json.find("\"startTimeUnixNano\":\"1755000000000000000\""), std::string::npos);
  EXPECT_NE(json.find("{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}}"),
            std::string::npos);
  EXPECT_NE(json.find("{\"key\":\"error\",\"value\":{\"boolValue\":true}}"), std::string::npos);
  EXPECT_NE(json.find("\"status\":{\"code\":2,\"message\":\"HTTP 503\"}"), std::string::npos);
  EXPECT_NE(json.find("{\"key\":\"meshtel.anomalies\",\"value\":{\"stringValue\":\"orphan\"}}"),
            std::string::npos);
  // Two resources: frontend's two spans together, then backend's.
  const size_t backend = json.find("\"stringValue\":\"backend.demo\"");
  ASSERT_NE(backend, std::string::npos);
  EXPECT_LT(json.find("\"spanId\":\"0000000000000003\""), backend);
}

TEST(TraceJsonTest, AReceivedSpansServiceNameAndScopeAreItsOwnAndAppearOnce) {
  // The proxy's span and an SDK's span whose sender left service.name in the resource attributes
  // (no service_name) and names its own scope.
  std::vector<StoredRecord> spans = {Stored("cart.shop", 1, 0, "proxy"),
                                     Stored("", 2, 1, "GET /cart")};
  meshtel::v1::Span& sdk = spans[1].span;
  sdk.set_scope_name("io.opentelemetry.spring-webmvc-6.0");
  sdk.set_scope_version("2.1.0");
  auto* attribute = sdk.add_resource_attributes();
  attribute->set_key("service.name");
  attribute->set_string_value("cart-app");
  attribute = sdk.add_resource_attributes();
  attribute->set_key("telemetry.sdk.language");
  attribute->set_string_value("java");
  const std::string json = TraceToOtlpJson(spans);
  EXPECT_NE(json.find("{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
                      "{\"stringValue\":\"cart-app\"}},{\"key\":\"telemetry.sdk.language\","
                      "\"value\":{\"stringValue\":\"java\"}}]},\"scopeSpans\":[{\"scope\":{"
                      "\"name\":\"io.opentelemetry.spring-webmvc-6.0\",\"version\":\"2.1.0\"}"),
            std::string::npos)
      << json;
  // service.name once per resource: two resources, two keys.
  size_t count = 0;
  for (size_t at = json.find("\"service.name\""); at != std::string::npos;
       at = json.find("\"service.name\"", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 2u) << json;
  // Neither name: OpenTelemetry's unknown_service.
  spans[1].span.clear_resource_attributes();
  EXPECT_NE(TraceToOtlpJson(spans).find("{\"stringValue\":\"unknown_service\"}"),
            std::string::npos);
}

TEST(TraceJsonTest, HexIdsRoundTrip) {
  EXPECT_EQ(HexId(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(*ParseHexId("00FF10"), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(ParseHexId("abc").has_value());
  EXPECT_FALSE(ParseHexId("zz").has_value());
  EXPECT_EQ(SpanAnomalyNames(0), "");
  EXPECT_EQ(SpanAnomalyNames((1u << meshtel::v1::SPAN_ANOMALY_ORPHAN) |
                             (1u << meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START)),
            "ends_before_start,orphan");
}

}  // namespace
}  // namespace meshtel::collector
