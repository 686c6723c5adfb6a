#pragma once
// Exposition: the pieces of a Prometheus scrape response that do not depend on what is measured.
//
// - Format negotiation from the scraper's `Accept` header: the Prometheus text format 0.0.4
//   (default) or OpenMetrics 1.0.0 (when `application/openmetrics-text` is preferred), and gzip
//   from `Accept-Encoding`.
// - Metadata lines (# HELP, # TYPE, # UNIT) with each format's naming rule: 0.0.4 names the
//   exposed series (`foo_total`), OpenMetrics names the family (`foo`); UNIT only in OpenMetrics.
// - Label values: invalid UTF-8 replaced by U+FFFD, then `\`, `"` and newline escaped.
// - Numbers: Go-style shortest text; OpenMetrics `le` bounds in canonical form (`1.0`).
// - prometheus-cpp families (the collector's own meshtel_* metrics) rendered in either format.
// - gzip compression of a finished body.
//
// Pure functions without shared state: safe from any thread. Errors (zlib only) are returned as
// absl::Status.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/metric_family.h"

namespace meshtel::collector {

enum class ExpositionFormat {
  kPrometheusText,  // text/plain; version=0.0.4
  kOpenMetrics,     // application/openmetrics-text; version=1.0.0
};

struct ScrapeNegotiation {
  ExpositionFormat format = ExpositionFormat::kPrometheusText;
  bool gzip = false;
};

// Reads `Accept` and `Accept-Encoding` as a scraper sends them. The media range with the highest
// q wins (the first listed on a tie); `application/openmetrics-text` counts when it names no
// version or version 1.0.0, `text/plain` when it names no version or 0.0.4, and `*/*`, `text/*`
// mean the text format. Anything unparsable or unsupported falls back to the text format, so a
// scraper always gets an answer. gzip is used when `gzip` (or `*`) is listed with q > 0.
ScrapeNegotiation NegotiateScrape(std::string_view accept, std::string_view accept_encoding);

// The Content-Type of a response in `format`, with version and charset.
std::string_view ContentTypeOf(ExpositionFormat format);

enum class MetricKind { kCounter, kGauge, kHistogram, kSummary, kUntyped };

// Appends the metadata of one family: # HELP (unless `help` is empty), # TYPE and (OpenMetrics,
// non-empty `unit`) # UNIT.
// `name` is the name samples use without suffixes (for a counter, the `_total` name; for a
// histogram, the base name). In OpenMetrics a counter's metadata drops the `_total`.
void AppendMetadata(ExpositionFormat format, std::string_view name, MetricKind kind,
                    std::string_view help, std::string_view unit, std::string& out);

// The OpenMetrics terminator line, "# EOF\n".
inline constexpr std::string_view kOpenMetricsEof = "# EOF\n";

// True when `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);
// Appends `text` with every ill-formed sequence replaced by U+FFFD, one replacement per maximal
// ill-formed subpart (as Unicode recommends, and as browsers and Go decode).
void AppendUtf8Repaired(std::string_view text, std::string& out);

// Appends a label value escaped for both formats: backslash, double quote and newline. The value
// must already be valid UTF-8 (see AppendUtf8Repaired).
void AppendEscapedLabelValue(std::string_view value, std::string& out);
// Go-style shortest float text: "0.5", "1", "3600000", "+Inf", "NaN".
void AppendPrometheusDouble(double value, std::string& out);
// The same text written at `at`, which must have room for kMaxDoubleText bytes; returns its end.
inline constexpr size_t kMaxDoubleText = 32;
char* WritePrometheusDouble(double value, char* at);
// A histogram bound as the `le` label value of `format`: 0.0.4 prints Envoy's form ("1",
// "3600000"), OpenMetrics the canonical float form ("1.0", "3600000.0"); both print "+Inf".
void AppendLeValue(ExpositionFormat format, double bound, std::string& out);

// Makes room in `out` for `bytes` more at once (no growth by doubling and copying). A buffer of
// 4 MiB or more is marked for transparent huge pages (madvise MADV_HUGEPAGE) before it is first
// written: a fresh scrape body of hundreds of MB then takes hundreds of page faults instead of
// hundreds of thousands, which cost most of a scrape on a virtual machine. Only a hint: without
// THP it changes nothing.
void ReserveBody(std::string& out, size_t bytes);

// Appends every family in `families` (as prometheus-cpp's Registry::Collect() returns them).
void AppendPrometheusCppFamilies(ExpositionFormat format,
                                 const std::vector<prometheus::MetricFamily>& families,
                                 std::string& out);

}  // namespace meshtel::collector
