// meshtelctl: operator commands for a meshtel-collector's data. See docs/operations.md.

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "collector/store/record_store.h"

namespace {

constexpr char kUsage[] =
    "Usage: meshtelctl store repair --data-dir DIR\n"
    "       meshtelctl --help | --version\n"
    "\n"
    "store repair   Rebuilds the metadata of a damaged store (RocksDB RepairDB) from the files\n"
    "               in DIR, so that meshtel-collector can open it again. Records in damaged\n"
    "               files may be lost; everything else is kept. Stop the collector first and\n"
    "               back DIR up. Exit code 0 when repaired, 1 when the repair failed.\n";

int Usage(const char* problem) {
  std::fprintf(stderr, "meshtelctl: %s\n\n%s", problem, kUsage);
  return 2;
}

int StoreRepair(const std::vector<std::string_view>& args) {
  std::string data_dir;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir" && i + 1 < args.size()) {
      data_dir = std::string(args[++i]);
    } else if (args[i].starts_with("--data-dir=")) {
      data_dir = std::string(args[i].substr(11));
    } else {
      return Usage(("unexpected argument '" + std::string(args[i]) + "'").c_str());
    }
  }
  if (data_dir.empty()) return Usage("store repair needs --data-dir DIR");
  std::fprintf(stderr, "meshtelctl: repairing the store in %s\n", data_dir.c_str());
  const absl::Status status = meshtel::collector::RecordStore::Repair(data_dir);
  if (!status.ok()) {
    std::fprintf(stderr, "meshtelctl: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "meshtelctl: repaired; meshtel-collector can open %s again\n",
               data_dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("no command");
  if (args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args[0] == "--version") {
    std::printf("meshtelctl %s\n", MESHTEL_VERSION);
    return 0;
  }
  if (args.size() >= 2 && args[0] == "store" && args[1] == "repair") {
    return StoreRepair({args.begin() + 2, args.end()});
  }
  return Usage(("unknown command '" + std::string(args[0]) + "'").c_str());
}
