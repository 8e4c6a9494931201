"""The HTTP service of a trained model (FastAPI): `POST /predict`, `GET /health`, `GET /metadata`.

Concurrent requests are tagged together, `batch_size` texts per model call in a worker thread (the event loop never
blocks). A user's mistake is a 4xx with one line saying what was expected; only the service's own fault is a 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, field_validator, model_validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from data.formats import HALF_SURROGATE
from training.config.schema import PrecisionChoice
from training.config.validation import read_record

# The uvicorn factory of each worker process reads the settings from the file this variable names (uvicorn starts
# workers from an import string and passes them nothing else).
SETTINGS_VARIABLE = "TRAINING_SERVE_SETTINGS"
Tagger = Callable[[list[str]], list[list[Any]]]
# A request of more characters is tagged beside the others, not before them: one model call tags a request whole, and
# 4,000 characters take MiniLM about half a second on a CPU core (measured: 1.4 s for 10,000, windows of 128 tokens).
LARGE_CHARS = 4_000
_EXPECTED_BODY = "exactly one of 'text' (a string) or 'texts' (a list of strings)"
_JSON_KINDS = {  # a JSON value that is not an object, as its refusal names it
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
}


class ServeSettings(BaseModel):
    """What `training serve` starts: the model (a model folder for torch, an exported one for onnxruntime) and the
    service's limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: str
    quantized: bool = Field(default=False, description="an exported folder's int8 model")
    precision: PrecisionChoice | None = Field(default=None, description="torch's; None: the run's")
    batch_size: int = Field(default=16, ge=1, description="texts tagged in one model call, across requests")
    max_texts: int = Field(default=64, ge=1, description="texts in one request")
    max_chars: int = Field(default=20_000, ge=1, description="characters in one text")
    max_wait_ms: float = Field(default=5.0, ge=0.0, description="how long a batch waits for more requests")

    @property
    def max_body_bytes(self) -> int:
        """Room for `max_texts` texts of `max_chars` characters, so that those limits decide, not this one: 6 bytes a
        character, the `\\uXXXX` escape JSON encoders (Python's by default) write for any non-ASCII character of the
        Basic Multilingual Plane (raw UTF-8 takes at most 4: only a text of escaped astral characters, 12 bytes each,
        can meet this limit first), 16 bytes a text for quotes, comma and indentation, 4 KiB for the rest."""
        return self.max_texts * (6 * self.max_chars + 16) + 4096


class PredictRequest(BaseModel):
    """`{"text": "..."}` for one text, or `{"texts": ["...", ...]}` for several."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = None
    texts: list[str] | None = None

    @field_validator("texts", mode="wrap")
    @classmethod
    def _first_error_only(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Up to its first non-text: a body of millions of numbers made an error each (two minutes of the event loop
        spent on one request), where the first says what is wrong."""
        if isinstance(value, list):
            value = value[: next((index + 1 for index, text in enumerate(value) if not isinstance(text, str)), None)]
        return handler(value)

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError(f"expected {_EXPECTED_BODY}")
        return self

    @property
    def all_texts(self) -> list[str]:
        """The request's texts, one or several."""
        return [self.text] if self.text is not None else list(self.texts or ())

    def refusal(self, max_texts: int, max_chars: int) -> str | None:
        """Why the texts cannot be tagged, named as the client sent them (one `text`, or positions in `texts`); None if
        they can. The count comes first: a body may hold a million texts (0.6 s to look at each). Half a surrogate pair,
        which JSON may escape (`"\\ud800"`), would fail the model call of the whole batch, other requests' included. A
        blank text is tagged (no entities), as `training predict` and the Python API tag it."""
        one, texts = self.text is not None, self.all_texts
        if not texts:
            return "texts: expected at least one text"
        if len(texts) > max_texts:
            return f"texts: {len(texts)} texts are over the limit of {max_texts} per request"
        if long := [index for index, text in enumerate(texts) if len(text) > max_chars]:
            return f"{'text' if one else f'texts {long[:5]}'}: longer than the limit of {max_chars} characters"
        if broken := [index for index, text in enumerate(texts) if HALF_SURROGATE.search(text)]:
            held = "it holds" if one else f"texts {broken[:5]} hold"
            return f"{'text' if one else 'texts'}: expected Unicode text; {held} half a surrogate pair"
        return None


@dataclass
class _Waiting:
    texts: list[str]
    done: asyncio.Future[list[list[Any]]]


class Batcher:
    """Tags the texts of concurrent requests together, up to `batch_size` texts per model call. Requests of over
    `LARGE_CHARS` characters queue in a lane of their own, tagged beside the others: they hold up none of them."""

    def __init__(self, tag: Tagger, batch_size: int, max_wait_s: float) -> None:
        self._tag = tag
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._queues: tuple[asyncio.Queue[_Waiting], ...] = (asyncio.Queue(), asyncio.Queue())  # ordinary, large
        self._tasks: list[asyncio.Task[None]] = []
        self.calls = 0  # model calls made, for /health and the tests of batching
        self.abandoned = 0  # requests whose client left before the answer

    async def __call__(self, texts: list[str], gone: Callable[[], Awaitable[bool]]) -> list[list[Any]] | None:
        """The entities of `texts`; None, with their work stopped at the next model call, once `gone()` says the client
        left."""
        if not self._tasks:
            lanes = zip(self._queues, (None, LARGE_CHARS), strict=True)  # a call: small requests whole, large in parts
            self._tasks = [asyncio.create_task(self._run(queue, chars)) for queue, chars in lanes]
        waiting = _Waiting(texts, asyncio.get_running_loop().create_future())
        await self._queues[sum(map(len, texts)) > LARGE_CHARS].put(waiting)
        try:
            while not (await asyncio.wait({waiting.done}, timeout=0.1))[0]:
                if await gone():
                    self.abandoned += 1
                    return None
            return waiting.done.result()
        finally:
            waiting.done.cancel()  # once answered, nothing; otherwise its lane tags no more of it

    async def _run(self, queue: asyncio.Queue[_Waiting], max_chars: int | None) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self._max_wait_s
            while sum(len(w.texts) for w in batch) < self._batch_size:
                try:
                    batch.append(await asyncio.wait_for(queue.get(), max(0.0, deadline - loop.time())))
                except asyncio.TimeoutError:  # not yet the built-in TimeoutError on Python 3.10
                    break
            batch = [waiting for waiting in batch if not waiting.done.done()]  # those whose client left are skipped
            texts, results = [text for waiting in batch for text in waiting.texts], []
            try:  # a call at a time, while anyone waits for the batch: the work of clients gone stops at the next call
                while len(results) < len(texts) and not all(waiting.done.done() for waiting in batch):
                    call = _call_texts(texts[len(results) :], self._batch_size, max_chars)
                    results += await loop.run_in_executor(None, self._tag, call)
                    self.calls += 1
            except Exception as error:  # the service's fault: every waiting request gets a 500
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(error)
                continue
            start = 0
            for waiting in batch:  # a request cancelled meanwhile has a done future: setting it would end this loop
                if not waiting.done.done():
                    waiting.done.set_result(results[start : start + len(waiting.texts)])
                start += len(waiting.texts)


def _call_texts(texts: list[str], batch_size: int, max_chars: int | None) -> list[str]:
    """The first texts of one model call: up to `batch_size`, and up to `max_chars` characters but for a single text
    (`LARGE_CHARS`, a call of 0.5 s on a CPU core: a large request is many calls, each a point where its work can
    stop)."""
    count, chars = 1, len(texts[0])
    while count < min(batch_size, len(texts)) and (max_chars is None or chars + len(texts[count]) <= max_chars):
        chars, count = chars + len(texts[count]), count + 1
    return texts[:count]


def create_app(tag: Tagger, metadata: dict[str, Any], settings: ServeSettings) -> FastAPI:
    """The service around `tag` (texts -> entities per text), with `metadata` served as it is."""
    app = FastAPI(title="training: named-entity recognition", version=str(metadata.get("version", "")))
    batcher = Batcher(tag, settings.batch_size, settings.max_wait_ms / 1000)

    flags = f"--max-chars {settings.max_chars} and --max-texts {settings.max_texts}"
    app.add_middleware(_CheckedBody, limit=settings.max_body_bytes, flags=flags)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI reads a body as JSON only when its Content-Type says so (with none, only before 0.132: a browser
        # sends such a body to any site unasked), and would otherwise report JSON it never read as "not a
        # dictionary"; the body it did not read is left as bytes
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        first = error.errors()[0]
        if not media and isinstance(first.get("input"), bytes):
            return _error(415, "body: expected Content-Type application/json; the request has no Content-Type")
        if media and media != "application/json" and not media.endswith("+json"):
            return _error(415, f"body: expected Content-Type application/json, not {media}")
        if first["type"] == "missing" and tuple(first["loc"]) == ("body",):  # FastAPI reads an empty body as none
            return _error(422, f"body: expected {_EXPECTED_BODY}; the request has no body")
        if first["type"] == "model_attributes_type" and tuple(first["loc"]) == ("body",):  # JSON, not an object
            kind = _JSON_KINDS.get(type(first["input"]), "not an object")
            return _error(422, f"body: expected a JSON object with {_EXPECTED_BODY}; it is {kind}")
        if first["type"] == "string_unicode":  # pydantic takes half a surrogate pair in a value (refused later), no key
            return _error(422, "body: expected Unicode text; a key holds half a surrogate pair")
        if first["type"] == "json_invalid":  # its location ends with the character the parser stopped at, not a field
            reason = first["ctx"]["error"].removesuffix(" at")  # json's "Invalid control character at" read "at at"
            return _error(422, f"body: expected JSON; {reason} at character {first['loc'][-1]}")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return _error(422, f"{where}: {message}")

    @app.exception_handler(HTTPException)
    async def _unknown(request: Request, error: HTTPException) -> JSONResponse:  # 404, 405 (with its Allow header)
        # FastAPI answers JSON like [[[[... deeper than json can read with a vague 400 of its own
        if isinstance(error.__cause__, RecursionError):
            return _error(400, "body: expected JSON nested less deep; it is too deep for the JSON parser to read")
        if isinstance(error.__cause__, ValueError) and "integer string conversion" in str(error.__cause__):
            limit = sys.get_int_max_str_digits()  # Python's guard against quadratic parsing; JSON has no such limit
            return _error(400, f"body: expected numbers of at most {limit} digits; it holds a longer one")
        content = {"error": f"{request.method} {request.url.path}: {error.detail}"}
        return JSONResponse(status_code=error.status_code, content=content, headers=error.headers)

    # Load balancers and uptime monitors check with HEAD as often as with GET (the server sends no body to a HEAD);
    # one route of both methods would be two operations of one id in the OpenAPI schema
    @app.get("/health")
    @app.head("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model_calls": batcher.calls, "abandoned_requests": batcher.abandoned}

    @app.get("/metadata")
    @app.head("/metadata", include_in_schema=False)
    async def get_metadata() -> dict[str, Any]:
        return metadata

    @app.post("/predict")
    async def predict(body: PredictRequest, request: Request) -> Any:
        if refusal := body.refusal(settings.max_texts, settings.max_chars):
            return _error(422, refusal)
        found = await batcher(body.all_texts, request.is_disconnected)
        if found is None:
            return Response(status_code=499)  # nobody reads it: the status nginx logs for a client gone
        results = [{"entities": [asdict(entity) for entity in entities]} for entities in found]
        return results[0] if body.text is not None else {"results": results}

    return app


class _CheckedBody:
    """Reads a request's body before the app, through ASGI's public `receive`, and hands the app the same body.

    Counted as it arrives (a chunked body declares no length), never held past the limit, and read to its end even
    when too large: a client still sending it would otherwise meet a broken pipe instead of the answer.
    """

    def __init__(self, app: ASGIApp, limit: int, flags: str) -> None:
        self.app: ASGIApp = app
        self.limit = limit
        self.flags = flags  # the settings the limit is made from, named in its refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size, kept, message = 0, [], {"more_body": True}
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            size += len(message.get("body", b""))
            if size <= self.limit:
                kept.append(message.get("body", b""))
        body, app = b"".join(kept), self.app
        coding = dict(scope["headers"]).get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if size > self.limit:
            app = _error(413, f"request body of {size} bytes is over the limit of {self.limit} that {self.flags} allow")
        elif coding != "identity":  # nothing here decompresses: its bytes would be refused as JSON not in UTF-8
            app = _error(415, f"body: expected JSON sent uncompressed; the request has Content-Encoding {coding}")
        else:
            try:
                body.decode()  # JSON between systems is UTF-8 (RFC 8259); FastAPI would answer a vague 400 of its own
                json.loads(body, object_pairs_hook=_unique_keys)  # FastAPI's parser keeps the last silently
            except UnicodeDecodeError as error:
                where = f"byte 0x{body[error.start]:02x} at offset {error.start}"
                app = _error(422, f"body: expected JSON in UTF-8; {where} is not UTF-8")
            except _DuplicateKey as error:
                app = _error(422, f"body: key {error.args[0]!r} is given twice in one object; expected each key once")
            except (ValueError, RecursionError):
                pass  # not JSON: refused as FastAPI reads it, by the answer of its Content-Type
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await app(scope, replay, send)


class _DuplicateKey(ValueError):
    """A JSON object holds a key twice: which value was meant is not known."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, each key once (else `_DuplicateKey`)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


def model_metadata(folder: Path, labels: Sequence[str], *, precision: str, quantized: bool = False) -> dict[str, Any]:
    """Labels, backbone, runtime (and whether it runs an export's int8 model), the precision it computes in and a
    lineage summary of the model served from `folder` (an exported folder's own lineage, a model folder's what its run
    folder records)."""
    from training.cli._version import __version__
    from training.core.exported import is_exported, read_export
    from training.core.run_folder import RunFolder

    exported = is_exported(folder)
    metadata: dict[str, Any] = {
        "version": __version__,
        "runtime": "onnxruntime" if exported else "torch",
        "quantized": quantized,
        "precision": precision,  # what the served model computes in
        "labels": sorted({tag[2:] for tag in labels if tag != "O"}),
    }
    # An export carries its run's backbone, window and lineage: its source may have been moved, deleted or trained
    # again since.
    if exported:
        record = read_export(folder)
        window = {"backbone": record.backbone, "max_length": record.max_length}
        metadata |= {key: value for key, value in window.items() if value is not None}  # exported without a run config
    elif (config := RunFolder.of_model(folder).read_config()) is not None:
        metadata |= {"backbone": config.model.backbone, "max_length": config.model.max_length}
    home = folder if exported else RunFolder.of_model(folder).root  # `.` (said inside it) too
    if (home / "lineage.json").is_file():
        from training.execution import Lineage

        metadata["lineage"] = Lineage.load(home).summary()
    return metadata


def app_from_settings() -> FastAPI:
    """The app of one worker process: loads the model named by the settings file (uvicorn's factory)."""
    settings = read_record(ServeSettings, os.environ[SETTINGS_VARIABLE], "serve settings file")
    from training.cli.run_paths import load_predictor

    folder = Path(settings.model_dir)  # a `predictor_folder`, as `training serve` checked it
    predictor = load_predictor(folder, settings.batch_size, quantized=settings.quantized, precision=settings.precision)
    metadata = model_metadata(folder, predictor.tag_names, quantized=settings.quantized, precision=predictor.precision)
    return create_app(predictor, metadata, settings)


def check_model() -> None:
    """Loads the model of the settings file, for a process that only checks it loads (the app is not picklable)."""
    app_from_settings()
