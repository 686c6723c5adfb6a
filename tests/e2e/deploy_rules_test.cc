// The files in deploy/ that operators load into Prometheus and Grafana:
//   - deploy/prometheus: promtool accepts the scrape configs, recording rules and alerts without a
//     finding, and the rules' unit tests (rules_test.yml) pass — and fail when an expectation is
//     wrong;
//   - deploy/grafana: the dashboard is JSON, uses only Istio's metric names and labels and a
//     datasource variable, and every query it holds runs on a real Prometheus (Debian's package)
//     that scrapes a real collector in front of the demo mesh, loaded with the shipped scrape
//     config and rules: the traffic panels show the demo's traffic.

// Debian 12's Boost 1.74 property_tree still includes the deprecated boost/bind.hpp.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/e2e/mesh_fixture.h"
#include "tests/support/http_get.h"
#include "tests/support/process.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::e2e {
namespace {

using boost::property_tree::ptree;

const ptree kNoChildren;

const std::string kPrometheusDir = std::string(MESHTEL_SOURCE_DIR) + "/deploy/prometheus";
const std::string kDashboard =
    std::string(MESHTEL_SOURCE_DIR) + "/deploy/grafana/meshtel-istio-mesh.json";

#define SKIP_WITHOUT_PROMTOOL()                                                             \
  if (!testing::HaveProgram("promtool")) {                                                  \
    GTEST_SKIP() << "promtool is absent: it comes with Debian's prometheus package, which " \
                    "scripts/install-deps.sh installs";                                     \
  }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Replaces every occurrence of `from`; returns how many there were.
int ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  int count = 0;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
    ++count;
  }
  return count;
}

// promtool's report on a config or rules file: only "Checking <file>" and SUCCESS lines are
// allowed; anything else (a failure, a lint warning) is a finding.
void ExpectOnlySuccess(const std::string& output) {
  static const std::regex kAllowed(
      "Checking .*|  SUCCESS: [0-9]+ rules? found| *SUCCESS: [0-9]+ rule files? found|"
      " SUCCESS: .* is valid prometheus config file syntax");
  const std::vector<std::string> lines = NonEmptyLines(output);
  EXPECT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    EXPECT_TRUE(std::regex_match(line, kAllowed)) << "promtool finding: " << line;
  }
}

// A directory holding copies of the files of deploy/prometheus (rule_files are relative).
std::string CopyOfPrometheusDir() {
  const std::string dir = testing::MakeTempDir("meshtel-deploy");
  for (const char* name : {"prometheus.yml", "prometheus-kubernetes.yml", "recording-rules.yml",
                           "alerts.yml", "rules_test.yml"}) {
    testing::WriteFile(dir + "/" + name, ReadFile(kPrometheusDir + "/" + name));
  }
  return dir;
}

TEST(PrometheusRulesTest, PromtoolFindsNothingInTheRulesAndAlerts) {
  SKIP_WITHOUT_PROMTOOL();
  std::string output;
  EXPECT_EQ(testing::RunCommand(
                "cd " + kPrometheusDir + " && promtool check rules recording-rules.yml alerts.yml",
                &output),
            0)
      << output;
  ExpectOnlySuccess(output);
  // Both files were read, and hold rules.
  static const std::regex kFound("SUCCESS: ([0-9]+) rules found");
  int files = 0;
  for (std::sregex_iterator it(output.begin(), output.end(), kFound), end; it != end; ++it) {
    EXPECT_GT(std::stoi((*it)[1]), 0);
    ++files;
  }
  EXPECT_EQ(files, 2) << output;
}

TEST(PrometheusRulesTest, PromtoolAcceptsTheStaticScrapeConfig) {
  SKIP_WITHOUT_PROMTOOL();
  std::string output;
  EXPECT_EQ(testing::RunCommand("cd " + kPrometheusDir + " && promtool check config prometheus.yml",
                                &output),
            0)
      << output;
  ExpectOnlySuccess(output);
  EXPECT_NE(output.find("SUCCESS: 2 rule files found"), std::string::npos) << output;
}

TEST(PrometheusRulesTest, PromtoolAcceptsTheKubernetesScrapeConfig) {
  SKIP_WITHOUT_PROMTOOL();
  const std::string dir = CopyOfPrometheusDir();
  std::string output;
  const int code = testing::RunCommand(
      "cd " + dir + " && promtool check config prometheus-kubernetes.yml", &output);
  if (code == 0) {
    ExpectOnlySuccess(output);
  } else {
    // Debian builds Prometheus without Kubernetes discovery; then the only finding allowed is
    // that field.
    static const std::regex kUnknownField("line [0-9]+: field (\\w+) not found in type .*");
    int unknown = 0;
    for (const std::string& line : NonEmptyLines(output)) {
      std::smatch match;
      if (std::regex_search(line, match, kUnknownField)) {
        EXPECT_EQ(match[1], "kubernetes_sd_configs") << line;
        ++unknown;
      }
    }
    EXPECT_EQ(unknown, 2) << output;
    std::printf("promtool here has no Kubernetes discovery; checking the rest of the config\n");
  }
  // The rest of the config (relabelling included) with static targets in place of discovery.
  std::string config = ReadFile(dir + "/prometheus-kubernetes.yml");
  EXPECT_EQ(ReplaceAll(config, "kubernetes_sd_configs:\n      - role: pod",
                       "static_configs:\n      - targets: [\"127.0.0.1:1\"]"),
            2);
  testing::WriteFile(dir + "/prometheus-static.yml", config);
  EXPECT_EQ(
      testing::RunCommand("cd " + dir + " && promtool check config prometheus-static.yml", &output),
      0)
      << output;
  ExpectOnlySuccess(output);
}

TEST(PrometheusRulesTest, UnitTestsOfTheRulesAndAlertsPass) {
  SKIP_WITHOUT_PROMTOOL();
  std::string output;
  EXPECT_EQ(testing::RunCommand("cd " + kPrometheusDir + " && promtool test rules rules_test.yml",
                                &output),
            0)
      << output;
  EXPECT_NE(output.find("SUCCESS"), std::string::npos) << output;
  EXPECT_EQ(output.find("FAILED"), std::string::npos) << output;

  // The same unit tests with one wrong expectation each must fail: a sample value, and an alert
  // expected to stay silent.
  const std::string dir = CopyOfPrometheusDir();
  const std::string tests = ReadFile(dir + "/rules_test.yml");
  std::string wrong_value = tests;
  ASSERT_EQ(ReplaceAll(wrong_value, "value: 0.25\n", "value: 0.3\n"), 1);
  testing::WriteFile(dir + "/wrong_value_test.yml", wrong_value);
  EXPECT_EQ(
      testing::RunCommand("cd " + dir + " && promtool test rules wrong_value_test.yml", &output), 1)
      << output;
  EXPECT_NE(output.find("FAILED"), std::string::npos) << output;
  std::string wrong_alert = tests;
  ASSERT_EQ(
      ReplaceAll(wrong_alert, "- alertname: MeshtelServiceHigh5xxRatio\n        eval_time: 4m\n",
                 "- alertname: MeshtelServiceHigh5xxRatio\n        eval_time: 12m\n"),
      1);
  testing::WriteFile(dir + "/wrong_alert_test.yml", wrong_alert);
  EXPECT_EQ(
      testing::RunCommand("cd " + dir + " && promtool test rules wrong_alert_test.yml", &output), 1)
      << output;
  EXPECT_NE(output.find("alertname: MeshtelServiceHigh5xxRatio, time: 12m"), std::string::npos)
      << output;
}

// ---- The Grafana dashboard ----

// Istio's standard metrics (wire-facts §8.1) as Prometheus names, histograms with their series.
const std::set<std::string>& IstioMetricNames() {
  static const std::set<std::string> names = [] {
    std::set<std::string> out = {"istio_requests_total",
                                 "istio_request_messages_total",
                                 "istio_response_messages_total",
                                 "istio_tcp_sent_bytes_total",
                                 "istio_tcp_received_bytes_total",
                                 "istio_tcp_connections_opened_total",
                                 "istio_tcp_connections_closed_total",
                                 "istio_build"};
    for (const char* histogram :
         {"istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"}) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        out.insert(std::string(histogram) + suffix);
      }
    }
    return out;
  }();
  return names;
}

// Istio's default labels (wire-facts §8.2), and the histograms' `le`.
const std::set<std::string>& IstioLabelNames() {
  static const std::set<std::string> names = {"reporter",
                                              "source_workload",
                                              "source_canonical_service",
                                              "source_canonical_revision",
                                              "source_workload_namespace",
                                              "source_principal",
                                              "source_app",
                                              "source_version",
                                              "source_cluster",
                                              "destination_workload",
                                              "destination_workload_namespace",
                                              "destination_principal",
                                              "destination_app",
                                              "destination_version",
                                              "destination_service",
                                              "destination_canonical_service",
                                              "destination_canonical_revision",
                                              "destination_service_name",
                                              "destination_service_namespace",
                                              "destination_cluster",
                                              "request_protocol",
                                              "response_code",
                                              "grpc_response_status",
                                              "response_flags",
                                              "connection_security_policy",
                                              "le"};
  return names;
}

// The metric and label names a PromQL expression uses. Functions are names followed by "(";
// label names are those of matchers and of by/without lists.
struct PromqlNames {
  std::set<std::string> metrics, labels, functions;
};

PromqlNames NamesIn(std::string expr) {
  static const std::regex kString("\"(?:[^\"\\\\]|\\\\.)*\"");
  static const std::regex kMatcher("([A-Za-z_][A-Za-z0-9_]*)\\s*(=~|!~|!=|=)");
  static const std::regex kGrouping(
      "\\b(?:by|without|on|ignoring|group_left|group_right)\\s*\\(([^)]*)\\)");
  static const std::regex kBraces("\\{[^}]*\\}");
  static const std::regex kRange("\\[[^\\]]*\\]");
  static const std::regex kIdentifier("([A-Za-z_:][A-Za-z0-9_:]*)\\s*(\\(?)");
  static const std::regex kLabel("[A-Za-z_][A-Za-z0-9_]*");
  static const std::set<std::string> kKeywords = {
      "by",       "without",    "and",         "or",   "unless", "on",
      "ignoring", "group_left", "group_right", "bool", "offset"};
  PromqlNames names;
  expr = std::regex_replace(expr, kString, "\"\"");
  for (std::sregex_iterator it(expr.begin(), expr.end(), kBraces), end; it != end; ++it) {
    const std::string braces = it->str();
    for (std::sregex_iterator m(braces.begin(), braces.end(), kMatcher); m != end; ++m) {
      names.labels.insert((*m)[1]);
    }
  }
  for (std::sregex_iterator it(expr.begin(), expr.end(), kGrouping), end; it != end; ++it) {
    const std::string list = (*it)[1];
    for (std::sregex_iterator m(list.begin(), list.end(), kLabel); m != end; ++m) {
      names.labels.insert(m->str());
    }
  }
  expr = std::regex_replace(expr, kGrouping, " ");
  expr = std::regex_replace(expr, kBraces, " ");
  expr = std::regex_replace(expr, kRange, " ");
  for (std::sregex_iterator it(expr.begin(), expr.end(), kIdentifier), end; it != end; ++it) {
    const std::string name = (*it)[1];
    if (kKeywords.contains(name)) continue;
    if ((*it)[2].length() > 0) {
      names.functions.insert(name);
    } else {
      names.metrics.insert(name);
    }
  }
  return names;
}

TEST(PromqlNamesTest, FindsMetricsLabelsAndFunctions) {
  const PromqlNames names = NamesIn(
      "histogram_quantile(0.99, sum by (destination_service_name, le) "
      "(rate(istio_request_duration_milliseconds_bucket{reporter=\"destination\", "
      "response_code!~\"5..\"}[5m]))) / on (le) other_metric");
  EXPECT_EQ(names.metrics,
            (std::set<std::string>{"istio_request_duration_milliseconds_bucket", "other_metric"}));
  EXPECT_EQ(names.labels,
            (std::set<std::string>{"destination_service_name", "le", "reporter", "response_code"}));
  EXPECT_EQ(names.functions, (std::set<std::string>{"histogram_quantile", "sum", "rate"}));
}

TEST(PrometheusRulesTest, EveryAlertHasAForDurationASeverityAndAnnotations) {
  const YAML::Node alerts = YAML::LoadFile(kPrometheusDir + "/alerts.yml");
  int count = 0;
  for (const YAML::Node& group : alerts["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      const std::string name = rule["alert"].as<std::string>("");
      ASSERT_FALSE(name.empty()) << "alerts.yml holds alerts only";
      ++count;
      EXPECT_TRUE(rule["for"].IsDefined()) << name;
      const std::string severity = rule["labels"]["severity"].as<std::string>("");
      EXPECT_TRUE(severity == "critical" || severity == "warning") << name << ": " << severity;
      EXPECT_FALSE(rule["annotations"]["summary"].as<std::string>("").empty()) << name;
      EXPECT_FALSE(rule["annotations"]["description"].as<std::string>("").empty()) << name;
    }
  }
  EXPECT_GE(count, 10);
  // The collector's health alerts read its own metrics, under the names the code registers.
  std::set<std::string> metrics;
  for (const YAML::Node& group : alerts["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      metrics.merge(NamesIn(rule["expr"].as<std::string>()).metrics);
    }
  }
  for (const char* metric :
       {"meshtel_ingest_batches_total", "meshtel_proxy_dropped_records_total",
        "meshtel_metrics_series_overflow_total", "meshtel_store_write_errors_total",
        "meshtel_store_full_refusals_total", "meshtel_store_dropped_total",
        "meshtel_store_corrupt_records_total", "meshtel_exporter_lag_seconds",
        "meshtel_exporter_records_total"}) {
    EXPECT_TRUE(metrics.contains(metric)) << "no alert reads " << metric;
  }
  for (const std::string& metric : metrics) {
    if (!metric.starts_with("meshtel_")) continue;
    std::string grep;
    EXPECT_EQ(testing::RunCommand("grep -rlF '\"" + metric + "\"' " +
                                      std::string(MESHTEL_SOURCE_DIR) + "/collector",
                                  &grep),
              0)
        << metric << " is not registered by the collector";
  }
}

ptree ParseJson(const std::string& text) {
  ptree tree;
  std::stringstream in(text);
  boost::property_tree::read_json(in, tree);
  return tree;
}

struct DashboardQuery {
  std::string panel;  // panel title
  std::string expr;   // as written, with template variables
};

// Every panel query, and every non-row panel has at least one.
std::vector<DashboardQuery> PanelQueries(const ptree& dashboard) {
  std::vector<DashboardQuery> queries;
  for (const auto& [unused, panel] : dashboard.get_child("panels")) {
    const std::string type = panel.get<std::string>("type");
    const std::string title = panel.get<std::string>("title");
    if (type == "row") continue;
    size_t before = queries.size();
    for (const auto& [unused2, target] : panel.get_child("targets", kNoChildren)) {
      queries.push_back({title, target.get<std::string>("expr", "")});
      EXPECT_FALSE(queries.back().expr.empty()) << title;
    }
    EXPECT_GT(queries.size(), before) << "panel without a query: " << title;
  }
  return queries;
}

// Template variables become what Grafana would send: a regex matching everything for the
// multi-value variables, a range for $__rate_interval.
std::string Substitute(const std::string& expr) {
  std::string out = expr;
  ReplaceAll(out, "$__rate_interval", "5m");
  static const std::regex kVariable("\\$\\{?([A-Za-z_][A-Za-z0-9_]*)\\}?");
  return std::regex_replace(out, kVariable, ".*");
}

// Visits every node of the tree with its key.
void Walk(const ptree& tree, const std::function<void(const std::string&, const ptree&)>& visit) {
  for (const auto& [key, child] : tree) {
    visit(key, child);
    Walk(child, visit);
  }
}

TEST(GrafanaDashboardTest, IsJsonWithIstioMetricsLabelsAndADatasourceVariable) {
  const ptree dashboard = ParseJson(ReadFile(kDashboard));
  EXPECT_FALSE(dashboard.get<std::string>("title", "").empty());

  // No data source is named: every reference is the ${datasource} variable.
  int datasource_references = 0;
  Walk(dashboard, [&](const std::string& key, const ptree& node) {
    if (key != "datasource" || node.empty()) return;
    EXPECT_EQ(node.get<std::string>("uid", ""), "${datasource}");
    EXPECT_EQ(node.get<std::string>("type", ""), "prometheus");
    ++datasource_references;
  });
  EXPECT_GT(datasource_references, 0);
  std::set<std::string> variables;
  for (const auto& [unused, variable] : dashboard.get_child("templating.list")) {
    const std::string name = variable.get<std::string>("name");
    variables.insert(name);
    if (variable.get<std::string>("type") == "datasource") {
      EXPECT_EQ(name, "datasource");
      EXPECT_EQ(variable.get<std::string>("query"), "prometheus");
    }
  }
  for (const char* name :
       {"datasource", "namespace", "service", "source_workload", "destination_workload"}) {
    EXPECT_TRUE(variables.contains(name)) << "missing template variable " << name;
  }

  const std::vector<DashboardQuery> queries = PanelQueries(dashboard);
  EXPECT_GE(queries.size(), 15u);
  for (const DashboardQuery& query : queries) {
    const PromqlNames names = NamesIn(query.expr);
    EXPECT_FALSE(names.metrics.empty()) << query.panel << ": " << query.expr;
    for (const std::string& metric : names.metrics) {
      EXPECT_TRUE(IstioMetricNames().contains(metric))
          << query.panel << ": " << metric << " is not an Istio metric";
    }
    for (const std::string& label : names.labels) {
      EXPECT_TRUE(IstioLabelNames().contains(label))
          << query.panel << ": " << label << " is not an Istio label";
    }
  }
  // The variables' label_values() queries too.
  static const std::regex kLabelValues("label_values\\((.*),\\s*(\\w+)\\)");
  for (const auto& [unused, variable] : dashboard.get_child("templating.list")) {
    if (variable.get<std::string>("type") != "query") continue;
    const std::string definition = variable.get<std::string>("definition");
    std::smatch match;
    ASSERT_TRUE(std::regex_match(definition, match, kLabelValues)) << definition;
    EXPECT_TRUE(IstioLabelNames().contains(match[2])) << definition;
    const PromqlNames names = NamesIn(match[1]);
    EXPECT_EQ(names.metrics, std::set<std::string>{"istio_requests_total"}) << definition;
    for (const std::string& label : names.labels) {
      EXPECT_TRUE(IstioLabelNames().contains(label)) << definition;
    }
  }
}

TEST(GrafanaDashboardTest, PromtoolParsesEveryQuery) {
  SKIP_WITHOUT_PROMTOOL();
  const std::vector<DashboardQuery> queries = PanelQueries(ParseJson(ReadFile(kDashboard)));
  ASSERT_FALSE(queries.empty());
  // Each query as a recording rule: `promtool check rules` parses its expression.
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  for (size_t i = 0; i < queries.size(); ++i) {
    std::string expr = Substitute(queries[i].expr);
    ReplaceAll(expr, "'", "''");
    rules +=
        "      - record: dashboard_query_" + std::to_string(i) + "\n        expr: '" + expr + "'\n";
  }
  const std::string dir = testing::MakeTempDir("meshtel-dashboard");
  testing::WriteFile(dir + "/dashboard-rules.yml", rules);
  std::string output;
  EXPECT_EQ(testing::RunCommand("promtool check rules " + dir + "/dashboard-rules.yml", &output), 0)
      << output;
  ExpectOnlySuccess(output);
  EXPECT_NE(output.find("SUCCESS: " + std::to_string(queries.size()) + " rules found"),
            std::string::npos)
      << output;
}

// The dashboard and the recording rules on a real Prometheus scraping the demo mesh's collector.
class DeployedMeshTest : public MeshTest {
 protected:
  // Runs an instant query; returns the parsed response (status "error" when the request failed).
  ptree Query(const std::string& promql) {
    const testing::HttpResult result =
        testing::HttpGet(prometheus_port_, "/api/v1/query?query=" + UrlEncode(promql));
    ptree response;
    try {
      response = ParseJson(result.body);
    } catch (const std::exception& error) {
      response.put("status", "error");
      response.put("error", std::to_string(result.status) + " " + result.body.substr(0, 300));
    }
    return response;
  }

  // The sample values of a vector result.
  static std::vector<double> Values(const ptree& response) {
    std::vector<double> values;
    for (const auto& [unused, sample] : response.get_child("data.result", kNoChildren)) {
      const ptree& value = sample.get_child("value");
      values.push_back(std::strtod(std::next(value.begin())->second.data().c_str(), nullptr));
    }
    return values;
  }

  uint16_t prometheus_port_ = 0;
};

TEST_F(DeployedMeshTest, DashboardQueriesAndRecordingRulesShowTheMeshTraffic) {
  ASSERT_TRUE(testing::HaveProgram("prometheus"))
      << "Debian's prometheus package is required: run the README's test command";

  // The shipped scrape config and rules, pointed at this test's ports and scraping every second.
  const std::string dir = CopyOfPrometheusDir();
  std::string config = ReadFile(dir + "/prometheus.yml");
  ASSERT_EQ(ReplaceAll(config, "\"127.0.0.1:15141\"",
                       "\"127.0.0.1:" + std::to_string(admin_port_) + "\""),
            1);
  ASSERT_EQ(ReplaceAll(config, "\"127.0.0.1:15000\"",
                       "\"127.0.0.1:" + std::to_string(frontend_admin_port_) + "\""),
            1);
  ASSERT_EQ(ReplaceAll(config, "\"127.0.0.1:15100\"",
                       "\"127.0.0.1:" + std::to_string(backend_admin_port_) + "\""),
            1);
  ASSERT_EQ(ReplaceAll(config, "scrape_interval: 15s", "scrape_interval: 1s"), 1);
  ASSERT_EQ(ReplaceAll(config, "evaluation_interval: 15s", "evaluation_interval: 1s"), 1);
  testing::WriteFile(dir + "/prometheus.yml", config);
  prometheus_port_ = testing::FreePort();
  auto prometheus =
      ChildProcess::Start({"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                           "--storage.tsdb.path=" + dir_ + "/prometheus-data",
                           "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_)},
                          dir_ + "/prometheus.log");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Values(Query("count(up == 1)")) == std::vector<double>{3};  // collector, 2 proxies
      },
      seconds(60)))
      << prometheus->Log().substr(0, 4000);

  // Traffic in two rounds, each seen by Prometheus: every series then has grown between two
  // scrapes, so that rates over it are positive.
  constexpr int kRequests = 200;
  for (int sent : {kRequests / 2, kRequests}) {
    SendLoad(kRequests / 2);
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return Values(Query("sum(istio_requests_total{reporter=\"destination\"})")) ==
                 std::vector<double>{2.0 * sent};  // frontend's and backend's inbound sides
        },
        seconds(90)))
        << prometheus->Log().substr(0, 4000);
  }

  const ptree dashboard = ParseJson(ReadFile(kDashboard));
  const std::vector<DashboardQuery> queries = PanelQueries(dashboard);
  ASSERT_GE(queries.size(), 15u);
  for (const DashboardQuery& query : queries) {
    const std::string promql = Substitute(query.expr);
    const ptree response = Query(promql);
    ASSERT_EQ(response.get<std::string>("status", ""), "success")
        << query.panel << ": " << promql << "\n"
        << response.get<std::string>("error", "");
    EXPECT_EQ(response.get<std::string>("data.resultType", ""), "vector") << promql;
    // The demo speaks HTTP, not gRPC: only the message counters have nothing to show.
    if (query.expr.find("_messages_total") != std::string::npos) continue;
    const std::vector<double> values = Values(response);
    EXPECT_FALSE(values.empty()) << query.panel << ": no data for " << promql;
    for (double value : values) {
      EXPECT_TRUE(value > 0) << query.panel << ": " << value << " for " << promql;
    }
  }
  // The workload-pair panels show the hop the mesh measures: frontend → backend.
  int pair_panels = 0;
  for (const DashboardQuery& query : queries) {
    if (query.panel != "Request rate per workload pair") continue;
    ++pair_panels;
    const ptree response = Query(Substitute(query.expr));
    bool found = false;
    for (const auto& [unused, sample] : response.get_child("data.result", kNoChildren)) {
      found |= sample.get<std::string>("metric.source_workload", "") == "frontend" &&
               sample.get<std::string>("metric.destination_workload", "") == "backend";
    }
    EXPECT_TRUE(found) << Substitute(query.expr);
  }
  EXPECT_EQ(pair_panels, 1);
  // The variables list what the mesh holds.
  const ptree namespaces = Query(
      "count by (destination_service_namespace) (istio_requests_total{reporter=\"destination\"})");
  ASSERT_EQ(namespaces.get<std::string>("status", ""), "success");
  ASSERT_EQ(namespaces.get_child("data.result").size(), 1u);
  EXPECT_EQ(namespaces.get_child("data.result")
                .begin()
                ->second.get<std::string>("metric.destination_service_namespace"),
            "demo");

  // The recording rules, evaluated by Prometheus from the collector's series (each group on
  // its own schedule: wait until all have seen the last scrapes).
  const std::string pair_success =
      "workload_pair:istio_requests_success:ratio_rate5m{source_workload=\"frontend\","
      "destination_workload=\"backend\"}";
  const std::string backend_rate =
      "namespace_service:istio_requests:rate5m{destination_service_name=\"backend\"}";
  const std::string backend_quantiles =
      "count(namespace_service:istio_request_duration_milliseconds:quantile_rate5m{"
      "destination_service_name=\"backend\"} >= 0)";
  const std::string client_requests = "sum(workload:istio_requests_total{reporter=\"source\"})";
  const bool recorded = testing::WaitFor(
      [&] {
        return Values(Query(pair_success)).size() == 1 && Values(Query(backend_rate)).size() == 1 &&
               Values(Query(backend_quantiles)) == std::vector<double>{3} &&
               Values(Query(client_requests)) == std::vector<double>{kRequests};
      },
      seconds(60));
  EXPECT_TRUE(recorded) << testing::HttpGet(prometheus_port_, "/api/v1/rules").body.substr(0, 4000);
  EXPECT_EQ(Values(Query(pair_success)), std::vector<double>{1});
  const std::vector<double> rate = Values(Query(backend_rate));
  ASSERT_EQ(rate.size(), 1u);
  EXPECT_GT(rate[0], 0);
  EXPECT_EQ(Values(Query(backend_quantiles)), std::vector<double>{3});
  EXPECT_EQ(Values(Query(client_requests)), std::vector<double>{kRequests});
  // Every rule loaded and evaluated without an error.
  const std::string rules = testing::HttpGet(prometheus_port_, "/api/v1/rules").body;
  EXPECT_EQ(rules.find("\"health\":\"err\""), std::string::npos) << rules.substr(0, 4000);
  EXPECT_NE(rules.find("MeshtelStoreFull"), std::string::npos);
  EXPECT_EQ(prometheus->Terminate(), 0);
}

}  // namespace
}  // namespace meshtel::e2e
