-- race.lua: ask two providers at once and take the first answer.
--
--   keel run race.lua                   `fast` answers after 0.1 s, `answer` goes
--                                       ahead with it and `slow` is cancelled; the
--                                       run succeeds (exit 0) well before `slow`'s 5 s
--   keel run race.lua -p fast_s=9       now `slow` wins and `fast` is cancelled
--   keel show RUN_ID --events           join_satisfied on `answer`, node_cancelled
--                                       on the loser
--
-- `answer` has join = "any": it runs as soon as one of its dependencies has
-- succeeded. The loser is really stopped (its keel.sleep is cancelled), so no
-- work goes on in the background, and it is recorded `cancelled`; a race loser
-- does not fail the run. ctx.failed lists the dependencies that did not
-- arrive.

local keel = require "keel"

-- Stands in for a call to a model provider that takes `seconds` to answer.
local function provider(name, seconds)
  return function(ctx)
    keel.sleep(ctx.params[seconds])
    return { provider = name, text = "circuit breakers stop calls to a failing service" }
  end
end

return keel.workflow "race" {
  params = { question = "what does a circuit breaker do?", fast_s = 0.1, slow_s = 5 },

  keel.fn "slow" { run = provider("slow", "slow_s") },
  keel.fn "fast" { run = provider("fast", "fast_s") },

  keel.fn "answer" {
    after = { "slow", "fast" },
    join = "any",
    run = function(ctx)
      local _, reply = next(ctx.deps)  -- the winner (either one, in a tie)
      return { winner = reply.provider, text = reply.text, not_arrived = ctx.failed }
    end,
  },
}
