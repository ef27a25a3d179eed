// report.html in a real browser (issue 9 item 5): Debian's headless chromium loads the fixture's
// page; the DOM it dumps must hold every plot, no recorded script error, and the filter's output.
// Skipped (reported as skipped) when chromium is not installed.
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>

#include "report/html_report.h"
#include "report_fixture.h"

namespace kvaudit::report {
namespace {

namespace fs = std::filesystem;
using testing::count_of;

// A browser start plus page load takes 1-4 s here; a hung browser fails the test instead of
// hanging ctest.
constexpr int kBrowserTimeoutSeconds = 120;

std::string find_in_path(const std::vector<std::string>& names) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  std::stringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');)
    for (const auto& name : names) {
      const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  return {};
}

// Runs a shell command, returns its stdout (stderr is browser chatter: dropped).
std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* pipe = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!pipe) return out;
  std::array<char, 65536> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  *status = ::pclose(pipe);
  return out;
}

class Browser : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = find_in_path({"chromium", "chromium-browser"});
    if (chromium_.empty()) GTEST_SKIP() << "chromium not installed (scripts/install-deps.sh)";
    // One folder for every run, so the screenshot is always at the same place; each process
    // (ctest runs tests in parallel) has its own browser profile and page names.
    dir_ = fs::temp_directory_path() / "kvaudit_report_browser";
    profile_ = dir_ / ("profile_" + std::to_string(::getpid()));
    fs::create_directories(profile_);
  }
  void TearDown() override {
    // The screenshot stays for a person to look at; pages and the profile go.
    std::error_code ec;
    if (!profile_.empty()) fs::remove_all(profile_, ec);
    for (const auto& p : pages_) fs::remove(p, ec);
  }

  std::string chromium_command(const std::string& args, const fs::path& page) const {
    return "timeout " + std::to_string(kBrowserTimeoutSeconds) + " '" + chromium_ +
           "' --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars "
           "--user-data-dir='" + profile_.string() + "' " + args + " 'file://" +
           page.string() + "'";
  }

  fs::path write_page(const std::string& name, const std::string& html) {
    const fs::path p = dir_ / (std::to_string(::getpid()) + "_" + name);
    std::ofstream(p) << html;
    pages_.push_back(p);
    return p;
  }

  std::string chromium_;
  fs::path dir_, profile_;
  std::vector<fs::path> pages_;
};

TEST_F(Browser, DomHasEveryPlotAndNoScriptErrors) {
  const std::string html =
      render_report_html(testing::load_report_fixture(), testing::load_samples_fixture());
  // The page as shipped, plus a script that drives the filter the way a person would: only
  // int3:tensor:sym, then only its flips.
  const std::string drive = R"(<script>
    (function () {
      var s = document.getElementById('filter-scheme');
      s.value = 'int3:tensor:sym'; s.dispatchEvent(new Event('change'));
      document.documentElement.setAttribute('data-test-scheme',
          document.getElementById('filter-count').textContent);
      var f = document.getElementById('filter-flip');
      f.value = 'yes'; f.dispatchEvent(new Event('change'));
      document.documentElement.setAttribute('data-test-flip',
          document.getElementById('filter-count').textContent);
    })();
    </script></body>)";
  std::string driven = html;
  driven.replace(driven.rfind("</body>"), 7, drive);
  const fs::path page = write_page("driven.html", driven);

  int status = -1;
  const std::string dom = run(chromium_command("--dump-dom", page), &status);
  ASSERT_EQ(status, 0) << "chromium failed";
  ASSERT_FALSE(dom.empty());
  for (const char* id : {"plot-phase", "plot-layers", "plot-channels", "plot-ablation", "plot-pcr",
                         "plot-geometry", "plot-candidates", "sample-table"}) {
    SCOPED_TRACE(id);
    EXPECT_NE(dom.find(std::string("id=\"") + id + "\" "), std::string::npos);
  }
  // The recorder ran (attribute present) and recorded nothing; the filter script finished.
  EXPECT_NE(dom.find("data-js-errors=\"0\""), std::string::npos);
  EXPECT_EQ(dom.find("data-js-error-log=\""), std::string::npos);
  EXPECT_NE(dom.find("data-js-ready=\"1\""), std::string::npos);
  // 5 prompts per scheme in the fixture; 3 of int3:tensor:sym's are flips.
  EXPECT_NE(dom.find("data-test-scheme=\"5 of 20 samples shown\""), std::string::npos);
  EXPECT_NE(dom.find("data-test-flip=\"3 of 20 samples shown\""), std::string::npos);
  EXPECT_EQ(count_of(dom, " hidden=\"\""), 17u);
  // The adversarial prompt was parsed as text: no element was created from it.
  EXPECT_EQ(dom.find("<img"), std::string::npos);
  EXPECT_NE(dom.find("&lt;/script&gt;&lt;img src=x onerror=\"alert(1)\"&gt;"), std::string::npos);
}

TEST_F(Browser, DomRecordsAScriptErrorWhenOneHappens) {
  // The recorder itself must be able to fail the test above: a page that throws is caught.
  std::string html = render_report_html(nlohmann::json::object(), {});
  html.replace(html.rfind("</body>"), 7,
               "<script>undefined_function_for_test();</script><script>console.error('boom');"
               "</script></body>");
  int status = -1;
  const std::string dom = run(chromium_command("--dump-dom", write_page("broken.html", html)), &status);
  ASSERT_EQ(status, 0);
  EXPECT_NE(dom.find("data-js-errors=\"2\""), std::string::npos);
  EXPECT_NE(dom.find("undefined_function_for_test is not defined | boom"), std::string::npos);
}

TEST_F(Browser, ScreenshotIsWritten) {
  const fs::path page = write_page(
      "report.html",
      render_report_html(testing::load_report_fixture(), testing::load_samples_fixture()));
  const fs::path png = dir_ / (std::to_string(::getpid()) + "_report.png");
  int status = -1;
  run(chromium_command("--screenshot='" + png.string() + "' --window-size=1280,4000", page), &status);
  ASSERT_EQ(status, 0);
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 50'000u);  // a page of plots, not a blank image
  // PNG signature, then IHDR's width and height (big-endian) at bytes 16..23.
  std::ifstream f(png, std::ios::binary);
  std::array<unsigned char, 24> head{};
  f.read(reinterpret_cast<char*>(head.data()), head.size());
  EXPECT_EQ(head[1], 'P');
  EXPECT_EQ(head[2], 'N');
  EXPECT_EQ(head[3], 'G');
  auto be32 = [&](int i) {
    return (uint32_t(head[i]) << 24) | (uint32_t(head[i + 1]) << 16) | (uint32_t(head[i + 2]) << 8) |
           uint32_t(head[i + 3]);
  };
  EXPECT_EQ(be32(16), 1280u);
  EXPECT_EQ(be32(20), 4000u);
  // Renamed into place whole, so a concurrent run never leaves a half-written report.png.
  fs::rename(png, dir_ / "report.png");
  std::cout << "screenshot: " << (dir_ / "report.png").string() << "\n";
}

}  // namespace
}  // namespace kvaudit::report
