"""The GIL is released during foreign calls, and per-context locking keeps handles safe."""
import threading
import time

import numpy as np

import bcd
from conftest import image_path


def test_gil_is_released_during_a_long_call():
    t = bcd.preprocess(image_path("check1", "front"))
    batch = np.stack([t] * 16)
    ctx = bcd.Context(load_env=False)
    emb = bcd.Embedder("builtin", ctx=ctx)
    span = {}

    def work():
        span["start"] = time.perf_counter()
        emb.embed(batch)
        span["end"] = time.perf_counter()

    th = threading.Thread(target=work)
    stamps = []
    th.start()
    while th.is_alive():
        stamps.append(time.perf_counter())
    th.join()
    inside = [s for s in stamps if span["start"] < s < span["end"]]
    print("call %.3f s, %d main-thread iterations ran during it" % (span["end"] - span["start"], len(inside)))
    assert len(inside) > 100
    ctx.close()


def test_one_service_shared_by_threads_is_serialized(data_dir):
    errors = []
    with bcd.open_store(data_dir, user="alice", load_env=False) as svc:
        def work(n):
            try:
                for _ in range(n):
                    sid = svc.create_session()["session_id"]
                    assert svc.session_info(sid)["session_id"] == sid
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(20,)) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        assert svc.list_sessions()["count"] == 80
