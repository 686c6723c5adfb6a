#include "tests/support/metrics_text.h"

namespace meshtel::testing {

std::vector<std::string> SampleLines(const std::string& text, const std::string& name,
                                     const std::vector<std::string>& fragments) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    // "name{labels} value" or, for a series without labels, "name value".
    if (!line.starts_with(name + "{") && !line.starts_with(name + " ")) continue;
    bool all = true;
    for (const std::string& fragment : fragments) {
      all = all && line.find(fragment) != std::string::npos;
    }
    if (all) lines.push_back(std::move(line));
  }
  return lines;
}

double SampleValue(const std::string& line) { return std::stod(line.substr(line.rfind(' ') + 1)); }

double SumSamples(const std::string& text, const std::string& name,
                  const std::vector<std::string>& fragments) {
  double sum = 0;
  for (const std::string& line : SampleLines(text, name, fragments)) sum += SampleValue(line);
  return sum;
}

}  // namespace meshtel::testing
