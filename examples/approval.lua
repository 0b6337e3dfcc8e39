-- A human approval and a cool-off timer: the run parks (exit 4) until a
-- signal comes, then waits a durable 5 seconds before it publishes.
--
--   keel run approval.lua                       # parks on 'approval', exit 4
--   keel signal RUN approve --data '{"by": "ann"}'
--   keel resume RUN --wait                      # takes the signal, waits 5 s, publishes
--
-- Without an answer within a day, the approval times out and `auto_reject`
-- answers instead (a fallback).

local keel = require "keel"

keel.workflow "auto_reject" {
  keel.fn "output" { run = function() return { by = "nobody", rejected = true } end },
}

return keel.workflow "approval" {
  params = { title = "Circuit breakers, explained" },

  keel.fn "draft" {
    run = function(ctx) return { title = ctx.params.title, words = 1200 } end,
  },

  keel.wait "approval" {
    after = { "draft" }, signal = "approve", timeout = 86400, fallback = "auto_reject",
  },

  keel.wait "cool_off" { after = { "approval" }, delay = 5 },

  keel.fn "publish" {
    after = { "draft", "approval", "cool_off" },
    run = function(ctx)
      local approval = ctx.deps.approval
      if approval.rejected then return { published = false } end
      keel.log("publishing " .. ctx.deps.draft.title .. ", approved by " .. approval.by)
      return { published = true, by = approval.by }
    end,
  },
}
