"""`epoch_batches`: seeded batch order, and its sharding across the ranks of a torchrun job."""

from __future__ import annotations

import pytest

from training.common.errors import ConfigError
from training.core.batching import epoch_batches, repeats_last_batch


@pytest.mark.parametrize("world_size", [2, 4])
@pytest.mark.parametrize("group_by_length", [True, False])
def test_every_window_is_trained_on_each_epoch_whatever_the_rank_count(world_size: int, group_by_length: bool) -> None:
    # 15 batches: the round short of a batch per rank was dropped, up to 12 windows unseen each epoch (one process
    # sees all 58).
    lengths = [10 + index % 7 for index in range(58)]
    for epoch in range(3):
        shards = [
            epoch_batches(
                lengths, 4, seed=0, epoch=epoch, group_by_length=group_by_length, rank=rank, world_size=world_size
            )
            for rank in range(world_size)
        ]
        assert len({len(shard) for shard in shards}) == 1  # every rank takes as many steps
        # The ranks share out the batches of one process (the first again where the last round is short).
        alone = epoch_batches(lengths, 4, seed=0, epoch=epoch, group_by_length=group_by_length)
        assert {tuple(batch) for shard in shards for batch in shard} == {tuple(batch) for batch in alone}
        assert sorted(index for batch in alone for index in batch) == list(range(len(lengths)))


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("examples", [230, 232, 233])
def test_the_padding_batch_is_known_so_each_window_counts_once_an_epoch(world_size: int, examples: int) -> None:
    # The padding counted as windows trained (and so in samples per second); 230 windows make two megabatches.
    lengths = [10 + index % 7 for index in range(examples)]
    counted = []
    for rank in range(world_size):
        batches = epoch_batches(lengths, 4, seed=0, epoch=1, rank=rank, world_size=world_size)
        if repeats_last_batch(examples, 4, rank, world_size):
            batches = batches[:-1]
        counted += [index for batch in batches for index in batch]
    assert sorted(counted) == list(range(examples))


def test_too_few_batches_for_the_ranks_are_refused_saying_what_would_feed_them() -> None:
    # Both were told to "lower batch_size": 2 windows on 3 ranks with batch_size 1 already, where only fewer
    # processes help; 6 windows in batches of 4 on 3 ranks, with no word of the size that feeds them (2).
    with pytest.raises(ConfigError, match=r"^2 training windows cannot feed 3 processes a batch each; train with "):
        epoch_batches([10, 12], 1, seed=0, epoch=0, rank=0, world_size=3)
    with pytest.raises(ConfigError, match=r"^training.batch_size: 2 batches of 4 cannot feed 3 processes; set it to 2"):
        epoch_batches([10] * 6, 4, seed=0, epoch=0, rank=0, world_size=3)
    shards = [epoch_batches([10] * 6, 2, seed=0, epoch=0, rank=rank, world_size=3) for rank in range(3)]
    assert sorted(index for shard in shards for batch in shard for index in batch) == list(range(6))
