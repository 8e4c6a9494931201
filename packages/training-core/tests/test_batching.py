"""`epoch_batches`: seeded batch order, and its sharding across the ranks of a torchrun job."""

from __future__ import annotations

import pytest

from training.core.batching import epoch_batches


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
