"""`create_run_context`: one process by default, a clear ConfigError for every broken launch, DDP under torchrun."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from training.common.errors import ConfigError
from training.execution import create_run_context

TORCHRUN_ENV = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29555"}


def test_without_torchrun_variables_it_is_one_cpu_process() -> None:
    with create_run_context({"device": "cpu"}, environ={}) as ctx:
        assert (ctx.rank, ctx.world_size, ctx.local_rank) == (0, 1, 0)
        assert ctx.is_main and not ctx.is_distributed and ctx.device == torch.device("cpu")
        ctx.barrier()
        assert ctx.all_gather_object({"a": 1}) == [{"a": 1}]
        assert ctx.all_reduce_sum([1.5, 2.0]) == [1.5, 2.0]
        assert ctx.broadcast_object("x") == "x"


def test_world_size_one_is_one_process() -> None:
    ctx = create_run_context({"device": "cpu"}, environ={"WORLD_SIZE": "1", "RANK": "0"})
    assert not ctx.is_distributed and ctx.backend is None


@pytest.mark.parametrize(
    ("environ", "settings", "message"),
    [
        ({"WORLD_SIZE": "2"}, {}, "WORLD_SIZE=2 is set but RANK is not; launch with torchrun"),
        ({**TORCHRUN_ENV, "RANK": "2"}, {}, "RANK=2 is outside the world of WORLD_SIZE=2 processes"),
        ({**TORCHRUN_ENV, "RANK": "-1"}, {}, "RANK=-1 is outside the world of WORLD_SIZE=2 processes"),
        ({"WORLD_SIZE": "two"}, {}, "environment variable WORLD_SIZE='two' must be an integer"),
        ({**TORCHRUN_ENV, "LOCAL_RANK": "0.5"}, {}, "environment variable LOCAL_RANK='0.5' must be an integer"),
        ({k: v for k, v in TORCHRUN_ENV.items() if k != "MASTER_PORT"}, {}, "MASTER_PORT is not set"),
        (TORCHRUN_ENV, {"backend": "nccl", "device": "cpu"}, "backend 'nccl' needs CUDA GPUs and none is available"),
        (TORCHRUN_ENV, {"backend": "mpi"}, "distributed_config: backend: expected 'gloo' or 'nccl', got 'mpi'"),
        # each was accepted for one process ("gpu": trained on the CPU on a GPU machine), or a ValueError deep inside
        ({}, {"device": "gpu"}, "distributed_config: device: expected 'cpu' or 'cuda', got 'gpu'"),
        ({}, {"devcie": "cuda"}, "distributed_config: devcie: unknown key; did you mean 'device'?"),
        ({}, {"timeout_s": 0}, "distributed_config: timeout_s: expected greater than 0, got 0"),
        ({}, {"timeout_s": float("inf")}, "distributed_config: timeout_s: expected less than or equal to 604800"),
        ({}, {"device": "cuda"}, "device 'cuda' requested but no CUDA GPU is available"),
    ],
)
def test_a_misconfigured_launch_is_a_config_error(environ: dict, settings: dict, message: str) -> None:
    if torch.cuda.is_available() and ("nccl" in message or "cuda" in message):
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        create_run_context({"device": "cpu", **settings}, environ=environ)


@pytest.mark.parametrize(("given", "got"), [("gloo", "str 'gloo'"), (5, "int 5")])
def test_distributed_settings_other_than_a_mapping_are_a_config_error(given: object, got: str) -> None:
    expected = f"distributed_config: expected a mapping such as {{'backend': 'gloo'}}, got {got}"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        create_run_context(given, environ={})  # type: ignore[arg-type]


@pytest.mark.slow
def test_under_torchrun_each_rank_joins_a_gloo_group_that_closes_on_exit(tmp_path: Path) -> None:
    script = tmp_path / "ranks.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            import torch.distributed as dist
            from training.execution import create_run_context

            with create_run_context() as ctx:
                inside = dist.is_initialized()
                ranks = ctx.all_gather_object(ctx.rank)
                total = ctx.all_reduce_sum([float(ctx.rank + 1)])
                shared = ctx.broadcast_object("from-0" if ctx.is_main else None)
                ctx.barrier()
                record = [ctx.rank, ctx.world_size, ctx.backend, inside, ranks, total, shared]
            record.append(dist.is_initialized())
            with open(sys.argv[1] + f"/rank{record[0]}.json", "w") as handle:  # ranks share stdout: one file each
                handle.write("RESULT " + json.dumps(record))
            ctx.close()  # closing twice is harmless
            """
        )
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tmp_path),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = sorted((tmp_path / f"rank{rank}.json").read_text() for rank in (0, 1))
    assert results == [
        'RESULT [0, 2, "gloo", true, [0, 1], [3.0], "from-0", false]',
        'RESULT [1, 2, "gloo", true, [0, 1], [3.0], "from-0", false]',
    ]
