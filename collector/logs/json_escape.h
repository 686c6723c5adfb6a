#pragma once
// JSON string escaping for access-log lines.
//
// The escaped form is what goes between the quotes of a JSON string: '"' and '\' are
// backslash-escaped, control characters (U+0000..U+001F) become \b \f \n \r \t or \u00XX,
// valid UTF-8 is copied as it is, and every byte that does not start or continue a valid UTF-8
// sequence (overlong forms, surrogates and code points above U+10FFFF included) is replaced by
// U+FFFD, one replacement per invalid byte.
//
// Threading: pure functions. Allocation: only the growth of `out` (EscapeJsonTail also uses a
// thread-local scratch string, and only when the tail needs escaping).

#include <cstddef>
#include <string>
#include <string_view>

namespace meshtel::collector {

// Appends the escaped form of `text` to `out`.
void AppendJsonEscaped(std::string& out, std::string_view text);

// Escapes, in place, the bytes of `out` from `from` to the end.
void EscapeJsonTail(std::string& out, size_t from);

}  // namespace meshtel::collector
