#pragma once
// muflctl watch ID: follows one activity round by round until it ends.
//
// It streams GET /v1/events?activity=ID (Server-Sent Events) and, after a dropped connection,
// reconnects with Last-Event-ID so no event is missed. A server without that route answers
// 404 "no route for …" (not "no activity …"); then watch polls GET /v1/activities/ID every
// --interval seconds instead, with /rounds for rounds that went by between two polls. Either
// way it rides out a lost connection for up to --timeout seconds before it gives up (exit 5).
//
// Output: on a terminal one progress bar, redrawn in place; otherwise one plain line per round
// and per state change (no carriage returns); with --json one progress_json() object a line.
#include "cli/api.h"
#include "cli/console.h"
#include "cli/options.h"

namespace mufl::cli {

// Returns 0 when the activity succeeded, 6 failed, 7 cancelled (cli/exit_codes.h), or the
// exit code of the error that stopped it, with the error on `io.err`.
int watch(Api& api, const Options& options, Console& io);

}  // namespace mufl::cli
