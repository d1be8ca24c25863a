// The official openai Node SDK against `vcr-ext serve` (run by tests/test_cli_serve.py).
//
// Reads the base URL from OPENAI_BASE_URL (and the key from OPENAI_API_KEY), as the SDK
// does by default, and a JSON request spec from argv[2]:
//   {"model": "...", "messages": [...], "missing": "a question no recording answers"}
// Prints one JSON object: the non-streamed completion, the streamed chunks, and the
// error the SDK raised for the unmatched request (its class name, status and code).
import OpenAI from "openai";

const spec = JSON.parse(process.argv[2]);
// maxRetries 0 is not set: the test checks the SDK does not retry the server's error itself.
const client = new OpenAI();

const completion = await client.chat.completions.create({ model: spec.model, messages: spec.messages });

const stream = await client.chat.completions.create({
  model: spec.model,
  messages: spec.messages,
  stream: true,
});
const chunks = [];
for await (const chunk of stream) {
  chunks.push(chunk);
}

let error = null;
if (spec.missing) {
  try {
    await client.chat.completions.create({
      model: spec.model,
      messages: [{ role: "user", content: spec.missing }],
    });
  } catch (err) {
    error = {
      class: err.constructor.name,
      status: err.status ?? null,
      code: err.code ?? null,
      type: err.type ?? null,
      message: err.error?.message ?? String(err.message),
    };
  }
}

process.stdout.write(JSON.stringify({ completion, chunks, error }) + "\n");
