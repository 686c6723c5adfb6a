#include "collector/policy/filter_expression.h"

// Tested by: tests/collector/policy/filter_expression_test.cc

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "collector/common/response_flag_codes.h"
#include "collector/metrics/record_fields.h"
#include "fmt/format.h"

namespace meshtel::collector {
namespace filter_detail {

enum class Type : uint8_t { kInt, kString, kBool };

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kInt:
      return "int";
    case Type::kString:
      return "string";
    case Type::kBool:
      return "bool";
  }
  return "?";
}

// Integer attributes beyond the record fields (record_fields.h).
enum class IntAttribute : uint8_t { kResponseCode, kDuration, kRequestSize, kResponseSize };

// One side of a comparison (or a bare bool value).
struct Operand {
  enum class Kind : uint8_t { kInt, kString, kBool, kField, kIntAttribute, kMtls, kHeader };
  Kind kind = Kind::kInt;
  Type type = Type::kInt;
  int64_t int_value = 0;
  bool bool_value = false;
  std::string text;  // kString: the literal; kHeader: the lower-case header name
  RecordField field = RecordField::kRequestMethod;
  IntAttribute int_attribute = IntAttribute::kResponseCode;
};

enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

std::string_view StringField(RecordField field, const meshtel::v1::RequestRecord& record,
                             char (&buffer)[16]) {
  switch (field) {
    case RecordField::kResponseCode: {
      // Not reached: response.code is an integer attribute.
      const auto end = std::to_chars(buffer, buffer + sizeof(buffer), record.response_code()).ptr;
      return std::string_view(buffer, static_cast<size_t>(end - buffer));
    }
    case RecordField::kResponseGrpcStatus: {
      if (!record.has_grpc_status()) return {};
      const auto end = std::to_chars(buffer, buffer + sizeof(buffer), record.grpc_status()).ptr;
      return std::string_view(buffer, static_cast<size_t>(end - buffer));
    }
    case RecordField::kResponseFlags: {
      // A thread's own text: grows once, then reused.
      thread_local std::string flags;
      flags.clear();
      common::AppendResponseFlagCodes(flags, record.response_flags());
      return flags;
    }
    default:
      return RecordFieldText(field, record).value_or(std::string_view());
  }
}

int64_t IntValue(const Operand& operand, const meshtel::v1::RequestRecord& record) {
  if (operand.kind == Operand::Kind::kInt) return operand.int_value;
  switch (operand.int_attribute) {
    case IntAttribute::kResponseCode:
      return record.response_code();
    case IntAttribute::kDuration:
      return static_cast<int64_t>(record.duration_ns() / 1'000'000);
    case IntAttribute::kRequestSize:
      return static_cast<int64_t>(record.request_bytes());
    case IntAttribute::kResponseSize:
      return static_cast<int64_t>(record.response_bytes());
  }
  return 0;
}

std::string_view StringOf(const Operand& operand, const meshtel::v1::RequestRecord& record,
                          char (&buffer)[16]) {
  switch (operand.kind) {
    case Operand::Kind::kString:
      return operand.text;
    case Operand::Kind::kField:
      return StringField(operand.field, record, buffer);
    case Operand::Kind::kHeader:
      for (const meshtel::v1::CapturedHeader& header : record.captured_headers()) {
        if (header.name() == operand.text) return header.value();
      }
      return {};
    default:
      return {};
  }
}

bool BoolOf(const Operand& operand, const meshtel::v1::RequestRecord& record) {
  if (operand.kind == Operand::Kind::kMtls) return record.mutual_tls();
  return operand.bool_value;
}

template <class T>
bool Compare(CompareOp op, const T& a, const T& b) {
  switch (op) {
    case CompareOp::kEq:
      return a == b;
    case CompareOp::kNe:
      return a != b;
    case CompareOp::kLt:
      return a < b;
    case CompareOp::kLe:
      return a <= b;
    case CompareOp::kGt:
      return a > b;
    case CompareOp::kGe:
      return a >= b;
  }
  return false;
}

}  // namespace filter_detail

struct FilterExpression::Node {
  enum class Kind : uint8_t { kOr, kAnd, kNot, kCompare, kValue };
  Kind kind = Kind::kValue;
  std::vector<Node> children;  // kOr, kAnd: two or more; kNot: one
  filter_detail::CompareOp op = filter_detail::CompareOp::kEq;
  filter_detail::Operand lhs;  // kCompare, kValue (a bool)
  filter_detail::Operand rhs;  // kCompare

  bool Evaluate(const meshtel::v1::RequestRecord& record) const {
    using filter_detail::Operand;
    using filter_detail::Type;
    switch (kind) {
      case Kind::kOr:
        for (const Node& child : children) {
          if (child.Evaluate(record)) return true;
        }
        return false;
      case Kind::kAnd:
        for (const Node& child : children) {
          if (!child.Evaluate(record)) return false;
        }
        return true;
      case Kind::kNot:
        return !children.front().Evaluate(record);
      case Kind::kValue:
        return filter_detail::BoolOf(lhs, record);
      case Kind::kCompare:
        switch (lhs.type) {
          case Type::kInt:
            return filter_detail::Compare(op, filter_detail::IntValue(lhs, record),
                                          filter_detail::IntValue(rhs, record));
          case Type::kBool:
            return filter_detail::Compare(op, filter_detail::BoolOf(lhs, record),
                                          filter_detail::BoolOf(rhs, record));
          case Type::kString: {
            char left_buffer[16];
            char right_buffer[16];
            // response.flags uses one thread-local text: never on both sides at once.
            const std::string_view left = filter_detail::StringOf(lhs, record, left_buffer);
            if (rhs.kind == Operand::Kind::kField && lhs.kind == Operand::Kind::kField &&
                rhs.field == RecordField::kResponseFlags &&
                lhs.field == RecordField::kResponseFlags) {
              return filter_detail::Compare(op, left, left);
            }
            return filter_detail::Compare(op, left,
                                          filter_detail::StringOf(rhs, record, right_buffer));
          }
        }
    }
    return false;
  }
};

namespace {

using filter_detail::CompareOp;
using filter_detail::IntAttribute;
using filter_detail::Operand;
using filter_detail::Type;
using Node = FilterExpression::Node;

struct IntAttributeName {
  std::string_view name;
  IntAttribute attribute;
};
constexpr IntAttributeName kIntAttributes[] = {
    {"response.code", IntAttribute::kResponseCode},
    {"response.duration", IntAttribute::kDuration},
    {"request.size", IntAttribute::kRequestSize},
    {"response.size", IntAttribute::kResponseSize},
};

// Nesting deeper than this is refused (the parser and Evaluate() recurse).
constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::StatusOr<Node> Parse() {
    SkipSpace();
    if (at_ == text_.size()) return Error("expected an expression", at_);
    absl::StatusOr<Node> node = ParseOr(0);
    if (!node.ok()) return node;
    SkipSpace();
    if (at_ != text_.size()) {
      return Error(fmt::format("unexpected '{}'", text_.substr(at_, 1)), at_);
    }
    return node;
  }

  std::vector<std::string> TakeHeaders() {
    std::sort(headers_.begin(), headers_.end());
    headers_.erase(std::unique(headers_.begin(), headers_.end()), headers_.end());
    return std::move(headers_);
  }

 private:
  static absl::Status Error(std::string_view what, size_t offset) {
    return absl::InvalidArgumentError(fmt::format("{} at offset {}", what, offset));
  }

  void SkipSpace() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }

  bool Consume(std::string_view token) {
    SkipSpace();
    if (text_.substr(at_).starts_with(token)) {
      at_ += token.size();
      return true;
    }
    return false;
  }

  absl::StatusOr<Node> ParseOr(int depth) {
    absl::StatusOr<Node> first = ParseAnd(depth);
    if (!first.ok()) return first;
    if (!Peek("||")) return first;
    Node node;
    node.kind = Node::Kind::kOr;
    node.children.push_back(*std::move(first));
    while (Consume("||")) {
      absl::StatusOr<Node> next = ParseAnd(depth);
      if (!next.ok()) return next;
      node.children.push_back(*std::move(next));
    }
    return node;
  }

  absl::StatusOr<Node> ParseAnd(int depth) {
    absl::StatusOr<Node> first = ParseUnary(depth);
    if (!first.ok()) return first;
    if (!Peek("&&")) return first;
    Node node;
    node.kind = Node::Kind::kAnd;
    node.children.push_back(*std::move(first));
    while (Consume("&&")) {
      absl::StatusOr<Node> next = ParseUnary(depth);
      if (!next.ok()) return next;
      node.children.push_back(*std::move(next));
    }
    return node;
  }

  bool Peek(std::string_view token) {
    SkipSpace();
    return text_.substr(at_).starts_with(token);
  }

  absl::StatusOr<Node> ParseUnary(int depth) {
    if (depth > kMaxDepth) return Error("expression nested too deeply", at_);
    SkipSpace();
    if (at_ < text_.size() && text_[at_] == '!' && !text_.substr(at_).starts_with("!=")) {
      ++at_;
      absl::StatusOr<Node> inner = ParseUnary(depth + 1);
      if (!inner.ok()) return inner;
      Node node;
      node.kind = Node::Kind::kNot;
      node.children.push_back(*std::move(inner));
      return node;
    }
    return ParseCompare(depth);
  }

  absl::StatusOr<Node> ParseCompare(int depth) {
    SkipSpace();
    if (at_ < text_.size() && text_[at_] == '(') {
      ++at_;
      absl::StatusOr<Node> inner = ParseOr(depth + 1);
      if (!inner.ok()) return inner;
      SkipSpace();
      if (at_ >= text_.size() || text_[at_] != ')') return Error("expected ')'", at_);
      ++at_;
      return inner;
    }
    const size_t lhs_offset = at_;
    absl::StatusOr<Operand> lhs = ParseValue();
    if (!lhs.ok()) return lhs.status();
    SkipSpace();
    const size_t op_offset = at_;
    std::optional<CompareOp> op;
    static constexpr std::pair<std::string_view, CompareOp> kOps[] = {
        {"==", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<=", CompareOp::kLe},
        {">=", CompareOp::kGe}, {"<", CompareOp::kLt},  {">", CompareOp::kGt}};
    for (const auto& [token, value] : kOps) {
      if (text_.substr(at_).starts_with(token)) {
        op = value;
        at_ += token.size();
        break;
      }
    }
    Node node;
    if (!op) {
      if (lhs->type != Type::kBool) {
        return Error(fmt::format("'{}' is {}, not bool: compare it with a value",
                                 Describe(*lhs, lhs_offset), TypeName(lhs->type)),
                     lhs_offset);
      }
      node.kind = Node::Kind::kValue;
      node.lhs = *std::move(lhs);
      return node;
    }
    SkipSpace();
    const size_t rhs_offset = at_;
    absl::StatusOr<Operand> rhs = ParseValue();
    if (!rhs.ok()) return rhs.status();
    if (lhs->type != rhs->type) {
      return Error(
          fmt::format("cannot compare {} '{}' with {} '{}'", TypeName(lhs->type),
                      Describe(*lhs, lhs_offset), TypeName(rhs->type), Describe(*rhs, rhs_offset)),
          op_offset);
    }
    if (lhs->type == Type::kBool && *op != CompareOp::kEq && *op != CompareOp::kNe) {
      return Error("bools compare only with == and !=", op_offset);
    }
    node.kind = Node::Kind::kCompare;
    node.op = *op;
    node.lhs = *std::move(lhs);
    node.rhs = *std::move(rhs);
    return node;
  }

  // The source text of an operand that starts at `offset` (for errors).
  std::string Describe(const Operand&, size_t offset) const {
    return std::string(text_.substr(offset, operand_end_.at(offset) - offset));
  }

  absl::StatusOr<Operand> ParseValue() {
    SkipSpace();
    const size_t start = at_;
    if (at_ >= text_.size()) return Error("expected a value", at_);
    const char c = text_[at_];
    Operand operand;
    if (c == '\'' || c == '"') {
      absl::StatusOr<std::string> literal = ParseString();
      if (!literal.ok()) return literal.status();
      operand.kind = Operand::Kind::kString;
      operand.type = Type::kString;
      operand.text = *std::move(literal);
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '-' && at_ + 1 < text_.size() &&
                std::isdigit(static_cast<unsigned char>(text_[at_ + 1])))) {
      size_t end = at_ + 1;
      while (end < text_.size() && std::isdigit(static_cast<unsigned char>(text_[end]))) ++end;
      int64_t value = 0;
      const auto [ptr, error] = std::from_chars(text_.data() + at_, text_.data() + end, value);
      if (error != std::errc() || ptr != text_.data() + end) {
        return Error(fmt::format("integer '{}' is out of range", text_.substr(at_, end - at_)),
                     at_);
      }
      at_ = end;
      operand.kind = Operand::Kind::kInt;
      operand.type = Type::kInt;
      operand.int_value = value;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = at_;
      while (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) ||
                                    text_[end] == '_' || text_[end] == '.')) {
        ++end;
      }
      const std::string_view name = text_.substr(at_, end - at_);
      at_ = end;
      absl::StatusOr<Operand> attribute = Attribute(name, start);
      if (!attribute.ok()) return attribute.status();
      operand = *std::move(attribute);
    } else {
      return Error(fmt::format("expected a value, found '{}'", text_.substr(at_, 1)), at_);
    }
    operand_end_[start] = at_;
    return operand;
  }

  absl::StatusOr<Operand> Attribute(std::string_view name, size_t start) {
    Operand operand;
    if (name == "true" || name == "false") {
      operand.kind = Operand::Kind::kBool;
      operand.type = Type::kBool;
      operand.bool_value = name == "true";
      return operand;
    }
    if (name == "request.headers") {
      SkipSpace();
      if (at_ >= text_.size() || text_[at_] != '[') {
        return Error("expected [ after request.headers (request.headers['x-name'])", at_);
      }
      ++at_;
      SkipSpace();
      const size_t name_offset = at_;
      if (at_ >= text_.size() || (text_[at_] != '\'' && text_[at_] != '"')) {
        return Error("expected a quoted header name", at_);
      }
      absl::StatusOr<std::string> header = ParseString();
      if (!header.ok()) return header.status();
      if (header->empty() || !std::all_of(header->begin(), header->end(), [](unsigned char ch) {
            return std::isalnum(ch) ||
                   std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(ch)) !=
                       std::string_view::npos;
          })) {
        return Error(fmt::format("'{}' is not a header name", *header), name_offset);
      }
      SkipSpace();
      if (at_ >= text_.size() || text_[at_] != ']') return Error("expected ']'", at_);
      ++at_;
      std::string lower = *std::move(header);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      headers_.push_back(lower);
      operand.kind = Operand::Kind::kHeader;
      operand.type = Type::kString;
      operand.text = std::move(lower);
      return operand;
    }
    if (name == "connection.mtls") {
      operand.kind = Operand::Kind::kMtls;
      operand.type = Type::kBool;
      return operand;
    }
    for (const IntAttributeName& attribute : kIntAttributes) {
      if (attribute.name == name) {
        operand.kind = Operand::Kind::kIntAttribute;
        operand.type = Type::kInt;
        operand.int_attribute = attribute.attribute;
        return operand;
      }
    }
    // The record fields (response.code is an integer attribute, matched above).
    for (const RecordFieldName& attribute : kRecordFields) {
      if (attribute.expression == name) {
        operand.kind = Operand::Kind::kField;
        operand.type = Type::kString;
        operand.field = attribute.field;
        return operand;
      }
    }
    return Error(fmt::format("unknown attribute '{}'", name), start);
  }

  // A quoted string at at_ (CEL escapes \\ \' \" \n \t \r).
  absl::StatusOr<std::string> ParseString() {
    const size_t start = at_;
    const char quote = text_[at_++];
    std::string out;
    while (at_ < text_.size() && text_[at_] != quote) {
      char c = text_[at_++];
      if (c == '\\') {
        if (at_ >= text_.size()) break;
        const char escaped = text_[at_++];
        switch (escaped) {
          case '\\':
          case '\'':
          case '"':
            c = escaped;
            break;
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          default:
            return Error(fmt::format("unknown escape '\\{}'", escaped), at_ - 2);
        }
      }
      out.push_back(c);
    }
    if (at_ >= text_.size()) return Error("unterminated string", start);
    ++at_;  // the closing quote
    return out;
  }

  std::string_view text_;
  size_t at_ = 0;
  std::vector<std::string> headers_;
  // Where each operand that starts at an offset ends (for error messages).
  std::map<size_t, size_t> operand_end_;
};

}  // namespace

bool FilterExpression::Matches(const meshtel::v1::RequestRecord& record) const {
  if (root_ == nullptr) return true;
  return root_->Evaluate(record);
}

absl::StatusOr<FilterExpression> CompileFilterExpression(std::string_view text) {
  Parser parser(text);
  absl::StatusOr<FilterExpression::Node> root = parser.Parse();
  if (!root.ok()) return root.status();
  FilterExpression expression;
  expression.text_ = std::string(text);
  expression.headers_ = parser.TakeHeaders();
  expression.root_ = std::make_shared<const FilterExpression::Node>(*std::move(root));
  return expression;
}

}  // namespace meshtel::collector
