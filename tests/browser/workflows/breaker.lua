-- Every call to `pricing` fails; two failures open its circuit breaker
-- (cooldown an hour, so it stays open for the test), and a fallback answers.
local keel = require "keel"

keel.workflow "cached_price" {
  keel.fn "lookup" { run = function() return { unit = 1.5, source = "cache" } end },
}

local nodes, prices = {}, {}
for _, item in ipairs { "apple", "bread", "cheese" } do
  nodes[#nodes + 1] = keel.fn("price_" .. item) {
    circuit = { key = "pricing", failures = 2, cooldown = 3600 },
    max_concurrency = 1,
    fallback = "cached_price",
    run = function() keel.fail { kind = "transient", message = "pricing.internal:443: connection refused" } end,
  }
  prices[#prices + 1] = "price_" .. item
end
nodes[#nodes + 1] = keel.fn "total" { after = prices, run = function() return { lines = #prices } end }

return keel.workflow "checkout" (nodes)
