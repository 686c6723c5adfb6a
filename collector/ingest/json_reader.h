#pragma once
// JsonValue / ParseJson: a small, strict JSON (RFC 8259) reader for the OTLP/HTTP JSON encoding.
//
// Strict: one value with only whitespace around it; no comments, trailing commas, single quotes,
// NaN/Infinity literals, leading zeros or lone surrogates; strings must be valid UTF-8 and hold no
// raw control characters. Numbers are kept as their literal text, so 64-bit integers lose nothing
// (the caller converts them). Duplicate object keys are kept in document order (the OTLP mapping
// lets the last one win). Nesting deeper than `max_depth` is an error, so hostile input cannot
// exhaust the stack.
//
// Threading: pure functions. Errors: InvalidArgument naming the byte offset and what was wrong.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace meshtel::collector {

struct JsonMember;

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  // kString: the unescaped text (UTF-8); kNumber: the literal as written ("-12", "1.5e3").
  std::string text;
  std::vector<JsonValue> items;     // kArray
  std::vector<JsonMember> members;  // kObject, in document order

  bool is_null() const { return type == Type::kNull; }
  bool is_object() const { return type == Type::kObject; }
  bool is_array() const { return type == Type::kArray; }
  bool is_string() const { return type == Type::kString; }
  bool is_number() const { return type == Type::kNumber; }
  bool is_bool() const { return type == Type::kBool; }
};

// One member of an object: key (first) and value (second).
struct JsonMember {
  std::string first;
  JsonValue second;
};

inline constexpr int kDefaultJsonMaxDepth = 128;

absl::StatusOr<JsonValue> ParseJson(std::string_view text, int max_depth = kDefaultJsonMaxDepth);

}  // namespace meshtel::collector
