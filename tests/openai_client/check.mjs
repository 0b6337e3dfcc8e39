// The official openai package against keel-mock-llm (MOCK_BASE_URL): a plain
// completion, a tool-call round trip, JSON output, and errors surfacing as the
// SDK's own error classes. Exits 1 on the first failed check.
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.MOCK_BASE_URL;
const client = new OpenAI({ baseURL, apiKey: "sk-mock", maxRetries: 0, timeout: 10000 });

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
    process.exit(1);
  }
}

await check("plain completion", async () => {
  const r = await client.chat.completions.create({
    model: "gpt-mock",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "hello there" },
    ],
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "gpt-mock");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(r.choices[0].message.content, "echo: hello there");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

await check("tool-call round trip", async () => {
  const tools = [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather for a city",
        parameters: {
          type: "object",
          properties: { city: { type: "string" }, days: { type: "integer", minimum: 1 } },
          required: ["city", "days"],
        },
      },
    },
  ];
  const messages = [{ role: "user", content: "weather in Oslo?" }];
  const first = await client.chat.completions.create({ model: "gpt-mock", messages, tools });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "mock", days: 1 });

  messages.push(choice.message);
  messages.push({ role: "tool", tool_call_id: call.id, content: "sunny, 21C" });
  const second = await client.chat.completions.create({ model: "gpt-mock", messages, tools });
  assert.equal(second.choices[0].finish_reason, "stop");
  assert.equal(second.choices[0].message.content, "tool results: sunny, 21C");

  const parallel = await client.chat.completions.create({
    model: "gpt-mock",
    messages: [
      { role: "user", content: 'both [[mock:call=a {"x":1}]] [[mock:call=b {"y":2}]]' },
    ],
    tools,
  });
  const calls = parallel.choices[0].message.tool_calls;
  assert.deepEqual(
    calls.map((c) => c.function.name),
    ["a", "b"],
  );
  assert.notEqual(calls[0].id, calls[1].id);
});

await check("response_format json_object", async () => {
  const r = await client.chat.completions.create({
    model: "gpt-mock",
    messages: [{ role: "user", content: "give me json" }],
    response_format: { type: "json_object" },
  });
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { echo: "give me json" });
});

await check("response_format json_schema", async () => {
  const r = await client.chat.completions.create({
    model: "gpt-mock",
    messages: [{ role: "user", content: "a person" }],
    response_format: {
      type: "json_schema",
      json_schema: {
        name: "person",
        schema: {
          type: "object",
          properties: { name: { type: "string" }, age: { type: "integer", minimum: 18 } },
          required: ["name", "age"],
        },
      },
    },
  });
  assert.deepEqual(JSON.parse(r.choices[0].message.content), { name: "mock", age: 18 });
});

await check("429 surfaces as RateLimitError", async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: "gpt-mock",
      messages: [{ role: "user", content: "[[mock:fault=429]][[mock:retry_after=2]] busy?" }],
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}`);
      assert.equal(err.status, 429);
      assert.equal(err.headers["retry-after"], "2");
      assert.equal(err.code, "rate_limit_exceeded");
      return true;
    },
  );
});

await check("500 surfaces as InternalServerError", async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: "gpt-mock",
      messages: [{ role: "user", content: "[[mock:fault=500]] broken?" }],
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.InternalServerError, `got ${err?.constructor?.name}`);
      assert.equal(err.status, 500);
      return true;
    },
  );
});

await check("retries recover from times=N faults", async () => {
  const retrying = new OpenAI({ baseURL, apiKey: "sk-mock", maxRetries: 2, timeout: 10000 });
  const r = await retrying.chat.completions.create({
    model: "gpt-mock",
    messages: [{ role: "user", content: "[[mock:fault=503]][[mock:times=1]] once" }],
  });
  assert.equal(r.choices[0].message.content, "echo: once");
});

await check("a reset surfaces as APIConnectionError", async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: "gpt-mock",
      messages: [{ role: "user", content: "[[mock:fault=reset]] gone" }],
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIConnectionError, `got ${err?.constructor?.name}`);
      return true;
    },
  );
});

await check("models list", async () => {
  const models = await client.models.list();
  assert.equal(models.data[0].id, "mock");
});
