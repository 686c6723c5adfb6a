#pragma once
// JSON string escaping for access-log lines, and UTF-8 repair for backends that need valid text.
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

// Replaces, in place, every byte of `text` that does not start or continue a valid UTF-8
// sequence by U+FFFD (the same rule as the JSON escaping above); the rest stays as it is.
// Returns true when anything was replaced. Allocates only when something is replaced.
bool ReplaceInvalidUtf8(std::string& text);

}  // namespace meshtel::collector
