"""Fixtures for the binding's tests.

Run from the source tree without installing:
    PYTHONPATH=bindings/python BCD_LIBRARY=build/lib/libbcd.so \
        /usr/bin/python3 -m pytest -q bindings/python/tests
"""
import os

import pytest

import bcd

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("BCD_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..", "..")))
EXAMPLES = os.path.join(SOURCE, "examples", "data")
ANGLES = list(bcd.ANGLES)
MISSING = "00000000-0000-4000-8000-000000000000"


def image_path(check, angle):
    return os.path.join(EXAMPLES, check, angle + ".jpg")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No BCD_* or SUPABASE_* configuration leaks in from the environment (BCD_LIBRARY stays)."""
    for k in list(os.environ):
        if (k.startswith("BCD_") and k not in ("BCD_LIBRARY", "BCD_SOURCE_DIR")) or k.startswith("SUPABASE_"):
            monkeypatch.delenv(k)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def svc(data_dir):
    with bcd.open_store(data_dir, user="alice", load_env=False) as s:
        yield s


@pytest.fixture
def new_session(svc):
    """new_session(check="check1", angles=ANGLES, complete=True, user=None) -> session id."""
    def make(check="check1", angles=ANGLES, complete=True, user=None):
        sid = svc.create_session(user=user)["session_id"]
        for a in angles:
            svc.add_image(sid, a, image_path(check, a), user=user)
        if complete:
            svc.complete_session(sid, user=user)
        return sid
    return make
