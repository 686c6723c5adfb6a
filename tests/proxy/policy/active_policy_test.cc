#include "proxy/policy/active_policy.h"

#include <cmath>
#include <limits>
#include <string>

#include "fmt/format.h"
#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

const char* NoEnvironment(const char*) { return nullptr; }

meshtel::v1::PolicyCustomTag* AddTag(meshtel::v1::SidePolicy& side, const std::string& name) {
  meshtel::v1::PolicyCustomTag* tag = side.add_custom_tags();
  tag->set_name(name);
  return tag;
}

std::string Error(const meshtel::v1::ProxyPolicy& policy, const ProxyConfig& config = {}) {
  const absl::Status status = ValidateProxyPolicy(policy, config);
  return status.ok() ? "ok" : std::string(status.message());
}

TEST(ActivePolicyTest, AcceptsAnEmptyAndATypicalPolicy) {
  EXPECT_EQ(Error(meshtel::v1::ProxyPolicy()), "ok");
  meshtel::v1::ProxyPolicy policy;
  policy.mutable_outbound()->set_random_sampling_percentage(100);
  policy.mutable_outbound()->set_report(true);
  AddTag(*policy.mutable_outbound(), "tier")->set_literal("gold");
  AddTag(*policy.mutable_outbound(), "user")->set_header("x-user");
  AddTag(*policy.mutable_inbound(), "tier")->set_environment("TIER");  // other side: no clash
  policy.add_capture_request_headers("x-user");
  EXPECT_EQ(Error(policy), "ok");
}

TEST(ActivePolicyTest, RejectsWhatTheProxyCannotEnforceNamingTheField) {
  meshtel::v1::ProxyPolicy policy;
  policy.mutable_inbound()->set_random_sampling_percentage(140);
  EXPECT_EQ(Error(policy), "inbound.random_sampling_percentage: 140 is not in [0, 100]");
  policy.mutable_inbound()->set_random_sampling_percentage(std::nan(""));
  EXPECT_EQ(Error(policy), "inbound.random_sampling_percentage: nan is not in [0, 100]");

  policy.Clear();
  AddTag(*policy.mutable_outbound(), "")->set_literal("x");
  EXPECT_EQ(Error(policy), "outbound.custom_tags[0].name: is empty");
  policy.Clear();
  AddTag(*policy.mutable_outbound(), "a")->set_literal("x");
  AddTag(*policy.mutable_outbound(), "a")->set_literal("y");
  EXPECT_EQ(Error(policy), "outbound.custom_tags[1].name: 'a' is used twice");
  policy.Clear();
  AddTag(*policy.mutable_outbound(), "a");
  EXPECT_EQ(Error(policy),
            "outbound.custom_tags[0]: tag 'a' has no literal, header or environment");
  policy.Clear();
  AddTag(*policy.mutable_outbound(), "a")->set_header("X-User");
  EXPECT_EQ(Error(policy),
            "outbound.custom_tags[0].header: 'X-User' is not a lower-case header name");
  policy.Clear();
  AddTag(*policy.mutable_outbound(), "a")->set_environment("");
  EXPECT_EQ(Error(policy), "outbound.custom_tags[0].environment: is empty");

  policy.Clear();
  policy.add_capture_request_headers("bad header");
  EXPECT_EQ(Error(policy),
            "capture_request_headers[0]: 'bad header' is not a lower-case header name");
}

TEST(ActivePolicyTest, CapturedHeadersCountWithTheConfigsAgainstTheLimit) {
  ProxyConfig config;
  for (int i = 0; i < 2; ++i) config.capture_request_headers.push_back(fmt::format("x-own-{}", i));
  meshtel::v1::ProxyPolicy policy;
  for (int i = 0; i < 30; ++i) policy.add_capture_request_headers(fmt::format("x-h-{}", i));
  EXPECT_EQ(Error(policy, config), "ok");         // 32 together
  policy.add_capture_request_headers("x-own-0");  // already the proxy's: still 32
  EXPECT_EQ(Error(policy, config), "ok");
  policy.add_capture_request_headers("x-h-30");
  EXPECT_EQ(Error(policy, config),
            "capture_request_headers: 32 headers, 33 with the proxy's own, are more than 32");
}

TEST(ActivePolicyTest, CompilesSidesOverTheConfig) {
  ProxyConfig config;
  config.tracing.random_sampling_percentage = 5;
  config.capture_request_headers = {"x-tenant"};
  const auto defaults = DefaultPolicy(config);
  EXPECT_EQ(defaults->version, "");
  EXPECT_EQ(defaults->outbound.sampling_percentage, 5);
  EXPECT_TRUE(defaults->outbound.report);
  EXPECT_TRUE(defaults->inbound.report);
  EXPECT_EQ(defaults->capture_request_headers, config.capture_request_headers);

  meshtel::v1::ProxyPolicy policy;
  policy.mutable_outbound()->set_random_sampling_percentage(100);
  policy.mutable_outbound()->set_report(false);
  AddTag(*policy.mutable_outbound(), "pod")->set_environment("POD");
  auto* missing = AddTag(*policy.mutable_outbound(), "zone");
  missing->set_environment("ZONE");
  missing->set_default_value("zone-unknown");
  AddTag(*policy.mutable_outbound(), "none")->set_environment("NONE");  // unset, no default
  policy.add_capture_request_headers("x-user");
  policy.add_capture_request_headers("x-tenant");
  const auto active = CompilePolicy(policy, "abc", config, [](const char* name) -> const char* {
    return std::string_view(name) == "POD" ? "pod-1" : nullptr;
  });
  EXPECT_EQ(active->version, "abc");
  EXPECT_EQ(active->outbound.sampling_percentage, 100);
  EXPECT_FALSE(active->outbound.report);
  ASSERT_EQ(active->outbound.tags.size(), 2u);
  EXPECT_EQ(active->outbound.tags[0].name, "pod");
  EXPECT_EQ(active->outbound.tags[0].value, "pod-1");
  EXPECT_EQ(active->outbound.tags[1].value, "zone-unknown");
  // The inbound side is not in the policy: the config's behaviour.
  EXPECT_EQ(active->inbound.sampling_percentage, 5);
  EXPECT_TRUE(active->inbound.report);
  EXPECT_EQ(active->capture_request_headers, (std::vector<std::string>{"x-tenant", "x-user"}));
}

TEST(ActivePolicyTest, ReadersSeeAnInstalledPolicyAndLeasesKeepTheOldOneAlive) {
  ProxyConfig config;
  PolicyHolder holder(DefaultPolicy(config));
  PolicyReader reader(holder);
  std::weak_ptr<const ActivePolicy> first = holder.current();
  {
    PolicyReader::Lease old = reader.Acquire();
    EXPECT_EQ(old->version, "");
    meshtel::v1::ProxyPolicy policy;
    holder.Install(CompilePolicy(policy, "v2", config, &NoEnvironment));
    EXPECT_EQ(holder.generation(), 2u);
    PolicyReader::Lease next = reader.Acquire();
    EXPECT_EQ(next->version, "v2");
    EXPECT_EQ(old->version, "");  // still valid while leased
    EXPECT_FALSE(first.expired());
  }
  holder.Install(CompilePolicy(meshtel::v1::ProxyPolicy(), "v3", config, &NoEnvironment));
  EXPECT_EQ(reader.Acquire()->version, "v3");
  EXPECT_TRUE(first.expired());  // no lease held it any more
}

}  // namespace
}  // namespace meshtel::proxy
