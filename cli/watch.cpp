#include "cli/watch.h"

#include <chrono>
#include <optional>
#include <thread>

#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/sse.h"

namespace mufl::cli {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr int kBarWidth = 24;
// The server writes ": keep-alive" every 15 s by default; four missed ones mean a dead stream.
constexpr std::chrono::seconds kStreamIdle{60};

bool is_terminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

std::chrono::milliseconds seconds(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

// Field reads that tolerate a missing field or another type (server data is not trusted to
// have every field).
int64_t int_at(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}
std::string str_at(const json& j, const char* key, const std::string& otherwise = "") {
  if (!j.is_object()) return otherwise;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : otherwise;
}
json obj_at(const json& j, const char* key) {
  if (!j.is_object()) return json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : json::object();
}

// A 404 or 405 from the router itself: the server has no GET /v1/events (service/router.cpp
// answers "no route for PATH"; a missing activity reads "no activity ID").
bool route_missing(const client::Response& r) {
  if (r.status == 405) return true;
  if (r.status != 404) return false;
  const json p = json::parse(r.body, nullptr, false);
  return str_at(p, "detail").rfind("no route for ", 0) == 0;
}

// What watch has shown, and showing more of it.
class Display {
 public:
  Display(Console& io, bool json, std::string id) : io_(io), json_(json) { p_.id = std::move(id); }

  // From GET /v1/activities/{id}.
  void activity(const json& a) {
    const json progress = obj_at(a, "progress");
    const int64_t round = int_at(progress, "round");
    if (round > p_.round || p_.rounds == 0) {
      p_.round = round;
      p_.metrics = obj_at(obj_at(progress, "latest"), "metrics");
    }
    if (int_at(progress, "rounds") > 0) p_.rounds = int_at(progress, "rounds");
    reason_ = str_at(a, "state_reason");
    set_state(str_at(a, "state", p_.state));
  }

  // A finished round (an event, or an item of /rounds). Older rounds than the one shown are
  // ignored: a replay or a poll may repeat what is on screen.
  void round(int64_t round, int64_t rounds, const json& metrics) {
    if (round <= p_.round) return;
    p_.round = round;
    if (rounds > 0) p_.rounds = rounds;
    p_.metrics = metrics.is_object() ? metrics : json::object();
    show();
  }

  void set_state(const std::string& state, const std::string& reason = "") {
    if (!reason.empty()) reason_ = reason;
    p_.state = state;
    show();
  }

  // A line about the group the activity moved to (merge, split).
  void note(const std::string& text) {
    if (json_) return;
    if (io_.out_is_tty && drawn_) io_.out << "\r\x1b[K";
    io_.out << text << "\n";
    if (io_.out_is_tty && drawn_) io_.out << progress_line(p_, kBarWidth);
    io_.out.flush();
  }

  const std::string& state() const { return p_.state; }
  int64_t round_shown() const { return p_.round; }

  // Ends the display; the exit code for the final state.
  int finish() {
    if (io_.out_is_tty && drawn_ && !json_) io_.out << "\n";
    io_.out.flush();
    if (p_.state == "succeeded") return kExitOk;
    const std::string why = reason_.empty() ? "" : ": " + reason_;
    io_.err << "muflctl: " << p_.id << " " << p_.state << why << "\n";
    return p_.state == "failed" ? kExitActivityFailed : kExitActivityCancelled;
  }

 private:
  void show() {
    if (p_.state.empty()) return;
    const auto now = std::make_pair(p_.round, p_.state);
    if (shown_ && *shown_ == now) return;
    shown_ = now;
    if (json_) {
      io_.out << progress_json(p_).dump() << "\n";
    } else if (io_.out_is_tty) {
      io_.out << "\r\x1b[K" << progress_line(p_, kBarWidth);
      drawn_ = true;
    } else {
      io_.out << progress_line(p_, 0) << "\n";
    }
    io_.out.flush();
  }

  Console& io_;
  const bool json_;
  Progress p_;
  std::string reason_;
  std::optional<std::pair<int64_t, std::string>> shown_;
  bool drawn_ = false;
};

class Watcher {
 public:
  Watcher(Api& api, const Options& o, Console& io)
      : api_(api), o_(o), io_(io), path_("/v1/activities/" + url_encode(o.args[0])), display_(io, o.json, o.args[0]) {}

  int run() {
    Reply first = api_.call_json("GET", path_);
    if (!first.ok()) return fail(first);
    display_.activity(first.document);
    if (is_terminal(display_.state())) return display_.finish();
    return stream();
  }

 private:
  int fail(const Reply& r) {
    io_.err << "muflctl: " << r.error << "\n";
    return r.exit_code;
  }

  // Waits before the next try after a lost connection; false when --timeout has passed
  // since the last good answer.
  bool back_off(SteadyClock::time_point last_good, int& tries) {
    if (SteadyClock::now() - last_good > seconds(o_.timeout_seconds)) return false;
    const auto wait = std::min(std::chrono::milliseconds(250 << std::min(tries, 4)), std::chrono::milliseconds(4000));
    ++tries;
    std::this_thread::sleep_for(wait);
    return true;
  }

  // Handles one event; true when the activity has ended.
  bool on_event(const SseEvent& e) {
    const json d = json::parse(e.data, nullptr, false);
    if (str_at(d, "activity_id") != o_.args[0]) return false;
    const std::string type = str_at(d, "type", e.event);
    if (type == "round.finished") {
      display_.round(int_at(d, "round"), int_at(d, "rounds"), obj_at(d, "metrics"));
    } else if (type == "activity.state") {
      display_.set_state(str_at(d, "state", display_.state()), str_at(d, "reason"));
    } else if (type == "group.merged") {
      display_.note(o_.args[0] + " trains in group " + str_at(d, "group_id", "?"));
    } else if (type == "group.split") {
      display_.note(o_.args[0] + " split from " + str_at(d, "group_id", "?") + " into " + str_at(d, "into", "?"));
    }
    return is_terminal(display_.state());
  }

  int stream() {
    SseParser parser;  // one across connections: it keeps the last event id
    auto last_good = SteadyClock::now();
    int tries = 0;
    for (;;) {
      std::map<std::string, std::string> headers = {{"Accept", "text/event-stream"}};
      const std::string resume = parser.last_event_id();
      if (!resume.empty()) headers["Last-Event-ID"] = resume;
      bool ended = false;
      std::optional<Reply> catch_up_failed;
      auto on_head = [&](const client::Response&) {
        last_good = SteadyClock::now();
        tries = 0;
        if (!resume.empty()) return true;  // the server replays what came after `resume`
        // The stream starts live: what happened before it opened comes from the activity.
        Reply a = api_.call_json("GET", path_);
        if (!a.ok()) {
          catch_up_failed = a;
          return false;
        }
        display_.activity(a.document);
        ended = is_terminal(display_.state());
        return !ended;
      };
      auto on_data = [&](std::string_view bytes) {
        last_good = SteadyClock::now();
        parser.feed(bytes, [&](const SseEvent& e) { ended = ended || on_event(e); });
        return !ended;
      };
      auto r = api_.stream("/v1/events?activity=" + url_encode(o_.args[0]), headers, on_head, on_data, kStreamIdle);
      if (ended) return display_.finish();
      if (catch_up_failed) {
        if (catch_up_failed->exit_code != kExitUnreachable) return fail(*catch_up_failed);
      } else if (r.ok() && route_missing(*r)) {
        return poll();
      } else if (r.ok() && (r->status < 200 || r->status >= 300)) {
        return fail(Api::reply_for(std::move(r)));
      }
      // The stream ended or broke: reconnect (with Last-Event-ID when an event named one).
      if (!back_off(last_good, tries)) {
        Reply why = r.ok() ? Reply{kExitUnreachable, "the event stream keeps closing", {}, {}} : Api::reply_for(r);
        return fail(why);
      }
    }
  }

  int poll() {
    auto last_good = SteadyClock::now();
    int tries = 0;
    for (;;) {
      std::this_thread::sleep_for(seconds(o_.interval_seconds));
      Reply a = api_.call_json("GET", path_);
      if (a.exit_code == kExitUnreachable) {
        if (!back_off(last_good, tries)) return fail(a);
        continue;
      }
      if (!a.ok()) return fail(a);
      last_good = SteadyClock::now();
      tries = 0;
      const int64_t round = int_at(obj_at(a.document, "progress"), "round");
      // Rounds that went by between two polls, one line each (a bar shows only the last).
      if (round > display_.round_shown() + 1 && !io_.out_is_tty) {
        Reply rounds = api_.list_all(path_ + "/rounds");
        const json items = rounds.ok() && rounds.document.is_object() ? rounds.document.value("items", json::array())
                                                                      : json::array();
        for (const auto& item : items.is_array() ? items : json::array())
          if (int_at(item, "round") < round)
            display_.round(int_at(item, "round"), int_at(item, "rounds"), obj_at(item, "metrics"));
      }
      display_.activity(a.document);
      if (is_terminal(display_.state())) return display_.finish();
    }
  }

  Api& api_;
  const Options& o_;
  Console& io_;
  const std::string path_;
  Display display_;
};

}  // namespace

int watch(Api& api, const Options& options, Console& io) { return Watcher(api, options, io).run(); }

}  // namespace mufl::cli
