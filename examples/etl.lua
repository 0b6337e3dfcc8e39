-- etl.lua: a small extract -> transform -> load pipeline, the main keel example.
--
--   keel run etl.lua                     every node succeeds (exit 0)
--   keel run etl.lua -p currency=USD     parameters override the defaults below
--   keel run etl.lua -p audit=false      `audit` is skipped: its `when` says no
--   keel run etl.lua -p flaky=true       the optional `geo` step fails: the run
--                                        ends degraded (exit 3), `report` still runs
--
-- extract fans out to four transforms that run in parallel; report fans them in.

local keel = require "keel"

-- Top-level code runs once per Lua state; keep it to constants and helpers.
local ORDERS = {
  { id = 101, customer = "ada",    country = "GB", amount = 120.00 },
  { id = 102, customer = "bruno",  country = "DE", amount =  12.50 },
  { id = 103, customer = "chen",   country = "DE", amount = 310.00 },
  { id = 104, customer = "dagny",  country = "NO", amount =  88.20 },
  { id = 105, customer = "emeka",  country = "NG", amount =  45.00 },
  { id = 106, customer = "farida", country = "DE", amount =   9.99 },
  { id = 107, customer = "goran",  country = "NO", amount = 210.40 },
}

local RATES = { EUR = 1.0, USD = 1.08, GBP = 0.86 }  -- per EUR
local REGIONS = { GB = "europe", DE = "europe", NO = "europe", NG = "africa" }

return keel.workflow "etl" {
  params = { currency = "EUR", min_amount = 20, audit = true, flaky = false },

  keel.fn "extract" {
    run = function(ctx)
      keel.sleep(0.05)  -- stands in for reading a file or an API
      keel.log("extracted " .. #ORDERS .. " orders")
      return ORDERS
    end,
  },

  -- Drops orders below params.min_amount.
  keel.fn "clean" {
    after = { "extract" },
    run = function(ctx)
      local kept = keel.array {}
      for _, order in ipairs(ctx.deps.extract) do
        if order.amount >= ctx.params.min_amount then kept[#kept + 1] = order end
      end
      return kept
    end,
  },

  -- Converts every kept order into params.currency.
  keel.fn "convert" {
    after = { "clean" },
    run = function(ctx)
      local rate = RATES[ctx.params.currency]
      if rate == nil then
        keel.fail { kind = "permanent", message = "unknown currency " .. ctx.params.currency }
      end
      keel.sleep(0.1)  -- stands in for a slow exchange-rate lookup
      local total = 0
      for _, order in ipairs(ctx.deps.clean) do total = total + order.amount * rate end
      return { currency = ctx.params.currency, total = math.floor(total * 100 + 0.5) / 100 }
    end,
  },

  -- Sums the kept orders per country.
  keel.fn "by_country" {
    after = { "clean" },
    run = function(ctx)
      local sums = keel.object {}
      for _, order in ipairs(ctx.deps.clean) do
        sums[order.country] = (sums[order.country] or 0) + order.amount
      end
      return sums
    end,
  },

  -- Looks customers' regions up in a service that fails when params.flaky is
  -- set. It is optional: its failure degrades the run instead of failing it.
  keel.fn "geo" {
    after = { "extract" },
    optional = true,
    run = function(ctx)
      keel.sleep(0.08)
      if ctx.params.flaky then
        keel.fail { kind = "transient", message = "geo service unavailable (503)" }
      end
      local regions = keel.object {}
      for _, order in ipairs(ctx.deps.extract) do
        regions[order.customer] = REGIONS[order.country]
      end
      return regions
    end,
  },

  -- Checks that order ids are unique; skipped when params.audit is false.
  keel.fn "audit" {
    after = { "extract" },
    when = function(ctx) return ctx.params.audit end,
    run = function(ctx)
      local seen = {}
      for _, order in ipairs(ctx.deps.extract) do
        if seen[order.id] then keel.fail { message = "duplicate order id " .. order.id } end
        seen[order.id] = true
      end
      return { checked = #ctx.deps.extract }
    end,
  },

  -- Fans in: runs when the others are done, with whatever they produced.
  keel.fn "report" {
    after = { "convert", "by_country", "geo", "audit" },
    run = function(ctx)
      local top, top_sum = nil, -1
      for country, sum in pairs(ctx.deps.by_country) do
        if sum > top_sum then top, top_sum = country, sum end
      end
      local notes = keel.array {}
      for _, name in ipairs(ctx.failed) do notes[#notes + 1] = name .. " failed" end
      for _, name in ipairs(ctx.skipped) do notes[#notes + 1] = name .. " skipped" end
      local regions = 0
      for _ in pairs(ctx.deps.geo or {}) do regions = regions + 1 end
      keel.log(string.format("revenue %.2f %s, top country %s", ctx.deps.convert.total,
                             ctx.deps.convert.currency, top))
      return {
        revenue = ctx.deps.convert.total,
        currency = ctx.deps.convert.currency,
        top_country = top,
        customers_with_region = regions,
        notes = notes,
      }
    end,
  },
}
