// UTF-8 helpers shared by the tokenizer and the template interpreter.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvaudit::text {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if the bytes there are not
// valid UTF-8 (overlong, surrogate, truncated, stray continuation byte).
size_t utf8_valid_len(std::string_view s, size_t i);

// Length of the sequence starting at s[i] by its lead byte alone, clamped to what is left (>= 1).
size_t utf8_char_len(std::string_view s, size_t i);

// Decodes the valid sequence at s[i] of length n (as utf8_valid_len returned).
char32_t utf8_decode(std::string_view s, size_t i, size_t n);

void utf8_append(std::string& out, char32_t cp);

// s with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD (one per byte).
// HF tokenizers only take valid Unicode text (a Rust &str); this is how arbitrary file bytes
// become text. (Python's errors="replace" may use one U+FFFD for a truncated multi-byte sequence.)
std::string utf8_sanitize(std::string_view s);

// The offset of the first byte of s that is not part of a valid UTF-8 sequence, or npos.
size_t utf8_invalid_at(std::string_view s);

// Bytes held back at the end of s because they start a UTF-8 sequence that is not complete yet
// (0 when s ends on a character boundary or in bytes that can never become valid).
size_t utf8_incomplete_tail(std::string_view s);

// GPT-2 byte-level alphabet (SPEC.md §2): every byte maps to one printable code point; the
// printable ranges '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF map to themselves, the other 68
// bytes to U+0100.. in byte order.
const std::array<std::string, 256>& byte_level_chars();  // byte -> UTF-8 of its code point
int byte_level_byte(char32_t cp);                          // code point -> byte, or -1

}  // namespace kvaudit::text
