#pragma once
// Headless Chromium driven over the Chrome DevTools Protocol (CDP), for the web dashboard's
// end-to-end tests. One browser process per object, with a fresh profile, one page (a tab of
// 1280×900 CSS pixels) and one WebSocket to the browser (Boost.Beast) that speaks to the page
// through a flattened session.
//
// Not thread-safe: one test thread drives it. Every call blocks until Chromium answers or a
// deadline passes, and throws std::runtime_error then (the browser is still killed by the
// destructor, so a failing test leaves no process behind).
#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mufl::testing {

class Chromium {
 public:
  // The browser to run: $MUFL_CHROMIUM when set, else the first of chromium, chromium-browser
  // and google-chrome found on PATH; "" when there is none.
  static std::string find_binary();

  // Starts `binary` headless (--headless=new, --remote-debugging-port=0, a temporary
  // --user-data-dir; --no-sandbox as root), reads the DevTools port from the profile's
  // DevToolsActivePort file (waiting at most 30 s), connects, opens a page and enables the
  // Runtime, Log and Page domains on it. Throws std::runtime_error, with the end of the
  // browser's output, when any step fails.
  explicit Chromium(const std::string& binary);
  // Kills the browser's process group (SIGKILL), reaps it and removes the profile.
  ~Chromium();
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  // Sends `method` with `params` to the page and returns the result object. Events that
  // arrive meanwhile are recorded (see errors()). Throws on a protocol error or after `seconds`.
  nlohmann::json call(const std::string& method, const nlohmann::json& params = nlohmann::json::object(),
                      int seconds = 30);

  // Page.navigate to `url`, then waits (at most 30 s) for the page's load event.
  void navigate(const std::string& url);

  // Evaluates `expression` in the page, awaiting it when it is a promise, and returns its
  // value as JSON (null for undefined). Throws, with the message, when it throws in the page.
  nlohmann::json eval(const std::string& expression);

  // Evaluates `expression` every 50 ms until its value is truthy and returns that value;
  // throws, with the last value, when `seconds` pass first.
  nlohmann::json wait_for(const std::string& expression, int seconds = 30);

  // What went wrong in the page so far, one line each: console.error / console.assert calls,
  // uncaught exceptions and rejections, and browser log entries of level error (a failed
  // resource load among them), in the order they arrived.
  const std::vector<std::string>& errors() const { return errors_; }

  // The page as a PNG: the whole page (beyond the viewport too), or only the viewport.
  std::string screenshot_png(bool full_page = true);

 private:
  struct Connection;
  void start_process(const std::string& binary);
  void release();  // kills the browser and removes the profile; safe to call twice
  std::string log_tail() const;
  void on_event(const nlohmann::json& message);

  pid_t pid_ = -1;
  std::string profile_dir_;
  std::unique_ptr<Connection> conn_;
  std::string session_;
  int64_t next_id_ = 1;
  bool loaded_ = false;
  std::vector<std::string> errors_;
};

// `s` as a JavaScript string literal (JSON quoting), to build expressions safely.
std::string js_string(const std::string& s);

}  // namespace mufl::testing
