"""bcd.Embedder and the vector functions."""
import math

import numpy as np
import pytest

import bcd
from conftest import image_path


@pytest.fixture
def emb():
    with bcd.Embedder("builtin") as e:
        yield e


def test_builtin_embedder_batch_equals_single(emb):
    assert emb.dim > 0 and emb.name.startswith("builtin")
    ts = [bcd.preprocess(image_path("check1", a)) for a in ("front", "left", "right")]
    batch = emb.embed(np.stack(ts))
    assert batch.shape == (3, emb.dim) and batch.dtype == np.float32
    for i, t in enumerate(ts):
        assert np.array_equal(emb.embed(t)[0], batch[i])
    assert np.array_equal(emb.embed(ts), batch)
    files = emb.embed_images([image_path("check1", a) for a in ("front", "left", "right")])
    assert np.array_equal(files, batch)


def test_embed_without_numpy(emb):
    t = bcd.preprocess(image_path("check1", "front"), as_numpy=False)
    v = emb.embed([t, t], as_numpy=False)
    assert isinstance(v, bcd.Array) and v.shape == (2, emb.dim)
    assert v.tolist()[0] == v.tolist()[1]
    assert np.array_equal(emb.embed(t.data), v.to_numpy()[:1])


def test_builtin_embedder_has_no_feature_map(emb):
    assert emb.map_shape is None
    t = bcd.preprocess(image_path("check1", "front"))
    with pytest.raises(bcd.UnsupportedError) as ei:
        emb.embed(t, maps=True)
    assert ei.value.code == "no_feature_map"


def test_embed_rejects_wrong_sizes(emb):
    with pytest.raises(bcd.InvalidArgumentError) as ei:
        emb.embed(np.zeros((3, 100, 100), np.float32))
    assert ei.value.code == "invalid_tensor_shape"


def test_embedder_spec_errors():
    with pytest.raises((bcd.NotFoundError, bcd.UnsupportedError)):
        bcd.Embedder("/nonexistent/model.pt")
    with bcd.Context(load_env=False, model="builtin") as ctx:
        with bcd.Embedder(ctx=ctx) as e:
            assert e.name.startswith("builtin")
        assert e.closed
        with pytest.raises(bcd.StateError):
            e.embed(np.zeros(bcd.TENSOR_SHAPE, np.float32))


def test_cosine_distance():
    assert bcd.cosine_distance([1, 0, 0], [1, 0, 0]) == pytest.approx(0.0)
    assert bcd.cosine_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert bcd.cosine_distance(np.array([1.0, 2.0]), np.array([-1.0, -2.0])) == pytest.approx(2.0)
    with pytest.raises(bcd.InvalidArgumentError) as ei:
        bcd.cosine_distance([1, 2], [1, 2, 3])
    assert ei.value.code == "dimension_mismatch"
    with pytest.raises(bcd.DomainError) as ei:
        bcd.cosine_distance([0, 0], [1, 1])
    assert ei.value.code == "zero_vector" and isinstance(ei.value, ArithmeticError)
    with pytest.raises(bcd.DomainError) as ei:
        bcd.cosine_distance([math.nan, 1], [1, 1])
    assert ei.value.code == "not_finite"


def test_cosine_distance_of_embeddings_matches_numpy(emb):
    v = emb.embed_images([image_path("check1", "left"), image_path("check2", "left")])
    a, b = v.astype(np.float64)
    expected = 1 - a.dot(b) / (np.linalg.norm(a) * np.linalg.norm(b))
    assert bcd.cosine_distance(v[0], v[1]) == pytest.approx(expected, abs=1e-9)


def test_trend_label_thresholds():
    assert bcd.trend_label(0.0) == "stable"
    assert bcd.trend_label(0.0999) == "stable"
    assert bcd.trend_label(bcd.TREND_MILD) == "mild_variation"
    assert bcd.trend_label(bcd.TREND_SIGNIFICANT) == "significant_shift"
    assert bcd.trend_label(-1) is None
    assert bcd.trend_label(math.nan) is None


def test_vector_mean_and_from_json():
    m = bcd.vector_mean([[1, 2, 3], [3, 4, 5]])
    assert np.array_equal(m, np.array([2, 3, 4], np.float32))
    assert bcd.vector_mean([[1, 2], [3, 4]], as_numpy=False).tolist() == [2.0, 3.0]
    with pytest.raises(bcd.InvalidArgumentError):
        bcd.vector_mean([1, 2, 3])
    v = bcd.vector_from_json('{"embedding": [0.5, 1.5, -2]}')
    assert v.tolist() == [0.5, 1.5, -2.0]
    with pytest.raises(bcd.FormatError):
        bcd.vector_from_json("[1, 2,")


def test_array_inputs_without_numpy():
    a = bcd.Array(np.array([1, 0], np.float32).tobytes(), (2,), "float32")
    assert bcd.cosine_distance(a, b"\x00\x00\x80\x3f\x00\x00\x00\x00") == pytest.approx(0.0)
