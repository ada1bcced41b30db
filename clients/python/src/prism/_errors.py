"""The errors Prism adds to the `openai` package's own.

Every one is an `openai.APIError`, so `except openai.APIError` still catches them; the `openai`
status errors (`AuthenticationError`, `NotFoundError`, `RateLimitError`, ...) are raised unchanged.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Mapping, Optional

import openai

GuardrailStage = Literal["input", "output"]

# Prism names the rule in the message: "request blocked by guardrail 'injection' (prompt_injection)".
_RULE_IN_MESSAGE = re.compile(r"guardrail '([^']*)'(?: \(([^)]*)\))?")


def is_guardrail_error(error: object) -> bool:
    """Whether an error object (a body's `error`, an event's `error`) is a guardrail refusal."""
    return isinstance(error, Mapping) and error.get("type") == "guardrail_error"


class GuardrailBlockedError(openai.PermissionDeniedError):
    """An Enforce-mode guardrail refused.

    An input rule answers HTTP 403 before any upstream call (`stage == "input"`); an output rule
    ends a started stream with an error event (`stage == "output"`: the HTTP response had been a
    200 and the text streamed before the block is all there is). `status_code` is 403 for both.
    """

    rule: Optional[str]
    """The rule's configured name, e.g. `no-lovely` (None if the message names none)."""
    rule_kind: Optional[str]
    """The rule's kind as Prism reports it, e.g. `keywords` or `prompt_injection`."""
    stage: GuardrailStage

    def __init__(self, message: str, *, response: Any, body: object, stage: GuardrailStage) -> None:
        super().__init__(message, response=response, body=body)
        self.status_code = 403
        self.stage = stage
        named = _RULE_IN_MESSAGE.search(message)
        self.rule = named.group(1) if named else None
        self.rule_kind = named.group(2) if named else None


class PrismStreamError(openai.APIError):
    """A started stream ended with an error event (`data: {"error": {...}}`) instead of `[DONE]`.

    `type`, `code` and `message` are the event's (e.g. `upstream_error`); the HTTP status had
    been 200. `request_id` is the gateway's `x-request-id`.
    """

    request_id: Optional[str]

    def __init__(self, message: str, request: Any, *, body: object, request_id: Optional[str]) -> None:
        super().__init__(message, request, body=body)
        self.request_id = request_id


class StreamTruncatedError(PrismStreamError):
    """A stream ended before it was complete.

    Either the connection closed without `data: [DONE]` (the client noticed; `code` is
    `stream_truncated`), or Prism reported that its upstream's stream was cut (`code` is
    `upstream_truncated`). The chunks yielded before are all there is.
    """


def stream_event_error(error: Mapping[str, Any], response: Any) -> openai.APIError:
    """The exception a stream's error event stands for."""
    message = error.get("message")
    text = message if isinstance(message, str) and message else "the stream ended with an error"
    request_id = response.headers.get("x-request-id")
    if error.get("type") == "guardrail_error":
        return GuardrailBlockedError(text, response=response, body=dict(error), stage="output")
    if error.get("code") == "upstream_truncated":
        return StreamTruncatedError(text, response.request, body=dict(error), request_id=request_id)
    return PrismStreamError(text, response.request, body=dict(error), request_id=request_id)


def truncated_error(response: Any) -> StreamTruncatedError:
    """The error for a stream whose connection ended without `data: [DONE]`."""
    body = {
        "type": "stream_error",
        "code": "stream_truncated",
        "message": "the stream ended without data: [DONE]; the answer is incomplete",
    }
    return StreamTruncatedError(
        body["message"],
        response.request,
        body=body,
        request_id=response.headers.get("x-request-id"),
    )
