// The JSON-lines form of a record, as `evlog replay` (and later `evlog consume`) prints it.
// This is part of the command-line contract (DESIGN.md, "The command line, as users script
// it"): one object per line, keys in this order:
//
//   {"topic":"t","partition":0,"offset":17,"timestamp_ms":1700000000000,"key":"k","value":"v",
//    "headers":{}}
//
// Key and value are JSON strings when they are valid UTF-8; otherwise the key is named
// `key_b64` / `value_b64` instead and holds standard base64 (RFC 4648, with padding) of the
// bytes. Headers are an object of name -> value in the record's order; a header value that is
// not valid UTF-8 is left out of "headers" and put, base64-encoded, into an extra object
// "headers_b64" that follows "headers" (present only when needed). Strings are escaped as
// RFC 8259 requires (quote, backslash and control characters); other characters are written as
// UTF-8, not as \u escapes.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "client/record.h"

namespace evlog::client {

// True if `bytes` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
// U+10FFFF).
bool IsValidUtf8(absl::string_view bytes);

// The record's JSON object, without a trailing newline.
std::string FormatRecordJson(const ConsumedRecord& record);

}  // namespace evlog::client
