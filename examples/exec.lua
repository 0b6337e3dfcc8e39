-- exec.lua: programs as steps. keel.exec runs a program (an argv list, no
-- shell) without holding a worker; stdout becomes the node's output.
--
--   keel run exec.lua                 lists this directory, three ways
--   keel run exec.lua -p dir=/etc     any directory
--   keel run exec.lua -p dir=/nope    `listing` fails (ls exits 2, mapped to
--                                     permanent: no retry); stderr's tail is
--                                     in the error
--
-- `listing` runs `ls` with a templated argument and takes its lines;
-- `upper` gets that list as JSON on stdin and pipes it through `tr`, whose
-- stdout is JSON again; `report` calls keel.exec from inside a function.

local keel = require "keel"

return keel.workflow "files" {
  params = { dir = "." },

  keel.exec "listing" {
    command = { "ls", "-1", "{{params.dir}}" },
    output = "lines",                         -- an array of strings
    exit_codes = { [2] = "permanent" },       -- ls: no such directory
    retry = { attempts = 3, base = 0.1 },     -- other failures are transient
    timeout = 10,
  },

  keel.exec "upper" {
    after = { "listing" },
    command = { "tr", "a-z", "A-Z" },
    stdin = function(ctx) return ctx.deps.listing end,   -- written as JSON
    output = "json",
  },

  keel.fn "report" {
    after = { "listing", "upper" },
    run = function(ctx)
      -- Inside a function keel.exec yields until the program ends; without
      -- `output` it returns { code, stdout, stderr }.
      local du = keel.exec { command = { "du", "-sk", ctx.params.dir } }
      return {
        files = #ctx.deps.listing,
        first = ctx.deps.upper[1],
        kilobytes = tonumber(du.stdout:match("^(%d+)")),
      }
    end,
  },
}
