#pragma once
// Collapses keel.map items in a progress display: items (`m[1]`, `m[2]`,
// ...) and the nodes of workflow items (`m[1]/fetch`) are not shown one by
// one; the map's line carries their counts instead ("1000 items: 997
// succeeded, 3 failed"). Inner nodes of calls and loops (`c/fetch`,
// `r#2/review`) pass through under their names.
//
// Thread-safety: as any Observer, callbacks from any thread; counts are
// guarded by mu_.

#include <memory>
#include <string>
#include <string_view>

#include "cli/progress.h"
#include "views/item_names.h"

namespace keel::cli {

// `inner` behind the collapsing wrapper.
std::unique_ptr<Progress> CollapseMapItems(std::unique_ptr<Progress> inner);

}  // namespace keel::cli
