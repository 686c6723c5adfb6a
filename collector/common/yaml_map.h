#pragma once
// YamlMap: reads one YAML mapping into a typed config struct.
//
// Every Read() leaves its output untouched when the key is absent (so in-class defaults stand),
// converts the value when present, and remembers the first error, which always names the full
// YAML path and the offending value ("reporter.flush_interval: 'soon' is not a duration").
// Finish() rejects keys that no Read() asked for, so a typo never passes silently.
//
// Threading: none; a YamlMap is used by one thread while a config file loads.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/common/host_port.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::common {

class YamlMap {
 public:
  // `node` must be a mapping or null (null reads as an empty mapping); `path` is its YAML path,
  // empty for the document root.
  YamlMap(const YAML::Node& node, std::string path);

  void Read(std::string_view key, std::string& out);
  void Read(std::string_view key, bool& out);
  void Read(std::string_view key, uint64_t& out);
  void Read(std::string_view key, uint32_t& out);
  void Read(std::string_view key, double& out);
  // A duration in Go/absl syntax: "200ms", "15s", "1m30s".
  void Read(std::string_view key, absl::Duration& out);
  // "host:port", "[v6]:port".
  void Read(std::string_view key, HostPort& out);
  void Read(std::string_view key, std::vector<std::string>& out);
  void Read(std::string_view key, std::vector<HostPort>& out);
  // A mapping of string keys to string values, in document order. Errors name the entry
  // ("access_log.json_format.status: must be a string").
  void Read(std::string_view key, std::vector<std::pair<std::string, std::string>>& out);

  // True when `key` is present (with any value, null included).
  bool Has(std::string_view key) const;

  // The mapping under `key`, or nullopt when absent; an error when it is not a mapping.
  std::optional<YamlMap> Map(std::string_view key);
  // The mappings of a sequence under `key` (empty when absent).
  std::vector<YamlMap> MapList(std::string_view key);

  // The node under `key` as it is (undefined when absent), for a block that another part of the
  // program reads with its own YamlMap(node, PathOf(key)); marks the key as known.
  YAML::Node Node(std::string_view key);

  // The full path of `key` under this mapping, e.g. "outbound.routes[0].host".
  std::string PathOf(std::string_view key) const;

  // Records an error found by the caller (for example by a nested YamlMap).
  void Fail(absl::Status status);

  // The first error seen, or an error naming the first unknown key, or OK.
  absl::Status Finish();

 private:
  // The node under `key`, or an undefined node; marks the key as known.
  YAML::Node Get(std::string_view key);
  // Records "<path>: <what>" as the error unless one is recorded already.
  void FailAt(std::string_view key, std::string_view what);

  YAML::Node node_;
  std::string path_;
  absl::flat_hash_set<std::string> known_keys_;
  absl::Status status_;
};

// The whole content of a file: NotFound "<path>: cannot open the file", or InvalidArgument
// "<path>: cannot read the file".
absl::StatusOr<std::string> ReadTextFile(const std::string& file_path);

// Loads a YAML file, or returns InvalidArgument naming the file and the parse error position.
absl::StatusOr<YAML::Node> LoadYamlFile(const std::string& file_path);

// Loads `file_path` and hands the document to `parse`; an empty path parses an empty document,
// so every key takes its default.
template <class Config>
absl::StatusOr<Config> LoadConfigFile(const std::string& file_path,
                                      absl::StatusOr<Config> (*parse)(const YAML::Node&)) {
  if (file_path.empty()) return parse(YAML::Node());
  absl::StatusOr<YAML::Node> root = LoadYamlFile(file_path);
  if (!root.ok()) return root.status();
  return parse(*root);
}

}  // namespace meshtel::common
