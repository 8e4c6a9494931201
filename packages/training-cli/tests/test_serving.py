"""The service's body check, driven in-process through the ASGI interface a server uses (no model: texts get no
entities)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

pytest.importorskip("fastapi")

from training.cli.serving import LARGE_CHARS, Batcher, PredictRequest, ServeSettings, create_app, model_metadata


def post(
    *messages: dict[str, Any],
    content_type: bytes | None = b"application/json",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    **settings: Any,
) -> list[dict[str, Any]]:
    """What the app of `settings` sends back for a `POST /predict` of `content_type` (None: no such header) and other
    `headers` whose client sends `messages` (then waits for the answer)."""
    incoming, sent = list(messages), []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)  # a client waiting for the answer sends nothing more
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http"}
    scope |= {"path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": ""}
    scope["headers"] = [*headers, *([] if content_type is None else [(b"content-type", content_type)])]
    app = create_app(lambda texts: [[] for _ in texts], {"version": "0"}, ServeSettings(model_dir="-", **settings))
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    return sent


async def _here() -> bool:
    """A client still waiting for its answer."""
    return False


def answer(sent: list[dict[str, Any]]) -> tuple[int, Any]:
    return sent[0]["status"], json.loads(b"".join(message.get("body", b"") for message in sent[1:]))


def chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]


def test_a_body_read_in_chunks_reaches_the_endpoint_whole() -> None:
    assert answer(post(*chunks(b'{"text":', b' "Oslo"}'))) == (200, {"entities": []})


@pytest.mark.parametrize("body", [{"text": ""}, {"texts": ["Oslo", " \n"]}])
def test_a_blank_text_is_tagged_not_refused(body: dict[str, Any]) -> None:
    """It was a 422, where `training predict` and the Python API give a blank text no entities."""
    status, _ = answer(post(*chunks(json.dumps(body).encode())))
    assert status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "a" * 20_001}, "text: longer than the limit of 20000 characters"),  # it said texts [0]
        ({"texts": ["fine", "a" * 20_001]}, "texts [1]: longer than the limit of 20000 characters"),
        ({"text": "Tokyo \ud800"}, "text: expected Unicode text; it holds half a surrogate pair"),  # said texts [0]
    ],
)
def test_an_over_long_text_is_named_as_the_request_sent_it(body: dict[str, Any], message: str) -> None:
    assert answer(post(*chunks(json.dumps(body).encode()))) == (422, {"error": message})


def test_the_body_limit_makes_room_for_the_texts_the_other_limits_allow() -> None:
    """The limit was 1 MB whatever --max-chars said: a text of 1.5 M characters under --max-chars 1500000 was refused
    for its body, naming no flag. Texts are measured as JSON encoders write them: non-ASCII as 6-byte escapes."""
    body = json.dumps({"texts": ["é" * 200_000, "a" * 1_500_000]}).encode()
    assert answer(post(*chunks(body), max_chars=1_500_000, max_texts=2)) == (200, {"results": [{"entities": []}] * 2})
    assert answer(post(*chunks(b" " * 2100, b" " * 2100), max_chars=1, max_texts=1)) == (
        413,
        {"error": "request body of 4200 bytes is over the limit of 4118 that --max-chars 1 and --max-texts 1 allow"},
    )


def test_the_count_of_texts_is_checked_before_each_text_is() -> None:
    """Each text was looked at (blank, half a surrogate pair) before the count: a body of 1.5 million one-letter texts,
    within the body limit, held the event loop for 0.6 s before its refusal for the count."""
    assert answer(post(*chunks(json.dumps({"texts": [" "] * 65}).encode()))) == (
        422,
        {"error": "texts: 65 texts are over the limit of 64 per request"},
    )


def test_a_list_of_numbers_is_refused_at_its_first() -> None:
    """Each of a million numbers was an error of its own: a 7 MB body held the event loop for two minutes."""
    with pytest.raises(ValidationError) as raised:
        PredictRequest.model_validate({"texts": ["a", *[1] * 1000]})
    assert raised.value.error_count() == 1
    got = answer(post(*chunks(json.dumps({"texts": ["a", 1, 2]}).encode())))
    assert got == (422, {"error": "texts.1: Input should be a valid string"})


def test_a_body_not_utf8_is_refused() -> None:
    assert answer(post(*chunks(b'{"text": "caf\xe9"}'))) == (
        422,
        {"error": "body: expected JSON in UTF-8; byte 0xe9 at offset 13 is not UTF-8"},
    )


def test_a_body_with_a_key_given_twice_is_refused() -> None:
    """The last value was taken without a word: `{"text": "Oslo", "text": ""}` tagged the empty text."""
    error = "body: key 'text' is given twice in one object; expected each key once"
    assert answer(post(*chunks(b'{"text": "Oslo", "text": ""}'))) == (422, {"error": error})
    assert answer(post(*chunks(b'{"texts": ["a"], "options": {"x": 1, "x": 2}}')))[0] == 422
    assert answer(post(*chunks(b'{"texts": [{"a": 1}, {"a": 2}]}')))[1] != {"error": error}  # a key in two objects


def test_a_client_gone_before_its_body_ended_gets_nothing_and_raises_nothing() -> None:
    assert post(*chunks(b'{"text":', b"")[:1], {"type": "http.disconnect"}) == []


def test_a_body_of_another_content_type_is_refused_for_its_type() -> None:
    """JSON sent as text/plain was answered 'body: Input should be a valid dictionary', which it is."""
    body = chunks(b'{"text": "Oslo"}')
    assert answer(post(*body, content_type=b"text/plain; charset=utf-8")) == (
        415,
        {"error": "body: expected Content-Type application/json, not text/plain"},
    )
    assert answer(post(*body, content_type=b"application/vnd.api+json")) == (200, {"entities": []})


def test_a_compressed_body_is_refused_for_its_content_encoding() -> None:
    """A gzip body was refused as 'body: expected JSON in UTF-8; byte 0x8b at offset 1 is not UTF-8'."""
    body = chunks(gzip.compress(b'{"text": "Oslo"}'))
    assert answer(post(*body, headers=((b"content-encoding", b"gzip"),))) == (
        415,
        {"error": "body: expected JSON sent uncompressed; the request has Content-Encoding gzip"},
    )
    assert answer(post(*chunks(b'{"text": "Oslo"}'), headers=((b"content-encoding", b"identity"),)))[0] == 200


def test_a_body_without_content_type_is_refused_for_lacking_one() -> None:
    """FastAPI reads no JSON from such a body (a browser sends one to any site unasked); the answer was 'body: Input
    should be a valid dictionary', of a valid JSON object."""
    assert answer(post(*chunks(b'{"text": "Oslo"}'), content_type=None)) == (
        415,
        {"error": "body: expected Content-Type application/json; the request has no Content-Type"},
    )


def test_an_empty_body_is_refused_saying_what_the_body_must_hold() -> None:
    """It was 'body: Field required', naming no field."""
    expected = "body: expected exactly one of 'text' (a string) or 'texts' (a list of strings); the request has no body"
    assert answer(post(*chunks(b""))) == (422, {"error": expected})
    assert answer(post(*chunks(b""), content_type=None)) == (422, {"error": expected})


@pytest.mark.parametrize(("body", "kind"), [(b'["Oslo"]', "an array"), (b'"Oslo"', "a string"), (b"null", "null")])
def test_json_that_is_not_an_object_is_refused_saying_what_it_is(body: bytes, kind: str) -> None:
    """It was 'body: Input should be a valid dictionary or object to extract fields from', in Python's words."""
    expected = "body: expected a JSON object with exactly one of 'text' (a string) or 'texts' (a list of strings)"
    assert answer(post(*chunks(body))) == (422, {"error": f"{expected}; it is {kind}"})


def test_a_body_that_is_not_json_is_named_with_where_parsing_stopped() -> None:
    """It was '13: JSON decode error', as if 13 were a field of the request."""
    assert answer(post(*chunks(b'{"text": "a",}'))) == (
        422,
        {"error": "body: expected JSON; Expecting property name enclosed in double quotes at character 13"},
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"text": "a\x01b"}', "Invalid control character at character 11"),
        (b'{"text": "ab', "Unterminated string starting at character 9"),
    ],
)
def test_a_json_error_that_ends_in_at_names_its_character_once(body: bytes, reason: str) -> None:
    """A raw control character in a string was 'Invalid control character at at character 11'."""
    assert answer(post(*chunks(body))) == (422, {"error": f"body: expected JSON; {reason}"})


def test_a_key_with_half_a_surrogate_pair_is_named_as_such() -> None:
    """It was 'body: Input should be a valid string, unable to parse raw data as a unicode string'."""
    assert answer(post(*chunks(b'{"te\\ud800xt": "Oslo"}'))) == (
        422,
        {"error": "body: expected Unicode text; a key holds half a surrogate pair"},
    )


def test_json_nested_too_deep_to_parse_is_refused_naming_the_body() -> None:
    """It was FastAPI's 400 'POST /predict: There was an error parsing the body', naming nothing."""
    assert answer(post(*chunks(b"[" * 100_000))) == (
        400,
        {"error": "body: expected JSON nested less deep; it is too deep for the JSON parser to read"},
    )


def test_a_number_too_long_to_parse_is_refused_naming_the_limit() -> None:
    """It was FastAPI's 400 'POST /predict: There was an error parsing the body': Python reads no integer of over
    4300 digits."""
    assert answer(post(*chunks(b'{"texts": ["a", ' + b"1" * 5000 + b"]}"))) == (
        400,
        {"error": "body: expected numbers of at most 4300 digits; it holds a longer one"},
    )


def test_the_openapi_schema_has_one_operation_per_route_and_method() -> None:
    """Serving HEAD beside GET on one route warned 'Duplicate Operation ID health_health_get' at each schema request."""
    app = create_app(lambda texts: [[] for _ in texts], {"version": "0"}, ServeSettings(model_dir="-"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = app.openapi()["paths"]
    assert {path: sorted(operations) for path, operations in paths.items()} == {
        "/health": ["get"],
        "/metadata": ["get"],
        "/predict": ["post"],
    }


@pytest.mark.parametrize("fails", [False, True])
def test_a_request_cancelled_while_its_batch_is_tagged_does_not_stop_the_batcher(fails: bool) -> None:
    """Answering a cancelled request's future raised InvalidStateError, which ended the batcher's loop: every later
    request waited for ever."""

    def tag(texts: list[str]) -> list[list[Any]]:
        time.sleep(0.2)
        if fails and texts == ["first"]:
            raise RuntimeError("the model failed")
        return [[text] for text in texts]

    async def scenario() -> list[list[Any]]:
        batcher = Batcher(tag, batch_size=8, max_wait_s=0.0)
        first = asyncio.create_task(batcher(["first"], _here))
        await asyncio.sleep(0.05)  # the batch with "first" is being tagged
        first.cancel()
        return await asyncio.wait_for(batcher(["second"], _here), 5)

    assert asyncio.run(scenario()) == [["second"]]


def test_a_large_request_holds_up_no_ordinary_one() -> None:
    """One model call tags a request whole, and requests were tagged one batch after another: a request of 0.86 MB of
    text held up every request behind it for 38 s."""

    def tag(texts: list[str]) -> list[list[Any]]:
        time.sleep(2.0 if sum(map(len, texts)) > LARGE_CHARS else 0.01)
        return [[len(text)] for text in texts]

    async def scenario() -> tuple[bool, list[list[Any]], list[list[Any]]]:
        batcher = Batcher(tag, batch_size=8, max_wait_s=0.0)
        large = asyncio.create_task(batcher(["a" * (LARGE_CHARS + 1)], _here))
        await asyncio.sleep(0.1)  # the large request is being tagged
        small = await asyncio.wait_for(batcher(["small"], _here), 1.5)
        return large.done(), small, await large

    assert asyncio.run(scenario()) == (False, [[5]], [[LARGE_CHARS + 1]])


def test_ordinary_requests_waiting_together_are_tagged_in_one_model_call() -> None:
    """The limit of characters per call, meant for large requests, split ordinary ones too: 16 requests of 1,000
    characters took 4 model calls instead of one."""

    def tag(texts: list[str]) -> list[list[Any]]:
        return [[len(text)] for text in texts]

    async def scenario() -> tuple[list[list[list[Any]]], int]:
        batcher = Batcher(tag, batch_size=16, max_wait_s=1.0)
        answers = await asyncio.gather(*(batcher(["a" * 1_000], _here) for _ in range(16)))
        return answers, batcher.calls

    assert asyncio.run(scenario()) == ([[[1_000]]] * 16, 1)


def test_the_work_of_a_client_gone_stops_at_the_next_model_call() -> None:
    """A request was tagged whole in one model call, and to its end once its client had left: 64 texts of 20,000
    characters held the lane of large requests for minutes after nobody waited for them."""
    tagged: list[int] = []

    def tag(texts: list[str]) -> list[list[Any]]:
        time.sleep(0.05)
        tagged.append(len(texts))
        return [[len(text)] for text in texts]

    async def scenario() -> tuple[list[list[Any]] | None, list[list[Any]] | None, int]:
        batcher = Batcher(tag, batch_size=16, max_wait_s=0.0)
        started = asyncio.get_running_loop().time()

        async def gone() -> bool:
            return asyncio.get_running_loop().time() - started > 0.3

        cut = await asyncio.wait_for(batcher(["a" * LARGE_CHARS] * 64, gone), 5)
        await asyncio.sleep(0.2)  # the lane, at its next call, sees nobody waits
        return cut, await asyncio.wait_for(batcher(["b" * (LARGE_CHARS + 1)], _here), 1), batcher.abandoned

    cut, next_one, abandoned = asyncio.run(scenario())
    assert (cut, next_one, abandoned) == (None, [[LARGE_CHARS + 1]], 1)
    assert tagged[0] == 1 and 3 <= len(tagged) <= 12 and tagged[-1] == 1  # a text a call; the cut one's stopped early


def test_a_model_served_from_inside_its_folder_carries_its_run_s_lineage(trained_run: Path, monkeypatch) -> None:
    """`training serve .` inside a run's model/ folder left the run's lineage out of its metadata: `.` is its own
    parent, so the run folder was looked for inside the model folder."""
    monkeypatch.chdir(trained_run / "model")
    served = model_metadata(Path("."), ("O",), precision="fp32")
    assert served["lineage"] == model_metadata(trained_run / "model", ("O",), precision="fp32")["lineage"]
