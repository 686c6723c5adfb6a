#include "collector/policy/filter_expression.h"

#include <gtest/gtest.h>

#include <string>

namespace meshtel::collector {
namespace {

meshtel::v1::RequestRecord Record(uint32_t code, const std::string& method = "GET") {
  meshtel::v1::RequestRecord record;
  record.set_response_code(code);
  record.set_method(method);
  record.set_path("/cart?id=7");
  record.set_authority("cart:8080");
  record.set_duration_ns(12'500'000);
  record.set_request_bytes(300);
  record.set_response_bytes(1432);
  record.set_mutual_tls(true);
  record.mutable_source()->set_workload("frontend");
  record.mutable_source()->set_namespace_("shop");
  record.mutable_destination()->set_workload("cart");
  record.mutable_destination()->set_namespace_("shop");
  auto* header = record.add_captured_headers();
  header->set_name("x-user-tier");
  header->set_value("gold");
  return record;
}

bool Matches(const std::string& text, const meshtel::v1::RequestRecord& record) {
  absl::StatusOr<FilterExpression> expression = CompileFilterExpression(text);
  EXPECT_TRUE(expression.ok()) << text << ": " << expression.status();
  if (!expression.ok()) return false;
  return expression->Matches(record);
}

std::string CompileError(const std::string& text) {
  absl::StatusOr<FilterExpression> expression = CompileFilterExpression(text);
  EXPECT_FALSE(expression.ok()) << text;
  if (expression.ok()) return "";
  EXPECT_EQ(expression.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(expression.status().message());
}

TEST(FilterExpressionTest, ResponseCodeAtLeast400) {
  EXPECT_FALSE(Matches("response.code >= 400", Record(200)));
  EXPECT_FALSE(Matches("response.code >= 400", Record(399)));
  EXPECT_TRUE(Matches("response.code >= 400", Record(400)));
  EXPECT_TRUE(Matches("response.code >= 400", Record(503)));
}

TEST(FilterExpressionTest, ServerErrorsOfGets) {
  const std::string text = "response.code >= 500 && request.method == 'GET'";
  EXPECT_TRUE(Matches(text, Record(503, "GET")));
  EXPECT_FALSE(Matches(text, Record(503, "POST")));
  EXPECT_FALSE(Matches(text, Record(200, "GET")));
}

TEST(FilterExpressionTest, NegatedParenthesizedComparison) {
  meshtel::v1::RequestRecord record = Record(200);
  EXPECT_FALSE(Matches("!(source.workload == 'frontend')", record));
  EXPECT_TRUE(Matches("!(source.workload == 'x')", record));
  EXPECT_TRUE(Matches("!!(source.workload == 'frontend')", record));
}

TEST(FilterExpressionTest, EveryComparisonOperatorOnIntegers) {
  const meshtel::v1::RequestRecord record = Record(404);
  EXPECT_TRUE(Matches("response.code == 404", record));
  EXPECT_FALSE(Matches("response.code == 405", record));
  EXPECT_TRUE(Matches("response.code != 405", record));
  EXPECT_FALSE(Matches("response.code != 404", record));
  EXPECT_TRUE(Matches("response.code < 405", record));
  EXPECT_FALSE(Matches("response.code < 404", record));
  EXPECT_TRUE(Matches("response.code <= 404", record));
  EXPECT_FALSE(Matches("response.code <= 403", record));
  EXPECT_TRUE(Matches("response.code > 403", record));
  EXPECT_FALSE(Matches("response.code > 404", record));
  EXPECT_TRUE(Matches("response.code >= 404", record));
  EXPECT_FALSE(Matches("response.code >= 405", record));
  // Literal on the left, negative literal.
  EXPECT_TRUE(Matches("400 <= response.code", record));
  EXPECT_TRUE(Matches("response.code > -1", record));
}

TEST(FilterExpressionTest, EveryComparisonOperatorOnStrings) {
  const meshtel::v1::RequestRecord record = Record(200, "GET");
  EXPECT_TRUE(Matches("request.method == \"GET\"", record));
  EXPECT_TRUE(Matches("request.method != 'POST'", record));
  EXPECT_TRUE(Matches("request.method < 'POST'", record));
  EXPECT_TRUE(Matches("request.method <= 'GET'", record));
  EXPECT_TRUE(Matches("request.method > 'DELETE'", record));
  EXPECT_TRUE(Matches("request.method >= 'GET'", record));
  EXPECT_FALSE(Matches("request.method > 'GET'", record));
  EXPECT_TRUE(Matches("source.workload != destination.workload", record));
}

TEST(FilterExpressionTest, OtherAttributes) {
  const meshtel::v1::RequestRecord record = Record(200);
  EXPECT_TRUE(Matches("response.duration == 12", record));
  EXPECT_TRUE(Matches("request.size == 300 && response.size == 1432", record));
  EXPECT_TRUE(Matches("connection.mtls", record));
  EXPECT_TRUE(Matches("connection.mtls == true", record));
  EXPECT_FALSE(Matches("connection.mtls != true", record));
  EXPECT_TRUE(Matches("request.url_path == '/cart' && request.path == '/cart?id=7'", record));
  EXPECT_TRUE(Matches("request.host == 'cart:8080'", record));
  EXPECT_TRUE(Matches("response.flags == '-'", record));
  EXPECT_TRUE(Matches("response.grpc_status == ''", record));
  meshtel::v1::RequestRecord grpc = record;
  grpc.set_grpc_status(14);
  EXPECT_TRUE(Matches("response.grpc_status == '14'", grpc));
  EXPECT_TRUE(Matches("true", record));
  EXPECT_FALSE(Matches("false", record));
}

TEST(FilterExpressionTest, Headers) {
  const meshtel::v1::RequestRecord record = Record(200);
  absl::StatusOr<FilterExpression> expression = CompileFilterExpression(
      "request.headers['X-User-Tier'] == 'gold' || request.headers[\"x-b\"] == ''");
  ASSERT_TRUE(expression.ok()) << expression.status();
  EXPECT_TRUE(expression->Matches(record));
  EXPECT_EQ(expression->headers(), (std::vector<std::string>{"x-b", "x-user-tier"}));
  // An absent header is the empty string.
  EXPECT_TRUE(Matches("request.headers['x-absent'] == ''", record));
  EXPECT_FALSE(Matches("request.headers['x-user-tier'] == 'silver'", record));
}

TEST(FilterExpressionTest, PrecedenceAndBindsTighterThanOr) {
  // true || (false && false) = true; (true || false) && false would be false.
  const meshtel::v1::RequestRecord record = Record(200, "GET");
  EXPECT_TRUE(
      Matches("request.method == 'GET' || response.code == 1 && response.code == 2", record));
  EXPECT_FALSE(
      Matches("(request.method == 'GET' || response.code == 1) && response.code == 2", record));
  // ! binds tighter than &&: (!false) && true.
  EXPECT_TRUE(Matches("!(response.code == 1) && response.code == 200", record));
  EXPECT_FALSE(Matches("!(response.code == 1 || response.code == 200)", record));
  EXPECT_TRUE(Matches("response.code==200&&request.method=='GET'", record));
}

TEST(FilterExpressionTest, StringEscapes) {
  meshtel::v1::RequestRecord record = Record(200);
  record.set_path("/it's");
  EXPECT_TRUE(Matches("request.path == '/it\\'s'", record));
  EXPECT_TRUE(Matches("request.path == \"/it's\"", record));
}

TEST(FilterExpressionTest, TypeErrorsAtCompileWithOffsets) {
  EXPECT_EQ(CompileError("response.code == '500'"),
            "cannot compare int 'response.code' with string ''500'' at offset 14");
  EXPECT_EQ(CompileError("request.method >= 400"),
            "cannot compare string 'request.method' with int '400' at offset 15");
  EXPECT_EQ(CompileError("response.code"),
            "'response.code' is int, not bool: compare it with a value at offset 0");
  EXPECT_EQ(CompileError("response.code >= 500 && request.method"),
            "'request.method' is string, not bool: compare it with a value at offset 24");
  EXPECT_EQ(CompileError("connection.mtls < true"),
            "bools compare only with == and != at offset 16");
}

TEST(FilterExpressionTest, SyntaxErrorsWithOffsets) {
  EXPECT_EQ(CompileError("response.cod >= 400"), "unknown attribute 'response.cod' at offset 0");
  EXPECT_EQ(CompileError(""), "expected an expression at offset 0");
  EXPECT_EQ(CompileError("(response.code >= 400"), "expected ')' at offset 21");
  EXPECT_EQ(CompileError("response.code >= "), "expected a value at offset 17");
  EXPECT_EQ(CompileError("response.code >= 400 400"), "unexpected '4' at offset 21");
  EXPECT_EQ(CompileError("request.method == 'GET"), "unterminated string at offset 18");
  EXPECT_EQ(CompileError("request.headers['a b'] == ''"),
            "'a b' is not a header name at offset 16");
  EXPECT_EQ(CompileError("request.headers == ''"),
            "expected [ after request.headers (request.headers['x-name']) at offset 16");
  EXPECT_EQ(CompileError("response.code >= 99999999999999999999"),
            "integer '99999999999999999999' is out of range at offset 17");
  EXPECT_EQ(CompileError("response.code >= 400 &&"), "expected a value at offset 23");
  EXPECT_EQ(CompileError("response.code = 400"),
            "'response.code' is int, not bool: compare it "
            "with a value at offset 0");
}

TEST(FilterExpressionTest, DeepNestingIsRefusedNotOverflowed) {
  std::string text(10000, '!');
  text += "true";
  EXPECT_NE(CompileError(text).find("nested too deeply"), std::string::npos);
  std::string parens(10000, '(');
  EXPECT_NE(CompileError(parens).find("nested too deeply"), std::string::npos);
}

TEST(FilterExpressionTest, KeepsTextAndIsSharedByCopies) {
  absl::StatusOr<FilterExpression> expression = CompileFilterExpression(" response.code >= 500 ");
  ASSERT_TRUE(expression.ok());
  EXPECT_EQ(expression->text(), " response.code >= 500 ");
  const FilterExpression copy = *expression;
  EXPECT_TRUE(copy.Matches(Record(500)));
  EXPECT_FALSE(copy.Matches(Record(200)));
}

TEST(FilterExpressionTest, DefaultConstructedMatchesEverything) {
  const FilterExpression empty;
  EXPECT_TRUE(empty.Matches(Record(200)));
}

}  // namespace
}  // namespace meshtel::collector
