-- `fetch` fails twice (a transient error naming its attempt), then succeeds.
local keel = require "keel"

return keel.workflow "flaky" {
  keel.fn "fetch" {
    retry = { attempts = 4, base = 0.05, factor = 2, jitter = "none" },
    run = function(ctx)
      if ctx.attempt <= 2 then
        keel.fail { kind = "transient",
                    message = "upstream reset the connection (attempt " .. ctx.attempt .. ")" }
      end
      return { attempt = ctx.attempt }
    end,
  },

  keel.fn "summary" {
    after = { "fetch" },
    run = function(ctx) return { fetched_on_attempt = ctx.deps.fetch.attempt } end,
  },
}
