#include "collector/policy/policy_source.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

TEST(PolicySource, StartsWithAnEmptyPolicyAtGenerationOne) {
  PolicySource source;
  ASSERT_NE(source.current(), nullptr);
  EXPECT_EQ(source.current()->resource_count(), 0u);
  EXPECT_EQ(source.generation(), 1u);
}

TEST(PolicySource, ReplaceInstallsThePolicyAndCallsListenersInOrder) {
  auto first = std::make_shared<const TelemetryPolicy>();
  PolicySource source(first);
  EXPECT_EQ(source.current(), first);

  std::vector<int> calls;
  std::shared_ptr<const TelemetryPolicy> seen;
  source.Subscribe([&](const std::shared_ptr<const TelemetryPolicy>& policy) {
    calls.push_back(1);
    seen = policy;
    // The new policy is already visible to readers when listeners run.
    EXPECT_EQ(source.current(), policy);
  });
  const int second_id = source.Subscribe([&](const auto&) { calls.push_back(2); });

  auto next = std::make_shared<const TelemetryPolicy>();
  source.Replace(next);
  EXPECT_EQ(source.current(), next);
  EXPECT_EQ(seen, next);
  EXPECT_EQ(source.generation(), 2u);
  EXPECT_EQ(calls, (std::vector<int>{1, 2}));

  source.Unsubscribe(second_id);
  source.Replace(nullptr);  // null installs an empty policy
  ASSERT_NE(source.current(), nullptr);
  EXPECT_EQ(source.generation(), 3u);
  EXPECT_EQ(calls, (std::vector<int>{1, 2, 1}));
}

}  // namespace
}  // namespace meshtel::collector
