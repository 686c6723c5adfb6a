#include "collector/policy/telemetry_policy.h"

#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

constexpr char kMeshConfig[] = R"(apiVersion: meshtel.io/v1
kind: MeshConfig
spec:
  extensionProviders:
    - name: loki
      exporters: [loki-main]
    - name: tempo
      exporters: [tempo-otlp, jaeger-backup]
)";

std::string ErrorOf(std::string_view text) {
  absl::StatusOr<TelemetryPolicy> policy = TelemetryPolicy::Parse(text, "p.yaml");
  if (policy.ok()) return "(valid)";
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(policy.status().message());
}

TelemetryPolicy MustParse(std::string_view text) {
  absl::StatusOr<TelemetryPolicy> policy = TelemetryPolicy::Parse(text, "p.yaml");
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *std::move(policy) : TelemetryPolicy();
}

// A Telemetry resource named `ns/name` with `body` under spec (indented by 2).
std::string Telemetry(const std::string& ns, const std::string& name, const std::string& body) {
  return "---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: " + name +
         ", namespace: " + ns + "}\nspec:\n" + body;
}

const TracingPolicy& Client(const WorkloadPolicy& policy) {
  return policy.tracing[static_cast<size_t>(PolicySide::kClient)];
}
const TracingPolicy& Server(const WorkloadPolicy& policy) {
  return policy.tracing[static_cast<size_t>(PolicySide::kServer)];
}
const AccessLogPolicy& ClientLog(const WorkloadPolicy& policy) {
  return policy.access_logging[static_cast<size_t>(PolicySide::kClient)];
}
const AccessLogPolicy& ServerLog(const WorkloadPolicy& policy) {
  return policy.access_logging[static_cast<size_t>(PolicySide::kServer)];
}

PolicyWorkload Workload(const std::string& ns, std::map<std::string, std::string> labels) {
  return PolicyWorkload{ns, "w", std::move(labels)};
}

TEST(TelemetryPolicy, AnEmptyFileIsAnEmptyPolicy) {
  const TelemetryPolicy policy = MustParse("");
  EXPECT_EQ(policy.resource_count(), 0u);
  EXPECT_EQ(policy.mesh().root_namespace, "istio-system");
  const WorkloadPolicy resolved = policy.Resolve(Workload("shop", {{"app", "a"}}));
  EXPECT_TRUE(resolved.applied.empty());
  EXPECT_EQ(Client(resolved), TracingPolicy());
  EXPECT_FALSE(ClientLog(resolved).format.has_value());
  EXPECT_TRUE(resolved.metrics.overrides.empty());
}

TEST(TelemetryPolicy, ParsesEveryField) {
  const std::string text = std::string(R"(apiVersion: meshtel.io/v1
kind: MeshConfig
metadata: {name: mesh}
spec:
  rootNamespace: mesh-root
  accessLogEncoding: TEXT
  accessLogFormat: "%RESPONSE_CODE% %REQ(:PATH)%"
  defaultConfig: {tracing: {sampling: 2.5}}
  extensionProviders:
    - name: loki
      exporters: [loki-main]
    - name: tempo
      exporters: [tempo-otlp]
  defaultProviders: {tracing: [tempo], metrics: [prometheus], accessLogging: [loki]}
)") + Telemetry("shop", "reviews", R"(  selector: {matchLabels: {app: reviews}}
  tracing:
    - match: {mode: CLIENT_AND_SERVER}
      providers: [{name: tempo}]
      randomSamplingPercentage: 12.25
      disableSpanReporting: true
      customTags:
        tier: {literal: {value: gold}}
        user: {header: {name: X-User, defaultValue: anonymous}}
        pod: {environment: {name: POD_NAME, defaultValue: none}}
        route: {formatter: {value: "%ROUTE_NAME%"}}
      phaseSpans: true
  metrics:
    - providers: [{name: prometheus}]
      overrides:
        - match: {metric: REQUEST_COUNT, mode: CLIENT}
          tagOverrides: {user_tier: {value: "request.headers['x-user-tier']"}}
        - match: {metric: GRPC_REQUEST_MESSAGES}
          disabled: true
  accessLogging:
    - match: {mode: SERVER}
      providers: [{name: loki}]
      filter: {expression: "response.code >= 500"}
      disabled: false
      logFormat: {text: "%RESPONSE_CODE% %REQ(:PATH)%"}
    - match: {mode: CLIENT}
      logFormat: {labels: {code: "%RESPONSE_CODE%", path: "%REQ(:PATH)%"}}
)");
  const TelemetryPolicy policy = MustParse(text);
  EXPECT_EQ(policy.resource_count(), 1u);

  const MeshDefaults& mesh = policy.mesh();
  EXPECT_EQ(mesh.root_namespace, "mesh-root");
  ASSERT_TRUE(mesh.access_log.has_value());
  EXPECT_EQ(mesh.access_log->encoding, AccessLogEncoding::kText);
  // As Istio, a final newline is added.
  EXPECT_EQ(mesh.access_log->format, "%RESPONSE_CODE% %REQ(:PATH)%\n");
  EXPECT_EQ(mesh.default_sampling_percentage, 2.5);
  ASSERT_EQ(mesh.extension_providers.size(), 2u);
  EXPECT_EQ(mesh.extension_providers[0].name, "loki");
  EXPECT_EQ(mesh.extension_providers[0].exporters, std::vector<std::string>{"loki-main"});
  EXPECT_EQ(mesh.extension_providers[1].name, "tempo");
  EXPECT_EQ(mesh.default_tracing_providers, std::vector<std::string>{"tempo"});
  EXPECT_EQ(mesh.default_metrics_providers, std::vector<std::string>{"prometheus"});
  EXPECT_EQ(mesh.default_access_log_providers, std::vector<std::string>{"loki"});

  const WorkloadPolicy resolved = policy.Resolve(Workload("shop", {{"app", "reviews"}}));
  EXPECT_EQ(resolved.applied, std::vector<std::string>{"shop/reviews"});
  for (const TracingPolicy& tracing : resolved.tracing) {
    EXPECT_EQ(tracing.random_sampling_percentage, 12.25);
    EXPECT_TRUE(tracing.disable_span_reporting);
    EXPECT_EQ(tracing.phase_spans, true);
    EXPECT_EQ(tracing.providers, std::vector<std::string>{"tempo"});
    // Sorted by name; header names lower-cased.
    EXPECT_EQ(tracing.custom_tags, (std::vector<CustomTag>{
                                       {"pod", CustomTag::Kind::kEnvironment, "POD_NAME", "none"},
                                       {"route", CustomTag::Kind::kFormatter, "%ROUTE_NAME%", ""},
                                       {"tier", CustomTag::Kind::kLiteral, "gold", ""},
                                       {"user", CustomTag::Kind::kHeader, "x-user", "anonymous"},
                                   }));
  }

  ASSERT_EQ(resolved.metrics.overrides.size(), 2u);
  EXPECT_EQ(resolved.metrics.providers, std::vector<std::string>{"prometheus"});
  const MetricOverrideConfig& first = resolved.metrics.overrides[0];
  EXPECT_EQ(first.metric, IstioMetric::kRequestCount);
  EXPECT_EQ(first.mode, WorkloadMode::kClient);
  EXPECT_FALSE(first.disabled.has_value());
  ASSERT_EQ(first.tag_overrides.size(), 1u);
  EXPECT_EQ(first.tag_overrides[0].label, "user_tier");
  EXPECT_EQ(first.tag_overrides[0].value, "request.headers['x-user-tier']");
  EXPECT_FALSE(first.tag_overrides[0].remove);
  // Paths name the resource, for errors met when the enforcer combines them.
  EXPECT_EQ(first.path, "Telemetry shop/reviews spec.metrics[0].overrides[0]");
  EXPECT_EQ(first.tag_overrides[0].path,
            "Telemetry shop/reviews spec.metrics[0].overrides[0].tagOverrides.user_tier");
  EXPECT_EQ(resolved.metrics.overrides[1].metric, IstioMetric::kGrpcRequestMessages);
  EXPECT_EQ(resolved.metrics.overrides[1].disabled, true);
  EXPECT_TRUE(CompileMetricLabelPlans(resolved.metrics.overrides, std::nullopt).ok());

  const AccessLogPolicy& server = ServerLog(resolved);
  EXPECT_FALSE(server.disabled);
  EXPECT_EQ(server.filter, "response.code >= 500");
  EXPECT_EQ(server.providers, std::vector<std::string>{"loki"});
  ASSERT_TRUE(server.format.has_value());
  EXPECT_EQ(server.format->encoding, AccessLogEncoding::kText);
  EXPECT_EQ(server.format->format, "%RESPONSE_CODE% %REQ(:PATH)%\n");
  const AccessLogPolicy& client = ClientLog(resolved);
  EXPECT_EQ(client.filter, "");
  EXPECT_TRUE(client.providers.empty());
  ASSERT_TRUE(client.format.has_value());
  EXPECT_EQ(client.format->encoding, AccessLogEncoding::kJson);
  EXPECT_EQ(
      client.format->json_format,
      (std::vector<AccessLogJsonField>{{"code", "%RESPONSE_CODE%"}, {"path", "%REQ(:PATH)%"}}));
  EXPECT_TRUE(client.format->Compile().ok());

  // Another workload of the namespace: nothing applies, but the MeshConfig's format does.
  const WorkloadPolicy other = policy.Resolve(Workload("shop", {{"app", "cart"}}));
  EXPECT_TRUE(other.applied.empty());
  EXPECT_FALSE(Client(other).random_sampling_percentage.has_value());
  ASSERT_TRUE(ClientLog(other).format.has_value());
  EXPECT_EQ(ClientLog(other).format->format, "%RESPONSE_CODE% %REQ(:PATH)%\n");
}

TEST(TelemetryPolicy, Telemetryv1alpha1AndKubernetesMetadataAreAccepted) {
  const TelemetryPolicy policy = MustParse(R"(apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata:
  name: default
  namespace: istio-system
  uid: 0b7c2a4e
  resourceVersion: "123"
  generation: 2
  creationTimestamp: "2026-01-01T00:00:00Z"
  labels: {team: sre}
  annotations: {note: x}
spec:
  tracing: [{randomSamplingPercentage: 1}]
status: {observedGeneration: 2}
)");
  EXPECT_EQ(policy.resource_count(), 1u);
  EXPECT_EQ(Client(policy.Resolve(Workload("shop", {}))).random_sampling_percentage, 1.0);
}

TEST(TelemetryPolicy, KindListCountsAsItsItems) {
  const TelemetryPolicy policy = MustParse(std::string(R"(apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
  - apiVersion: meshtel.io/v1
    kind: MeshConfig
    spec:
      extensionProviders: [{name: loki, exporters: [loki-main]}]
  - apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: default, namespace: istio-system}
    spec:
      accessLogging: [{providers: [{name: loki}]}]
  - apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: default, namespace: shop}
    spec:
      tracing: [{randomSamplingPercentage: 50}]
)"));
  EXPECT_EQ(policy.resource_count(), 2u);
  const WorkloadPolicy resolved = policy.Resolve(Workload("shop", {}));
  EXPECT_EQ(resolved.applied, (std::vector<std::string>{"istio-system/default", "shop/default"}));
  EXPECT_EQ(ServerLog(resolved).providers, std::vector<std::string>{"loki"});
  EXPECT_EQ(Server(resolved).random_sampling_percentage, 50.0);

  // Errors inside a List name the item.
  EXPECT_EQ(ErrorOf(R"(apiVersion: v1
kind: List
items:
  - apiVersion: telemetry.istio.io/v1
    kind: Telemetry
    metadata: {name: a, namespace: shop}
    spec: {tracing: [{randomSamplingPercentage: -1}]}
)"),
            "p.yaml: document 1 items[0] (Telemetry shop/a): spec.tracing[0]."
            "randomSamplingPercentage: -1 is not in [0,100]");
  EXPECT_EQ(ErrorOf("apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: List}\n"),
            "p.yaml: document 1 items[0]: kind: 'List' is not Telemetry or MeshConfig");
}

TEST(TelemetryPolicy, JsonAccessLogFormatIsAJsonObjectOfStrings) {
  const TelemetryPolicy policy = MustParse(R"(apiVersion: meshtel.io/v1
kind: MeshConfig
spec:
  accessLogEncoding: JSON
  accessLogFormat: '{"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%", "at": "%START_TIME%"}'
)");
  ASSERT_TRUE(policy.mesh().access_log.has_value());
  EXPECT_EQ(policy.mesh().access_log->encoding, AccessLogEncoding::kJson);
  EXPECT_EQ(policy.mesh().access_log->format, "");
  // In document order.
  EXPECT_EQ(policy.mesh().access_log->json_format,
            (std::vector<AccessLogJsonField>{
                {"code", "%RESPONSE_CODE%"}, {"path", "%REQ(:PATH)%"}, {"at", "%START_TIME%"}}));
  EXPECT_TRUE(policy.mesh().access_log->Compile().ok());
  // Every workload's access log takes it.
  const WorkloadPolicy resolved = policy.Resolve(Workload("shop", {}));
  ASSERT_TRUE(ClientLog(resolved).format.has_value());
  EXPECT_EQ(ClientLog(resolved).format->encoding, AccessLogEncoding::kJson);

  // JSON with an empty format: Istio's default keys (an empty json_format).
  const TelemetryPolicy defaults =
      MustParse("apiVersion: meshtel.io/v1\nkind: MeshConfig\nspec: {accessLogEncoding: JSON}\n");
  ASSERT_TRUE(defaults.mesh().access_log.has_value());
  EXPECT_EQ(defaults.mesh().access_log->encoding, AccessLogEncoding::kJson);
  EXPECT_TRUE(defaults.mesh().access_log->json_format.empty());

  // Neither set: the collector's own access_log block stays in force.
  EXPECT_FALSE(MustParse("apiVersion: meshtel.io/v1\nkind: MeshConfig\nspec: {}\n")
                   .mesh()
                   .access_log.has_value());
}

TEST(TelemetryPolicy, DigestIsStableAndFollowsTheText) {
  const std::string text = std::string(kMeshConfig);
  const TelemetryPolicy a = MustParse(text);
  const TelemetryPolicy b = MustParse(text);
  const TelemetryPolicy c = MustParse(text + "# changed\n");
  EXPECT_EQ(a.digest().size(), 16u);
  EXPECT_EQ(a.digest().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a.digest(), b.digest());
  EXPECT_NE(a.digest(), c.digest());
  // FNV-1a 64 of the empty text is its offset basis.
  EXPECT_EQ(MustParse("").digest(), "cbf29ce484222325");
}

TEST(TelemetryPolicy, LoadNamesTheFile) {
  const std::string dir = testing::MakeTempDir("policy");
  absl::StatusOr<TelemetryPolicy> missing = TelemetryPolicy::Load(dir + "/none.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), dir + "/none.yaml: cannot open the file");

  testing::WriteFile(dir + "/bad.yaml",
                     "apiVersion: meshtel.io/v1\nkind: MeshConfig\nspec: {x: 1}\n");
  absl::StatusOr<TelemetryPolicy> bad = TelemetryPolicy::Load(dir + "/bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            dir + "/bad.yaml: document 1 (MeshConfig): spec.x: unknown key");

  testing::WriteFile(dir + "/good.yaml", kMeshConfig);
  absl::StatusOr<TelemetryPolicy> good = TelemetryPolicy::Load(dir + "/good.yaml");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->digest(), MustParse(kMeshConfig).digest());
}

struct BadPolicy {
  const char* name;
  std::string text;
  std::string error;
};

void PrintTo(const BadPolicy& bad, std::ostream* out) { *out << bad.name; }

class TelemetryPolicyErrors : public ::testing::TestWithParam<BadPolicy> {};

TEST_P(TelemetryPolicyErrors, NameTheDocumentAndThePath) {
  EXPECT_EQ(ErrorOf(GetParam().text), GetParam().error);
}

std::string Mesh(const std::string& spec) {
  return "apiVersion: meshtel.io/v1\nkind: MeshConfig\nspec:\n" + spec;
}

// A Telemetry shop/reviews as document 2, after kMeshConfig.
std::string Reviews(const std::string& body) {
  return std::string(kMeshConfig) + Telemetry("shop", "reviews", body);
}

constexpr char kReviews[] = "p.yaml: document 2 (Telemetry shop/reviews): ";

INSTANTIATE_TEST_SUITE_P(
    Validation, TelemetryPolicyErrors,
    ::testing::Values(
        BadPolicy{"SamplingAbove100", Reviews("  tracing: [{randomSamplingPercentage: 140}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].randomSamplingPercentage: 140 is not in [0,100]"},
        BadPolicy{"SamplingFinerThanHundredths",
                  Reviews("  tracing: [{randomSamplingPercentage: 0.005}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].randomSamplingPercentage: 0.005 is finer than the 0.01 "
                      "steps allowed"},
        BadPolicy{"SamplingNotANumber", Reviews("  tracing: [{randomSamplingPercentage: half}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].randomSamplingPercentage: 'half' is not a number"},
        BadPolicy{"MeshSamplingAbove100", Mesh("  defaultConfig: {tracing: {sampling: 101}}\n"),
                  "p.yaml: document 1 (MeshConfig): spec.defaultConfig.tracing.sampling: 101 is "
                  "not in [0,100]"},
        BadPolicy{"UnknownTracingField", Reviews("  tracing: [{sampling: 1}]\n"),
                  std::string(kReviews) + "spec.tracing[0].sampling: unknown key"},
        BadPolicy{"IstioFieldMeshtelDoesNotImplement",
                  Reviews("  tracing: [{useRequestIdForTraceSampling: true}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].useRequestIdForTraceSampling: not supported by meshtel "
                      "(the proxy samples at random)"},
        BadPolicy{"TargetRefs", Reviews("  targetRefs: [{kind: Gateway, name: gw}]\n"),
                  std::string(kReviews) +
                      "spec.targetRefs: not supported by meshtel (workloads are selected by "
                      "selector.matchLabels)"},
        BadPolicy{"UnknownSpecField", Reviews("  logging: []\n"),
                  std::string(kReviews) + "spec.logging: unknown key"},
        BadPolicy{"UnknownTopLevelField",
                  std::string(kMeshConfig) + "---\napiVersion: telemetry.istio.io/v1\nkind: "
                                             "Telemetry\nmetadata: {name: a, namespace: b}\n"
                                             "specs: {}\n",
                  "p.yaml: document 2 (Telemetry b/a): specs: unknown key"},
        BadPolicy{"UnknownMetadataField",
                  "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: a, "
                  "namespace: b, nmae: c}\n",
                  "p.yaml: document 1 (Telemetry b/a): metadata.nmae: unknown key"},
        BadPolicy{"UnknownMeshConfigField", Mesh("  accessLogFile: /dev/stdout\n"),
                  "p.yaml: document 1 (MeshConfig): spec.accessLogFile: unknown key"},
        BadPolicy{"UnknownKind", "apiVersion: v1\nkind: ConfigMap\n",
                  "p.yaml: document 1: kind: 'ConfigMap' is not Telemetry, MeshConfig or List"},
        BadPolicy{"MissingKind", "apiVersion: v1\n",
                  "p.yaml: document 1: kind: required (Telemetry, MeshConfig or List)"},
        BadPolicy{"NotAMapping", "- a\n- b\n",
                  "p.yaml: document 1: must be a mapping with apiVersion, kind, metadata and spec"},
        BadPolicy{"TelemetryApiVersion",
                  "apiVersion: telemetry.istio.io/v2\nkind: Telemetry\nmetadata: {name: a, "
                  "namespace: b}\n",
                  "p.yaml: document 1 (Telemetry b/a): apiVersion: 'telemetry.istio.io/v2' is not "
                  "telemetry.istio.io/v1 or telemetry.istio.io/v1alpha1"},
        BadPolicy{"MeshConfigApiVersion", "apiVersion: install.istio.io/v1\nkind: MeshConfig\n",
                  "p.yaml: document 1 (MeshConfig): apiVersion: 'install.istio.io/v1' is not "
                  "meshtel.io/v1"},
        BadPolicy{"ListApiVersion", "apiVersion: v2\nkind: List\nitems: []\n",
                  "p.yaml: document 1: apiVersion: 'v2' is not v1 (kind List)"},
        BadPolicy{"MissingName",
                  "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {namespace: b}\n",
                  "p.yaml: document 1 (Telemetry): metadata.name: required"},
        BadPolicy{"MissingNamespace",
                  "apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: a}\n",
                  "p.yaml: document 1 (Telemetry): metadata.namespace: required"},
        BadPolicy{"SecondMeshConfig", std::string(kMeshConfig) + "---\n" + kMeshConfig,
                  "p.yaml: document 2 (MeshConfig): a second MeshConfig (the first is document "
                  "1)"},
        BadPolicy{
            "TwoNamespaceWideResources",
            Telemetry("shop", "a", "  tracing: []\n") + Telemetry("shop", "b", "  tracing: []\n"),
            "p.yaml: document 2 (Telemetry shop/b): a second Telemetry without selector in "
            "namespace shop (the first is shop/a, document 1)"},
        BadPolicy{"DuplicateName",
                  Telemetry("shop", "a", "  selector: {matchLabels: {app: x}}\n") +
                      Telemetry("shop", "a", "  selector: {matchLabels: {app: y}}\n"),
                  "p.yaml: document 2 (Telemetry shop/a): a second Telemetry shop/a (the first is "
                  "document 1)"},
        BadPolicy{"EmptySelector", Reviews("  selector: {matchLabels: {}}\n"),
                  std::string(kReviews) +
                      "spec.selector.matchLabels: must name at least one label (leave out "
                      "selector for the whole namespace)"},
        BadPolicy{"UnknownProvider", Reviews("  tracing: [{providers: [{name: zipkin}]}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].providers[0].name: no provider named 'zipkin' in the "
                      "MeshConfig's extensionProviders"},
        BadPolicy{"ProviderWithoutMeshConfig",
                  Telemetry("shop", "a", "  accessLogging: [{providers: [{name: loki}]}]\n"),
                  "p.yaml: document 1 (Telemetry shop/a): spec.accessLogging[0].providers[0].name: "
                  "no provider named 'loki' in the MeshConfig's extensionProviders"},
        BadPolicy{"PrometheusIsMetricsOnly",
                  Reviews("  accessLogging: [{providers: [{name: prometheus}]}]\n"),
                  std::string(kReviews) +
                      "spec.accessLogging[0].providers[0].name: 'prometheus' is a metrics "
                      "provider, not one for access logs"},
        BadPolicy{"UnknownDefaultProvider", Mesh("  defaultProviders: {tracing: [tempo]}\n"),
                  "p.yaml: document 1 (MeshConfig): spec.defaultProviders.tracing[0]: no provider "
                  "named 'tempo' in the MeshConfig's extensionProviders"},
        BadPolicy{"ProviderNamedPrometheus",
                  Mesh("  extensionProviders: [{name: prometheus, exporters: [x]}]\n"),
                  "p.yaml: document 1 (MeshConfig): spec.extensionProviders[0].name: "
                  "'prometheus' is built in (the collector's metrics)"},
        BadPolicy{"DuplicateProvider",
                  Mesh("  extensionProviders: [{name: a, exporters: [x]}, {name: a, exporters: "
                       "[y]}]\n"),
                  "p.yaml: document 1 (MeshConfig): spec.extensionProviders[1].name: a second "
                  "provider named 'a'"},
        BadPolicy{"ProviderWithoutExporters", Mesh("  extensionProviders: [{name: a}]\n"),
                  "p.yaml: document 1 (MeshConfig): spec.extensionProviders[0].exporters: must "
                  "name at least one of the collector's exporters"},
        BadPolicy{"IstioProviderBlock",
                  Mesh("  extensionProviders: [{name: a, exporters: [x], opentelemetry: {port: "
                       "4317}}]\n"),
                  "p.yaml: document 1 (MeshConfig): spec.extensionProviders[0].opentelemetry: "
                  "unknown key"},
        BadPolicy{"CustomTagWithTwoKinds",
                  Reviews("  tracing:\n    - customTags:\n        t: {literal: {value: a}, "
                          "environment: {name: B}}\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].customTags.t: needs exactly one of literal, header, "
                      "environment or formatter (has 2)"},
        BadPolicy{"CustomTagWithNoKind", Reviews("  tracing: [{customTags: {t: {}}}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].customTags.t: needs exactly one of literal, header, "
                      "environment or formatter (has 0)"},
        BadPolicy{"CustomTagHeaderWithoutName",
                  Reviews("  tracing: [{customTags: {t: {header: {defaultValue: x}}}}]\n"),
                  std::string(kReviews) + "spec.tracing[0].customTags.t.header.name: required"},
        BadPolicy{"CustomTagUnknownField",
                  Reviews("  tracing: [{customTags: {t: {literal: {value: a, name: b}}}}]\n"),
                  std::string(kReviews) + "spec.tracing[0].customTags.t.literal.name: unknown key"},
        BadPolicy{"CustomTagFormatterDoesNotCompile",
                  Reviews("  tracing: [{customTags: {t: {formatter: {value: \"%FOO%\"}}}}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].customTags.t.formatter.value: unknown operator %FOO% at "
                      "offset 0"},
        BadPolicy{"BadMode", Reviews("  tracing: [{match: {mode: BOTH}}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].match.mode: 'BOTH' is not one of CLIENT, SERVER, "
                      "CLIENT_AND_SERVER"},
        BadPolicy{"BadBool", Reviews("  tracing: [{disableSpanReporting: yes}]\n"),
                  std::string(kReviews) +
                      "spec.tracing[0].disableSpanReporting: 'yes' is not true or false"},
        BadPolicy{"TagOverrideDoesNotCompile",
                  Reviews("  metrics:\n    - overrides:\n        - tagOverrides: {x: {value: "
                          "request.nope}}\n"),
                  std::string(kReviews) +
                      "spec.metrics[0].overrides[0].tagOverrides.x.value: unknown record field "
                      "'request.nope' (known: " +
                      [] {
                        std::string known;
                        for (const RecordFieldName& field : kRecordFields) {
                          if (!known.empty()) known += ", ";
                          known += std::string(field.expression);
                        }
                        return known;
                      }() +
                      ", request.headers['<name>'], '<literal>')"},
        BadPolicy{"TagOverrideBadOperation",
                  Reviews("  metrics:\n    - overrides:\n        - tagOverrides: {x: {operation: "
                          "ADD}}\n"),
                  std::string(kReviews) +
                      "spec.metrics[0].overrides[0].tagOverrides.x: unknown operation 'ADD' "
                      "(UPSERT or REMOVE)"},
        BadPolicy{"TagOverrideReservedLabel",
                  Reviews("  metrics: [{overrides: [{tagOverrides: {le: {value: \"'1'\"}}}]}]\n"),
                  std::string(kReviews) +
                      "spec.metrics[0].overrides[0].tagOverrides.le: 'le' is reserved (names "
                      "starting with __, and le of histogram buckets)"},
        BadPolicy{"UnknownMetric",
                  Reviews("  metrics: [{overrides: [{match: {metric: REQUESTS}}]}]\n"),
                  std::string(kReviews) +
                      "spec.metrics[0].overrides[0].match.metric: 'REQUESTS' is not one of "
                      "REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE, "
                      "GRPC_REQUEST_MESSAGES, GRPC_RESPONSE_MESSAGES, TCP_SENT_BYTES, "
                      "TCP_RECEIVED_BYTES, TCP_OPENED_CONNECTIONS, TCP_CLOSED_CONNECTIONS, "
                      "ALL_METRICS"},
        BadPolicy{"KeepLabelsIsTheCollectors", Reviews("  metrics: [{keep_labels: [reporter]}]\n"),
                  std::string(kReviews) +
                      "spec.metrics[0].keep_labels: unknown key (keep_labels is the collector's "
                      "metrics.keep_labels)"},
        BadPolicy{"LogFormatTextDoesNotCompile",
                  Reviews("  accessLogging: [{logFormat: {text: \"%CODE% x\"}}]\n"),
                  std::string(kReviews) +
                      "spec.accessLogging[0].logFormat.text: unknown operator %CODE% at offset 0"},
        BadPolicy{"LogFormatLabelsDoNotCompile",
                  Reviews("  accessLogging: [{logFormat: {labels: {a: \"%A%\"}}}]\n"),
                  std::string(kReviews) +
                      "spec.accessLogging[0].logFormat.labels.a: unknown operator %A% at offset 0"},
        BadPolicy{"LogFormatBoth",
                  Reviews("  accessLogging: [{logFormat: {text: x, labels: {a: b}}}]\n"),
                  std::string(kReviews) +
                      "spec.accessLogging[0].logFormat: needs exactly one of text or labels"},
        BadPolicy{"FilterWithoutExpression", Reviews("  accessLogging: [{filter: {}}]\n"),
                  std::string(kReviews) + "spec.accessLogging[0].filter.expression: required"},
        BadPolicy{"FilterThatDoesNotCompile",
                  Reviews("  accessLogging: [{filter: {expression: \"response.cod >= 400\"}}]\n"),
                  std::string(kReviews) +
                      "spec.accessLogging[0].filter.expression: unknown attribute 'response.cod' "
                      "at offset 0"},
        BadPolicy{"MeshFormatDoesNotCompile", Mesh("  accessLogFormat: \"%NOPE%\"\n"),
                  "p.yaml: document 1 (MeshConfig): spec.accessLogFormat: unknown operator "
                  "%NOPE% at offset 0"},
        BadPolicy{"MeshEncoding", Mesh("  accessLogEncoding: XML\n"),
                  "p.yaml: document 1 (MeshConfig): spec.accessLogEncoding: 'XML' is not TEXT or "
                  "JSON"},
        BadPolicy{"MeshJsonFormatNotAnObject",
                  Mesh("  accessLogEncoding: JSON\n  accessLogFormat: \"%RESPONSE_CODE%\"\n"),
                  "p.yaml: document 1 (MeshConfig): spec.accessLogFormat: with accessLogEncoding "
                  "JSON, must be a JSON object such as '{\"code\": \"%RESPONSE_CODE%\"}'"},
        BadPolicy{"MeshJsonFormatValueNotAString",
                  Mesh("  accessLogEncoding: JSON\n  accessLogFormat: '{\"a\": \"%PROTOCOL%\", "
                       "\"b\": 5}'\n"),
                  "p.yaml: document 1 (MeshConfig): spec.accessLogFormat.b: must be a string (an "
                  "Envoy format string)"},
        BadPolicy{"MeshJsonFormatDoesNotCompile",
                  Mesh("  accessLogEncoding: JSON\n  accessLogFormat: '{\"a\": \"%B%\"}'\n"),
                  "p.yaml: document 1 (MeshConfig): spec.accessLogFormat.a: unknown operator %B% "
                  "at offset 0"},
        BadPolicy{"MeshRootNamespaceEmpty", Mesh("  rootNamespace: \"\"\n"),
                  "p.yaml: document 1 (MeshConfig): spec.rootNamespace: must not be empty"}),
    [](const ::testing::TestParamInfo<BadPolicy>& info) { return std::string(info.param.name); });

TEST(TelemetryPolicy, YamlSyntaxErrorsNameTheSource) {
  const std::string error = ErrorOf("apiVersion: [\n");
  EXPECT_TRUE(error.starts_with("p.yaml: yaml-cpp: error at line")) << error;
}

// Resolution.

constexpr char kLayers[] = R"(apiVersion: meshtel.io/v1
kind: MeshConfig
spec:
  rootNamespace: mesh-root
  extensionProviders:
    - {name: loki, exporters: [loki-main]}
    - {name: fluent, exporters: [fluentd]}
    - {name: tempo, exporters: [tempo-otlp]}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: mesh-root}
spec:
  tracing:
    - randomSamplingPercentage: 1
      customTags:
        cluster: {literal: {value: east}}
        user: {header: {name: x-user}}
      providers: [{name: tempo}]
  metrics:
    - overrides:
        - match: {metric: REQUEST_COUNT}
          disabled: true
  accessLogging:
    - providers: [{name: loki}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: shop-default, namespace: shop}
spec:
  tracing:
    - randomSamplingPercentage: 10
  metrics:
    - overrides:
        - tagOverrides: {response_flags: {operation: REMOVE}}
  accessLogging:
    - match: {mode: CLIENT}
      disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing:
    - match: {mode: SERVER}
      randomSamplingPercentage: 100
      customTags:
        tier: {literal: {value: gold}}
  metrics:
    - overrides:
        - match: {metric: REQUEST_COUNT}
          disabled: false
  accessLogging:
    - match: {mode: SERVER}
      filter: {expression: "response.code >= 500"}
      providers: [{name: fluent}]
      logFormat: {text: "%RESPONSE_CODE%\n"}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews-v2, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  tracing:
    - match: {mode: CLIENT}
      disableSpanReporting: true
      phaseSpans: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: other}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing: [{randomSamplingPercentage: 42}]
)";

TEST(TelemetryPolicyResolve, MeshThenNamespaceThenWorkload) {
  const TelemetryPolicy policy = MustParse(kLayers);
  EXPECT_EQ(policy.resource_count(), 5u);

  // Only the mesh-wide resource: a namespace without its own and a workload no selector picks.
  const WorkloadPolicy mesh_only = policy.Resolve(Workload("billing", {{"app", "reviews"}}));
  EXPECT_EQ(mesh_only.applied, std::vector<std::string>{"mesh-root/mesh-default"});
  for (const TracingPolicy& tracing : mesh_only.tracing) {
    EXPECT_EQ(tracing.random_sampling_percentage, 1.0);
    EXPECT_EQ(tracing.providers, std::vector<std::string>{"tempo"});
    ASSERT_EQ(tracing.custom_tags.size(), 2u);
    EXPECT_EQ(tracing.custom_tags[0].name, "cluster");
    EXPECT_EQ(tracing.custom_tags[1].name, "user");
  }
  for (const AccessLogPolicy& logging : mesh_only.access_logging) {
    EXPECT_FALSE(logging.disabled);
    EXPECT_EQ(logging.providers, std::vector<std::string>{"loki"});
  }
  ASSERT_EQ(mesh_only.metrics.overrides.size(), 1u);
  EXPECT_EQ(mesh_only.metrics.overrides[0].disabled, true);

  // The namespace's resource overrides the mesh's; a workload the selector does not match.
  const WorkloadPolicy cart = policy.Resolve(Workload("shop", {{"app", "cart"}}));
  EXPECT_EQ(cart.applied,
            (std::vector<std::string>{"mesh-root/mesh-default", "shop/shop-default"}));
  EXPECT_EQ(Client(cart).random_sampling_percentage, 10.0);
  EXPECT_EQ(Server(cart).random_sampling_percentage, 10.0);
  // Not given by the namespace: the mesh's stand.
  EXPECT_EQ(Client(cart).custom_tags.size(), 2u);
  EXPECT_EQ(Client(cart).providers, std::vector<std::string>{"tempo"});
  // CLIENT and SERVER apart: only the client side's access log is off.
  EXPECT_TRUE(ClientLog(cart).disabled);
  EXPECT_FALSE(ServerLog(cart).disabled);
  ASSERT_EQ(cart.metrics.overrides.size(), 2u);  // mesh first
  EXPECT_EQ(cart.metrics.overrides[0].disabled, true);
  EXPECT_EQ(cart.metrics.overrides[1].tag_overrides[0].label, "response_flags");

  // The workload's resource.
  const WorkloadPolicy reviews =
      policy.Resolve(Workload("shop", {{"app", "reviews"}, {"version", "v1"}}));
  EXPECT_EQ(reviews.applied, (std::vector<std::string>{"mesh-root/mesh-default",
                                                       "shop/shop-default", "shop/reviews"}));
  // mode SERVER: the client side keeps the namespace's rate.
  EXPECT_EQ(Client(reviews).random_sampling_percentage, 10.0);
  EXPECT_EQ(Server(reviews).random_sampling_percentage, 100.0);
  // customTags given replace the parent's whole map.
  EXPECT_EQ(Server(reviews).custom_tags,
            (std::vector<CustomTag>{{"tier", CustomTag::Kind::kLiteral, "gold", ""}}));
  EXPECT_EQ(Client(reviews).custom_tags.size(), 2u);
  // Overrides appended: the workload's disabled: false comes after the mesh's disabled: true.
  ASSERT_EQ(reviews.metrics.overrides.size(), 3u);
  EXPECT_EQ(reviews.metrics.overrides[0].disabled, true);
  EXPECT_EQ(reviews.metrics.overrides[2].disabled, false);
  absl::StatusOr<MetricLabelPlans> plans =
      CompileMetricLabelPlans(reviews.metrics.overrides, std::nullopt);
  ASSERT_TRUE(plans.ok()) << plans.status();
  EXPECT_FALSE(plans->plan(IstioMetric::kRequestCount, RecordMode::kServer).disabled);
  absl::StatusOr<MetricLabelPlans> cart_plans =
      CompileMetricLabelPlans(cart.metrics.overrides, std::nullopt);
  ASSERT_TRUE(cart_plans.ok()) << cart_plans.status();
  EXPECT_TRUE(cart_plans->plan(IstioMetric::kRequestCount, RecordMode::kServer).disabled);
  // Access logs: the server side gets the workload's filter, provider and format.
  EXPECT_EQ(ServerLog(reviews).filter, "response.code >= 500");
  EXPECT_EQ(ServerLog(reviews).providers, std::vector<std::string>{"fluent"});
  ASSERT_TRUE(ServerLog(reviews).format.has_value());
  EXPECT_EQ(ServerLog(reviews).format->format, "%RESPONSE_CODE%\n");
  EXPECT_TRUE(ClientLog(reviews).disabled);
  EXPECT_EQ(ClientLog(reviews).filter, "");
  EXPECT_EQ(ClientLog(reviews).providers, std::vector<std::string>{"loki"});
  EXPECT_FALSE(ClientLog(reviews).format.has_value());
  EXPECT_FALSE(Client(reviews).disable_span_reporting);
  EXPECT_FALSE(Client(reviews).phase_spans.has_value());

  // Two selectors match: applied in name order ("reviews" before "reviews-v2").
  const WorkloadPolicy v2 =
      policy.Resolve(Workload("shop", {{"app", "reviews"}, {"version", "v2"}}));
  EXPECT_EQ(v2.applied, (std::vector<std::string>{"mesh-root/mesh-default", "shop/shop-default",
                                                  "shop/reviews", "shop/reviews-v2"}));
  EXPECT_TRUE(Client(v2).disable_span_reporting);
  EXPECT_EQ(Client(v2).phase_spans, true);
  EXPECT_FALSE(Server(v2).disable_span_reporting);
  EXPECT_FALSE(Server(v2).phase_spans.has_value());
  EXPECT_EQ(Server(v2).random_sampling_percentage, 100.0);

  // A selector only applies in its own namespace.
  const WorkloadPolicy other = policy.Resolve(Workload("other", {{"app", "reviews"}}));
  EXPECT_EQ(other.applied, (std::vector<std::string>{"mesh-root/mesh-default", "other/reviews"}));
  EXPECT_EQ(Client(other).random_sampling_percentage, 42.0);
  // A workload with no labels gets no selected resources.
  EXPECT_EQ(policy.Resolve(Workload("other", {})).applied,
            std::vector<std::string>{"mesh-root/mesh-default"});
}

TEST(TelemetryPolicyResolve, RootNamespaceWorkloadsGetTheMeshResourceOnce) {
  const TelemetryPolicy policy = MustParse(kLayers);
  const WorkloadPolicy resolved = policy.Resolve(Workload("mesh-root", {{"app", "gateway"}}));
  EXPECT_EQ(resolved.applied, std::vector<std::string>{"mesh-root/mesh-default"});
  EXPECT_EQ(resolved.metrics.overrides.size(), 1u);
}

TEST(TelemetryPolicyResolve, ModesApplySeparatelyWithinOneResource) {
  const TelemetryPolicy policy = MustParse(Telemetry("shop", "default", R"(  tracing:
    - randomSamplingPercentage: 5
    - match: {mode: CLIENT}
      randomSamplingPercentage: 50
    - match: {mode: SERVER}
      customTags: {side: {literal: {value: server}}}
  accessLogging:
    - match: {mode: CLIENT_AND_SERVER}
      filter: {expression: "response.code >= 400"}
    - match: {mode: SERVER}
      filter: {expression: "response.code >= 500"}
      logFormat: {labels: {code: "%RESPONSE_CODE%"}}
    - match: {mode: CLIENT}
      disabled: true
    - match: {mode: CLIENT}
      disabled: false
)"));
  const WorkloadPolicy resolved = policy.Resolve(Workload("shop", {}));
  EXPECT_EQ(Client(resolved).random_sampling_percentage, 50.0);
  EXPECT_EQ(Server(resolved).random_sampling_percentage, 5.0);
  EXPECT_TRUE(Client(resolved).custom_tags.empty());
  EXPECT_EQ(Server(resolved).custom_tags.size(), 1u);
  EXPECT_EQ(ClientLog(resolved).filter, "response.code >= 400");
  EXPECT_EQ(ServerLog(resolved).filter, "response.code >= 500");
  // A later entry's disabled: false turns the side back on.
  EXPECT_FALSE(ClientLog(resolved).disabled);
  EXPECT_FALSE(ClientLog(resolved).format.has_value());
  ASSERT_TRUE(ServerLog(resolved).format.has_value());
  EXPECT_EQ(ServerLog(resolved).format->encoding, AccessLogEncoding::kJson);
}

TEST(TelemetryPolicyResolve, ChildReEnablesWhatTheParentDisabled) {
  const TelemetryPolicy policy =
      MustParse(Telemetry("istio-system", "mesh", R"(  tracing: [{disableSpanReporting: true}]
  accessLogging: [{disabled: true}]
  metrics: [{overrides: [{disabled: true}]}]
)") + Telemetry("shop", "shop", R"(  tracing: [{disableSpanReporting: false}]
  accessLogging: [{disabled: false}]
  metrics: [{overrides: [{disabled: false}]}]
)"));
  const WorkloadPolicy shop = policy.Resolve(Workload("shop", {}));
  const WorkloadPolicy other = policy.Resolve(Workload("other", {}));
  for (size_t side = 0; side < kPolicySideCount; ++side) {
    EXPECT_FALSE(shop.tracing[side].disable_span_reporting);
    EXPECT_FALSE(shop.access_logging[side].disabled);
    EXPECT_TRUE(other.tracing[side].disable_span_reporting);
    EXPECT_TRUE(other.access_logging[side].disabled);
  }
  absl::StatusOr<MetricLabelPlans> shop_plans =
      CompileMetricLabelPlans(shop.metrics.overrides, std::nullopt);
  absl::StatusOr<MetricLabelPlans> other_plans =
      CompileMetricLabelPlans(other.metrics.overrides, std::nullopt);
  ASSERT_TRUE(shop_plans.ok() && other_plans.ok());
  EXPECT_FALSE(shop_plans->plan(IstioMetric::kRequestDuration, RecordMode::kClient).disabled);
  EXPECT_TRUE(other_plans->plan(IstioMetric::kRequestDuration, RecordMode::kClient).disabled);
}

TEST(TelemetryPolicyResolve, WorkloadFormatBeatsTheMeshConfigs) {
  const TelemetryPolicy policy =
      MustParse(Mesh("  accessLogFormat: \"%PROTOCOL%\"\n") +
                Telemetry("shop", "r", R"(  selector: {matchLabels: {app: r}}
  accessLogging: [{logFormat: {text: "%DURATION%"}}]
)"));
  const WorkloadPolicy r = policy.Resolve(Workload("shop", {{"app", "r"}}));
  const WorkloadPolicy s = policy.Resolve(Workload("shop", {{"app", "s"}}));
  for (size_t side = 0; side < kPolicySideCount; ++side) {
    ASSERT_TRUE(r.access_logging[side].format.has_value());
    EXPECT_EQ(r.access_logging[side].format->format, "%DURATION%\n");
    ASSERT_TRUE(s.access_logging[side].format.has_value());
    EXPECT_EQ(s.access_logging[side].format->format, "%PROTOCOL%\n");
  }
}

TEST(TelemetryPolicyResolve, SamplingStaysUnsetWithoutAResourceSettingIt) {
  const TelemetryPolicy policy =
      MustParse(Mesh("  defaultConfig: {tracing: {sampling: 3}}\n") +
                Telemetry("shop", "s", "  tracing: [{customTags: {a: {literal: {value: b}}}}]\n"));
  EXPECT_EQ(policy.mesh().default_sampling_percentage, 3.0);
  const WorkloadPolicy resolved = policy.Resolve(Workload("shop", {}));
  EXPECT_FALSE(Client(resolved).random_sampling_percentage.has_value());
  EXPECT_FALSE(Server(resolved).random_sampling_percentage.has_value());
}

TEST(TelemetryPolicy, CheckExportersNamesTheProviderAndTheExporter) {
  const TelemetryPolicy policy = MustParse(kMeshConfig);
  EXPECT_TRUE(policy.CheckExporters({"loki-main", "tempo-otlp", "jaeger-backup", "extra"}).ok());
  const absl::Status missing = policy.CheckExporters({"loki-main", "tempo-otlp"});
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.message(),
            "policy: extensionProviders[tempo].exporters: no exporter named 'jaeger-backup' in the "
            "collector's exporters");
  EXPECT_EQ(policy.CheckExporters({}).message(),
            "policy: extensionProviders[loki].exporters: no exporter named 'loki-main' in the "
            "collector's exporters");
  // No providers: nothing to check.
  EXPECT_TRUE(TelemetryPolicy().CheckExporters({}).ok());
}

}  // namespace
}  // namespace meshtel::collector
