-- Two params with defaults, echoed in the output.
local keel = require "keel"

return keel.workflow "greet" {
  params = { name = "world", times = 2 },

  keel.fn "hello" {
    run = function(ctx)
      return { greeting = string.rep("hello " .. ctx.params.name .. " ", ctx.params.times) }
    end,
  },

  keel.fn "shout" {
    after = { "hello" },
    run = function(ctx) return { loud = string.upper(ctx.deps.hello.greeting) } end,
  },
}
