"""decode / preprocess and the steps, with numpy outputs and without."""
import numpy as np
import pytest

import bcd
from conftest import image_path


def test_decode_path_and_bytes_give_the_same_numpy_array():
    p = image_path("check1", "front")
    a = bcd.decode(p)
    with open(p, "rb") as f:
        b = bcd.decode(f.read())
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.shape == (800, 600, 3)
    assert np.array_equal(a, b)
    assert a.flags.writeable and a.flags.c_contiguous


def test_decode_without_numpy_gives_bytes_and_shape():
    a = bcd.decode(image_path("check1", "front"), as_numpy=False)
    assert isinstance(a, bcd.Array)
    assert a.shape == (800, 600, 3) and a.dtype == "uint8" and len(a.data) == 800 * 600 * 3
    assert np.array_equal(a.to_numpy(), bcd.decode(image_path("check1", "front")))
    assert len(a.tolist()) == 800 and len(a.tolist()[0][0]) == 3


def test_decode_errors():
    with pytest.raises(bcd.FormatError) as ei:
        bcd.decode(b"GIF89a not supported")
    assert ei.value.status == bcd.status.EFORMAT and ei.value.code
    with open(image_path("check1", "front"), "rb") as f:
        data = f.read()
    with pytest.raises(bcd.FormatError):
        bcd.decode(data[: len(data) // 2])
    with pytest.raises(bcd.NotFoundError):
        bcd.decode("/nonexistent/front.jpg")
    with pytest.raises(TypeError):
        bcd.decode(12)


def test_decode_respects_the_context_limits():
    with bcd.Context(load_env=False, max_pixels=1000) as ctx:
        with pytest.raises(bcd.LimitError) as ei:
            bcd.decode(image_path("check1", "front"), ctx=ctx)
        assert ei.value.status == bcd.status.ELIMIT


def test_preprocess_equals_its_steps():
    img = bcd.decode(image_path("check2", "left"))
    t = bcd.preprocess(img)
    assert t.shape == bcd.TENSOR_SHAPE and t.dtype == np.float32
    eq = bcd.equalize(img)
    assert eq.shape == img.shape == (800, 600, 3)  # width and height not swapped
    cr = bcd.crop_resize(eq, 224)
    assert cr.shape == (224, 224, 3)
    steps = bcd.to_tensor(cr)
    assert np.array_equal(t, steps)
    assert np.array_equal(bcd.preprocess(image_path("check2", "left")), t)
    raw = bcd.preprocess(img, as_numpy=False)
    assert raw.shape == (3, 224, 224) and raw.dtype == "float32"
    assert np.array_equal(raw.to_numpy(), t)
    # bcd.Array inputs work as well as numpy ones
    assert np.array_equal(bcd.preprocess(bcd.decode(image_path("check2", "left"), as_numpy=False)), t)


def test_tensor_values_are_imagenet_normalized():
    white = np.full((224, 224, 3), 255, np.uint8)
    t = bcd.to_tensor(white)
    assert t[0, 0, 0] == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)


def test_step_errors_raise_invalid_argument():
    with pytest.raises(bcd.InvalidArgumentError):
        bcd.to_tensor(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(TypeError):
        bcd.equalize(np.zeros((10, 10, 3), np.float32))


def test_write_png_round_trip(tmp_path):
    img = bcd.crop_resize(bcd.decode(image_path("check1", "up")), 64)
    out = tmp_path / "x.png"
    bcd.write_png(img, out)
    assert np.array_equal(bcd.decode(out), img)
    with pytest.raises((bcd.InputOutputError, bcd.NotFoundError)):
        bcd.write_png(img, tmp_path / "no" / "dir" / "x.png")
