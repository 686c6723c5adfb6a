#include "tests/support/official_schema.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fmt/format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "tests/support/process.h"

namespace meshtel::testing {
namespace {

namespace pb = google::protobuf;

struct OfficialSchemas {
  std::string unavailable;  // why not, or empty
  pb::DescriptorPool pool;
  std::unique_ptr<pb::DynamicMessageFactory> factory;
};

const OfficialSchemas& Schemas() {
  static const OfficialSchemas* schemas = [] {
    auto* s = new OfficialSchemas();
    const std::filesystem::path script =
        std::filesystem::path(MESHTEL_SHARED_DIR) / "specs/protos/official-descriptors.py";
    if (!std::filesystem::exists(script)) {
      s->unavailable = fmt::format("{} is absent", script.string());
      return s;
    }
    const std::string out = MakeTempDir("official-schema") + "/official.desc";
    std::string output;
    if (RunCommand(fmt::format("python3 '{}' '{}'", script.string(), out), &output) != 0) {
      s->unavailable = fmt::format("official-descriptors.py failed: {}", output);
      return s;
    }
    std::ifstream file(out, std::ios::binary);
    std::stringstream bytes;
    bytes << file.rdbuf();
    pb::FileDescriptorSet set;
    if (!set.ParseFromString(bytes.str())) {
      s->unavailable = "the official descriptor set does not parse";
      return s;
    }
    for (const pb::FileDescriptorProto& proto : set.file()) {
      if (s->pool.BuildFile(proto) == nullptr) {
        s->unavailable = fmt::format("{} does not build", proto.name());
        return s;
      }
    }
    s->factory = std::make_unique<pb::DynamicMessageFactory>(&s->pool);
    return s;
  }();
  return *schemas;
}

}  // namespace

OfficialMessage NewOfficialMessage(const std::string& full_name) {
  const OfficialSchemas& schemas = Schemas();
  OfficialMessage result;
  if (!schemas.unavailable.empty()) {
    result.unavailable = schemas.unavailable;
    return result;
  }
  const pb::Descriptor* type = schemas.pool.FindMessageTypeByName(full_name);
  if (type == nullptr) {
    result.unavailable = fmt::format("{} is not in the official descriptor set", full_name);
    return result;
  }
  result.message.reset(schemas.factory->GetPrototype(type)->New());
  return result;
}

}  // namespace meshtel::testing
