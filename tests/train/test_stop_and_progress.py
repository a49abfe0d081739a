"""train()'s stop check (Ctrl-C in the CLI) and its default progress bar (a terminal only)."""

from __future__ import annotations

import re

import pytest

from smec_vdb.errors import TrainingInterrupted
from smec_vdb.train import TrainConfig, train
from smec_vdb.train.progress_bar import wants_bar

FAST = TrainConfig(epochs=30, batch_size=64, memory_size=100, seed=1, device="cpu")


class StopAfter:
    """A stop check that says "stop" on its ``n``-th call and counts every call."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize("method", ["smec", "matryoshka-adaptor"])
def test_a_stop_is_honoured_at_the_next_batch(vectors, method):
    stop = StopAfter(5)  # call 1: before the initial held-out score; calls 2-5: batches 1-4 of epoch 1
    with pytest.raises(TrainingInterrupted, match=r"stage 1 \(\d+-d\), epoch 1, batch 4/\d+: nothing was saved"):
        train(vectors, [12, 6], method=method, config=FAST, should_stop=stop, progress=False)
    assert stop.calls == 5


def test_without_a_stop_the_check_changes_nothing(vectors):
    never = StopAfter(10**9)
    a = train(vectors, [6], config=TrainConfig(epochs=2, batch_size=64, memory_size=100, seed=3, device="cpu"),
              should_stop=never, progress=False)
    b = train(vectors, [6], config=TrainConfig(epochs=2, batch_size=64, memory_size=100, seed=3, device="cpu"),
              progress=False)
    assert never.calls > 2 * 4 and (a.encode(vectors, 6) == b.encode(vectors, 6)).all()


def test_no_bar_unless_stderr_is_a_terminal(vectors, capfd):
    train(vectors, [6], config=TrainConfig(epochs=2, batch_size=64, memory_size=100, device="cpu"))
    assert capfd.readouterr().err == ""  # pytest's stderr is no terminal

    class Terminal:
        def isatty(self) -> bool:
            return True

    assert wants_bar(None) is False and wants_bar(True) and not wants_bar(False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stderr", Terminal())
        assert wants_bar(None)


def test_the_bar_ends_where_held_out_stopping_ended_the_stage(vectors, capfd):
    config = TrainConfig(epochs=60, patience=1, lr_decays=0, batch_size=64, memory_size=100, seed=1, device="cpu")
    comp = train(vectors, [12, 6], config=config, progress=True)
    err = capfd.readouterr().err
    for stage in comp.training_info["stages"]:
        assert stage["stopped_early"] and stage["epochs"] < 60
        final = [m.group(1) for m in re.finditer(rf"→ {stage['dim']}d: [^\r\n]*?(\d+/\d+)", err)][-1]
        assert final == f"{stage['epochs']}/{stage['epochs']}", err


def test_extending_a_compressor_honours_the_stop_check_too(vectors):
    """`smec-vdb extend` trains through smec_vdb.train.smrl.extend_smec inside stop_when (not train())."""
    from smec_vdb.train.loop import stop_when
    from smec_vdb.train.smrl import extend_smec

    comp = train(vectors, [12], config=TrainConfig(epochs=1, batch_size=64, memory_size=100, device="cpu"),
                 progress=False)
    with stop_when(StopAfter(3)), pytest.raises(TrainingInterrupted, match=r"stage 2 \(6-d\), epoch 1, batch 2/"):
        extend_smec(comp, vectors, 6, FAST)
