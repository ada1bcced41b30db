"""Gateway metadata read from the `x-prism-*` response headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional

METADATA_ATTR = "_prism_metadata"


@dataclass(frozen=True)
class PrismMetadata:
    """What the gateway says about one response."""

    provider: Optional[str]
    """`x-prism-provider`: the configured provider that answered."""
    attempts: Optional[int]
    """`x-prism-attempts`: upstream attempts (0 for a cache hit)."""
    cache: Optional[str]
    """`x-prism-cache`: `hit`, `miss` or `bypass` (None: no cache configured)."""
    request_id: Optional[str]
    """`x-request-id`, as in the gateway's logs."""
    guardrail_warnings: List[str] = field(default_factory=list)
    """`x-prism-guardrail-warnings`: Monitor-mode rules that fired (input rules only on a stream)."""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """All response headers."""

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> PrismMetadata:
        def get(name: str) -> Optional[str]:
            value = headers.get(name)
            return value if value else None

        attempts_text = get("x-prism-attempts")
        attempts = int(attempts_text) if attempts_text and attempts_text.isdigit() else None
        warnings_text = get("x-prism-guardrail-warnings") or ""
        warnings = [w.strip() for w in warnings_text.split(",") if w.strip()]
        return cls(
            provider=get("x-prism-provider"),
            attempts=attempts,
            cache=get("x-prism-cache"),
            request_id=get("x-request-id"),
            guardrail_warnings=warnings,
            headers=headers,
        )


def prism_metadata(obj: Any) -> Optional[PrismMetadata]:
    """The gateway metadata of a completion, a stream, an HTTP response or a header mapping.

    None for an object that did not come through a Prism client.
    """
    found = getattr(obj, METADATA_ATTR, None)
    if isinstance(found, PrismMetadata):
        return found
    metadata = getattr(obj, "metadata", None)
    if isinstance(metadata, PrismMetadata):
        return metadata
    headers = getattr(obj, "headers", None)
    if headers is not None and hasattr(headers, "get"):
        return PrismMetadata.from_headers(headers)
    if isinstance(obj, Mapping):
        return PrismMetadata.from_headers(obj)
    return None
