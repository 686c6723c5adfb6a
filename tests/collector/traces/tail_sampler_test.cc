#include "collector/traces/tail_sampler.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

// A trace as whole spans; Decide() gives the sampler their summaries, as the pipeline does.
struct SpanTrace {
  std::string trace_id;
  bool head_sampled = false;
  std::vector<meshtel::v1::Span> spans;
};

SpanTrace Trace(uint64_t seed, uint64_t duration_ns, bool error, bool head_sampled,
                const std::string& service = "frontend.demo") {
  SpanTrace trace;
  trace.trace_id = std::string(16, '\0');
  for (int i = 0; i < 8; ++i) {
    trace.trace_id[15 - i] = static_cast<char>((seed * 0x9e3779b97f4a7c15ull) >> (8 * i));
  }
  trace.head_sampled = head_sampled;
  trace.spans.reserve(2);  // `root` stays valid while the child is added
  meshtel::v1::Span& root = trace.spans.emplace_back();
  root.set_trace_id(trace.trace_id);
  root.set_span_id(std::string(8, '\1'));
  root.set_service_name(service);
  root.set_start_time_unix_nano(1000);
  root.set_end_time_unix_nano(1000 + duration_ns);
  meshtel::v1::Span& child = trace.spans.emplace_back(root);
  child.set_span_id(std::string(8, '\2'));
  child.set_parent_span_id(root.span_id());
  if (error) child.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  return trace;
}

SamplingVerdict Decide(TailSampler& sampler, const SpanTrace& spans, absl::Time now) {
  AssembledTrace trace;
  trace.trace_id = spans.trace_id;
  trace.head_sampled = spans.head_sampled;
  for (const meshtel::v1::Span& span : spans.spans) trace.spans.push_back(SummarizeSpan(span));
  return sampler.Decide(trace, now,
                        [&](size_t span) { return spans.spans.at(span).service_name(); });
}

TEST(TailSamplerTest, KeepsErrorsSlowTracesAndHeadSampledOnes) {
  prometheus::Registry registry;
  TraceSamplingConfig config;
  config.latency_threshold = absl::Milliseconds(500);
  TailSampler sampler(config, registry);
  EXPECT_EQ(Decide(sampler, Trace(1, 1'000'000, true, false), kNow).policy, "error");
  EXPECT_EQ(Decide(sampler, Trace(2, 600'000'000, false, false), kNow).policy, "latency");
  EXPECT_EQ(Decide(sampler, Trace(3, 1'000'000, false, true), kNow).policy, "head");
  const SamplingVerdict dropped = Decide(sampler, Trace(4, 1'000'000, false, false), kNow);
  EXPECT_FALSE(dropped.keep);
  EXPECT_EQ(dropped.policy, "none");
}

TEST(TailSamplerTest, AnHttpStatusOf500OrMoreIsAnErrorWhateverTheSpanStatus) {
  prometheus::Registry registry;
  TraceSamplingConfig config;
  config.keep_head_sampled = false;
  TailSampler sampler(config, registry);
  // An SDK's span: new and old semantic conventions, int or string values.
  for (const auto& [key, int_value, string_value] :
       std::vector<std::tuple<std::string, int64_t, std::string>>{
           {"http.response.status_code", 503, ""},
           {"http.status_code", 500, ""},
           {"http.status_code", 0, "502"}}) {
    SpanTrace trace = Trace(7, 1'000'000, false, false);
    meshtel::v1::SpanAttribute* status = trace.spans[1].add_attributes();
    status->set_key(key);
    if (string_value.empty()) {
      status->set_int_value(int_value);
    } else {
      status->set_string_value(string_value);
    }
    EXPECT_EQ(Decide(sampler, trace, kNow).policy, "error") << key;
  }
  for (const int64_t code : {200, 404, 499}) {
    SpanTrace trace = Trace(7, 1'000'000, false, false);
    meshtel::v1::SpanAttribute* status = trace.spans[1].add_attributes();
    status->set_key("http.response.status_code");
    status->set_int_value(code);
    EXPECT_FALSE(Decide(sampler, trace, kNow).keep) << code;
  }
}

TEST(TailSamplerTest, LatencyIsTheRootSpansDuration) {
  prometheus::Registry registry;
  TraceSamplingConfig config;
  config.latency_threshold = absl::Milliseconds(500);
  config.keep_head_sampled = false;
  TailSampler sampler(config, registry);
  // A quick root with a late straggler (an SDK span on a host whose clock is ahead) is not slow.
  SpanTrace quick = Trace(5, 1'000'000, false, false);
  quick.spans[1].set_start_time_unix_nano(2'000'000'000);
  quick.spans[1].set_end_time_unix_nano(2'001'000'000);
  EXPECT_FALSE(Decide(sampler, quick, kNow).keep);
  // Without a root, from the first start to the last end.
  quick.spans[0].set_parent_span_id(std::string(8, '\7'));
  ASSERT_EQ(quick.spans[1].parent_span_id(), std::string(8, '\1'));
  EXPECT_EQ(Decide(sampler, quick, kNow).policy, "latency");
}

TEST(TailSamplerTest, RulesCanBeTurnedOff) {
  prometheus::Registry registry;
  TraceSamplingConfig config;
  config.keep_errors = false;
  config.latency_threshold = absl::ZeroDuration();
  config.keep_head_sampled = false;
  TailSampler sampler(config, registry);
  EXPECT_FALSE(Decide(sampler, Trace(1, 5'000'000'000, true, true), kNow).keep);
}

TEST(TailSamplerTest, PercentageKeepsThatShareOfTraceIds) {
  prometheus::Registry registry;
  TraceSamplingConfig config;
  config.keep_head_sampled = false;
  config.percentage = 10;
  TailSampler sampler(config, registry);
  int kept = 0;
  constexpr int kTraces = 20000;
  for (int i = 0; i < kTraces; ++i) {
    if (Decide(sampler, Trace(static_cast<uint64_t>(i) + 1, 1000, false, false), kNow).keep) ++kept;
  }
  // Binomial(20000, 0.1): sigma = 42.4; 3 sigma = 127.
  EXPECT_NEAR(kept, 2000, 127);
  // The same trace gets the same answer.
  const SpanTrace trace = Trace(77, 1000, false, false);
  EXPECT_EQ(TailSampler::InPercentage(trace.trace_id, 10),
            TailSampler::InPercentage(trace.trace_id, 10));
  EXPECT_TRUE(TailSampler::InPercentage(trace.trace_id, 100));
  EXPECT_FALSE(TailSampler::InPercentage(trace.trace_id, 0));
}

TEST(TailSamplerTest, RateLimitBoundsEachRootServiceButNeverErrors) {
  prometheus::Registry registry;
  TraceSamplingConfig config;
  config.per_service_rate_limit = 5;
  TailSampler sampler(config, registry);
  int kept_a = 0;
  int kept_b = 0;
  for (int i = 0; i < 20; ++i) {
    if (Decide(sampler, Trace(i + 1, 1000, false, true, "a.demo"), kNow).keep) ++kept_a;
    if (Decide(sampler, Trace(i + 100, 1000, false, true, "b.demo"), kNow).keep) ++kept_b;
  }
  EXPECT_EQ(kept_a, 5);
  EXPECT_EQ(kept_b, 5);
  EXPECT_EQ(Decide(sampler, Trace(500, 1000, false, true, "a.demo"), kNow).policy, "rate_limited");
  EXPECT_EQ(Decide(sampler, Trace(501, 1000, true, false, "a.demo"), kNow).policy, "error");
  // A second later the bucket holds 5 tokens again.
  int kept_later = 0;
  for (int i = 0; i < 20; ++i) {
    if (Decide(sampler, Trace(i + 1000, 1000, false, true, "a.demo"), kNow + absl::Seconds(1))
            .keep) {
      ++kept_later;
    }
  }
  EXPECT_EQ(kept_later, 5);
}

}  // namespace
}  // namespace meshtel::collector
