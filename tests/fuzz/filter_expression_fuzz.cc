// Fuzzes the access-log filter expression compiler (collector/policy/filter_expression.h), which
// reads operator-written policy files. Input: any bytes, taken as an expression. Invariants: the
// compiler returns OK or InvalidArgument (never crashes, never recurses without bound); an error
// names a byte offset within the input; a compiled expression evaluates on a record without
// crashing and gives the same answer twice.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collector/policy/filter_expression.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<meshtel::collector::FilterExpression> expression =
      meshtel::collector::CompileFilterExpression(text);
  if (!expression.ok()) {
    if (expression.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    const std::string message(expression.status().message());
    const size_t at = message.rfind(" at offset ");
    if (at == std::string_view::npos) std::abort();
    const unsigned long offset =
        std::strtoul(std::string(message.substr(at + 11)).c_str(), nullptr, 10);
    if (offset > size) std::abort();
    return 0;
  }
  meshtel::v1::RequestRecord record;
  record.set_response_code(503);
  record.set_method("GET");
  record.set_path("/cart?x=1");
  record.set_response_flags(0x3);
  record.set_grpc_status(14);
  record.mutable_source()->set_workload("frontend");
  auto* header = record.add_captured_headers();
  header->set_name("x-user-tier");
  header->set_value("gold");
  const bool first = expression->Matches(record);
  if (expression->Matches(record) != first) std::abort();
  return 0;
}
