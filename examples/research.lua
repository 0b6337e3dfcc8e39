-- research.lua: a research pipeline of LLM agents.
--
--   keel run research.lua                       offline: the mock provider answers
--   keel run research.lua -p topic="vector clocks"
--   OPENAI_API_KEY=sk-... keel run research.lua online, against OpenAI
--   keel run research.lua -p fault="[[mock:fault=503]]"
--                                                the mock fails synthesis (offline
--                                                only): it falls back to `brief`
--   keel run research.lua --max-tokens 200       the run stops at its token budget
--
-- `plan` picks three angles; three analyst agents work on them in parallel
-- (one of them calls a Lua tool); `synthesis` goes ahead as soon as two
-- analysts have answered (join = { quorum = 2 }), asks for JSON matching a
-- schema, and, should its provider fail, falls back to the `brief` workflow on
-- a cheaper provider. Every model call's tokens and cost show in `keel show`.

local keel = require "keel"

local online = os.getenv("OPENAI_API_KEY") ~= nil

-- The main provider: OpenAI when a key is set, else the offline mock with
-- a realistic latency. Prices are per million tokens.
keel.provider "smart" (online and {
  kind = "openai", base_url = "https://api.openai.com/v1", model = "gpt-4o-mini",
  api_key_env = "OPENAI_API_KEY", max_concurrency = 4, rpm = 500,
  prices = { input = 0.15, output = 0.60 },
} or {
  kind = "mock", model = "mock-smart", latency = 0.3, prices = { input = 0.15, output = 0.60 },
})

-- The fallback: a cheaper model (offline: a faster mock).
keel.provider "cheap" (online and {
  kind = "openai", base_url = "https://api.openai.com/v1", model = "gpt-4o-mini",
  api_key_env = "OPENAI_API_KEY", prices = { input = 0.15, output = 0.60 },
} or {
  kind = "mock", model = "mock-cheap", latency = 0.05, prices = { input = 0.05, output = 0.20 },
})

-- Used when `synthesis` cannot be had from the main provider: it gets the same
-- params and deps, and its `output` node's result becomes synthesis's output.
keel.workflow "brief" {
  keel.agent "output" {
    provider = "cheap", max_tokens = 300,
    prompt = "In three sentences, summarise these notes on {{params.topic}}: " ..
             "{{deps.history}} {{deps.practice}} {{deps.risks}}",
  },
}

local analyst = "You are a careful analyst. Answer in at most five sentences."

return keel.workflow "research" {
  -- `fault` is appended to the synthesis prompt: the mock reads directives
  -- such as [[mock:fault=503]] there (docs/mock-llm.md).
  params = { topic = "circuit breakers in LLM pipelines", fault = "" },
  defaults = {
    timeout = 60,
    retry = { attempts = 3, base = 0.5, max = 8, jitter = "full" },
  },

  keel.fn "plan" {
    run = function(ctx)
      return { "history", "current practice", "failure modes" }
    end,
  },

  keel.agent "history" {
    after = { "plan" }, provider = "smart", system = analyst,
    prompt = "Write about the {{deps.plan.0}} of {{params.topic}}.",
  },

  keel.agent "practice" {
    after = { "plan" }, provider = "smart", system = analyst,
    prompt = "Describe {{deps.plan.1}} for {{params.topic}}.",
    hedge = { delay = 2, max = 2 },  -- a slow answer gets a second request
  },

  keel.agent "risks" {
    after = { "plan" }, provider = "smart", system = analyst,
    prompt = "List the {{deps.plan.2}} of {{params.topic}}. Look up known incidents first.",
    max_turns = 4,
    tools = {
      incidents = {
        description = "Known incidents for a subject.",
        parameters = { type = "object", properties = { subject = { type = "string" } } },
        run = function(ctx, args)
          return { subject = args.subject, incidents = {
            "retry storm after a provider outage",
            "breaker stuck open after a deploy",
          } }
        end,
      },
    },
  },

  keel.agent "synthesis" {
    after = { "history", "practice", "risks" }, join = { quorum = 2 },
    provider = "smart", fallback = "brief",
    circuit = { failures = 3, cooldown = 30 },
    system = "Answer with JSON only.",
    prompt = "Combine these notes on {{params.topic}} into a title, a summary and key points. " ..
             "History: {{deps.history}} Practice: {{deps.practice}} Risks: {{deps.risks}}" ..
             "{{params.fault}}",
    output = {
      type = "object", required = { "title", "summary", "points" },
      properties = {
        title = { type = "string" },
        summary = { type = "string" },
        points = { type = "array", items = { type = "string" } },
      },
    },
    retry = { attempts = 2, base = 0.2 },
  },

  keel.fn "publish" {
    after = { "synthesis" },
    run = function(ctx)
      local report = ctx.deps.synthesis
      keel.log("report:", type(report) == "table" and report.title or report)
      return report
    end,
  },
}
