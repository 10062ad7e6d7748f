"""Without numpy, arrays come back as bcd.Array (bytes + shape); run in a child interpreter
where `import numpy` fails."""
import json
import os
import subprocess
import sys

from conftest import image_path

CHILD = r"""
import json, sys
sys.modules["numpy"] = None          # import numpy now raises ImportError
import bcd
out = {"have_numpy": bcd.HAVE_NUMPY}
img = bcd.decode(sys.argv[1])
out["image"] = [type(img).__name__, list(img.shape), img.dtype, len(img.data)]
t = bcd.preprocess(img)
out["tensor"] = [type(t).__name__, list(t.shape), t.dtype]
with bcd.Embedder("builtin") as e:
    v = e.embed([t, bcd.preprocess(sys.argv[2])])
    out["vectors"] = [type(v).__name__, list(v.shape), e.dim]
    out["distance"] = bcd.cosine_distance(v.tolist()[0], v.tolist()[1])
out["mean"] = bcd.vector_mean([[1, 2], [3, 4]]).tolist()
prev = sys.argv[1].replace("front", "left").replace("check2", "check1")
with bcd.detect.compare(sys.argv[2], bcd.decode(prev)) as r:
    c = r.cells
    h = r.render_heatmap(sys.argv[2], 100)
    out["detect"] = [r.local_change, type(c.values).__name__, list(c.values.shape), c.cols, c.rows,
                     type(h).__name__, list(h.shape)]
try:
    bcd.decode(sys.argv[1], as_numpy=True)
except ImportError:
    out["as_numpy_true"] = "ImportError"
print(json.dumps(out))
"""


def test_arrays_without_numpy():
    p = subprocess.run([sys.executable, "-c", CHILD, image_path("check1", "front"), image_path("check2", "left")],
                       capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["have_numpy"] is False
    assert out["image"] == ["Array", [800, 600, 3], "uint8", 800 * 600 * 3]
    assert out["tensor"] == ["Array", [3, 224, 224], "float32"]
    assert out["vectors"][0] == "Array" and out["vectors"][1] == [2, out["vectors"][2]]
    assert 0 < out["distance"] < 2
    assert out["mean"] == [2.0, 3.0]
    assert out["as_numpy_true"] == "ImportError"
    local_change, cells_type, cells_shape, cols, rows, heatmap_type, heatmap_shape = out["detect"]
    assert local_change > 0.9
    assert cells_type == "Array" and cells_shape == [rows, cols] == [16, 12]
    assert heatmap_type == "Array" and heatmap_shape == [100, 75, 3]
