// /v1/groups: the groups activities train in (merge and split), as their tenants may see them.
// A tenant sees a group that holds or held one of its activities; in it, its own activities by
// id and the others only as a count; affinity and split name other tenants' activities "other".
// The admin sees everything.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/time_format.h"
#include "service/json_response.h"
#include "service/page_query.h"
#include "service/problem.h"
#include "service/routes.h"

namespace mufl::service {
namespace {

constexpr int kDefaultPageSize = 50;

storage::Scope scope_of(const Principal& who) {
  return who.is_admin() ? storage::Scope::all() : storage::Scope::of(who.tenant_id);
}

Result<storage::GroupQuery> parse_group_query(const HttpRequest& req) {
  storage::GroupQuery q;
  q.limit = kDefaultPageSize;
  std::vector<FieldError> errors;
  for (const auto& [key, value] : req.query) {
    if (key == "phase") {
      if (auto p = parse_group_phase(value))
        q.phase = p;
      else
        errors.push_back({"phase", "unknown phase '" + value + "'; one of consolidating, training, split, done, failed"});
    } else if (key == "limit") {
      if (auto n = read_page_limit(value, errors)) q.limit = *n;
    } else if (key == "cursor") {
      if (auto c = read_page_cursor(value, errors)) q.before_seq = *c;
    } else {
      errors.push_back({key, "unknown query parameter; this route takes phase, limit and cursor"});
    }
  }
  if (!errors.empty()) return Status::invalid_argument("the query has invalid parameters", std::move(errors));
  return q;
}

class GroupView {
 public:
  // `waiting`: why the live groups without a device wait (WaitingExplainer::explain); nullptr: unknown.
  GroupView(const Group& g, const Principal& who, const std::map<std::string, scheduler::WaitNote>* waiting)
      : g_(g), who_(who), waiting_(waiting) {}

  // Each visible member's test loss while in this group (member_losses); shown when set.
  void set_losses(const std::map<std::string, nlohmann::json>* losses) { losses_ = losses; }

  bool visible(const std::string& activity_id) const {
    if (who_.is_admin()) return true;
    for (const auto& m : g_.members)
      if (m.activity_id == activity_id) return m.tenant_id == who_.tenant_id;
    return false;
  }
  std::string name(const std::string& activity_id) const { return visible(activity_id) ? activity_id : "other"; }
  nlohmann::json names(const nlohmann::json& ids) const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& id : ids) out.push_back(id.is_string() ? nlohmann::json(name(id.get<std::string>())) : id);
    return out;
  }

  // The mean affinity measured so far: per pair, over the rounds where both heads trained.
  nlohmann::json affinity(const std::vector<storage::AffinityRecord>& records) const {
    std::vector<std::string> keys;
    for (const auto& m : g_.members) keys.push_back(m.activity_id);
    const size_t k = keys.size();
    std::vector<std::vector<double>> sum(k, std::vector<double>(k, 0.0)), count(k, std::vector<double>(k, 0.0));
    for (const auto& r : records) {
      const auto j = nlohmann::json::parse(r.affinity_json, nullptr, false);
      if (j.is_discarded()) continue;
      const auto heads = j.value("heads", std::vector<std::string>{});
      const auto m = j.value("matrix", std::vector<std::vector<double>>{});
      for (size_t a = 0; a < heads.size() && a < m.size(); ++a)
        for (size_t b = 0; b < heads.size() && b < m[a].size(); ++b) {
          const auto ia = std::find(keys.begin(), keys.end(), heads[a]) - keys.begin();
          const auto ib = std::find(keys.begin(), keys.end(), heads[b]) - keys.begin();
          if (static_cast<size_t>(ia) >= k || static_cast<size_t>(ib) >= k) continue;
          sum[static_cast<size_t>(ia)][static_cast<size_t>(ib)] += m[a][b];
          count[static_cast<size_t>(ia)][static_cast<size_t>(ib)] += 1;
        }
    }
    // Only members that have measurements (a group of one measures nothing).
    std::vector<size_t> idx;
    for (size_t a = 0; a < k; ++a)
      for (size_t b = 0; b < k; ++b)
        if (a != b && count[a][b] > 0) {
          idx.push_back(a);
          break;
        }
    nlohmann::json tasks = nlohmann::json::array(), matrix = nlohmann::json::array();
    for (size_t a : idx) {
      tasks.push_back({{"activity_id", name(keys[a])}, {"task", g_.members[a].task}});
      nlohmann::json row = nlohmann::json::array();
      for (size_t b : idx) row.push_back(count[a][b] > 0 ? nlohmann::json(sum[a][b] / count[a][b]) : nlohmann::json());
      matrix.push_back(row);
    }
    return {{"tasks", tasks}, {"matrix", matrix}, {"rounds_measured", records.size()}};
  }

  nlohmann::json to_json(const std::vector<storage::AffinityRecord>* records) const {
    nlohmann::json members = nlohmann::json::array();
    int64_t others = 0;
    for (const auto& m : g_.members) {
      if (!visible(m.activity_id)) {
        ++others;
        continue;
      }
      nlohmann::json j = {{"id", m.activity_id},
                          {"task", m.task},
                          {"joined_round", m.joined_round},
                          {"left_round", m.left_round ? nlohmann::json(*m.left_round) : nlohmann::json()}};
      if (who_.is_admin()) j["tenant_id"] = m.tenant_id;
      j["left_reason"] = m.left_reason.empty() ? nlohmann::json() : nlohmann::json(m.left_reason);
      if (losses_) {
        auto it = losses_->find(m.activity_id);
        if (it != losses_->end()) j["loss"] = it->second;
      }
      members.push_back(j);
    }
    nlohmann::json split;
    if (!g_.split_json.empty()) {
      auto s = nlohmann::json::parse(g_.split_json, nullptr, false);
      if (!s.is_discarded()) {
        split = {{"round", s.value("round", 0)},
                 {"reason", s.value("reason", "affinity")},
                 {"score", s.value("score", 0.0)},
                 {"method", s.value("method", "")},
                 {"child_groups", s.value("child_groups", nlohmann::json::array())}};
        nlohmann::json groups = nlohmann::json::array();
        for (const auto& grp : s.value("groups", nlohmann::json::array())) groups.push_back(names(grp));
        split["groups"] = groups;
        if (s.contains("by_loss_kind")) split["by_loss_kind"] = s["by_loss_kind"];
        if (s.contains("guard") && s["guard"].is_object()) {  // which member left, and why
          nlohmann::json guard = s["guard"];
          guard["activity_id"] = name(guard.value("activity_id", ""));
          split["guard"] = guard;
        }
      }
    }
    const scheduler::WaitNote* waits = note();
    nlohmann::json out = {{"id", g_.id},
                          {"parent", g_.parent_id.empty() ? nlohmann::json() : nlohmann::json(g_.parent_id)},
                          {"phase", to_string(g_.phase)},
                          {"policy", g_.policy},
                          {"round", g_.round},
                          {"consolidation_rounds", g_.consolidation_rounds},
                          {"device", g_.device.empty() ? nlohmann::json() : nlohmann::json(g_.device)},
                          {"activities", members},
                          {"other_activities", others},
                          {"split", split},
                          {"reason", g_.reason.empty() ? nlohmann::json() : nlohmann::json(g_.reason)},
                          {"waiting", waits ? nlohmann::json(waits->text) : nlohmann::json()},
                          {"waiting_reason", waits ? nlohmann::json(to_string(waits->reason)) : nlohmann::json()},
                          {"created_at", format_rfc3339(g_.created_unix_ms)},
                          {"updated_at", format_rfc3339(g_.updated_unix_ms)}};
    if (records) out["affinity"] = affinity(*records);
    return out;
  }

  // Why a live group without a device waits; nullptr for any other group.
  const scheduler::WaitNote* note() const {
    if (!waiting_) return nullptr;
    auto it = waiting_->find(g_.id);
    return it == waiting_->end() ? nullptr : &it->second;
  }

 private:
  const Group& g_;
  const Principal& who_;
  const std::map<std::string, scheduler::WaitNote>* waiting_;
  const std::map<std::string, nlohmann::json>* losses_ = nullptr;
};

// The most rounds of a member's loss history one group view shows (the latest ones).
constexpr size_t kMaxLossHistory = 100;

// How a member's test loss evolved in group `group_id`: {"first", "last", "rounds", "history":
// [{"round": group round, "loss"}]} from its activity's round reports, null before its first
// round here.
Result<nlohmann::json> member_losses(storage::Store& store, const std::string& group_id, const GroupMember& m) {
  storage::RoundQuery q;
  q.scope = storage::Scope::all();  // the caller shows only members the principal may see
  q.limit = 1000;
  nlohmann::json history = nlohmann::json::array();
  size_t rounds = 0;
  std::optional<double> first, last;
  for (;;) {
    auto page = store.list_rounds(m.activity_id, q);
    if (!page.ok()) return page.status();
    for (const auto& r : page->items) {
      const auto j = nlohmann::json::parse(r.report_json, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || j.value("group_id", "") != group_id) continue;
      const auto metrics = j.value("metrics", nlohmann::json::object());
      if (!metrics.is_object() || !metrics.contains(m.task) || !metrics[m.task].is_object() ||
          !metrics[m.task].contains("loss") || !metrics[m.task]["loss"].is_number())
        continue;
      const double loss = metrics[m.task]["loss"].get<double>();
      if (!first) first = loss;
      last = loss;
      ++rounds;
      history.push_back({{"round", j.value("group_round", int64_t{0})}, {"loss", loss}});
      if (history.size() > kMaxLossHistory) history.erase(history.begin());
    }
    if (!page->next_after_round) break;
    q.after_round = *page->next_after_round;
  }
  if (!first) return nlohmann::json();
  return nlohmann::json{{"first", *first}, {"last", *last}, {"rounds", rounds}, {"history", history}};
}

// Why groups wait, for a view: every waiting group, or only `id`; empty without an explainer.
Result<std::map<std::string, scheduler::WaitNote>> waiting_of(const scheduler::WaitingExplainer* waiting,
                                                              const std::optional<std::string>& id) {
  if (!waiting) return std::map<std::string, scheduler::WaitNote>();
  return waiting->explain(id);
}

}  // namespace

void add_group_routes(Router& router, storage::Store& store, const scheduler::WaitingExplainer* waiting) {
  router.add("GET", "/v1/groups", Access::kAnyone, [&store, waiting](const RequestContext& ctx) {
    auto query = parse_group_query(ctx.request);
    if (!query.ok()) return problem_from_status(query.status());
    query->scope = scope_of(ctx.principal);
    auto page = store.list_groups(*query);
    if (!page.ok()) return problem_from_status(page.status());
    auto notes = waiting_of(waiting, std::nullopt);
    if (!notes.ok()) return problem_from_status(notes.status());
    nlohmann::json items = nlohmann::json::array();
    for (const auto& g : page->items) items.push_back(GroupView(g, ctx.principal, &*notes).to_json(nullptr));
    nlohmann::json next =
        page->next_before_seq ? nlohmann::json(std::to_string(*page->next_before_seq)) : nlohmann::json();
    return json_response(200, {{"items", items}, {"next_cursor", next}});
  }, Cost::kQuick);

  router.add("GET", "/v1/groups/{id}", Access::kAnyone, [&store, waiting](const RequestContext& ctx) {
    auto g = store.get_group(ctx.param("id"), scope_of(ctx.principal));
    if (!g.ok()) return problem_from_status(g.status());
    auto records = store.list_affinity(g->id);
    if (!records.ok()) return problem_from_status(records.status());
    auto notes = waiting_of(waiting, g->id);
    if (!notes.ok()) return problem_from_status(notes.status());
    GroupView view(*g, ctx.principal, &*notes);
    std::map<std::string, nlohmann::json> losses;
    for (const auto& m : g->members) {
      if (!view.visible(m.activity_id)) continue;
      auto l = member_losses(store, g->id, m);
      if (!l.ok()) return problem_from_status(l.status());
      losses[m.activity_id] = std::move(*l);
    }
    view.set_losses(&losses);
    return json_response(200, view.to_json(&*records));
  }, Cost::kQuick);
}

}  // namespace mufl::service
