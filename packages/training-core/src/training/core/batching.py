"""Batch order: length-grouped (little padding), seeded per epoch, and sharded across ranks; and how a batch's
windows pack into rows of a fixed token capacity."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from training.common.errors import ConfigError

MEGABATCH_FACTOR = 50


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    group_by_length: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """This rank's batches of example indices for `epoch`, the same on every run with the same seed: length-grouped
    in shuffled megabatches (as Hugging Face's sampler), shuffled, and dealt round-robin to ranks, each as many."""
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    if group_by_length:
        size = batch_size * MEGABATCH_FACTOR
        for start in range(0, len(order), size):
            mega = sorted(order[start : start + size], key=lambda i: -lengths[i])
            batches.extend(mega[i : i + batch_size] for i in range(0, len(mega), batch_size))
        rng.shuffle(batches)
    else:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if world_size > 1:
        if len(lengths) < world_size:  # no batch size helps: one window a batch is still too few
            raise ConfigError(
                f"{len(lengths)} training windows cannot feed {world_size} processes a batch each; train with at most "
                f"{len(lengths)} processes (nproc_per_node), or on more data"
            )
        if len(batches) < world_size:
            raise ConfigError(
                f"training.batch_size: {len(batches)} batches of {batch_size} cannot feed {world_size} processes; set "
                f"it to {len(lengths) // world_size} or less, or train with fewer processes"
            )
        # As torch's DistributedSampler: the first batches again complete the last round, so no window is left out.
        batches = (batches + batches[: -len(batches) % world_size])[rank::world_size]
    return batches


def repeats_last_batch(examples: int, batch_size: int, rank: int, world_size: int) -> bool:
    """Whether this rank's last batch of `epoch_batches` is padding (one of the epoch's first batches again), so that
    counting each example once per epoch leaves it out."""
    count = math.ceil(examples / batch_size)  # megabatches hold whole batches: only the last batch can be short
    return rank >= world_size - (-count % world_size)


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` packed first-fit decreasing into rows of at most `capacity` tokens (a longer one alone);
    equal lengths keep their order, so a batch always packs the same way."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((number for number, free in enumerate(room) if lengths[index] <= free), None)
        if row is None:
            rows.append([index])
            room.append(capacity - lengths[index])
        else:
            rows[row].append(index)
            room[row] -= lengths[index]
    return rows
