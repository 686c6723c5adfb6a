#include "collector/common/yaml_map.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace meshtel::common {
namespace {

std::string Scalar(const YAML::Node& node) { return node.IsScalar() ? node.Scalar() : ""; }

}  // namespace

YamlMap::YamlMap(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    status_ = absl::InvalidArgumentError(
        fmt::format("{}: must be a mapping of keys to values", path_.empty() ? "document" : path_));
  }
}

std::string YamlMap::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

void YamlMap::Fail(absl::Status status) {
  if (status_.ok() && !status.ok()) {
    status_ = std::move(status);
  }
}

void YamlMap::FailAt(std::string_view key, std::string_view what) {
  Fail(absl::InvalidArgumentError(fmt::format("{}: {}", PathOf(key), what)));
}

bool YamlMap::Has(std::string_view key) const {
  if (!node_.IsMap()) return false;
  const YAML::Node& map = node_;
  return static_cast<bool>(map[std::string(key)]);
}

YAML::Node YamlMap::Get(std::string_view key) {
  known_keys_.insert(std::string(key));
  if (!node_.IsMap()) {
    return YAML::Node(YAML::NodeType::Undefined);
  }
  YAML::Node value = node_[std::string(key)];
  if (value.IsDefined() && value.IsNull()) {
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return value;
}

void YamlMap::Read(std::string_view key, std::string& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  if (!value.IsScalar()) {
    FailAt(key, "must be a string");
    return;
  }
  out = value.Scalar();
}

void YamlMap::Read(std::string_view key, bool& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  const std::string text = Scalar(value);
  if (text == "true") {
    out = true;
  } else if (text == "false") {
    out = false;
  } else {
    FailAt(key, fmt::format("'{}' is not true or false", text));
  }
}

void YamlMap::Read(std::string_view key, uint64_t& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  const std::string text = Scalar(value);
  uint64_t parsed = 0;
  if (text.empty() || text[0] == '-' || !absl::SimpleAtoi(text, &parsed)) {
    FailAt(key, fmt::format("'{}' is not a non-negative integer", text));
    return;
  }
  out = parsed;
}

void YamlMap::Read(std::string_view key, uint32_t& out) {
  uint64_t wide = out;
  Read(key, wide);
  if (wide > std::numeric_limits<uint32_t>::max()) {
    FailAt(key, fmt::format("'{}' is larger than {}", wide, std::numeric_limits<uint32_t>::max()));
    return;
  }
  out = static_cast<uint32_t>(wide);
}

void YamlMap::Read(std::string_view key, double& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  const std::string text = Scalar(value);
  double parsed = 0;
  if (!absl::SimpleAtod(text, &parsed)) {
    FailAt(key, fmt::format("'{}' is not a number", text));
    return;
  }
  out = parsed;
}

void YamlMap::Read(std::string_view key, absl::Duration& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  const std::string text = Scalar(value);
  absl::Duration parsed;
  if (!absl::ParseDuration(text, &parsed) || parsed < absl::ZeroDuration() ||
      parsed == absl::InfiniteDuration()) {
    FailAt(key, fmt::format("'{}' is not a duration such as 200ms, 15s or 1m", text));
    return;
  }
  out = parsed;
}

void YamlMap::Read(std::string_view key, HostPort& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  absl::StatusOr<HostPort> parsed = ParseHostPort(Scalar(value));
  if (!parsed.ok()) {
    FailAt(key, std::string(parsed.status().message()));
    return;
  }
  out = *std::move(parsed);
}

void YamlMap::Read(std::string_view key, std::vector<std::string>& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  if (!value.IsSequence()) {
    FailAt(key, "must be a list of strings");
    return;
  }
  std::vector<std::string> parsed;
  for (const YAML::Node& item : value) {
    if (!item.IsScalar()) {
      FailAt(key, "must be a list of strings");
      return;
    }
    parsed.push_back(item.Scalar());
  }
  out = std::move(parsed);
}

void YamlMap::Read(std::string_view key, std::vector<HostPort>& out) {
  std::vector<std::string> texts;
  Read(key, texts);
  if (!status_.ok() || texts.empty()) return;
  std::vector<HostPort> parsed;
  for (size_t i = 0; i < texts.size(); ++i) {
    absl::StatusOr<HostPort> address = ParseHostPort(texts[i]);
    if (!address.ok()) {
      FailAt(fmt::format("{}[{}]", key, i), std::string(address.status().message()));
      return;
    }
    parsed.push_back(*std::move(address));
  }
  out = std::move(parsed);
}

void YamlMap::Read(std::string_view key, std::vector<std::pair<std::string, std::string>>& out) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return;
  if (!value.IsMap()) {
    FailAt(key, "must be a mapping of strings to strings");
    return;
  }
  std::vector<std::pair<std::string, std::string>> parsed;
  for (const auto& entry : value) {
    if (!entry.first.IsScalar()) {
      FailAt(key, "must be a mapping of strings to strings");
      return;
    }
    const std::string entry_key = entry.first.Scalar();
    if (!entry.second.IsScalar()) {
      FailAt(fmt::format("{}.{}", key, entry_key), "must be a string");
      return;
    }
    parsed.emplace_back(entry_key, entry.second.Scalar());
  }
  out = std::move(parsed);
}

std::optional<YamlMap> YamlMap::Map(std::string_view key) {
  YAML::Node value = Get(key);
  if (!value.IsDefined()) return std::nullopt;
  YamlMap child(value, PathOf(key));
  Fail(child.status_);
  return child;
}

YAML::Node YamlMap::Node(std::string_view key) { return Get(key); }

std::vector<YamlMap> YamlMap::MapList(std::string_view key) {
  YAML::Node value = Get(key);
  std::vector<YamlMap> children;
  if (!value.IsDefined()) return children;
  if (!value.IsSequence()) {
    FailAt(key, "must be a list");
    return children;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    YamlMap child(value[i], fmt::format("{}[{}]", PathOf(key), i));
    Fail(child.status_);
    children.push_back(std::move(child));
  }
  return children;
}

absl::Status YamlMap::Finish() {
  if (!status_.ok() || !node_.IsMap()) return status_;
  for (const auto& entry : node_) {
    const std::string key = entry.first.as<std::string>();
    if (!known_keys_.contains(key)) {
      return absl::InvalidArgumentError(fmt::format("{}: unknown key", PathOf(key)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadTextFile(const std::string& file_path) {
  std::ifstream in(file_path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(fmt::format("{}: cannot open the file", file_path));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(fmt::format("{}: cannot read the file", file_path));
  }
  return text.str();
}

absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& file_path) {
  absl::StatusOr<std::string> text = ReadTextFile(file_path);
  if (!text.ok()) return text.status();
  try {
    return YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", file_path, e.what()));
  }
}

}  // namespace meshtel::common
