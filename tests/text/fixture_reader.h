// Reads the reference fixtures written by tools/make_text_fixtures.py.
#pragma once
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kvaudit::text::testing {

inline std::string fixture_path(const std::string& rel) { return std::string(KVAUDIT_FIXTURES) + "/text/" + rel; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::vector<std::string> read_corpus() {
  std::vector<std::string> out;
  std::ifstream f(fixture_path("corpus.jsonl"));
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line).get<std::string>());
  return out;
}

// One line of ids_<tok>.txt: HF ids, and HF's decode when it differs from the input.
struct Expected {
  std::vector<int> ids;
  bool round_trips = true;
  std::string decoded;
};

inline std::vector<Expected> read_expected(const std::string& name) {
  std::vector<Expected> out;
  std::ifstream f(fixture_path("ids_" + name + ".txt"));
  for (std::string line; std::getline(f, line);) {
    Expected e;
    const size_t tab = line.find('\t');
    std::istringstream ids(line.substr(0, tab));
    for (int id; ids >> id;) e.ids.push_back(id);
    const std::string status = line.substr(tab + 1);
    if (status != "=") {
      e.round_trips = false;
      e.decoded = nlohmann::json::parse(status).get<std::string>();
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace kvaudit::text::testing
