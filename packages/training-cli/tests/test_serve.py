"""`training serve`: a real server process answered by a real HTTP client, giving `training predict`'s entities."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TEXTS = [
    "Maria Novak is a data scientist at Spotify in Stockholm.",
    "Email: maria.novak@example.com, phone +1-555-201-7788.",
    "Skills: Python and Kubernetes.",
]


def call(url: str, body: Any = None, raw: bytes | Iterator[bytes] | None = None) -> tuple[int, Any]:
    """(status, JSON) of a GET, or of a POST of `body` as JSON (or of `raw` bytes, sent in chunks from an iterator)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def same_entities(got: list[list[dict]], expected: list[list[dict]]) -> bool:
    """Equal spans, labels and texts; scores equal but for float noise (padding differs from batch to batch)."""
    spans = [[{k: v for k, v in e.items() if k != "score"} for e in entities] for entities in got]
    assert spans == [[{k: v for k, v in e.items() if k != "score"} for e in entities] for entities in expected]
    scores = [e["score"] for entities in got for e in entities]
    return scores == pytest.approx([e["score"] for entities in expected for e in entities], abs=1e-4)


@contextlib.contextmanager
def serving(model: Path, log_file: Path, *options: str) -> Iterator[str]:
    """`training serve MODEL` in its own process; yields its URL once /health answers, stops it afterwards."""
    log = log_file.open("w")
    # Port 0: the server's own free port, read from its log. A port found free here and passed on could be taken
    # before the server bound it, and a call to a port nobody listens on yet can connect to itself.
    process = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "serve", str(model), "--port", "0", *options],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (listening := re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log_file.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log_file.read_text()
            time.sleep(0.2)
        url = listening[1]
        while True:  # with --workers 2 the port is bound first, and listened on once a worker has started
            with contextlib.suppress(OSError):
                if call(f"{url}/health")[0] == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, log_file.read_text()
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tagging_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # fp32, as an exported folder computes (the run's precision, the default, may be bf16 on this CPU)
    options = ("--max-texts", "4", "--precision", "fp32")
    with serving(tagging_run, tmp_path_factory.mktemp("serve") / "server.log", *options) as url:
        yield url


def test_served_entities_are_those_of_training_predict(server: str, tagging_run: Path, cli) -> None:
    predicted = cli("predict", str(tagging_run), *TEXTS, "--json", "--precision", "fp32")
    assert predicted.returncode == 0, predicted.stderr
    expected = [json.loads(line)["entities"] for line in predicted.stdout.splitlines()]
    status, one = call(f"{server}/predict", {"text": TEXTS[0]})
    assert status == 200 and same_entities([one["entities"]], expected[:1])
    status, many = call(f"{server}/predict", {"texts": TEXTS})
    assert status == 200 and same_entities([result["entities"] for result in many["results"]], expected)
    assert all(expected), "the tiny model found no entity in a text: the comparison would be empty"


def test_a_blank_text_has_no_entities_as_with_training_predict(server: str, tagging_run: Path, cli) -> None:
    """It was refused with a 422, where `training predict` and the Python API give no entities."""
    predicted = cli("predict", str(tagging_run), "", " ", "--json", "--precision", "fp32")
    assert predicted.returncode == 0, predicted.stderr
    assert [json.loads(line)["entities"] for line in predicted.stdout.splitlines()] == [[], []]
    assert call(f"{server}/predict", {"text": ""}) == (200, {"entities": []})
    status, many = call(f"{server}/predict", {"texts": [" ", TEXTS[0], "\n"]})
    assert status == 200 and [result["entities"] for result in many["results"]][::2] == [[], []]
    assert many["results"][1]["entities"]  # tagged beside them as ever


def test_health_and_metadata(server: str) -> None:
    assert call(f"{server}/health")[1]["status"] == "ok"
    for path in ("/health", "/metadata"):  # a HEAD check was refused with 405 (/metadata until later)
        with urllib.request.urlopen(urllib.request.Request(server + path, method="HEAD"), timeout=60) as response:
            assert (response.status, response.read()) == (200, b"")
    status, metadata = call(f"{server}/metadata")
    assert status == 200
    assert metadata["backbone"] == "tiny-bert" and metadata["max_length"] == 64
    assert metadata["precision"] == "fp32"  # as --precision asked (the run's may be bf16 here)
    assert {"PERSON", "EMAIL", "COMPANY"} <= set(metadata["labels"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": 5}, 422, "text: Input should be a valid string"),
        ({"texts": []}, 422, "texts: expected at least one text"),
        ({"texts": "one string"}, 422, "texts: Input should be a valid list"),
        ({"text": "a", "texts": ["b"]}, 422, "expected exactly one of 'text' (a string) or 'texts'"),
        ({}, 422, "expected exactly one of 'text' (a string) or 'texts'"),
        ({"txt": "a"}, 422, "txt: Extra inputs are not permitted"),
        ({"texts": ["a"] * 5}, 422, "texts: 5 texts are over the limit of 4 per request"),
        ({"text": "a" * 20_001}, 422, "text: longer than the limit of 20000 characters"),
        ({"texts": ["fine", "Tokyo \ud800"]}, 422, "texts: expected Unicode text; texts [1] hold half a surrogate"),
    ],
)
def test_a_bad_request_is_a_4xx_with_one_line(server: str, body: Any, status: int, message: str) -> None:
    got, answer = call(f"{server}/predict", body)
    assert got == status and message in answer["error"] and "\n" not in answer["error"]


def test_an_unknown_path_or_method_is_answered_in_the_same_shape(server: str) -> None:
    """A 404 or 405 was FastAPI's {"detail": ...}, where every other refusal is {"error": ...}."""
    assert call(f"{server}/predcit", {"text": "a"}) == (404, {"error": "POST /predcit: Not Found"})
    assert call(f"{server}/predict") == (405, {"error": "GET /predict: Method Not Allowed"})


def test_bodies_that_are_not_json_or_too_large_are_refused(server: str) -> None:
    got, answer = call(f"{server}/predict", raw=b"{not json")
    assert got == 422 and "JSON" in answer["error"]
    got, answer = call(f"{server}/predict", raw=b" " * 500_000)  # room for 4 texts of 20000 characters: 484160
    assert got == 413 and "over the limit of 484160 that --max-chars 20000 and --max-texts 4 allow" in answer["error"]
    got, answer = call(f"{server}/predict", raw=b'{"text": "caf\xe9 in Paris"}')  # Latin-1, not UTF-8
    assert got == 422 and answer == {"error": "body: expected JSON in UTF-8; byte 0xe9 at offset 13 is not UTF-8"}
    got, answer = call(f"{server}/predict", raw=iter([b" " * 600_000] * 2))  # chunked: no declared length
    assert got == 413 and answer["error"].startswith("request body of 1200000 bytes is over the limit of 484160")
    got, answer = call(f"{server}/predict", raw=iter([b'{"text": ', json.dumps(TEXTS[0]).encode(), b"}"]))
    assert got == 200 and answer["entities"]


def test_concurrent_requests_are_tagged_in_shared_batches(server: str) -> None:
    before = call(f"{server}/health")[1]["model_calls"]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda i: call(f"{server}/predict", {"text": TEXTS[i % 3]}), range(32)))
    assert [status for status, _ in answers] == [200] * 32
    assert same_entities([a["entities"] for _, a in answers[:3]], [a["entities"] for _, a in answers[3:6]])
    calls = call(f"{server}/health")[1]["model_calls"] - before
    assert 1 <= calls < 32


def test_an_exported_folder_is_served_by_onnxruntime_with_the_same_entities(
    server: str, exported_run: tuple[Path, str], tmp_path: Path
) -> None:
    status, expected = call(f"{server}/predict", {"texts": TEXTS})
    assert status == 200 and all(result["entities"] for result in expected["results"])
    with serving(exported_run[0], tmp_path / "onnx.log") as onnx:
        status, got = call(f"{onnx}/predict", {"texts": TEXTS})
        assert status == 200
        assert same_entities([r["entities"] for r in got["results"]], [r["entities"] for r in expected["results"]])
        metadata = call(f"{onnx}/metadata")[1]
        assert (metadata["runtime"], metadata["backbone"], metadata["max_length"]) == ("onnxruntime", "tiny-bert", 64)
        assert metadata["precision"] == "fp32"
        assert call(f"{onnx}/predict", {"text": ""}) == (200, {"entities": []})  # as the torch model tags it
    assert call(f"{server}/metadata")[1]["runtime"] == "torch"


def test_an_address_it_cannot_listen_on_exits_2_in_one_line(server: str, tagging_run: Path, cli) -> None:
    # uvicorn loaded the model, then logged the bind error and ended the command with its own exit code 3.
    port = int(server.rsplit(":", 1)[1])  # the module's server holds it
    busy = cli("serve", str(tagging_run), "--port", str(port))
    (line,) = busy.stderr.strip().splitlines()
    assert busy.returncode == 2
    assert line.startswith(f"training serve: error: --host 127.0.0.1 --port {port}: cannot listen there: Address")
    unknown = cli("serve", str(tagging_run), "--host", "no-such-host.invalid")
    assert unknown.returncode == 2 and unknown.stderr.startswith("training serve: error: --host no-such-host.invalid")


def test_a_model_the_workers_cannot_load_exits_2_in_one_line(exported_run: tuple[Path, str], tmp_path: Path) -> None:
    """With --workers 2, uvicorn restarted the worker processes failing to load the model for ever, a traceback each."""
    broken = tmp_path / "broken"
    shutil.copytree(exported_run[0], broken)
    (broken / "model.onnx").write_bytes(b"not an ONNX model")
    command = [sys.executable, "-m", "training.cli", "serve", str(broken), "--workers", "2", "--port", "0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        error = process.communicate(timeout=120)[1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    (line,) = error.splitlines()
    assert process.returncode == 2
    assert line.startswith(f"training serve: error: {broken / 'model.onnx'}: not a readable ONNX model")


def test_a_large_call_stops_once_its_client_has_gone(tagging_run: Path, tmp_path: Path) -> None:
    """A request went on being tagged to its end after its client had closed the connection, holding up the large
    requests behind it (64 texts of 20,000 characters: minutes of MiniLM on a CPU)."""
    body = json.dumps({"texts": [" ".join(TEXTS) * 120] * 64}).encode()
    with serving(tagging_run, tmp_path / "server.log") as url:
        head = f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as client:
            client.sendall(head.encode() + b"\r\n" + body)
            while call(f"{url}/health")[1]["model_calls"] == 0:  # closed once its tagging has begun
                time.sleep(0.05)
        deadline = time.monotonic() + 60
        while (health := call(f"{url}/health")[1])["abandoned_requests"] == 0:
            assert time.monotonic() < deadline, "the server never saw the client go"
            time.sleep(0.1)
        status, answer = call(f"{url}/predict", {"text": " ".join(TEXTS) * 40})  # large too: the same lane
        assert status == 200 and answer["entities"]
        assert health["model_calls"] < 64 and call(f"{url}/health")[1]["model_calls"] <= health["model_calls"] + 2


def test_the_process_watching_the_workers_holds_no_model(tagging_run: Path, tmp_path: Path) -> None:
    """With --workers 2 the process starting the workers loaded the model to check it and kept torch and the model's
    memory: 403 MiB beside each worker's 403 MiB for tiny BERT, where it needs 62."""
    psutil = pytest.importorskip("psutil")
    with serving(tagging_run, tmp_path / "server.log", "--workers", "2") as url:
        assert call(f"{url}/predict", {"text": TEXTS[0]})[0] == 200
        (parent,) = [child for child in psutil.Process().children() if "--workers" in child.cmdline()]
        worker = max(child.memory_info().rss for child in parent.children(recursive=True))
        assert parent.memory_info().rss * 2 < worker


def test_more_workers_than_the_machine_holds_exit_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn started every one of `--workers 100000000000000000000` processes. The model is missing: were the check
    gone, the command would stop at it, before any process starts."""
    from training.cli.main import main
    from training.common.cores import PROCESSES_PER_CORE, usable_cores

    most = usable_cores() * PROCESSES_PER_CORE
    assert main(["serve", str(tmp_path / "missing"), "--workers", str(most + 1)]) == 2
    assert capsys.readouterr().err == (
        f"training serve: error: --workers {most + 1}: {most + 1} processes at once; expected at most {most} on this "
        f"machine ({PROCESSES_PER_CORE} for each of its {usable_cores()} CPU cores)\n"
    )
