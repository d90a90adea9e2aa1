"""Wrapping an Anthropic client: ``wb.wrap(Anthropic())`` records ``messages.create`` / ``stream`` / ``parse``.

The Anthropic SDK is built by the same generator as the OpenAI one (Stainless): every call goes
through the client's ``post`` and ``_process_response``, responses and streams are the same kinds of
objects. So the recording client is the OpenAI wrapper's (capture/wrap.py), given Anthropic's route
(``POST /v1/messages`` -> op ``messages``), its stream classes and its resource tree. Everything that
makes the OpenAI wrapper safe holds here unchanged: the record is the body dict the SDK built and the
bytes it read, spooled before the call returns (SIGKILL-safe), no SDK object is serialized on the hot
path, ``workbench=`` is checked before anything is sent, and a stream's status is how its iteration
ended. The ingester (capture/parse.py) turns an Anthropic body into the same trace row an OpenAI chat
call makes: the system prompt as the first input message, ``tool_use`` blocks as tool calls, usage in
prompt/completion tokens, the exact model version the response reports, ``stop_reason`` in metadata.
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import ValidationError
from .recorder import Recorder
from .wrap import _AsyncRecording, _SyncRecording, _wrapped_copy

__all__ = ["ROUTES", "is_anthropic_client", "wrap_anthropic"]

ClientT = TypeVar("ClientT")

# Beta messages post to the same path (with ?beta=true); count_tokens and batches are not model calls.
ROUTES = {"/v1/messages": "messages"}
_STREAMS: tuple[type, ...] = ()


def is_anthropic_client(client: object) -> bool:
    """Whether ``client`` comes from the anthropic SDK, without importing it for an OpenAI client."""
    return type(client).__module__.partition(".")[0] == "anthropic" or any(
        k.__module__.partition(".")[0] == "anthropic" for k in type(client).__mro__[1:]
    )


def wrap_anthropic(client: ClientT, recorder: Recorder) -> ClientT:
    """A copy of an ``anthropic.Anthropic`` / ``AsyncAnthropic`` client that records every message call."""
    global _STREAMS
    import anthropic

    base = getattr(type(client), "_wb_base_class", type(client))
    if issubclass(base, anthropic.AsyncAnthropic):
        mixin: type = _AsyncRecording
    elif issubclass(base, anthropic.Anthropic):
        mixin = _SyncRecording
    else:
        raise ValidationError(
            f"wrap() takes an anthropic.Anthropic or anthropic.AsyncAnthropic client, not {type(client).__name__} "
            "(Bedrock and Vertex clients stream in their own framing: use the LiteLLM callback for those)"
        )
    if not _STREAMS:
        _STREAMS = (anthropic.Stream, anthropic.AsyncStream)
    # The SDK hands post() its body with every argument not given still in it (as Omit): ~14 keys whose
    # encoding would each call the recorder's JSON fallback (~5 us a call); the copy leaves them out (~1 us).
    unset = type(getattr(anthropic, "omit", None) or getattr(anthropic, "NOT_GIVEN", None))
    return _wrapped_copy(client, recorder, mixin, ROUTES, _STREAMS, "anthropic", unset)
