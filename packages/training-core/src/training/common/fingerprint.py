"""The one content fingerprint of the toolkit: sha256 over canonical JSON."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal content gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def fingerprint(value: Any) -> str:
    """A stable hex digest of JSON-serialisable content (dict key order does not matter)."""
    return fingerprint_items([value])


def fingerprint_items(items: Iterable[Any]) -> str:
    """Digest a stream of JSON-serialisable items without holding them all in memory."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(canonical_json(item).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
