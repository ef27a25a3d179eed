// The text primitives IFEval's checkers are written in (Python str methods, re, nltk, langdetect in
// the reference, google-research instruction_following_eval), reproduced on ICU, PCRE2 and CLD2.
// Where a library answers differently from the reference's, docs/IFEVAL.md says how and how often.
#pragma once
#include <string>
#include <string_view>

namespace kvaudit::eval::ifeval {

// Python's str.isspace: Unicode White_Space plus U+001C..U+001F (Python counts the information
// separators as whitespace; Unicode does not).
bool py_is_space(char32_t cp);

// str.strip() / lstrip(chars) / rstrip(chars); `chars` is ASCII.
std::string_view py_strip(std::string_view s);
std::string_view py_strip_chars(std::string_view s, std::string_view chars);
std::string_view py_lstrip_chars(std::string_view s, std::string_view chars);
std::string_view py_rstrip_chars(std::string_view s, std::string_view chars);

// str.lower(): ICU full lowercase mapping, root locale (final sigma included, as Python).
std::string py_lower(std::string_view s);

// str.isupper() / str.islower(): at least one cased character and none of the other case
// (ICU Uppercase / Lowercase properties and titlecase category, which is what Python tests).
bool py_isupper(std::string_view s);
bool py_islower(std::string_view s);

// The first whitespace-separated token (str.split()[0]); empty if there is none.
std::string_view py_first_token(std::string_view s);

// Number of code points.
size_t code_points(std::string_view s);

// instructions_util.count_words: matches of \w+ (Unicode \w, PCRE2 UCP as Python re).
size_t count_words(std::string_view s);

// instructions_util.count_sentences (nltk punkt, English model in the reference): ICU's sentence
// break iterator, English with the standard abbreviation suppressions, over the text with line
// breaks read as spaces (punkt ignores line breaks); segments with no non-space character are
// not sentences.
size_t count_sentences(std::string_view s);

// nltk.word_tokenize(s) filtered by str.isupper, counted: ICU word segments (words, numbers,
// symbols and punctuation alike) that are all uppercase. Hyphenated words and contractions are
// where ICU and the Treebank tokenizer split differently (docs/IFEVAL.md).
size_t count_uppercase_words(std::string_view s);

// langdetect.detect(s) as an ISO 639-1 code ("en", "hi", "zh-cn", ...) from CLD2, or "" where
// langdetect raises (no letter at all: "No features in text"), which every checker reads as
// followed. "un" when CLD2 cannot tell (a word or two, often).
std::string detect_language(std::string_view s);

}  // namespace kvaudit::eval::ifeval
