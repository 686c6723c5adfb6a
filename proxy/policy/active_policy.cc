#include "proxy/policy/active_policy.h"

// Tested by: tests/proxy/policy/active_policy_test.cc

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <string_view>
#include <utility>

#include "fmt/format.h"

namespace meshtel::proxy {
namespace {

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", path, what));
}

// A lower-case HTTP header name (RFC 9110 token).
bool IsHeaderName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (std::isalnum(c) && !std::isupper(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

absl::Status ValidateSide(const meshtel::v1::SidePolicy& side, const std::string& path) {
  if (side.has_random_sampling_percentage()) {
    const double percent = side.random_sampling_percentage();
    if (!(percent >= 0 && percent <= 100)) {
      return Invalid(path + ".random_sampling_percentage",
                     fmt::format("{} is not in [0, 100]", percent));
    }
  }
  std::set<std::string> names;
  for (int i = 0; i < side.custom_tags_size(); ++i) {
    const meshtel::v1::PolicyCustomTag& tag = side.custom_tags(i);
    const std::string tag_path = fmt::format("{}.custom_tags[{}]", path, i);
    if (tag.name().empty()) return Invalid(tag_path + ".name", "is empty");
    if (!names.insert(tag.name()).second) {
      return Invalid(tag_path + ".name", fmt::format("'{}' is used twice", tag.name()));
    }
    switch (tag.source_case()) {
      case meshtel::v1::PolicyCustomTag::kLiteral:
        break;
      case meshtel::v1::PolicyCustomTag::kHeader:
        if (!IsHeaderName(tag.header())) {
          return Invalid(tag_path + ".header",
                         fmt::format("'{}' is not a lower-case header name", tag.header()));
        }
        break;
      case meshtel::v1::PolicyCustomTag::kEnvironment:
        if (tag.environment().empty()) return Invalid(tag_path + ".environment", "is empty");
        break;
      case meshtel::v1::PolicyCustomTag::SOURCE_NOT_SET:
        return Invalid(tag_path,
                       fmt::format("tag '{}' has no literal, header or environment", tag.name()));
    }
  }
  return absl::OkStatus();
}

ListenerPolicy CompileSide(const meshtel::v1::ProxyPolicy& policy, bool outbound,
                           const ProxyConfig& config,
                           const std::function<const char*(const char*)>& getenv) {
  ListenerPolicy out;
  out.sampling_percentage = config.tracing.random_sampling_percentage;
  if (outbound ? !policy.has_outbound() : !policy.has_inbound()) return out;
  const meshtel::v1::SidePolicy& side = outbound ? policy.outbound() : policy.inbound();
  if (side.has_random_sampling_percentage()) {
    out.sampling_percentage = side.random_sampling_percentage();
  }
  out.report = side.report();
  for (const meshtel::v1::PolicyCustomTag& tag : side.custom_tags()) {
    ListenerPolicy::Tag compiled{.name = tag.name()};
    switch (tag.source_case()) {
      case meshtel::v1::PolicyCustomTag::kLiteral:
        compiled.value = tag.literal();
        break;
      case meshtel::v1::PolicyCustomTag::kHeader:
        compiled.from_header = true;
        compiled.value = tag.header();
        compiled.default_value = tag.default_value();
        break;
      case meshtel::v1::PolicyCustomTag::kEnvironment: {
        const char* value = getenv(tag.environment().c_str());
        compiled.value = value != nullptr && *value != '\0' ? value : tag.default_value();
        if (compiled.value.empty()) continue;
        break;
      }
      case meshtel::v1::PolicyCustomTag::SOURCE_NOT_SET:
        continue;
    }
    out.tags.push_back(std::move(compiled));
  }
  return out;
}

std::vector<std::string> MergedHeaders(const meshtel::v1::ProxyPolicy& policy,
                                       const ProxyConfig& config) {
  std::vector<std::string> headers = config.capture_request_headers;
  for (const std::string& header : policy.capture_request_headers()) {
    if (std::find(headers.begin(), headers.end(), header) == headers.end()) {
      headers.push_back(header);
    }
  }
  return headers;
}

}  // namespace

absl::Status ValidateProxyPolicy(const meshtel::v1::ProxyPolicy& policy,
                                 const ProxyConfig& config) {
  if (policy.has_outbound()) {
    if (absl::Status status = ValidateSide(policy.outbound(), "outbound"); !status.ok()) {
      return status;
    }
  }
  if (policy.has_inbound()) {
    if (absl::Status status = ValidateSide(policy.inbound(), "inbound"); !status.ok()) {
      return status;
    }
  }
  for (int i = 0; i < policy.capture_request_headers_size(); ++i) {
    if (!IsHeaderName(policy.capture_request_headers(i))) {
      return Invalid(
          fmt::format("capture_request_headers[{}]", i),
          fmt::format("'{}' is not a lower-case header name", policy.capture_request_headers(i)));
    }
  }
  const size_t total = MergedHeaders(policy, config).size();
  if (total > kMaxCapturedHeaders) {
    return Invalid("capture_request_headers",
                   fmt::format("{} headers, {} with the proxy's own, are more than {}",
                               policy.capture_request_headers_size(), total, kMaxCapturedHeaders));
  }
  return absl::OkStatus();
}

std::shared_ptr<const ActivePolicy> DefaultPolicy(const ProxyConfig& config) {
  auto policy = std::make_shared<ActivePolicy>();
  policy->outbound.sampling_percentage = config.tracing.random_sampling_percentage;
  policy->inbound.sampling_percentage = config.tracing.random_sampling_percentage;
  policy->capture_request_headers = config.capture_request_headers;
  return policy;
}

std::shared_ptr<const ActivePolicy> CompilePolicy(
    const meshtel::v1::ProxyPolicy& policy, std::string version, const ProxyConfig& config,
    const std::function<const char*(const char*)>& getenv) {
  auto active = std::make_shared<ActivePolicy>();
  active->version = std::move(version);
  active->outbound = CompileSide(policy, true, config, getenv);
  active->inbound = CompileSide(policy, false, config, getenv);
  active->capture_request_headers = MergedHeaders(policy, config);
  return active;
}

PolicyHolder::PolicyHolder(std::shared_ptr<const ActivePolicy> initial)
    : policy_(std::move(initial)) {}

void PolicyHolder::Install(std::shared_ptr<const ActivePolicy> policy) {
  std::lock_guard<std::mutex> lock(mutex_);
  policy_ = std::move(policy);
  // Incremented under the lock: a reader seeing the new generation gets this policy or a newer.
  generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const ActivePolicy> PolicyHolder::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return policy_;
}

PolicyReader::PolicyReader(const PolicyHolder& holder) : holder_(holder) {}

PolicyReader::Lease PolicyReader::Acquire() {
  const uint64_t generation = holder_.generation();
  if (generation != generation_ || entries_.empty()) {
    generation_ = generation;
    entries_.push_back(Entry{.policy = holder_.current()});
    // Older snapshots go once no request holds them.
    for (auto it = entries_.begin(); std::next(it) != entries_.end();) {
      it = it->users == 0 ? entries_.erase(it) : std::next(it);
    }
  }
  return Lease(&entries_.back());
}

}  // namespace meshtel::proxy
