"""Batch order: length-grouped (little padding), seeded per epoch, and sharded across ranks; and how a batch's
windows pack into rows of a fixed token capacity."""

from __future__ import annotations

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
    """This rank's batches of example indices for `epoch`: the same on every run with the same seed.

    Examples are shuffled, cut into megabatches of `50 * batch_size`, sorted by length inside each
    megabatch and cut into batches (as Hugging Face's length-grouped sampler does); batches are then
    shuffled and dealt round-robin to ranks, each rank getting the same number of batches.
    """
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
        usable = len(batches) - len(batches) % world_size or len(batches)
        if usable < world_size:
            raise ConfigError(
                f"training.batch_size: {len(batches)} batches cannot feed {world_size} ranks; lower batch_size"
            )
        batches = batches[:usable][rank::world_size]
    return batches


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of `lengths` packed first-fit decreasing into rows of at most `capacity` tokens, each index once.

    Longest first, each into the first row with room, else a new row (a length over `capacity` gets a row alone);
    equal lengths keep their order, so the same batch always packs the same way.
    """
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
