#include "common/byte_size.h"

#include <array>
#include <cctype>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace evlog {
namespace {

// Sizes above this are refused: no machine has that much memory, and sums of a few such
// values must not overflow int64.
constexpr int64_t kMaxBytes = int64_t{1} << 62;

constexpr std::array<std::pair<absl::string_view, int64_t>, 9> kUnits = {{
    {"B", 1},
    {"KiB", int64_t{1} << 10},
    {"MiB", int64_t{1} << 20},
    {"GiB", int64_t{1} << 30},
    {"TiB", int64_t{1} << 40},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"TB", int64_t{1000} * 1000 * 1000 * 1000},
}};

}  // namespace

absl::StatusOr<int64_t> ParseByteSize(absl::string_view flag, absl::string_view text) {
  auto error = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=\"", text, "\" ", why,
        "; give a whole number of bytes with an optional unit, e.g. 1048576, 512MiB, 2GiB "
        "(units: B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB for powers of 1000)"));
  };
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0) return error("is not a size");
  const absl::string_view number = text.substr(0, digits);
  const absl::string_view unit = text.substr(digits);
  int64_t multiplier = 0;
  if (unit.empty()) {
    multiplier = 1;
  } else {
    for (const auto& [name, value] : kUnits) {
      if (unit == name) multiplier = value;
    }
  }
  if (!unit.empty() && unit[0] == '.') {
    return error("is not a whole number (use a smaller unit, e.g. 1536MiB for 1.5GiB)");
  }
  if (multiplier == 0) return error(absl::StrCat("has an unknown unit \"", unit, "\""));
  uint64_t value = 0;
  if (!absl::SimpleAtoi(number, &value) || value > static_cast<uint64_t>(kMaxBytes) ||
      value > static_cast<uint64_t>(kMaxBytes / multiplier)) {
    return error("is too large (at most 4EiB)");
  }
  return static_cast<int64_t>(value) * multiplier;
}

std::string FormatByteSize(int64_t bytes) {
  static constexpr std::array<absl::string_view, 5> kNames = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t i = 0;
  while (i + 1 < kNames.size() && bytes != 0 && bytes % (int64_t{1} << (10 * (i + 1))) == 0) {
    ++i;
  }
  if (i > 0 || bytes < 1024) return absl::StrCat(bytes >> (10 * i), kNames[i]);
  // Not a whole number of KiB: one decimal in the largest unit the size reaches.
  size_t j = 0;
  while (j + 1 < kNames.size() && bytes >= (int64_t{1} << (10 * (j + 1)))) ++j;
  return absl::StrFormat("%.1f%s",
                         static_cast<double>(bytes) / static_cast<double>(int64_t{1} << (10 * j)),
                         kNames[j]);
}

}  // namespace evlog
