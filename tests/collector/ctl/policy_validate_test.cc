// `meshtelctl policy validate`: the real binary on policy files, its exit codes, stdout and
// stderr.

#include <string>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::testing {
namespace {

constexpr char kPolicy[] = R"(apiVersion: meshtel.io/v1
kind: MeshConfig
spec:
  extensionProviders: [{name: loki, exporters: [loki-main]}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: default, namespace: istio-system}
spec:
  tracing: [{randomSamplingPercentage: 1}]
  accessLogging: [{providers: [{name: loki}]}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing: [{randomSamplingPercentage: 100}]
)";

constexpr char kInvalid[] = R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: shop}
spec:
  tracing: [{randomSamplingPercentage: 140}]
)";

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

class PolicyValidate : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("ctl-policy"); }

  // Runs meshtelctl with `args`; stdout and stderr apart.
  Result Ctl(const std::string& args) {
    Result result;
    const std::string err_path = dir_ + "/stderr.txt";
    result.code = RunCommand(
        "(" + std::string(MESHTELCTL_BIN) + " " + args + " 2>" + err_path + ")", &result.out);
    RunCommand("cat " + err_path, &result.err);
    return result;
  }

  std::string dir_;
};

TEST_F(PolicyValidate, AValidFileExitsZeroWithASummary) {
  WriteFile(dir_ + "/policy.yaml", kPolicy);
  const Result result = Ctl("policy validate " + dir_ + "/policy.yaml");
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  // The digest is FNV-1a 64 of the text: 16 hex digits, the same on every run.
  ASSERT_TRUE(result.out.starts_with("policy " + dir_ +
                                     "/policy.yaml: valid, 2 Telemetry resources, digest "))
      << result.out;
  const std::string digest = result.out.substr(result.out.rfind(' ') + 1);
  EXPECT_EQ(digest.size(), 17u) << digest;  // with the newline
  EXPECT_EQ(digest.find_first_not_of("0123456789abcdef"), 16u) << digest;
  EXPECT_EQ(Ctl("policy validate " + dir_ + "/policy.yaml").out, result.out);
}

TEST_F(PolicyValidate, AnInvalidFileExitsOneWithThePathOfTheField) {
  WriteFile(dir_ + "/bad.yaml", kInvalid);
  const Result result = Ctl("policy validate " + dir_ + "/bad.yaml");
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, "meshtelctl: " + dir_ +
                            "/bad.yaml: document 1 (Telemetry shop/reviews): spec.tracing[0]."
                            "randomSamplingPercentage: 140 is not in [0,100]\n");

  const Result missing = Ctl("policy validate " + dir_ + "/none.yaml");
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "meshtelctl: " + dir_ + "/none.yaml: cannot open the file\n");
}

TEST_F(PolicyValidate, UsageErrorsExitTwo) {
  for (const std::string args :
       {"policy validate", "policy", "policy check x.yaml", "policy validate a.yaml b.yaml",
        "policy validate --nope a.yaml", "policy validate a.yaml --collector-config"}) {
    const Result result = Ctl(args);
    EXPECT_EQ(result.code, 2) << args;
    EXPECT_TRUE(result.err.starts_with("meshtelctl: ")) << args << ": " << result.err;
    EXPECT_NE(result.err.find("meshtelctl policy validate FILE [--collector-config FILE]"),
              std::string::npos)
        << args;
    EXPECT_EQ(result.out, "") << args;
  }
}

TEST_F(PolicyValidate, CollectorConfigChecksTheProvidersExporters) {
  WriteFile(dir_ + "/policy.yaml", kPolicy);
  WriteFile(dir_ + "/good.yaml",
            "exporters:\n  - name: loki-main\n    type: loki\n    loki: {url: "
            "http://127.0.0.1:3100/}\n");
  WriteFile(dir_ + "/other.yaml",
            "exporters:\n  - name: loki-x\n    type: loki\n    loki: {url: "
            "http://127.0.0.1:3100/}\n");
  WriteFile(dir_ + "/broken.yaml", "exporterz: []\n");

  const Result good =
      Ctl("policy validate " + dir_ + "/policy.yaml --collector-config " + dir_ + "/good.yaml");
  EXPECT_EQ(good.code, 0) << good.err;
  EXPECT_TRUE(good.out.starts_with("policy " + dir_ + "/policy.yaml: valid")) << good.out;

  const Result other =
      Ctl("policy validate --collector-config=" + dir_ + "/other.yaml " + dir_ + "/policy.yaml");
  EXPECT_EQ(other.code, 1);
  EXPECT_EQ(other.out, "");
  EXPECT_EQ(other.err, "meshtelctl: " + dir_ +
                           "/policy.yaml: policy: extensionProviders[loki].exporters: no "
                           "exporter named 'loki-main' in the collector's exporters\n");

  const Result broken =
      Ctl("policy validate " + dir_ + "/policy.yaml --collector-config " + dir_ + "/broken.yaml");
  EXPECT_EQ(broken.code, 1);
  EXPECT_EQ(broken.err,
            "meshtelctl: --collector-config " + dir_ + "/broken.yaml: exporterz: unknown key\n");
}

TEST_F(PolicyValidate, HelpListsTheCommand) {
  const Result result = Ctl("--help");
  EXPECT_EQ(result.code, 0);
  EXPECT_NE(result.out.find("policy validate"), std::string::npos);
}

}  // namespace
}  // namespace meshtel::testing
