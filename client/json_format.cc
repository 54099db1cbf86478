#include "client/json_format.h"

#include <cstdint>

#include "absl/strings/escaping.h"
#include "nlohmann/json.hpp"

namespace evlog::client {

bool IsValidUtf8(absl::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;  // a continuation byte where a lead byte belongs, or 0xF8..0xFF
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += extra + 1;
  }
  return true;
}

std::string FormatRecordJson(const ConsumedRecord& record) {
  // ordered_json keeps insertion order, which the contract fixes.
  nlohmann::ordered_json line;
  line["topic"] = record.topic;
  line["partition"] = record.partition;
  line["offset"] = record.offset;
  line["timestamp_ms"] = record.timestamp_ms;
  if (IsValidUtf8(record.key)) {
    line["key"] = record.key;
  } else {
    line["key_b64"] = absl::Base64Escape(record.key);
  }
  if (IsValidUtf8(record.value)) {
    line["value"] = record.value;
  } else {
    line["value_b64"] = absl::Base64Escape(record.value);
  }
  nlohmann::ordered_json headers = nlohmann::ordered_json::object();
  nlohmann::ordered_json headers_b64 = nlohmann::ordered_json::object();
  for (const Header& header : record.headers) {
    // Names are proto strings and so UTF-8 already; checked anyway so dump() cannot throw.
    const std::string name =
        IsValidUtf8(header.name) ? header.name : absl::Base64Escape(header.name);
    if (IsValidUtf8(header.value)) {
      headers[name] = header.value;
    } else {
      headers_b64[name] = absl::Base64Escape(header.value);
    }
  }
  line["headers"] = std::move(headers);
  if (!headers_b64.empty()) line["headers_b64"] = std::move(headers_b64);
  return line.dump();
}

}  // namespace evlog::client
