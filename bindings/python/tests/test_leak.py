"""Memory handed out by the library is freed: 10,000 rounds of calls, RSS before and after.

Each round makes 10 calls through the binding (session_info, error paths that build an
exception from the error detail, get_analysis, decode from bytes, vector parsing, config
JSON, trend labels) and creates a session every 10th round, so that strings and images
from both successful and failing calls pass through. A leak of even one small string per
call would add megabytes (10,000 x 10 x >= 32 bytes); the bound allows for SQLite's page
cache warming up as the database grows.
"""
import ctypes
import os
import shutil
import tempfile

import pytest

import bcd
from conftest import MISSING, image_path

ROUNDS = 10_000
RSS_BOUND = 2 * 1024 * 1024


def rss():
    """Resident and anonymous-resident (resident minus file-backed) bytes, from statm."""
    with open("/proc/self/statm") as f:
        fields = [int(x) for x in f.read().split()]
    page = os.sysconf("SC_PAGE_SIZE")
    return fields[1] * page, (fields[1] - fields[2]) * page


def heap_in_use():
    """Bytes allocated with malloc (glibc mallinfo2), or None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")]
    fn.restype = MallInfo2
    return fn().uordblks


def sanitizer_loaded():
    """AddressSanitizer keeps freed memory in quarantine: RSS says nothing then (LeakSanitizer
    runs of the C tests cover the library instead)."""
    try:
        with open("/proc/self/maps") as f:
            return any("libasan" in line for line in f)
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.skipif(sanitizer_loaded(), reason="AddressSanitizer quarantine makes RSS meaningless")
def test_no_leak_over_10000_rounds(tmp_path):
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(tmp_path)  # fsync-free if possible
    data_dir = tempfile.mkdtemp(prefix="bcd-leak-", dir=base)
    with open(image_path("check1", "front"), "rb") as f:
        jpeg = f.read()
    with bcd.open_store(data_dir, user="alice", load_env=False) as svc:
        ctx = svc.context
        png_path = os.path.join(data_dir, "small.png")
        bcd.write_png(bcd.crop_resize(bcd.decode(jpeg, ctx=ctx), 32), png_path, ctx=ctx)
        with open(png_path, "rb") as f:
            small_png = f.read()
        # A new user every 10th round keeps each user's history short: session_info
        # reads the user's whole history, and this test is about memory, not scaling.
        user = "leak-user"
        sid = svc.create_session(user=user)["session_id"]

        def round_(i):
            nonlocal sid, user
            if i % 10 == 0:
                user = "leak-user-%d" % i
                sid = svc.create_session(user=user)["session_id"]           # 1 (every 10th)
            svc.session_info(sid, user=user)                                 # 2
            try:
                svc.session_info(MISSING, user=user)                          # 3 not found
            except bcd.NotFoundError:
                pass
            try:
                svc.add_image(sid, "sideways", png_path, user=user)           # 4 invalid angle
            except bcd.InvalidArgumentError:
                pass
            try:
                svc.get_analysis(sid, user=user)                              # 5 analysis_not_found
            except bcd.NotFoundError:
                pass
            bcd.decode(small_png, ctx=ctx)                                    # 6 image freed
            try:
                bcd.decode(b"\x89PNG\r\n\x1a\n broken", ctx=ctx)             # 7 format error
            except bcd.FormatError:
                pass
            bcd.vector_from_json("[1, 2, 3]", ctx=ctx)                        # 8 bcd_free'd vector
            ctx.config()                                                      # 9 bcd_free'd JSON
            bcd.trend_label(0.2)                                              # 10

        for i in range(1000):  # warm up: caches, allocator arenas, SQLite page cache
            round_(i)
        rss0, anon0 = rss()
        heap0 = heap_in_use()
        for i in range(ROUNDS):
            round_(i)
        rss1, anon1 = rss()
        heap1 = heap_in_use()
    shutil.rmtree(data_dir, ignore_errors=True)
    print("\nleak test: %d rounds, ~%d calls" % (ROUNDS, ROUNDS * 9 + ROUNDS // 10))
    print("RSS %d -> %d bytes (%+d); anonymous RSS %d -> %d (%+d)" % (rss0, rss1, rss1 - rss0, anon0, anon1,
                                                                      anon1 - anon0))
    if heap0 is not None:
        print("malloc heap in use %d -> %d bytes (%+d)" % (heap0, heap1, heap1 - heap0))
    assert anon1 - anon0 < RSS_BOUND
    assert rss1 - rss0 < RSS_BOUND
    if heap0 is not None:
        assert heap1 - heap0 < RSS_BOUND
