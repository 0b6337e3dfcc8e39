#pragma once
// How `keel show` presents a run's recorded configuration: the run it was
// forked from, its script versions and which nodes ran with which. Free
// functions; call from one thread.

#include <string>
#include <vector>

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

// "forked    from RUN at node NODE" (or "..., every node run again"); nothing
// for a run that was not forked.
void PrintForkedFrom(const RunRecord& run);

// A "script versions" section: per version its time, the script's and each
// module's hash and the nodes whose records it wrote, then the nodes a fork
// reused. Printed only when the run has more than one version or was forked.
void PrintScriptVersions(const RunRecord& run, const std::vector<ScriptVersion>& versions,
                         const std::vector<NodeRecord>& nodes);

// The keys config, forked_from, forked_from_node, script_version and versions
// (each version with its script and modules, without their text, and the
// nodes it wrote) of a run object being written to `out`.
void WriteRunConfigJson(JsonOut* out, const RunRecord& run,
                        const std::vector<ScriptVersion>& versions,
                        const std::vector<NodeRecord>& nodes);

// The "version" key of a node object: the script version its record was
// written with, 0 for a record a fork reused, null when it was never recorded.
void WriteNodeVersionJson(JsonOut* out, const NodeRecord& node);

}  // namespace keel
