-- A map over `items` numbers (10,000 by default), each item a trivial node.
local keel = require "keel"

return keel.workflow "bigmap" {
  params = { items = 10000 },

  keel.fn "list" {
    run = function(ctx)
      local t = {}
      for i = 1, ctx.params.items do t[i] = i end
      return t
    end,
  },

  keel.map "work" {
    after = { "list" },
    over = function(ctx) return ctx.deps.list end,
    max_concurrency = 64,
    node = keel.fn { run = function(ctx) return ctx.item * 2 end },
  },

  keel.fn "count" { after = { "work" }, run = function(ctx) return #ctx.deps.work end },
}
