#include "proxy/trace/trace_context.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

constexpr std::string_view kTraceHex = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpanHex = "00f067aa0ba902b7";

IncomingContext FromTraceparent(std::string_view value, std::string_view tracestate = "") {
  return ExtractTraceContext(TraceHeaders{.traceparent = value, .tracestate = tracestate});
}

TEST(TraceparentTest, ValidVersion00) {
  const IncomingContext context = FromTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE");
  ASSERT_TRUE(context.has_ids);
  EXPECT_FALSE(context.invalid);
  EXPECT_EQ(ToHex(context.trace_id), kTraceHex);
  EXPECT_EQ(ToHex(context.span_id), kSpanHex);
  EXPECT_EQ(context.sampled, true);
  EXPECT_EQ(context.tracestate, "congo=t61rcWkgMzE");
  EXPECT_EQ(FromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").sampled,
            false);
}

TEST(TraceparentTest, RandomTraceIdFlagIsKeptOtherBitsAreNot) {
  const IncomingContext context =
      FromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff");
  ASSERT_TRUE(context.has_ids);
  EXPECT_EQ(context.w3c_flags, 0x02);
  EXPECT_EQ(context.sampled, true);
}

TEST(TraceparentTest, HigherVersionsParseAtVersion00Positions) {
  EXPECT_TRUE(
      FromTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").has_ids);
  EXPECT_TRUE(FromTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").has_ids);
  EXPECT_FALSE(FromTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x").has_ids);
}

TEST(TraceparentTest, InvalidHeadersStartANewTraceAndDropTracestate) {
  for (const char* bad :
       {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // v00 too long
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",    // short trace id
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",   // separators
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",   // non-hex
        "garbage", "-", "\xff\xfe\x00"}) {
    const IncomingContext context = FromTraceparent(bad, "a=b");
    EXPECT_FALSE(context.has_ids) << bad;
    EXPECT_TRUE(context.invalid) << bad;
    EXPECT_EQ(context.tracestate, "") << bad;
    EXPECT_FALSE(context.sampled.has_value()) << bad;
  }
}

TEST(B3Test, SingleHeaderForms) {
  IncomingContext full = ExtractTraceContext(
      {.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"});
  ASSERT_TRUE(full.has_ids);
  EXPECT_EQ(ToHex(full.trace_id), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(ToHex(full.span_id), "e457b5a2e4d86bd1");
  EXPECT_EQ(full.sampled, true);

  IncomingContext short_id = ExtractTraceContext({.b3 = "a3ce929d0e0e4736-00f067aa0ba902b7"});
  ASSERT_TRUE(short_id.has_ids);
  EXPECT_EQ(ToHex(short_id.trace_id), "0000000000000000a3ce929d0e0e4736");  // left-padded
  EXPECT_FALSE(short_id.sampled.has_value());                               // deferred

  EXPECT_EQ(ExtractTraceContext({.b3 = "a3ce929d0e0e4736-00f067aa0ba902b7-d"}).sampled, true);
  IncomingContext deny = ExtractTraceContext({.b3 = "0"});
  EXPECT_FALSE(deny.has_ids);
  EXPECT_EQ(deny.sampled, false);
  EXPECT_EQ(ExtractTraceContext({.b3 = "1"}).sampled, true);
}

TEST(B3Test, MultiHeaderForms) {
  IncomingContext context = ExtractTraceContext({.x_b3_traceid = kTraceHex,
                                                 .x_b3_spanid = kSpanHex,
                                                 .x_b3_parentspanid = "05e3ac9a4f6e3b90",
                                                 .x_b3_sampled = "true"});
  ASSERT_TRUE(context.has_ids);
  EXPECT_EQ(ToHex(context.trace_id), kTraceHex);
  EXPECT_EQ(context.sampled, true);
  EXPECT_EQ(
      ExtractTraceContext({.x_b3_traceid = kTraceHex, .x_b3_spanid = kSpanHex, .x_b3_flags = "1"})
          .sampled,
      true);  // debug
  IncomingContext decision_only = ExtractTraceContext({.x_b3_sampled = "0"});
  EXPECT_FALSE(decision_only.has_ids);
  EXPECT_EQ(decision_only.sampled, false);
  EXPECT_TRUE(ExtractTraceContext({.x_b3_traceid = "4BF92F3577B34DA6A3CE929D0E0E4736",
                                   .x_b3_spanid = "00F067AA0BA902B7"})
                  .has_ids);  // B3 is read case-insensitively
}

TEST(B3Test, MalformedB3IsInvalid) {
  for (const TraceHeaders& bad : std::vector<TraceHeaders>{
           {.b3 = "80f198ee56343ba864fe8b2a57d3eff7"},
           {.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x"},
           {.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-zz"},
           {.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-9"},
           {.b3 = "2"},
           {.x_b3_traceid = kTraceHex},
           {.x_b3_traceid = kTraceHex, .x_b3_spanid = "123"},
           {.x_b3_traceid = kTraceHex, .x_b3_spanid = kSpanHex, .x_b3_parentspanid = "-"},
           {.x_b3_traceid = kTraceHex, .x_b3_spanid = kSpanHex, .x_b3_sampled = "yes"},
           {.x_b3_traceid = "00000000000000000000000000000000", .x_b3_spanid = kSpanHex}}) {
    const IncomingContext context = ExtractTraceContext(bad);
    EXPECT_TRUE(context.invalid) << bad.b3 << "|" << bad.x_b3_traceid;
    EXPECT_FALSE(context.has_ids);
  }
}

TEST(ExtractionOrderTest, W3cThenSingleB3ThenMultiB3) {
  const TraceHeaders all{.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                         .b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
                         .x_b3_traceid = "11111111111111111111111111111111",
                         .x_b3_spanid = "2222222222222222"};
  EXPECT_EQ(ToHex(ExtractTraceContext(all).trace_id), kTraceHex);
  TraceHeaders no_w3c = all;
  no_w3c.traceparent = "";
  EXPECT_EQ(ToHex(ExtractTraceContext(no_w3c).trace_id), "80f198ee56343ba864fe8b2a57d3eff7");
  TraceHeaders broken_w3c = all;
  broken_w3c.traceparent = "junk";
  const IncomingContext fallback = ExtractTraceContext(broken_w3c);
  EXPECT_TRUE(fallback.invalid);  // counted, yet the valid b3 context is used
  EXPECT_EQ(ToHex(fallback.trace_id), "80f198ee56343ba864fe8b2a57d3eff7");
}

TEST(SamplingTest, IncomingDecisionWins) {
  IncomingContext yes;
  yes.sampled = true;
  EXPECT_EQ(DecideSampling(yes, {}, "ffffffff-0000-4000-8000-000000000000", 0).sampled, true);
  IncomingContext no;
  no.sampled = false;
  const SamplingDecision decision =
      DecideSampling(no, {.x_client_trace_id = "abc"}, "00000000-0000-4000-8000-000000000000", 100);
  EXPECT_FALSE(decision.sampled);
  EXPECT_EQ(decision.reason, SamplingReason::kIncomingDecision);
}

TEST(SamplingTest, ForcedByClientOrService) {
  EXPECT_EQ(DecideSampling({}, {.x_client_trace_id = "abc"}, "ffffffff", 0).reason,
            SamplingReason::kClientForced);
  EXPECT_TRUE(DecideSampling({}, {.x_envoy_force_trace = "true"}, "ffffffff", 0).sampled);
}

TEST(SamplingTest, RandomDrawUsesTheRequestIdLikeEnvoy) {
  // 0x00000063 = 99 → 99 < 1% × 100 = 100 → sampled; 0x00000064 = 100 → not.
  EXPECT_TRUE(DecideSampling({}, {}, "00000063-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 1.0).sampled);
  EXPECT_FALSE(DecideSampling({}, {}, "00000064-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 1.0).sampled);
  EXPECT_FALSE(DecideSampling({}, {}, "00000000-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 0).sampled);
  EXPECT_TRUE(DecideSampling({}, {}, "fffffff0-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 100).sampled);
}

TEST(SamplingTest, RandomShareIsNearThePercentage) {
  // Without a hex request id the draw is random: 10% of 20000 within 3 sigma (σ ≈ 42).
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) sampled += DecideSampling({}, {}, "no-hex", 10.0).sampled;
  EXPECT_NEAR(sampled, 2000, 127);
}

TEST(HopTest, NewSpanUnderTheIncomingOne) {
  const IncomingContext incoming =
      FromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", "a=b");
  const HopContext hop = NewHop(incoming, true);
  EXPECT_EQ(ToHex(hop.trace_id), kTraceHex);
  EXPECT_EQ(ToHex(hop.parent_span_id), kSpanHex);
  EXPECT_NE(ToHex(hop.span_id), kSpanHex);
  EXPECT_NE(ToHex(hop.span_id), "0000000000000000");

  std::map<std::string, std::string> headers;
  for (auto& [name, value] : TraceHeadersToInject(
           hop, {Propagation::kW3c, Propagation::kB3Multi, Propagation::kB3Single})) {
    headers[std::string(name)] = value;
  }
  EXPECT_EQ(headers["traceparent"],
            "00-" + std::string(kTraceHex) + "-" + ToHex(hop.span_id) + "-03");
  EXPECT_EQ(headers["tracestate"], "a=b");
  EXPECT_EQ(headers["x-b3-traceid"], kTraceHex);
  EXPECT_EQ(headers["x-b3-spanid"], ToHex(hop.span_id));
  EXPECT_EQ(headers["x-b3-parentspanid"], kSpanHex);
  EXPECT_EQ(headers["x-b3-sampled"], "1");
  EXPECT_EQ(headers["b3"],
            std::string(kTraceHex) + "-" + ToHex(hop.span_id) + "-1-" + std::string(kSpanHex));
  // What we inject, we read back: the next hop continues the same trace under our span.
  const IncomingContext next = FromTraceparent(headers["traceparent"]);
  EXPECT_EQ(next.trace_id, hop.trace_id);
  EXPECT_EQ(next.span_id, hop.span_id);
}

TEST(HopTest, WrittenHeadersPointIntoTheirOwnStorage) {
  const IncomingContext incoming =
      FromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v");
  const HopContext hop = NewHop(incoming, true);
  InjectedTraceHeaders written;
  WriteTraceHeaders(hop, {Propagation::kB3Single, Propagation::kW3c, Propagation::kB3Multi},
                    written);
  std::vector<std::string> names;
  for (const auto& header : written) names.emplace_back(header.name);
  EXPECT_EQ(names, (std::vector<std::string>{"b3", "traceparent", "tracestate", "x-b3-traceid",
                                             "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled"}));
  std::map<std::string, std::string> values;
  for (const auto& header : written) values[std::string(header.name)] = header.value;
  EXPECT_EQ(values["traceparent"],
            "00-" + std::string(kTraceHex) + "-" + ToHex(hop.span_id) + "-01");
  EXPECT_EQ(values["b3"],
            std::string(kTraceHex) + "-" + ToHex(hop.span_id) + "-1-" + std::string(kSpanHex));
  EXPECT_EQ(values["x-b3-parentspanid"], kSpanHex);

  // Written again for another hop into the same object: nothing of the first hop is left.
  const HopContext root = NewHop({}, false);
  WriteTraceHeaders(root, {Propagation::kB3Single}, written);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written.begin()->value, ToHex(root.trace_id) + "-" + ToHex(root.span_id) + "-0");
}

TEST(HopTest, AFormListedTwiceIsWrittenOnce) {
  const HopContext hop = NewHop({}, true);
  std::vector<std::string> names;
  for (auto& [name, value] :
       TraceHeadersToInject(hop, {Propagation::kW3c, Propagation::kB3Multi, Propagation::kW3c})) {
    names.emplace_back(name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"traceparent", "x-b3-traceid", "x-b3-spanid",
                                             "x-b3-sampled"}));
}

TEST(HopTest, RootHopHasNoParentAndAFreshTrace) {
  const HopContext first = NewHop({}, false);
  const HopContext second = NewHop({}, false);
  EXPECT_NE(first.trace_id, second.trace_id);
  EXPECT_EQ(ToHex(first.parent_span_id), "0000000000000000");
  std::map<std::string, std::string> headers;
  for (auto& [name, value] : TraceHeadersToInject(first, {Propagation::kB3Multi})) {
    headers[std::string(name)] = value;
  }
  EXPECT_EQ(headers.count("x-b3-parentspanid"), 0u);
  EXPECT_EQ(headers["x-b3-sampled"], "0");
  EXPECT_EQ(headers.count("traceparent"), 0u);
}

}  // namespace
}  // namespace meshtel::proxy
