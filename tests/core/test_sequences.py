"""Sequence data: lengths, layouts, streamed splits, and the encoder adapter (no plugins)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.build.encoding import Encoding
from workbench.core.data.splits import ArraySplit, DatasetSplits
from workbench.core.data.streaming import StreamSplit
from workbench.core.model.errors import DatasetError
from workbench.testing.toy_plugins import DeltaEncoder, UnpaddedSequences, make_sequences


class Items(torch.utils.data.Dataset):
    """``(x, y)`` or ``(x, y, length)`` items read from arrays, like a file-backed dataset."""

    def __init__(self, x: np.ndarray, y: np.ndarray, lengths: np.ndarray | None = None) -> None:
        self.x, self.y, self.lengths = x, y, lengths

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        if self.lengths is None:
            return self.x[i], int(self.y[i])
        return self.x[i], int(self.y[i]), int(self.lengths[i])


def sequences(n: int = 23, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=n)
    x = np.zeros((n, 2, 8), np.float32)
    for i, length in enumerate(lengths):
        x[i, :, :length] = rng.normal(size=(2, length))
    return x, rng.integers(0, 3, size=n), lengths


def same_batches(a, b) -> None:
    a, b = list(a), list(b)
    assert len(a) == len(b) > 0
    for left, right in zip(a, b):
        assert len(left) == len(right)
        for u, v in zip(left, right):
            if u is None or v is None:
                assert u is None and v is None
            else:
                assert u.dtype == v.dtype
                assert torch.equal(u, v)


# -- ArraySplit lengths ----------------------------------------------------------------------
def test_array_split_yields_lengths_when_asked():
    x, y, lengths = sequences()
    split = ArraySplit(x, y, lengths=lengths)
    assert split.length_of(4) == lengths[4]
    plain = list(split.batches(5))
    assert all(len(b) == 2 for b in plain)
    with_lengths = list(split.batches(5, shuffle=True, seed=3, lengths=True))
    seen = torch.cat([n for _x, _y, n in with_lengths])
    order = np.random.default_rng(3).permutation(len(y))
    assert seen.tolist() == lengths[order].tolist()
    # padding is zero after each sample's own length
    for xb, _yb, nb in with_lengths:
        for row, n in zip(xb, nb):
            assert torch.all(row[:, int(n):] == 0)
    # no lengths: None, not a made-up full length
    assert ArraySplit(x, y).batch(np.arange(3), lengths=True)[2] is None
    with pytest.raises(DatasetError, match="lengths"):
        ArraySplit(x, y, lengths=lengths[:-1])


# -- StreamSplit vs ArraySplit ----------------------------------------------------------------
@pytest.mark.parametrize("options", [
    {}, {"shuffle": True, "seed": 7}, {"limit": 11}, {"shuffle": True, "seed": 1, "limit": 9},
])
def test_stream_split_gives_the_same_batches_as_array_split(options):
    x, y, lengths = sequences()
    array = ArraySplit(x, y, scale=0.5, offset=0.25, lengths=lengths)
    stream = StreamSplit(Items(x, y, lengths), scale=0.5, offset=0.25)
    assert len(stream) == len(array)
    assert stream.n_batches(4, options.get("limit")) == array.n_batches(4, options.get("limit"))
    same_batches(stream.batches(4, **options), array.batches(4, **options))
    same_batches(stream.batches(4, lengths=True, **options),
                 array.batches(4, lengths=True, **options))
    index = np.array([5, 0, 17])
    same_batches([stream.batch(index, lengths=True)], [array.batch(index, lengths=True)])
    assert [stream.length_of(i) for i in range(len(y))] == lengths.tolist()
    assert stream.labels().tolist() == y.tolist()
    assert stream.sample_shape() == array.sample_shape() == (2, 8)
    assert np.array_equal(stream.stored(limit=6), array.stored(limit=6))


def test_stream_split_without_lengths_and_with_unpadded_items():
    x, y, lengths = sequences()
    plain = StreamSplit(Items(x, y))
    assert plain.length_of(0) is None
    assert next(iter(plain.batches(4, lengths=True)))[2] is None
    # items cut to their own length are zero-padded to pad_to as they are collated
    array = ArraySplit(x, y, lengths=lengths)
    unpadded = StreamSplit(UnpaddedSequences(array), pad_to=8)
    same_batches(unpadded.batches(6, shuffle=True, lengths=True),
                 array.batches(6, shuffle=True, lengths=True))
    ragged = StreamSplit(UnpaddedSequences(array))
    with pytest.raises(DatasetError, match="pad_to"):
        list(ragged.batches(6))
    with pytest.raises(DatasetError, match="map-style"):
        StreamSplit(iter([]))  # type: ignore[arg-type]


def test_stream_split_uses_a_real_data_loader(monkeypatch):
    made = []
    original = torch.utils.data.DataLoader.__init__

    def spy(self, dataset, *args, **kwargs):
        made.append((dataset, kwargs))
        original(self, dataset, *args, **kwargs)

    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", spy)
    x, y, _ = sequences()
    split = StreamSplit(Items(x, y), num_workers=0)
    batches = list(split.batches(8, shuffle=True, seed=2, limit=10))
    assert [len(b[1]) for b in batches] == [8, 2]
    dataset, kwargs = made[-1]
    assert isinstance(dataset, torch.utils.data.Subset)
    assert list(dataset.indices) == np.random.default_rng(2).permutation(len(y))[:10].tolist()
    assert kwargs["batch_size"] == 8 and kwargs["num_workers"] == 0


# -- DatasetSplits: layout, time_axis, shape checks ---------------------------------------------
def test_layout_and_time_axis_default_from_the_rank():
    def splits(shape, **kw):
        x = np.zeros((4, *shape), np.float32)
        return DatasetSplits(ArraySplit(x, np.arange(4) % 2), ArraySplit(x, np.arange(4) % 2),
                             shape, **kw)

    assert (splits((5,)).layout, splits((5,)).time_axis) == ("vector", None)
    assert (splits((2, 9)).layout, splits((2, 9)).time_axis) == ("sequence", -1)
    assert (splits((1, 4, 4)).layout, splits((1, 4, 4)).time_axis) == ("image", None)
    assert splits((3, 2, 4, 4)).layout == "events"
    declared = splits((3, 2, 4, 4), layout="events", time_axis=0)
    assert (declared.layout, declared.time_axis) == ("events", 0)
    assert splits((2, 9)).n_classes == 2
    with pytest.raises(DatasetError, match="layout 'audio'"):
        splits((5,), layout="audio")
    with pytest.raises(DatasetError, match=r"\[C, L\]"):
        splits((1, 4, 4), layout="sequence")
    with pytest.raises(DatasetError, match="time_axis 3"):
        splits((2, 9), time_axis=3)


@pytest.mark.parametrize("streamed", [False, True])
def test_mismatched_shapes_name_the_split(streamed):
    x, y, lengths = sequences()
    good = ArraySplit(x, y, lengths=lengths)
    bad_x = np.zeros((len(y), 2, 7), np.float32)
    bad = StreamSplit(Items(bad_x, y)) if streamed else ArraySplit(bad_x, y)
    with pytest.raises(DatasetError) as info:
        DatasetSplits(good, bad, (2, 8), source="my sequences")
    assert "test inputs have shape [2, 7], expected [2, 8]" in str(info.value)
    assert info.value.where == "my sequences: test split"
    with pytest.raises(DatasetError) as info:
        DatasetSplits(bad, good, (2, 8))
    assert info.value.where == "train split"
    # a stream is checked by its first item, and an empty one is not checked at all
    ok = DatasetSplits(StreamSplit(Items(x, y, lengths)), StreamSplit(Items(x[:0], y[:0])),
                       (2, 8), class_names=["a", "b", "c"])
    assert ok.layout == "sequence"


# -- the toy dataset and encoder ---------------------------------------------------------------
def test_toy_sequences_are_deterministic_and_streamable():
    a, b = make_sequences(seed=3), make_sequences(seed=3)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(make_sequences(seed=4).train.x, a.train.x)
    assert (a.layout, a.time_axis, a.input_shape, a.n_classes) == ("sequence", -1, (2, 24), 3)
    assert (len(a.train), len(a.test)) == (120, 60)
    assert 12 <= a.train.lengths.min() and a.train.lengths.max() <= 24
    streamed = make_sequences(seed=3, streamed=True)
    assert isinstance(streamed.train, StreamSplit)
    same_batches(streamed.train.batches(32, shuffle=True, seed=5, lengths=True),
                 a.train.batches(32, shuffle=True, seed=5, lengths=True))


def test_delta_encoder_sets_time_and_rebuilds_the_signal():
    data = make_sequences()
    encoding = Encoding(DeltaEncoder(threshold=0.25), time_steps=4)
    assert encoding.step_shape(data.input_shape) == (2,)
    assert encoding.time_steps(data.input_shape) == 24  # T = L, not the project's 4
    x, _y = data.test.batch(np.arange(10))
    spikes, start = encoding.encode(x)
    assert spikes.shape == (24, 10, 2)
    assert torch.equal(start, x[..., 0])
    assert set(spikes.unique().tolist()) == {-1.0, 0.0, 1.0}  # ternary
    assert torch.equal(encoding(x), spikes)
    rebuilt = encoding.reconstruct(x)
    assert rebuilt.shape == x.shape
    assert float((rebuilt - x).pow(2).mean()) < 0.1


def test_encoding_defaults_and_a_decoder_without_side_information():
    class Repeat:
        def encode(self, x, steps):
            return x.unsqueeze(0).expand(steps, *x.shape)

        def decode(self, spikes):  # no side information, so one argument
            return spikes.mean(0)

    encoding = Encoding(Repeat(), time_steps=3)
    assert encoding.step_shape((1, 4, 4)) == (1, 4, 4)
    assert encoding.time_steps((1, 4, 4)) == 3
    x = torch.rand(2, 1, 4, 4)
    spikes, side = encoding.encode(x)
    assert spikes.shape == (3, 2, 1, 4, 4) and side is None
    assert torch.allclose(encoding.reconstruct(x), x)
