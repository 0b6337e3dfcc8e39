#pragma once
// PushContextTable: builds the `ctx` table a node's when and run functions get.
//
//   ctx.params           the run parameters (decoded JSON object)
//   ctx.deps.<name>      each dependency's output (decoded; nil for null)
//   ctx.skipped          array of dependencies whose `when` said no
//   ctx.failed           array of optional dependencies that failed
//   ctx.run_id, ctx.workflow, ctx.node, ctx.attempt, ctx.idempotency_key
//
// Every execution gets fresh tables, so a node cannot change what another
// one sees. Thread-safety: as for the lua_State.

#include "engine/status.h"
#include "engine/workflow.h"

struct lua_State;

namespace keel {

// Pushes the ctx table for `ctx` onto L. Call with the memory cap disarmed.
// Fails (kPermanent, pushing nothing) only when a stored JSON text does not
// decode.
Status PushContextTable(lua_State* L, const NodeContext& ctx);

}  // namespace keel
