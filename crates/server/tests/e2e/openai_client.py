"""End-to-end check of `modelspec serve` with the official `openai` Python package.

Usage: python openai_client.py BASE_URL MODEL_ID API_KEY
Exits 0 when every check holds; prints what failed otherwise. Run by tests/e2e.rs.
"""

import sys

import openai
from openai import OpenAI

base_url, model, api_key = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=120)
messages = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
params = dict(model=model, max_tokens=8, temperature=0, seed=7)


def check(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


# API keys: a wrong one is refused as OpenAI refuses it.
stranger = OpenAI(base_url=base_url + "/v1", api_key="sk-wrong", max_retries=0, timeout=120)
try:
    stranger.models.list()
    check(False, "a wrong API key should be refused")
except openai.AuthenticationError as e:
    check(e.status_code == 401 and e.code == "invalid_api_key", f"wrong key: {e}")

# Models.
ids = [m.id for m in client.models.list()]
check(ids == [model], f"models.list() -> {ids}")
check(client.models.retrieve(model).id == model, "models.retrieve")
try:
    client.models.retrieve("no-such-model")
    check(False, "unknown model should be 404")
except openai.NotFoundError:
    pass

# Chat, non-streaming, with the raw response for the run id header.
raw = client.chat.completions.with_raw_response.create(messages=messages, **params)
run_id = raw.headers.get("x-modelspec-run-id")
check(run_id, "x-modelspec-run-id header")
chat = raw.parse()
check(chat.object == "chat.completion", f"object {chat.object}")
choice = chat.choices[0]
check(choice.message.role == "assistant", "role")
check(isinstance(choice.message.content, str) and choice.message.content, "content")
check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason}")
check(1 <= chat.usage.completion_tokens <= 8, f"usage {chat.usage}")
check(chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens, "total")

# Chat, streaming with usage: the same text as the whole answer.
pieces, finish, usage = [], None, None
stream = client.chat.completions.create(
    messages=messages, stream=True, stream_options={"include_usage": True}, **params
)
for chunk in stream:
    check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object}")
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
check("".join(pieces) == choice.message.content, f"stream {pieces!r} vs {choice.message.content!r}")
check(finish == choice.finish_reason, f"stream finish_reason {finish}")
check(usage is not None and usage.completion_tokens == chat.usage.completion_tokens, f"usage {usage}")

# Completions, non-streaming and streaming.
prompt = "The three primary colors are"
completion = client.completions.create(prompt=prompt, **params)
check(completion.object == "text_completion", "completion object")
text = completion.choices[0].text
check(isinstance(text, str) and text, "completion text")
streamed = "".join(
    c.choices[0].text for c in client.completions.create(prompt=prompt, stream=True, **params) if c.choices
)
check(streamed == text, f"completion stream {streamed!r} vs {text!r}")

# Stop strings never appear in the text.
stopped = client.completions.create(prompt=prompt, stop=[" ", "\n"], **params).choices[0]
check(" " not in stopped.text and "\n" not in stopped.text, f"stop {stopped.text!r}")

# Errors are OpenAI error objects the client understands.
try:
    client.chat.completions.create(messages=messages, n=2, **params)
    check(False, "n=2 should be refused")
except openai.BadRequestError as e:
    check(e.status_code == 400 and e.param == "n", f"n=2: {e}")
try:
    client.chat.completions.create(messages=[], **params)
    check(False, "empty messages should be refused")
except openai.BadRequestError as e:
    check(e.param == "messages", f"messages: {e}")

try:
    client.chat.completions.create(messages=messages, **{**params, "model": "gpt-4o"})
    check(False, "an unknown model should be 404")
except openai.NotFoundError as e:
    check(e.code == "model_not_found", f"unknown model: {e}")
tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
try:
    client.chat.completions.create(messages=messages, tools=tools, **params)
    check(False, "tools should be refused")
except openai.BadRequestError as e:
    check(e.param == "tools" and e.code == "unsupported_parameter", f"tools: {e}")

# Log-probabilities, as the client parses them; a bias that bans nothing visible.
lp = client.chat.completions.create(
    messages=messages, logprobs=True, top_logprobs=2, logit_bias={"0": -100}, **params
)
content = lp.choices[0].logprobs.content
check(len(content) == lp.usage.completion_tokens, f"logprobs {len(content)} vs {lp.usage}")
check(all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in content), "logprob entries")
check("".join(t.token for t in content) == lp.choices[0].message.content, "logprob tokens")
clp = client.completions.create(prompt=prompt, logprobs=1, **params).choices[0].logprobs
check(len(clp.tokens) == len(clp.token_logprobs) == len(clp.text_offset), f"completion logprobs {clp}")

print(f"ok: chat {choice.message.content!r}, completion {text!r}, run {run_id}")
