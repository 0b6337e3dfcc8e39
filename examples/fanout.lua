-- Dynamic fan-out: the list of documents is known only at run time.
--
--   keel run fanout.lua                 # summarise each document, review until approved
--   keel run fanout.lua -p docs=5000    # 5000 items, 64 at a time, each checkpointed
--   keel show RUN --items               # one line per item instead of the summary line
--   keel resume RUN --from review       # re-run the review loop, keep the summaries
--
-- `summaries` runs one item per document (`summaries[1]`, `summaries[2]`,
-- ...); a crash or a failure resumes only the items that did not finish.
-- `review` runs the `review_round` workflow until its reviewer approves, at
-- most 4 times; `wc` runs a program on the joined text, without a shell.

local keel = require "keel"

-- One review round: iteration i sees the previous round's verdict.
keel.workflow "review_round" {
  keel.fn "output" {
    run = function(ctx)
      local previous = ctx.params.previous
      local score = (previous and previous.score or 0) + 40
      return { round = ctx.params.iteration, score = score, approved = score >= 100 }
    end,
  },
}

return keel.workflow "fanout" {
  params = { docs = 20 },

  keel.fn "find" {
    run = function(ctx)
      local docs = {}
      for i = 1, ctx.params.docs do
        docs[i] = { id = i, text = "document number " .. i .. " about circuit breakers" }
      end
      return docs
    end,
  },

  keel.map "summaries" {
    after = { "find" },
    over = function(ctx) return ctx.deps.find end,
    max_concurrency = 64,
    tolerate = 0.05,            -- up to 5% of the documents may fail
    retry = { attempts = 3, base = 0.05 },
    node = keel.fn {
      run = function(ctx)
        local words = select(2, ctx.item.text:gsub("%S+", ""))
        return { id = ctx.item.id, words = words, first = ctx.item.text:match("^(%S+)") }
      end,
    },
  },

  keel.loop "review" {
    after = { "summaries" },
    workflow = "review_round",
    max_iterations = 4,
    done_when = function(out) return out.approved end,
  },

  keel.exec "wc" {
    after = { "summaries" },
    command = { "wc", "-w" },
    stdin = function(ctx)
      local parts = {}
      for _, s in ipairs(ctx.deps.summaries) do parts[#parts + 1] = s.first end
      return table.concat(parts, " ")
    end,
    output = "text",
  },

  keel.fn "report" {
    after = { "summaries", "review", "wc" },
    run = function(ctx)
      local words = 0
      for _, s in ipairs(ctx.deps.summaries) do words = words + s.words end
      return {
        documents = #ctx.deps.summaries,
        words = words,
        review_rounds = ctx.deps.review.round,
        wc = tonumber(ctx.deps.wc:match("%d+")),
      }
    end,
  },
}
