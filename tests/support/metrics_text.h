#pragma once
// Test support: reading samples out of a Prometheus text exposition.

#include <string>
#include <vector>

namespace meshtel::testing {

// The sample lines of metric `name` whose label text contains every fragment.
std::vector<std::string> SampleLines(const std::string& text, const std::string& name,
                                     const std::vector<std::string>& fragments);
// The value of one sample line ("name{...} 42" → 42).
double SampleValue(const std::string& line);
// Sum of the values of SampleLines(text, name, fragments).
double SumSamples(const std::string& text, const std::string& name,
                  const std::vector<std::string>& fragments);

}  // namespace meshtel::testing
