"""The stream manager: `client.chat.completions.stream(...)`.

A context manager around a `PrismStream` that always asks for usage, yields only chunks with a
choice (the usage-only chunk is folded into the chunk that carried the `finish_reason`), offers
`text_stream`, and assembles the final completion with `openai`'s own accumulator.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, AsyncGenerator, AsyncIterator, Generator, Iterator, Optional

import openai
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ._metadata import PrismMetadata
from ._streaming import AsyncPrismStream, PrismStream


def with_usage(params: dict[str, Any]) -> dict[str, Any]:
    """`params` for a streamed request that reports usage."""
    options = dict(params.get("stream_options") or {})
    options["include_usage"] = True
    return {**params, "stream": True, "stream_options": options}


class _Folder:
    """Holds back the chunk with a `finish_reason` until the usage-only chunk after it arrives."""

    def __init__(self, state: ChatCompletionStreamState) -> None:
        self.state = state
        self.held: Optional[ChatCompletionChunk] = None

    def push(self, chunk: ChatCompletionChunk) -> Iterator[ChatCompletionChunk]:
        self.state.handle_chunk(chunk)
        if not chunk.choices:
            if self.held is not None and chunk.usage is not None:
                self.held.usage = chunk.usage
                held, self.held = self.held, None
                yield held
            return
        if self.held is not None:
            held, self.held = self.held, None
            yield held
        if any(choice.finish_reason for choice in chunk.choices):
            self.held = chunk
        else:
            yield chunk

    def flush(self) -> Iterator[ChatCompletionChunk]:
        if self.held is not None:
            held, self.held = self.held, None
            yield held


class _Final:
    """The state both managers share: done, failed, the final completion."""

    def __init__(self) -> None:
        self.state = ChatCompletionStreamState()
        self.folder = _Folder(self.state)
        self.done = False
        self.error: Optional[BaseException] = None
        self.closed = False

    def final(self) -> ChatCompletion:
        if self.error is not None:
            raise self.error
        if not self.done:
            raise openai.OpenAIError(
                "get_final_completion(): the stream was closed before it was read to the end"
            )
        return self.state.get_final_completion()


class ChatCompletionStream:
    """A started chat-completion stream (what `with client.chat.completions.stream(...)` gives)."""

    def __init__(self, stream: PrismStream) -> None:
        self._stream = stream
        self._final = _Final()
        self._chunks = self._iterate()

    @property
    def metadata(self) -> PrismMetadata:
        """The gateway metadata of this stream's response."""
        return self._stream.metadata

    @property
    def response(self) -> Any:
        """The HTTP response."""
        return self._stream.response

    def _iterate(self) -> Generator[ChatCompletionChunk, None, None]:
        try:
            for chunk in self._stream:
                yield from self._final.folder.push(chunk)
            yield from self._final.folder.flush()
            self._final.done = True
        except BaseException as err:
            if not isinstance(err, GeneratorExit):
                self._final.error = err
            raise

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self._chunks

    def __next__(self) -> ChatCompletionChunk:
        return next(self._chunks)

    @property
    def text_stream(self) -> Iterator[str]:
        """The text deltas of the first choice."""
        for chunk in self._chunks:
            content = chunk.choices[0].delta.content if chunk.choices else None
            if content:
                yield content

    def until_done(self) -> None:
        """Reads the rest of the stream."""
        for _ in self._chunks:
            pass

    def get_final_completion(self) -> ChatCompletion:
        """The assembled completion (message, tool calls, finish reason, usage).

        Inside the `with` block it first reads what is left of the stream; after the block it
        returns the completion of a stream that was read to the end, and raises otherwise.
        """
        if not self._final.done and self._final.error is None and not self._final.closed:
            self.until_done()
        return self._final.final()

    def close(self) -> None:
        """Closes the response and releases the connection."""
        self._final.closed = True
        self._chunks.close()
        self._stream.close()


class ChatCompletionStreamManager:
    """`with client.chat.completions.stream(...) as stream:` — the request starts on enter."""

    def __init__(self, start: Any) -> None:
        self._start = start
        self._stream: Optional[ChatCompletionStream] = None

    def __enter__(self) -> ChatCompletionStream:
        self._stream = ChatCompletionStream(self._start())
        return self._stream

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._stream is not None:
            self._stream.close()


class AsyncChatCompletionStream:
    """A started async chat-completion stream."""

    def __init__(self, stream: AsyncPrismStream) -> None:
        self._stream = stream
        self._final = _Final()
        self._chunks = self._iterate()

    @property
    def metadata(self) -> PrismMetadata:
        """The gateway metadata of this stream's response."""
        return self._stream.metadata

    @property
    def response(self) -> Any:
        """The HTTP response."""
        return self._stream.response

    async def _iterate(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        try:
            async for chunk in self._stream:
                for out in self._final.folder.push(chunk):
                    yield out
            for out in self._final.folder.flush():
                yield out
            self._final.done = True
        except BaseException as err:
            if not isinstance(err, GeneratorExit):
                self._final.error = err
            raise

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._chunks

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._chunks.__anext__()

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The text deltas of the first choice."""
        return self._text()

    async def _text(self) -> AsyncIterator[str]:
        async for chunk in self._chunks:
            content = chunk.choices[0].delta.content if chunk.choices else None
            if content:
                yield content

    async def until_done(self) -> None:
        """Reads the rest of the stream."""
        async for _ in self._chunks:
            pass

    async def get_final_completion(self) -> ChatCompletion:
        """The assembled completion; reads what is left of the stream first (see the sync one)."""
        if not self._final.done and self._final.error is None and not self._final.closed:
            await self.until_done()
        return self._final.final()

    async def close(self) -> None:
        """Closes the response and releases the connection."""
        self._final.closed = True
        await self._chunks.aclose()
        await self._stream.close()


class AsyncChatCompletionStreamManager:
    """`async with client.chat.completions.stream(...) as stream:`."""

    def __init__(self, start: Any) -> None:
        self._start = start
        self._stream: Optional[AsyncChatCompletionStream] = None

    async def __aenter__(self) -> AsyncChatCompletionStream:
        self._stream = AsyncChatCompletionStream(await self._start())
        return self._stream

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._stream is not None:
            await self._stream.close()
