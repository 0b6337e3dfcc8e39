-- flaky.lua: a flaky step healed by retries.
--
--   keel run flaky.lua                  `fetch` fails twice, succeeds on its third
--                                       attempt; the run succeeds (exit 0)
--   keel show RUN_ID --events           attempt_failed and retry_scheduled (with the
--                                       delay) for each failed attempt
--   keel run flaky.lua -p failures=9    more failures than attempts: `fetch` gives
--                                       up after 4 and the run fails (exit 1)
--   keel run flaky.lua -p kind=permanent
--                                       a permanent error is not retried at all
--
-- The flakiness is deterministic, so the demo is the same every time: `fetch`
-- fails while ctx.attempt <= params.failures. Its retry policy allows 4
-- attempts with exponential backoff from 0.05 s (0.05, 0.1, 0.2 s), without
-- jitter so the delays in the event log are easy to read.

local keel = require "keel"

return keel.workflow "flaky" {
  params = { failures = 2, kind = "transient" },

  keel.fn "fetch" {
    retry = { attempts = 4, base = 0.05, factor = 2, jitter = "none" },
    run = function(ctx)
      if ctx.attempt <= ctx.params.failures then
        -- What a dropped connection or a 503 looks like to keel.
        keel.fail { kind = ctx.params.kind,
                    message = "upstream reset the connection (attempt " .. ctx.attempt .. ")" }
      end
      keel.log("fetched on attempt " .. ctx.attempt)
      return { readings = { 12, 15, 11, 18 }, attempt = ctx.attempt }
    end,
  },

  keel.fn "summary" {
    after = { "fetch" },
    run = function(ctx)
      local sum = 0
      for _, r in ipairs(ctx.deps.fetch.readings) do sum = sum + r end
      return { mean = sum / #ctx.deps.fetch.readings, fetched_on_attempt = ctx.deps.fetch.attempt }
    end,
  },
}
