"""bcd-cli: help, version, errors, exit codes, configuration, image commands."""
import json
import os
import struct

import numpy as np
import pytest
from conftest import EXAMPLES, TESTDATA

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def test_version(cli):
    r = cli("--version")
    assert r.rc == 0
    assert r.out.startswith("bcd-cli ")


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.rc == 0
    for word in ("preprocess", "embed", "distance", "Exit status"):
        assert word in r.out


@pytest.mark.parametrize("cmd", [["preprocess"], ["embed"], ["distance"], ["config"]])
def test_command_help(cli, cmd):
    r = cli(*cmd, "--help")
    assert r.rc == 0
    assert r.out.startswith("Usage: bcd-cli " + cmd[0])


def test_no_command_is_usage_error(cli):
    r = cli()
    assert r.rc == 2


def test_unknown_command_and_option(cli):
    r = cli("frobnicate")
    assert r.rc == 2
    assert r.error()["code"] == "usage_error"
    r = cli("embed", "--frob", "x.jpg")
    assert r.rc == 2
    assert "--frob" in r.error()["message"]


def test_wrong_arity(cli):
    r = cli("distance", "a.json")
    assert r.rc == 2


def test_config_redacts_secret_from_env_and_dotenv(cli, tmp_path):
    (tmp_path / ".env").write_text("SUPABASE_SERVICE_ROLE_KEY=sb_secret_fromfile\nSUPABASE_URL=http://127.0.0.1:54321\n")
    r = cli("config", "--env-file", tmp_path / ".env")
    assert r.rc == 0
    cfg = json.loads(r.out)
    assert cfg["SUPABASE_SERVICE_ROLE_KEY"] == "<set>"
    assert cfg["SUPABASE_URL"] == "http://127.0.0.1:54321"
    assert "sb_secret" not in r.out + r.err
    r = cli("config", env_extra={"SUPABASE_SERVICE_ROLE_KEY": "eyJsecretjwt", "BCD_MODEL": "x.pt",
                                 "BCD_ENV_FILE": str(tmp_path / ".env")})
    assert "eyJsecretjwt" not in r.out + r.err
    assert json.loads(r.out)["BCD_MODEL"] == "x.pt"


def test_invalid_config_is_reported(cli):
    r = cli("config", env_extra={"BCD_STORE": "mongo"})
    assert r.rc == 3
    e = r.error()
    assert e["code"] == "invalid_config_value"
    assert set(e) == {"code", "message", "details", "correlation_id"}


def test_options_after_command_words(cli):
    r = cli("config", "--model", "m.pt")
    assert json.loads(r.out)["BCD_MODEL"] == "m.pt"
    r = cli("--model=builtin", "config")
    assert json.loads(r.out)["BCD_MODEL"] == "builtin"


def test_preprocess_png_and_f32_agree(cli, tmp_path):
    src = os.path.join(TESTDATA, "images", "jpeg", "progressive-444-650x470.jpg")
    r = cli("preprocess", src, "--out", tmp_path / "p.png")
    assert r.rc == 0, r.err
    r = cli("preprocess", "--out", tmp_path / "p.f32", src)
    assert r.rc == 0, r.err
    import cv2
    img = cv2.cvtColor(cv2.imread(str(tmp_path / "p.png")), cv2.COLOR_BGR2RGB)
    assert img.shape == (224, 224, 3)
    raw = (tmp_path / "p.f32").read_bytes()
    assert len(raw) == 3 * 224 * 224 * 4
    t = np.frombuffer(raw, dtype="<f4").reshape(3, 224, 224)
    expect = ((img.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    assert np.abs(t - expect).max() < 1e-5


def test_preprocess_needs_known_extension(cli, tmp_path):
    r = cli("preprocess", os.path.join(EXAMPLES, "check1", "front.jpg"), "--out", tmp_path / "x.bmp")
    assert r.rc == 2


def test_embed_shape_and_determinism(cli):
    a = os.path.join(EXAMPLES, "check1", "front.jpg")
    b = os.path.join(EXAMPLES, "check1", "left.jpg")
    r = cli("embed", a, b)
    assert r.rc == 0, r.err
    doc = r.json()
    assert doc["model"] == "builtin-v2"
    assert doc["dim"] > 0
    assert [e["file"] for e in doc["embeddings"]] == [a, b]
    assert all(len(e["vector"]) == doc["dim"] for e in doc["embeddings"])
    again = cli("embed", a).json()
    assert again["embeddings"][0]["vector"] == doc["embeddings"][0]["vector"]


def test_distance_of_json_and_images(cli, tmp_path):
    a = os.path.join(EXAMPLES, "check1", "front.jpg")
    (tmp_path / "a.json").write_text(cli("embed", a).out)
    r = cli("--json", "distance", tmp_path / "a.json", tmp_path / "a.json")
    assert r.rc == 0, r.err
    assert r.json() == {"distance": 0, "trend": "stable"}
    r = cli("distance", a, a)
    assert r.rc == 0
    assert "stable" in r.out


def test_distance_errors(cli, tmp_path):
    (tmp_path / "a.json").write_text("[1, 0, 0]")
    (tmp_path / "b.json").write_text("[1, 0]")
    (tmp_path / "z.json").write_text("[0, 0, 0]")
    (tmp_path / "bad.json").write_text("[1, \"x\"]")
    r = cli("distance", tmp_path / "a.json", tmp_path / "b.json")
    assert r.rc == 3 and r.error()["code"] == "dimension_mismatch"
    r = cli("distance", tmp_path / "a.json", tmp_path / "z.json")
    assert r.rc == 14 and r.error()["code"] == "zero_vector"
    r = cli("distance", tmp_path / "a.json", tmp_path / "bad.json")
    assert r.rc == 6
    r = cli("distance", tmp_path / "a.json", tmp_path / "missing.json")
    assert r.rc == 8
    r = cli("distance", tmp_path / "a.json", os.path.join(EXAMPLES, "check1", "front.jpg"))
    assert r.rc == 2  # one embedding and one image: not a pair


def test_embed_errors_have_codes(cli, tmp_path):
    r = cli("embed", tmp_path / "missing.jpg")
    assert r.rc == 8
    assert r.error()["code"] == "file_not_found"
    r = cli("embed", os.path.join(TESTDATA, "images", "jpeg", "bad-truncated-in-scan.jpg"))
    assert r.rc == 6
    (tmp_path / "m.pt").write_bytes(b"not a model")
    r = cli("embed", "--model", "/nonexistent/model.pt", os.path.join(EXAMPLES, "check1", "front.jpg"))
    assert r.rc == 8


def test_decompression_bomb_refused(cli):
    r = cli("embed", os.path.join(EXAMPLES, "check1", "front.jpg"), env_extra={"BCD_MAX_PIXELS": "1000"})
    assert r.rc == 7
    assert r.error()["code"] == "image_too_large"


def test_man_page_and_completion_cover_every_command(cli):
    """Every command listed by --help is documented in bcd-cli(1) and completed by bash."""
    from conftest import SOURCE
    man = open(os.path.join(SOURCE, "cli", "bcd-cli.1")).read()
    comp = open(os.path.join(SOURCE, "cli", "completion", "bcd-cli")).read()
    lines = cli("--help").out.split("Commands:\n")[1].split("\n\n")[0].splitlines()
    words = []
    for line in lines:
        if line.startswith("  ") and not line.startswith("   "):
            toks = line.split()
            words.append(" ".join(t for t in toks[:2] if t.islower() and t.isalpha()))
    assert len(words) >= 10
    for w in words:
        assert ".B " + w in man or ".BI \"" + w in man, w
        for part in w.split():
            assert part in comp, part
