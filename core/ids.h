#pragma once
// Object ids: a short type prefix and 96 random bits in lower-case Crockford base32,
// e.g. "act_3k9x0m2q7z5c8h1v4b6n". Ids are opaque to clients; only their prefix is stable.
#include <string>
#include <string_view>

#include "core/random.h"

namespace mufl {

// A new id "<prefix>_<20 base32 characters>" drawn from `rng`.
std::string new_id(std::string_view prefix, RandomSource& rng);

// True when `id` has the form new_id(prefix, …) produces. Lets handlers answer 404 for
// ids that cannot exist without touching the database.
bool looks_like_id(std::string_view id, std::string_view prefix);

}  // namespace mufl
