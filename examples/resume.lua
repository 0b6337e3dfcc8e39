-- resume.lua: fix a bug, then resume the run without redoing finished work.
--
-- 1. Run it:         keel run resume.lua
--    `fetch` and `count` succeed; `average` fails with
--    "attempt to perform arithmetic on a nil value (field 'cnt')",
--    and `publish`, which needs it, is cancelled. The run fails (exit 1).
-- 2. Fix the line marked BUG below: the field is `n`, not `cnt`.
-- 3. Resume:         keel resume RUN_ID      (the id printed by step 1)
--    keel says the script changed, keeps `fetch` and `count` (their keel.log
--    lines do not appear again: they are not redone), runs `average` and
--    `publish`, and the run succeeds.
-- 4. Look back:      keel show RUN_ID --events
--
-- Nodes that had not finished are run again on resume (at least once); a node
-- with outside side effects can use ctx.idempotency_key to do them only once.

local keel = require "keel"

return keel.workflow "resume_demo" {
  keel.fn "fetch" {
    run = function(ctx)
      keel.log("fetching scores: slow and costly, done once")
      keel.sleep(0.3)
      return { 71, 88, 93, 64 }
    end,
  },

  keel.fn "count" {
    after = { "fetch" },
    run = function(ctx)
      local sum = 0
      for _, score in ipairs(ctx.deps.fetch) do sum = sum + score end
      keel.log("counted " .. #ctx.deps.fetch .. " scores")
      return { n = #ctx.deps.fetch, sum = sum }
    end,
  },

  keel.fn "average" {
    after = { "count" },
    run = function(ctx)
      local stats = ctx.deps.count
      return stats.sum / stats.cnt  -- BUG: the field is `n`; change `cnt` to `n`, then resume
    end,
  },

  keel.fn "publish" {
    after = { "average" },
    run = function(ctx)
      keel.log("publishing average " .. ctx.deps.average .. " as " .. ctx.idempotency_key)
      return { average = ctx.deps.average, key = ctx.idempotency_key }
    end,
  },
}
