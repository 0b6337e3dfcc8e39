-- A run that parks on the signal `approve`, then publishes what it got.
local keel = require "keel"

return keel.workflow "approval" {
  params = { title = "Circuit breakers, explained" },

  keel.fn "draft" {
    run = function(ctx) return { title = ctx.params.title } end,
  },

  keel.wait "approval" { after = { "draft" }, signal = "approve" },

  keel.fn "publish" {
    after = { "draft", "approval" },
    run = function(ctx) return { published = true, by = ctx.deps.approval.by } end,
  },
}
