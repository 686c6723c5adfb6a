#include "collector/metrics/metric_overrides.h"

#include <algorithm>
#include <string>
#include <vector>

#include "collector/config/collector_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The compiled plans of a `metrics:` block, through the collector config as a user writes it.
absl::StatusOr<MetricLabelPlans> Compile(const std::string& metrics_yaml) {
  absl::StatusOr<CollectorConfig> config =
      ParseCollectorConfig(YAML::Load("metrics:\n" + metrics_yaml));
  if (!config.ok()) return config.status();
  return config->metrics.CompileLabelPlans();
}

// The error of loading a `metrics:` block ("" when it loads).
std::string ErrorOf(const std::string& metrics_yaml) {
  absl::StatusOr<CollectorConfig> config =
      ParseCollectorConfig(YAML::Load("metrics:\n" + metrics_yaml));
  return config.ok() ? "" : std::string(config.status().message());
}

std::vector<std::string> Names(const LabelPlan& plan) { return plan.names; }

TEST(MetricLabelPlansTest, DefaultsAreIstiosStandardLabels) {
  const MetricLabelPlans plans;
  for (RecordMode mode : {RecordMode::kClient, RecordMode::kServer, RecordMode::kUnspecified}) {
    const LabelPlan& requests = plans.plan(IstioMetric::kRequestCount, mode);
    EXPECT_FALSE(requests.disabled);
    EXPECT_TRUE(requests.standard_prefix);
    ASSERT_EQ(requests.names.size(), kIstioRequestLabelCount);
    EXPECT_EQ(requests.names.front(), "reporter");
    EXPECT_EQ(requests.names.back(), "connection_security_policy");
    const LabelPlan& messages = plans.plan(IstioMetric::kGrpcRequestMessages, mode);
    EXPECT_TRUE(messages.standard_prefix);
    EXPECT_EQ(messages.names.size(), kIstioMessageLabelCount);
  }
  EXPECT_TRUE(plans.captured_headers().empty());
  EXPECT_EQ(plans.max_labels(), kIstioRequestLabelCount);
}

TEST(MetricLabelPlansTest, UpsertAppendsANewLabelAndReplacesAStandardOneInPlace) {
  absl::StatusOr<MetricLabelPlans> plans = Compile(R"(
  overrides:
    - tagOverrides:
        user_tier: {value: "request.headers['X-User-Tier']"}
        response_code: {operation: UPSERT, value: "'any'"}
        method: {value: request.method}
)");
  ASSERT_TRUE(plans.ok()) << plans.status();
  const LabelPlan& plan = plans->plan(IstioMetric::kRequestDuration, RecordMode::kServer);
  ASSERT_EQ(plan.names.size(), kIstioRequestLabelCount + 2);
  EXPECT_FALSE(plan.standard_prefix);
  EXPECT_EQ(plan.names[21], "response_code");  // kept in its place
  EXPECT_EQ(plan.sources[21].kind, LabelSource::Kind::kLiteral);
  EXPECT_EQ(plan.sources[21].text, "any");
  EXPECT_EQ(plan.names[25], "user_tier");
  EXPECT_EQ(plan.sources[25].kind, LabelSource::Kind::kHeader);
  EXPECT_EQ(plan.sources[25].text, "x-user-tier");  // header names are case-insensitive
  EXPECT_EQ(plan.names[26], "method");
  EXPECT_EQ(plan.sources[26].kind, LabelSource::Kind::kField);
  EXPECT_EQ(plan.sources[26].field, RecordField::kRequestMethod);
  EXPECT_THAT(plans->captured_headers(), ElementsAre("x-user-tier"));
  EXPECT_EQ(plans->max_labels(), kIstioRequestLabelCount + 2);
  // The message counters carry the new labels too (ALL_METRICS), after their 20.
  const LabelPlan& messages = plans->plan(IstioMetric::kGrpcResponseMessages, RecordMode::kClient);
  ASSERT_EQ(messages.names.size(), kIstioMessageLabelCount + 3);
  EXPECT_EQ(messages.names[20], "user_tier");
  EXPECT_EQ(messages.names[21], "response_code");
}

TEST(MetricLabelPlansTest, RemoveDropsALabelOnlyFromTheMatchingMetricAndMode) {
  absl::StatusOr<MetricLabelPlans> plans = Compile(R"(
  overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT}
      tagOverrides:
        source_principal: {operation: REMOVE}
        not_there: {operation: REMOVE}
)");
  ASSERT_TRUE(plans.ok()) << plans.status();
  const LabelPlan& client = plans->plan(IstioMetric::kRequestCount, RecordMode::kClient);
  EXPECT_EQ(client.names.size(), kIstioRequestLabelCount - 1);
  EXPECT_EQ(std::count(client.names.begin(), client.names.end(), "source_principal"), 0);
  EXPECT_FALSE(client.standard_prefix);
  // The standard labels keep their positions in the record's values.
  EXPECT_EQ(client.sources[5].standard_index, 6u);
  for (const auto& [metric, mode] :
       {std::pair{IstioMetric::kRequestCount, RecordMode::kServer},
        std::pair{IstioMetric::kRequestCount, RecordMode::kUnspecified},
        std::pair{IstioMetric::kRequestDuration, RecordMode::kClient}}) {
    EXPECT_EQ(plans->plan(metric, mode).names.size(), kIstioRequestLabelCount);
    EXPECT_TRUE(plans->plan(metric, mode).standard_prefix);
  }
  // Plans of equal names share a name-set id; different ones do not.
  EXPECT_NE(client.name_set_id,
            plans->plan(IstioMetric::kRequestCount, RecordMode::kServer).name_set_id);
  EXPECT_EQ(plans->plan(IstioMetric::kRequestCount, RecordMode::kServer).name_set_id,
            plans->plan(IstioMetric::kResponseSize, RecordMode::kClient).name_set_id);
}

TEST(MetricLabelPlansTest, ModesMatchTheirReporters) {
  absl::StatusOr<MetricLabelPlans> plans = Compile(R"(
  overrides:
    - match: {mode: SERVER}
      tagOverrides: {side: {value: "'server'"}}
    - match: {mode: CLIENT}
      tagOverrides: {side: {value: "'client'"}}
    - match: {mode: CLIENT_AND_SERVER}
      tagOverrides: {both: {value: "'yes'"}}
)");
  ASSERT_TRUE(plans.ok()) << plans.status();
  const LabelPlan& server = plans->plan(IstioMetric::kRequestCount, RecordMode::kServer);
  const LabelPlan& client = plans->plan(IstioMetric::kRequestCount, RecordMode::kClient);
  const LabelPlan& unspecified = plans->plan(IstioMetric::kRequestCount, RecordMode::kUnspecified);
  EXPECT_EQ(server.sources[25].text, "server");
  EXPECT_EQ(client.sources[25].text, "client");
  EXPECT_EQ(Names(server), Names(client));
  EXPECT_EQ(server.name_set_id, client.name_set_id);
  // A record with no reporter gets only CLIENT_AND_SERVER overrides.
  ASSERT_EQ(unspecified.names.size(), kIstioRequestLabelCount + 1);
  EXPECT_EQ(unspecified.names[25], "both");
}

TEST(MetricLabelPlansTest, DisabledIsAppliedInOrderAndCanBeTurnedBackOn) {
  absl::StatusOr<MetricLabelPlans> plans = Compile(R"(
  overrides:
    - disabled: true
    - match: {metric: REQUEST_COUNT}
      disabled: false
    - match: {metric: REQUEST_DURATION, mode: SERVER}
      disabled: false
    - match: {metric: REQUEST_SIZE}
)");
  ASSERT_TRUE(plans.ok()) << plans.status();
  for (RecordMode mode : {RecordMode::kClient, RecordMode::kServer, RecordMode::kUnspecified}) {
    EXPECT_FALSE(plans->plan(IstioMetric::kRequestCount, mode).disabled);
    EXPECT_TRUE(plans->plan(IstioMetric::kRequestSize, mode).disabled);  // absent: unchanged
    EXPECT_TRUE(plans->plan(IstioMetric::kGrpcRequestMessages, mode).disabled);
  }
  EXPECT_FALSE(plans->plan(IstioMetric::kRequestDuration, RecordMode::kServer).disabled);
  EXPECT_TRUE(plans->plan(IstioMetric::kRequestDuration, RecordMode::kClient).disabled);
}

TEST(MetricLabelPlansTest, KeepListIsAppliedLast) {
  absl::StatusOr<MetricLabelPlans> plans = Compile(R"(
  keep_labels: [response_code, reporter, user_tier, destination_workload]
  overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        user_tier: {value: "request.headers['x-user-tier']"}
)");
  ASSERT_TRUE(plans.ok()) << plans.status();
  // In standard order, then the added label; each metric keeps what it has of the list.
  EXPECT_THAT(Names(plans->plan(IstioMetric::kRequestCount, RecordMode::kServer)),
              ElementsAre("reporter", "destination_workload", "response_code", "user_tier"));
  EXPECT_THAT(Names(plans->plan(IstioMetric::kResponseSize, RecordMode::kClient)),
              ElementsAre("reporter", "destination_workload", "response_code"));
  EXPECT_THAT(Names(plans->plan(IstioMetric::kGrpcRequestMessages, RecordMode::kClient)),
              ElementsAre("reporter", "destination_workload"));
  const LabelPlan& sizes = plans->plan(IstioMetric::kResponseSize, RecordMode::kClient);
  EXPECT_EQ(sizes.sources[1].standard_index, 9u);
  EXPECT_EQ(sizes.sources[2].standard_index, 21u);
}

TEST(MetricLabelPlansTest, EveryDocumentedRecordFieldIsAccepted) {
  for (const RecordFieldName& field : kRecordFields) {
    EXPECT_EQ(ErrorOf("  overrides: [{tagOverrides: {x: {value: \"" +
                      std::string(field.expression) + "\"}}}]\n"),
              "")
        << field.expression;
  }
}

TEST(MetricLabelPlansTest, ErrorsNameThePath) {
  EXPECT_EQ(ErrorOf(R"(
  overrides:
    - tagOverrides: {a: {value: request.method}}
    - tagOverrides: {x: {operation: ADD, value: request.method}}
)"),
            "metrics.overrides[1].tagOverrides.x: unknown operation 'ADD' (UPSERT or REMOVE)");
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {x: {value: request.nope}}}]\n"),
              HasSubstr("metrics.overrides[0].tagOverrides.x.value: unknown record field "
                        "'request.nope' (known: request.method,"));
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {x: {value: string(destination.port)}}}]\n"),
              HasSubstr("unknown record field 'string(destination.port)'"));
  EXPECT_EQ(ErrorOf("  overrides: [{tagOverrides: {x: {}}}]\n"),
            "metrics.overrides[0].tagOverrides.x.value: required for operation UPSERT");
  EXPECT_EQ(ErrorOf("  overrides: [{tagOverrides: {x: {operation: REMOVE, value: "
                    "request.method}}}]\n"),
            "metrics.overrides[0].tagOverrides.x.value: not allowed with operation REMOVE");
  EXPECT_THAT(ErrorOf("  overrides: [{match: {metric: TCP_SENT_PACKETS}}]\n"),
              HasSubstr("metrics.overrides[0].match.metric: 'TCP_SENT_PACKETS' is not one of"));
  EXPECT_EQ(ErrorOf("  overrides: [{match: {mode: BOTH}}]\n"),
            "metrics.overrides[0].match.mode: 'BOTH' is not one of CLIENT, SERVER, "
            "CLIENT_AND_SERVER");
  EXPECT_EQ(ErrorOf("  overrides: [{match: {customMetric: foo}}]\n"),
            "metrics.overrides[0].match.customMetric: unknown key");
  EXPECT_EQ(ErrorOf("  overrides: [{disabled: maybe}]\n"),
            "metrics.overrides[0].disabled: 'maybe' is not true or false");
  EXPECT_EQ(ErrorOf("  overrides: [{tagOverrides: {x: {value: 'a', extra: 1}}}]\n"),
            "metrics.overrides[0].tagOverrides.x.extra: unknown key");
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {user-tier: {value: request.method}}}]\n"),
              HasSubstr("metrics.overrides[0].tagOverrides.user-tier: 'user-tier' is not a label "
                        "name"));
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {le: {value: request.method}}}]\n"),
              HasSubstr("metrics.overrides[0].tagOverrides.le: 'le' is reserved"));
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {__x: {value: request.method}}}]\n"),
              HasSubstr("is reserved"));
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {x: {value: \"request.headers[x-y]\"}}}]\n"),
              HasSubstr("metrics.overrides[0].tagOverrides.x.value: 'request.headers[x-y]' is "
                        "not a header lookup"));
  EXPECT_THAT(ErrorOf("  overrides: [{tagOverrides: {x: {value: \"''\"}}}]\n"),
              HasSubstr("an empty literal would drop the label"));
  EXPECT_EQ(ErrorOf("  keep_labels: [reporter, response_cod]\n"),
            "metrics.keep_labels[1]: 'response_cod' is neither a standard Istio label nor added "
            "by metrics.overrides");
  EXPECT_EQ(ErrorOf(R"(
  keep_labels: [reporter]
  overrides: [{tagOverrides: {user_tier: {value: "'gold'"}}}]
)"),
            "metrics.overrides[0].tagOverrides.user_tier: 'user_tier' is not in "
            "metrics.keep_labels, which would drop it");
  EXPECT_EQ(ErrorOf("  overrides: {match: {}}\n"), "metrics.overrides: must be a list");
}

TEST(EvaluateLabelTest, HeadersFieldsAndLiteralsWithUnknownForMissingValues) {
  meshtel::v1::RequestRecord record;
  record.set_method("POST");
  record.set_path("/cart/items?page=2");
  record.set_upstream_host("10.0.0.7:8080");
  record.set_response_code(503);
  auto* header = record.add_captured_headers();
  header->set_name("x-user-tier");
  header->set_value("gold");
  header = record.add_captured_headers();
  header->set_name("x-empty");
  IstioLabelScratch scratch;
  const auto standard = IstioRequestLabelValues(record, scratch);
  const auto eval = [&](const std::string& expression) {
    absl::StatusOr<MetricLabelPlans> plans =
        Compile("  overrides: [{tagOverrides: {x: {value: \"" + expression + "\"}}}]\n");
    EXPECT_TRUE(plans.ok()) << plans.status();
    if (!plans.ok()) return std::string();
    const LabelPlan& plan = plans->plan(IstioMetric::kRequestCount, RecordMode::kClient);
    return std::string(EvaluateLabel(plan.sources.back(), record, standard, scratch));
  };
  EXPECT_EQ(eval("request.headers['x-user-tier']"), "gold");
  EXPECT_EQ(eval("request.headers[\\\"X-User-Tier\\\"]"), "gold");
  EXPECT_EQ(eval("request.headers['x-missing']"), "unknown");
  EXPECT_EQ(eval("request.headers['x-empty']"), "unknown");
  EXPECT_EQ(eval("request.method"), "POST");
  EXPECT_EQ(eval("request.path"), "/cart/items?page=2");
  EXPECT_EQ(eval("request.url_path"), "/cart/items");
  EXPECT_EQ(eval("upstream.host"), "10.0.0.7:8080");
  EXPECT_EQ(eval("response.code"), "503");
  EXPECT_EQ(eval("response.flags"), "-");
  EXPECT_EQ(eval("source.workload"), "unknown");
  EXPECT_EQ(eval("'literal text'"), "literal text");
}

TEST(RecordModeTest, ReporterDecidesTheMode) {
  meshtel::v1::RequestRecord record;
  EXPECT_EQ(RecordModeOf(record), RecordMode::kUnspecified);
  record.set_reporter(meshtel::v1::REPORTER_SOURCE);
  EXPECT_EQ(RecordModeOf(record), RecordMode::kClient);
  record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
  EXPECT_EQ(RecordModeOf(record), RecordMode::kServer);
}

}  // namespace
}  // namespace meshtel::collector
