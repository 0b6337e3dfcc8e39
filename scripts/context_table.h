#pragma once
// The `ctx` table a node's when and run functions receive.
//
//   ctx.params           the run parameters (decoded JSON object)
//   ctx.deps.<name>      each dependency's output (decoded; nil for null)
//   ctx.skipped          array of dependencies whose `when` said no
//   ctx.failed           array of optional dependencies that failed
//   ctx.run_id, ctx.workflow, ctx.node, ctx.attempt, ctx.idempotency_key
//   ctx.item, ctx.index  a keel.map item's element and its 1-based position
//
// params, deps, skipped and failed are built on first use (through the
// table's __index; pairs(ctx) builds them all), so a node that never looks
// at them does not pay for decoding them. They can be built only while the
// node's execution holds the state. Every execution gets fresh tables, so a
// node cannot change what another one sees. Thread-safety: as for the
// lua_State.

#include "engine/workflow.h"

struct lua_State;

namespace keel {

// Creates the metatable ctx tables share. Call once per state, with the
// memory cap disarmed.
void InstallContextTable(lua_State* L);

// Pushes a ctx table for `ctx` onto L. Never fails with the cap disarmed.
// The execution must then record `ctx` and the table's lua_topointer in its
// ActiveNode, which is how the lazy fields find their data.
void PushContextTable(lua_State* L, const NodeContext& ctx);

}  // namespace keel
