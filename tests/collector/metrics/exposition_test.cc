#include "collector/metrics/exposition.h"

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace meshtel::collector {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kText = ExpositionFormat::kPrometheusText;
constexpr auto kOpenMetrics = ExpositionFormat::kOpenMetrics;

std::string Repaired(std::string_view text) {
  std::string out;
  AppendUtf8Repaired(text, out);
  return out;
}

TEST(NegotiateScrapeTest, NoHeadersMeanText) {
  const ScrapeNegotiation negotiation = NegotiateScrape("", "");
  EXPECT_EQ(negotiation.format, kText);
  EXPECT_FALSE(negotiation.gzip);
}

TEST(NegotiateScrapeTest, PrometheusDefaultAcceptPicksOpenMetrics) {
  // What Prometheus 2.42 sends by default.
  const ScrapeNegotiation negotiation = NegotiateScrape(
      "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
      "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
      "gzip");
  EXPECT_EQ(negotiation.format, kOpenMetrics);
  EXPECT_TRUE(negotiation.gzip);
}

TEST(NegotiateScrapeTest, HighestQualityWins) {
  EXPECT_EQ(NegotiateScrape("application/openmetrics-text; version=1.0.0; q=0.4, "
                            "text/plain; version=0.0.4; q=0.9",
                            "")
                .format,
            kText);
  EXPECT_EQ(NegotiateScrape("text/plain;q=0.2, application/openmetrics-text;q=0.3", "").format,
            kOpenMetrics);
  // A tie goes to the first listed.
  EXPECT_EQ(NegotiateScrape("text/plain, application/openmetrics-text", "").format, kText);
  EXPECT_EQ(NegotiateScrape("application/openmetrics-text, text/plain", "").format, kOpenMetrics);
  EXPECT_EQ(NegotiateScrape("APPLICATION/OpenMetrics-Text", "").format, kOpenMetrics);
}

TEST(NegotiateScrapeTest, UnsupportedVersionsAndZeroQualityAreIgnored) {
  EXPECT_EQ(NegotiateScrape("application/openmetrics-text;version=0.0.1", "").format, kText);
  EXPECT_EQ(
      NegotiateScrape("application/openmetrics-text;version=2.0.0,text/plain;q=0.1", "").format,
      kText);
  EXPECT_EQ(NegotiateScrape("application/openmetrics-text;q=0", "").format, kText);
  EXPECT_EQ(NegotiateScrape("application/openmetrics-text;q=bogus", "").format, kText);
  EXPECT_EQ(NegotiateScrape("application/json", "").format, kText);
  EXPECT_EQ(NegotiateScrape(",,;;=,", "").format, kText);
  EXPECT_EQ(NegotiateScrape("application/openmetrics-text;version=\"1.0.0\"", "").format,
            kOpenMetrics);
}

TEST(NegotiateScrapeTest, Gzip) {
  EXPECT_TRUE(NegotiateScrape("", "gzip").gzip);
  EXPECT_TRUE(NegotiateScrape("", "deflate, GZIP;q=0.5").gzip);
  EXPECT_TRUE(NegotiateScrape("", "*").gzip);
  EXPECT_FALSE(NegotiateScrape("", "gzip;q=0").gzip);
  EXPECT_FALSE(NegotiateScrape("", "*, gzip;q=0").gzip);
  EXPECT_FALSE(NegotiateScrape("", "identity").gzip);
  EXPECT_FALSE(NegotiateScrape("", "br, deflate").gzip);
}

TEST(ContentTypeTest, VersionAndCharset) {
  EXPECT_EQ(ContentTypeOf(kText), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ContentTypeOf(kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(Utf8Test, ValidTextIsValid) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("gr\xC3\xBC\xC3\x9F dich \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_EQ(Repaired("gr\xC3\xBC\xC3\x9F"), "gr\xC3\xBC\xC3\x9F");
}

TEST(Utf8Test, IllFormedSequencesAreInvalid) {
  for (const char* bad : {"\x80", "abc\xC0\xAF", "\xC3", "\xE2\x82", "\xED\xA0\x80",
                          "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "12345678\xC3\x28"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << ::testing::PrintToString(std::string(bad));
  }
}

TEST(Utf8Test, EachMaximalIllFormedSubpartBecomesOneReplacement) {
  // The example of Unicode 15, chapter 3, "U+FFFD Substitution of Maximal Subparts".
  EXPECT_EQ(Repaired("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c\xEF\xBF\xBD\xEF\xBF\xBD"
            "d");
  // Surrogates and overlong forms: every byte is its own subpart.
  EXPECT_EQ(Repaired("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(Repaired("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // A truncated sequence at the end.
  EXPECT_EQ(Repaired("ok\xE2\x82"), "ok\xEF\xBF\xBD");
  // The result is always valid.
  EXPECT_TRUE(IsValidUtf8(Repaired("\xFF\xFE\xF0\x9F\x98\xC3(\xE0\x80\x80")));
}

TEST(EscapeTest, BackslashQuoteAndNewline) {
  std::string out;
  AppendEscapedLabelValue("a\\b\"c\nd\te", out);
  EXPECT_EQ(out, "a\\\\b\\\"c\\nd\te");
}

TEST(MetadataTest, CounterNamesPerFormat) {
  std::string text;
  AppendMetadata(kText, "istio_requests_total", MetricKind::kCounter, "Requests.", "", text);
  EXPECT_EQ(text, "# HELP istio_requests_total Requests.\n# TYPE istio_requests_total counter\n");
  std::string open_metrics;
  AppendMetadata(kOpenMetrics, "istio_requests_total", MetricKind::kCounter, "Requests.", "",
                 open_metrics);
  EXPECT_EQ(open_metrics, "# HELP istio_requests Requests.\n# TYPE istio_requests counter\n");
}

TEST(MetadataTest, UnitOnlyInOpenMetrics) {
  std::string text;
  AppendMetadata(kText, "istio_request_bytes", MetricKind::kHistogram, "Size.", "bytes", text);
  EXPECT_THAT(text, Not(HasSubstr("# UNIT")));
  std::string open_metrics;
  AppendMetadata(kOpenMetrics, "istio_request_bytes", MetricKind::kHistogram, "Size.", "bytes",
                 open_metrics);
  EXPECT_THAT(open_metrics, HasSubstr("# UNIT istio_request_bytes bytes\n"));
}

TEST(MetadataTest, HelpEscapingDiffersOnQuotes) {
  std::string text;
  AppendMetadata(kText, "g", MetricKind::kGauge, "a \"b\" \\ c\nd", "", text);
  EXPECT_THAT(text, HasSubstr("# HELP g a \"b\" \\\\ c\\nd\n"));
  std::string open_metrics;
  AppendMetadata(kOpenMetrics, "g", MetricKind::kGauge, "a \"b\" \\ c\nd", "", open_metrics);
  EXPECT_THAT(open_metrics, HasSubstr("# HELP g a \\\"b\\\" \\\\ c\\nd\n"));
}

TEST(MetadataTest, UntypedIsUnknownInOpenMetrics) {
  std::string text;
  AppendMetadata(kText, "u", MetricKind::kUntyped, "h", "", text);
  EXPECT_THAT(text, HasSubstr("# TYPE u untyped\n"));
  std::string open_metrics;
  AppendMetadata(kOpenMetrics, "u", MetricKind::kUntyped, "h", "", open_metrics);
  EXPECT_THAT(open_metrics, HasSubstr("# TYPE u unknown\n"));
}

TEST(NumberTest, LeValues) {
  for (const auto& [bound, text, open_metrics] :
       std::vector<std::tuple<double, std::string, std::string>>{{0.5, "0.5", "0.5"},
                                                                 {1, "1", "1.0"},
                                                                 {3600000, "3600000", "3600000.0"},
                                                                 {1.0 / 0.0, "+Inf", "+Inf"}}) {
    std::string a, b;
    AppendLeValue(kText, bound, a);
    AppendLeValue(kOpenMetrics, bound, b);
    EXPECT_EQ(a, text);
    EXPECT_EQ(b, open_metrics);
  }
}

TEST(NumberTest, GoStyle) {
  std::string text;
  for (double value : {0.5, 3600000.0, 1.0 / 0.0, -1.0 / 0.0, -3.0, 0.000125, 1e300}) {
    AppendPrometheusDouble(value, text);
    text += " ";
  }
  EXPECT_EQ(text, "0.5 3600000 +Inf -Inf -3 0.000125 1e+300 ");
}

TEST(NumberTest, WriteIsAppendAtAPointerWithinTheBound) {
  for (double value : {0.5, 3600000.0, 1.0 / 0.0, std::nan(""), -3.0, 0.000125, 1e300,
                       -1.2345678901234567e-300, 613.5, 9.999999999999998e14}) {
    std::string appended;
    AppendPrometheusDouble(value, appended);
    char buffer[kMaxDoubleText];
    char* end = WritePrometheusDouble(value, buffer);
    ASSERT_LE(end - buffer, static_cast<ptrdiff_t>(kMaxDoubleText));
    EXPECT_EQ(std::string(buffer, end), appended);
  }
}

TEST(ReserveBodyTest, GrowsOnceAndKeepsTheText) {
  std::string body = "# HELP x\n";
  ReserveBody(body, 64 << 20);  // huge-page hint on a large buffer
  EXPECT_GE(body.capacity(), body.size() + (64 << 20));
  EXPECT_EQ(body, "# HELP x\n");
  const char* data = body.data();
  body.append(size_t{32} << 20, 'a');
  EXPECT_EQ(body.data(), data);  // no reallocation within the reservation
  ReserveBody(body, 10);         // already room: unchanged
  EXPECT_EQ(body.data(), data);
}

class PrometheusCppFamiliesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus::BuildCounter()
        .Name("meshtel_ingest_batches_total")
        .Help("Batches.")
        .Register(registry_)
        .Add({{"result", "ok"}})
        .Increment(3);
    prometheus::BuildGauge()
        .Name("meshtel_ingest_streams")
        .Help("Streams.")
        .Register(registry_)
        .Add({{"peer", "bad\xFF\"value\n"}})
        .Set(2);
    prometheus::BuildHistogram()
        .Name("meshtel_batch_records")
        .Help("Records per batch.")
        .Register(registry_)
        .Add({}, prometheus::Histogram::BucketBoundaries{1, 10})
        .Observe(5);
  }
  std::string Render(ExpositionFormat format) {
    std::string out;
    AppendPrometheusCppFamilies(format, registry_.Collect(), out);
    return out;
  }
  prometheus::Registry registry_;
};

TEST_F(PrometheusCppFamiliesTest, TextFormat) {
  const std::string text = Render(kText);
  EXPECT_THAT(text, HasSubstr("# TYPE meshtel_ingest_batches_total counter\n"
                              "meshtel_ingest_batches_total{result=\"ok\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("meshtel_ingest_streams{peer=\"bad\xEF\xBF\xBD\\\"value\\n\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE meshtel_batch_records histogram\n"
                              "meshtel_batch_records_bucket{le=\"1\"} 0\n"
                              "meshtel_batch_records_bucket{le=\"10\"} 1\n"
                              "meshtel_batch_records_bucket{le=\"+Inf\"} 1\n"
                              "meshtel_batch_records_sum 5\n"
                              "meshtel_batch_records_count 1\n"));
}

TEST_F(PrometheusCppFamiliesTest, OpenMetricsFormat) {
  const std::string text = Render(kOpenMetrics);
  EXPECT_THAT(text, HasSubstr("# HELP meshtel_ingest_batches Batches.\n"
                              "# TYPE meshtel_ingest_batches counter\n"
                              "meshtel_ingest_batches_total{result=\"ok\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("meshtel_batch_records_bucket{le=\"1.0\"} 0\n"
                              "meshtel_batch_records_bucket{le=\"10.0\"} 1\n"
                              "meshtel_batch_records_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("# EOF")));  // the caller ends the whole body
}

}  // namespace
}  // namespace meshtel::collector
