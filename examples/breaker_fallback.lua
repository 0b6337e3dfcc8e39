-- breaker_fallback.lua: a dead dependency behind a circuit breaker, answered
-- by a fallback workflow.
--
--   keel run breaker_fallback.lua       exit 0: every price comes from the cache
--   keel breakers                       `pricing` is open, with its countdown
--   keel run breaker_fallback.lua       within 30 s: no call reaches pricing at all
--   keel show RUN_ID --events           breaker_opened, circuit_rejected,
--                                       fallback_started / fallback_finished
--   keel breakers --reset pricing       forget the breaker's state
--
-- Four `price_*` nodes ask the live pricing service, which is down: every call
-- fails the way a refused connection would. They share one circuit breaker
-- (key "pricing") and, through max_concurrency = 1, call it one at a time.
-- The first two calls fail and open the breaker (failures = 2); the next ones
-- are refused at once with `circuit_open` instead of waiting on a dead
-- service. Each failed or refused node then runs the fallback workflow
-- `cached_price` and ends `fallback` with its output, so `total` still gets
-- a price for every line and the run succeeds.
--
-- The breaker lives in the database: the next run within the 30 s cooldown
-- is refused from its first call. After the cooldown, one call goes through
-- as a probe; if pricing answers again, the breaker closes.

local keel = require "keel"

-- A list, not a map: every Lua state must declare the nodes in the same order.
local CART = { { "apple", 6 }, { "bread", 1 }, { "cheese", 2 }, { "dates", 3 } }
local CACHED = { apple = 0.45, bread = 2.20, cheese = 4.80, dates = 3.10 }  -- last known prices

-- The fallback: the last known price of the line it stands in for. A
-- fallback workflow gets the failed node's params and deps, here the one line.
keel.workflow "cached_price" {
  keel.fn "lookup" {
    run = function(ctx)
      local _, line = next(ctx.deps)
      return { item = line.item, unit = CACHED[line.item], qty = line.qty, source = "cache" }
    end,
  },
}

local nodes = {}
local prices = {}
for _, entry in ipairs(CART) do
  local item, qty = entry[1], entry[2]
  nodes[#nodes + 1] = keel.fn("line_" .. item) {
    run = function() return { item = item, qty = qty } end,
  }
  nodes[#nodes + 1] = keel.fn("price_" .. item) {
    after = { "line_" .. item },
    circuit = { key = "pricing", failures = 2, cooldown = 30 },
    max_concurrency = 1,  -- one call at a time on the breaker's key
    fallback = "cached_price",
    run = function(ctx)
      keel.fail { kind = "transient", message = "pricing.internal:443: connection refused" }
    end,
  }
  prices[#prices + 1] = "price_" .. item
end

nodes[#nodes + 1] = keel.fn "total" {
  after = prices,
  run = function(ctx)
    local total, sources = 0, {}
    for _, name in ipairs(prices) do
      local p = ctx.deps[name]
      total = total + p.unit * p.qty
      sources[p.source] = (sources[p.source] or 0) + 1
    end
    return { total = math.floor(total * 100 + 0.5) / 100, sources = sources }
  end,
}

return keel.workflow "checkout" (nodes)
