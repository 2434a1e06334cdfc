"""How runs end when something goes wrong inside them: one RunFinished that says what, the
right kind (input or internal), and never a network left in a broken state."""

from __future__ import annotations

import errno

import torch

from workbench.core.runs.cancel import CancelToken
from workbench.core.runs.engine import launch
from workbench.core.runs.events import RunStarted
from workbench.core.runs.training import TrainingDiverged, train


def _body_raising(exc: BaseException):
    def body(_cancel, run_id):
        yield RunStarted(run_id, "test", 0, {})
        raise exc

    return body


def test_a_plugin_calling_sys_exit_fails_the_run_instead_of_the_process():
    finished = launch("test", _body_raising(SystemExit(3)), record_to=None).result()
    assert finished.status == "failed" and finished.error_kind == "internal"
    assert "sys.exit(3)" in finished.error


def test_a_full_disk_is_the_users_to_fix_and_names_the_file():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/out/weights.safetensors")
    finished = launch("test", _body_raising(full), record_to=None).result()
    assert finished.status == "failed" and finished.error_kind == "input"
    assert finished.error_where == "/data/out/weights.safetensors"
    assert "disk is full" in finished.error


def test_a_bug_stays_an_internal_error():
    finished = launch("test", _body_raising(KeyError("x")), record_to=None).result()
    assert finished.error_kind == "internal" and "KeyError" in finished.error


class _Split:
    """Four batches of one sample each."""

    def n_batches(self, batch_size):
        return 4

    def batches(self, batch_size, **_options):
        for i in range(4):
            yield torch.full((1, 3), float(i)), torch.tensor([i % 2])


class _TrainerThatDiverges:
    """Steps the weights by +1 per batch; the loss turns NaN at the given global step."""

    def __init__(self, model, nan_at):
        self.model, self.nan_at, self.steps = model, nan_at, 0

    def train_step(self, x, y):
        self.steps += 1
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(1.0)
        loss = float("nan") if self.steps == self.nan_at else 0.5
        return {"loss": loss, "correct": 0, "count": 1}


def _run(model, nan_at):
    events = train(model, lambda x: x, _Split(), _Split(),
                   lambda m, **_: _TrainerThatDiverges(m, nan_at), epochs=3, batch_size=1,
                   cancel=CancelToken(), run_id="t")
    try:
        for _ in events:
            pass
    except TrainingDiverged as exc:
        return exc
    raise AssertionError("the run did not stop")


def test_a_run_that_diverges_gives_the_network_back_its_last_good_weights():
    model = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    error = _run(model, nan_at=6)  # epoch 2, batch 2: epoch 1 ended with 4 steps of +1
    assert "epoch 2, batch 2" in str(error) and "weights after epoch 1" in str(error)
    for name, value in model.state_dict().items():
        assert torch.allclose(value, start[name] + 4.0, atol=1e-6)  # not the +5 of epoch 2


def test_a_run_that_diverges_at_once_keeps_the_weights_it_started_with():
    model = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    error = _run(model, nan_at=1)
    assert "weights it started with" in str(error)
    for name, value in model.state_dict().items():
        assert torch.equal(value, start[name])
