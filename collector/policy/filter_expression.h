#pragma once
// FilterExpression: the access-log `filter.expression` of the Telemetry API (a CEL expression,
// wire-facts §8.4), in the subset that access-log filters use, compiled once and evaluated per
// RequestRecord.
//
// Grammar (CEL syntax and precedence):
//   expr    := or
//   or      := and ('||' and)*
//   and     := unary ('&&' unary)*
//   unary   := '!' unary | compare
//   compare := value (('==' | '!=' | '<' | '<=' | '>' | '>=') value)? | '(' expr ')'
//   value   := attribute | request.headers['name'] | 'string' | "string" | integer | true | false
// Attributes: the record fields of record_fields.h kRecordFields (request.method,
// response.code, source.workload, ...) plus response.duration (milliseconds, integer),
// request.size / response.size (bytes) and connection.mtls (bool). response.code and the sizes
// and durations are integers; the rest strings (an absent header is the empty string). A bare
// value (no comparison) must be a bool. Comparing an integer with a string is an error when the
// expression compiles, not when it runs.
//
// Errors: CompileFilterExpression() returns InvalidArgument with the byte offset and what was
// expected ("unknown attribute 'response.cod' at offset 0"). Threading: a compiled
// FilterExpression is immutable; Matches() may run on any number of threads at once.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

class FilterExpression {
 public:
  // Whether `record` passes the filter.
  bool Matches(const meshtel::v1::RequestRecord& record) const;
  // The expression as written.
  const std::string& text() const { return text_; }
  // The lower-case names of the request headers it reads (the proxies must capture them).
  const std::vector<std::string>& headers() const { return headers_; }

  struct Node;  // public only for the .cc file

 private:
  friend absl::StatusOr<FilterExpression> CompileFilterExpression(std::string_view text);
  std::string text_;
  std::vector<std::string> headers_;
  std::shared_ptr<const Node> root_;
};

absl::StatusOr<FilterExpression> CompileFilterExpression(std::string_view text);

}  // namespace meshtel::collector
