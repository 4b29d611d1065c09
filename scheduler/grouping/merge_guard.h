#pragma once
// The merge guard: a member of a merged group whose own test loss stops falling while its
// group mates' losses still fall leaves the group at the next round boundary, alone (issue 14:
// merging must not cost a tenant model quality). Pure C++ (no torch, no store): the executor
// feeds it each live head's recent test losses and acts on the answer.
//
// The rule, over the last `window` rounds (a head needs window + 1 losses to be judged):
//   progress(h) = (loss(h, now − window) − loss(h, now)) / loss(h, now − window)
//   others(h)   = the median progress of the other heads that can be judged
//   h lags when others(h) >= min_progress (they are still learning: a plateau of everyone is
//   convergence, not harm) and progress(h) < lag_ratio · others(h).
// Progress is relative, so heads whose losses differ by orders of magnitude (a label task's
// cross-entropy, a dense task's per-pixel MSE) compare fairly. Of several lagging heads the one
// with the smallest progress(h) / others(h) leaves; one per boundary, so the rest are judged
// again without it.
//
// A lag is the merge's fault only when the mates pull the other way. Where the clients measured
// it, alignment(h) is the mean over the window's rounds of the cosine between h's gradient at the
// shared features and its mates' (fl::LocalResult::alignment). A lagging head with alignment(h) >
// max_alignment is spared: its mates' steps lower its loss too, so its stall is its own (a task
// that has converged), and leaving would cost a group's energy for nothing. Without a
// measurement the lag alone decides.
//
// Thread safety: pure functions; call from any thread.
#include <optional>
#include <string>
#include <vector>

namespace mufl::scheduler {

struct MergeGuardOptions {
  int window = 3;              // rounds looked back (>= 1); 0 turns the guard off
  double lag_ratio = 0.25;     // lags below this share of its mates' progress
  double min_progress = 0.02;  // the mates must still improve by at least this (2 % over the window)
  double max_alignment = 0.0;  // a lagging head better aligned than this with its mates stays
};

struct GuardVerdict {
  size_t head = 0;         // index into the losses given
  double progress = 0;     // its relative progress over the window
  double others = 0;       // its mates' median progress
  std::optional<double> alignment;  // its alignment over the window, when measured
  std::string reason;      // for people: "its test loss fell 0.4 % over 3 rounds while …"
};

// `losses[h]`: head h's test losses, oldest first, one per round, the last being the round just
// done. `alignment[h]`: head h's mean alignment over the window's last `window` rounds, nullopt
// (or `alignment` empty) where not measured. Returns the head that must leave, or nullopt (also
// with fewer than two heads, the guard off, or a loss that is not finite and positive where it
// is read).
std::optional<GuardVerdict> lagging_head(const std::vector<std::vector<double>>& losses,
                                         const MergeGuardOptions& options,
                                         const std::vector<std::optional<double>>& alignment = {});

}  // namespace mufl::scheduler
