"""The official `openai` Python SDK's Responses API against a running `prism serve`.

`responses.create(stream=True)`, the `responses.stream()` helper with `get_final_response()`,
non-streaming answers and a full function-call loop for every provider of the demo, plus the
stateless rules (`previous_response_id` is a 400), built-in tools off the OpenAI lane, and a
guardrail that fails a started stream with `response.failed`.

Every model but one is translated from its provider's native stream (`demo/openai` goes through
Chat Completions); `demo/openai-responses` is the pass-through lane to an OpenAI upstream that
speaks Responses itself.

Run by `tests/sdk/run.sh`, which starts the gateway with `tests/sdk/prism-sdk.toml`.
"""

import json
import os
import unittest

import openai
from openai import OpenAI

BASE_URL = os.environ["PRISM_BASE_URL"].rstrip("/") + "/v1"
API_KEY = os.environ["PRISM_API_KEY"]
MODELS = [
    "demo/openai",
    "demo/openai-responses",
    "demo/anthropic",
    "demo/gemini",
    "demo/vertex",
    "demo/bedrock",
    "demo/bedrock-invoke",
]
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client() -> OpenAI:
    return OpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0, timeout=30)


class StreamTest(unittest.TestCase):
    def test_create_stream_events_every_model(self):
        for model in MODELS:
            with self.subTest(model=model):
                events = list(
                    client().responses.create(model=model, input="Say hello", stream=True)
                )
                kinds = [e.type for e in events]
                self.assertEqual(kinds[:2], ["response.created", "response.in_progress"])
                self.assertEqual(kinds[-1], "response.completed")
                self.assertEqual(
                    [e.sequence_number for e in events], list(range(len(events)))
                )
                text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
                done = [e.text for e in events if e.type == "response.output_text.done"]
                self.assertEqual(done, [text])
                final = events[-1].response
                self.assertEqual(final.status, "completed")
                self.assertEqual(final.output_text, text)
                self.assertTrue(text.strip())
                self.assertGreater(final.usage.output_tokens, 0)
                self.assertEqual(
                    final.usage.total_tokens,
                    final.usage.input_tokens + final.usage.output_tokens,
                )

    def test_stream_helper_final_response_every_model(self):
        for model in MODELS:
            with self.subTest(model=model):
                with client().responses.stream(
                    model=model, input=[{"role": "user", "content": "Say hello"}]
                ) as stream:
                    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
                    final = stream.get_final_response()
                self.assertEqual(final.output_text, "".join(deltas))
                self.assertTrue(final.id.startswith("resp_"), final.id)
                self.assertEqual(final.model, model)
                self.assertGreater(final.usage.input_tokens, 0)

    def test_non_streaming_every_model(self):
        for model in MODELS:
            with self.subTest(model=model):
                response = client().responses.create(
                    model=model, instructions="Be brief.", input="Say hello"
                )
                self.assertEqual(response.status, "completed")
                self.assertTrue(response.output_text.strip())
                self.assertGreater(response.usage.output_tokens, 0)

    def test_reasoning_effort_is_accepted(self):
        for model in MODELS:
            with self.subTest(model=model):
                response = client().responses.create(
                    model=model, input="Say hello", reasoning={"effort": "low"}
                )
                self.assertEqual(response.status, "completed")
                self.assertTrue(response.output_text.strip())


class ToolTest(unittest.TestCase):
    def test_function_call_loop_every_model(self):
        ask = {"role": "user", "content": "What is the weather in Paris?"}
        for model in MODELS:
            with self.subTest(model=model):
                with client().responses.stream(
                    model=model, input=[ask], tools=[WEATHER_TOOL]
                ) as stream:
                    args = "".join(
                        e.delta for e in stream if e.type == "response.function_call_arguments.delta"
                    )
                    final = stream.get_final_response()
                calls = [item for item in final.output if item.type == "function_call"]
                self.assertEqual(len(calls), 1)
                self.assertEqual(calls[0].name, "get_weather")
                self.assertEqual(json.loads(calls[0].arguments), {"city": "Paris"})
                self.assertEqual(args, calls[0].arguments)
                self.assertTrue(calls[0].call_id)
                answer = client().responses.create(
                    model=model,
                    tools=[WEATHER_TOOL],
                    input=[
                        ask,
                        {
                            "type": "function_call",
                            "call_id": calls[0].call_id,
                            "name": calls[0].name,
                            "arguments": calls[0].arguments,
                        },
                        {
                            "type": "function_call_output",
                            "call_id": calls[0].call_id,
                            "output": "18 C, sunny",
                        },
                    ],
                )
                self.assertEqual(answer.status, "completed")
                self.assertTrue(answer.output_text.strip())


class ErrorTest(unittest.TestCase):
    def test_previous_response_id_is_a_400(self):
        with self.assertRaises(openai.BadRequestError) as ctx:
            client().responses.create(
                model="demo/anthropic", input="again", previous_response_id="resp_123"
            )
        self.assertEqual(ctx.exception.param, "previous_response_id")

    def test_built_in_tools_are_a_400_off_the_openai_lane(self):
        with self.assertRaises(openai.BadRequestError) as ctx:
            client().responses.create(
                model="demo/gemini", input="news?", tools=[{"type": "web_search"}]
            )
        self.assertIn("tools", ctx.exception.param or "")

    def test_unknown_model_is_404(self):
        with self.assertRaises(openai.NotFoundError):
            client().responses.create(model="no/such-model", input="hi")

    def test_output_guardrail_fails_the_started_response(self):
        # prism-sdk.toml blocks "lovely" on guarded/anthropic's output; the demo reply has it. The
        # `error` event carries a top-level `error`, which the SDK raises as an APIError.
        seen = []
        with self.assertRaises(openai.APIError) as ctx:
            for event in client().responses.create(
                model="guarded/anthropic", input="Say hello", stream=True
            ):
                seen.append(event)
        self.assertIn("guardrail", str(ctx.exception).lower())
        kinds = [e.type for e in seen]
        self.assertNotIn("response.completed", kinds)
        text = "".join(e.delta for e in seen if e.type == "response.output_text.delta")
        self.assertTrue(text, "text before the violation was streamed")
        self.assertNotIn("lovely", text.lower())


if __name__ == "__main__":
    unittest.main(verbosity=2)
