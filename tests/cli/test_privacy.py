"""bcd-cli image add stores photos without their metadata: a photo with planted GPS,
serial numbers, maker notes, a thumbnail, XMP, IPTC, an ICC profile, comments and a
trailer is added, and the stored blob is checked byte by byte and pixel by pixel."""
import hashlib
import json
import os
import struct
import zlib

import pytest
from conftest import TESTDATA

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")

PLANT = b"PLANTED"


def ok(r):
    assert r.rc == 0, r.err
    return r.json()


def ifd(entries, start):
    """Big-endian IFD at offset start: entries (tag, type, count, bytes or int); returns
    (ifd bytes with its out-of-line data, {tag: position of the value field})."""
    size = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1}
    head = struct.pack(">H", len(entries))
    data = b""
    where = {}
    data_at = start + 2 + 12 * len(entries) + 4
    for tag, typ, count, val in entries:
        where[tag] = start + len(head) + 8
        if isinstance(val, int):
            v = struct.pack(">HH", val, 0) if typ == 3 else struct.pack(">I", val)
        elif len(val) <= 4:
            v = val.ljust(4, b"\0")
        else:
            v = struct.pack(">I", data_at + len(data))
            data += val + (b"\0" if len(val) % 2 else b"")
        head += struct.pack(">HHI", tag, typ, count) + v
    return head + b"\0\0\0\0" + data, where


def camera_tiff(orientation):
    """TIFF block of a phone: IFD0 (make, model, orientation), EXIF IFD (maker note,
    serial numbers), GPS IFD, IFD1 with a JPEG thumbnail."""
    thumb = b"\xff\xd8\xff\xfe\x00\x13PLANTED-THUMBNAIL\xff\xd9"
    t = bytearray(b"MM\0*\0\0\0\x08")
    i0, w0 = ifd([(0x010F, 2, 18, b"PLANTED-MAKE-ACME\0"), (0x0110, 2, 19, b"PLANTED-MODEL-X100\0"),
                  (0x0112, 3, 1, orientation), (0x8769, 4, 1, 0), (0x8825, 4, 1, 0)], 8)
    t += i0
    exif_at = len(t)
    ie, _ = ifd([(0x927C, 7, 24, b"PLANTED-MAKERNOTE-secret"), (0xA431, 2, 22, b"PLANTED-SERIAL-8C1F22\0"),
                 (0xA435, 2, 22, b"PLANTED-LENSSERIAL-77\0\0")], exif_at)
    t += ie
    gps_at = len(t)
    ig, _ = ifd([(0x0001, 2, 2, b"N\0"), (0x0002, 5, 3, struct.pack(">6I", 48, 1, 51, 1, 7500, 100)),
                 (0x001D, 2, 23, b"PLANTED-GPS:2026:01:01\0")], gps_at)
    t += ig
    ifd1_at = len(t)
    i1, w1 = ifd([(0x0201, 4, 1, 0), (0x0202, 4, 1, len(thumb))], ifd1_at)
    t += i1
    thumb_at = len(t)
    t += thumb
    struct.pack_into(">I", t, w0[0x8769], exif_at)
    struct.pack_into(">I", t, w0[0x8825], gps_at)
    struct.pack_into(">I", t, 8 + 2 + 12 * 5, ifd1_at)  # IFD0's next-IFD offset
    struct.pack_into(">I", t, w1[0x0201], thumb_at)
    return bytes(t)


def seg(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def planted_jpeg(src, orientation):
    base = open(src, "rb").read()
    assert base[:2] == b"\xff\xd8"
    return (b"\xff\xd8"
            + seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\x03\x01" + b"PLANTED-T")  # 3x1 thumbnail
            + seg(0xE1, b"Exif\0\0" + camera_tiff(orientation))
            + seg(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>PLANTED-XMP-CREATOR</x:xmpmeta>")
            + seg(0xE2, b"ICC_PROFILE\0\x01\x01PLANTED-ICC-DEVICE")
            + seg(0xED, b"Photoshop 3.0\x008BIM\x04\x04PLANTED-IPTC-BYLINE")
            + seg(0xFE, b"PLANTED-COMMENT 12 Example Street")
            + base[2:] + b"PLANTED-TRAILER-motion-photo")


def chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data))


def planted_png(src, orientation):
    base = open(src, "rb").read()
    head, rest = base[:33], base[33:]  # signature + IHDR
    return (head + chunk(b"tEXt", b"Comment\0PLANTED-TEXT") + chunk(b"tIME", b"\x07\xea\x01\x02\x03\x04\x05")
            + chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0PLANTED-XMP") + chunk(b"eXIf", camera_tiff(orientation))
            + rest + b"PLANTED-TRAILER")


def jpeg_app_segments(data):
    """[(marker, payload)] of the APPn/COM segments before the first scan."""
    out, p = [], 2
    while data[p] == 0xFF and data[p + 1] != 0xDA:
        m, n = data[p + 1], struct.unpack(">H", data[p + 2:p + 4])[0]
        if 0xE0 <= m <= 0xEF or m == 0xFE:
            out.append((m, data[p + 4:p + 2 + n]))
        p += 2 + n
    return out


def decode(data):
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # applies EXIF orientation
    assert img is not None
    return img


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_image_add_stores_no_metadata(cli, tmp_path, kind):
    if kind == "jpeg":
        photo = planted_jpeg(os.path.join(TESTDATA, "images", "exif-orientation", "Landscape_6.jpg"), 6)
    else:
        photo = planted_png(os.path.join(TESTDATA, "images", "pngsuite", "basn2c08.png"), 6)
    for needle in (b"PLANTED-GPS", b"PLANTED-SERIAL", b"PLANTED-MAKERNOTE", b"PLANTED-THUMBNAIL", b"PLANTED-XMP"):
        assert needle in photo
    f = tmp_path / ("photo." + ("jpg" if kind == "jpeg" else "png"))
    f.write_bytes(photo)
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    doc = ok(cli("--json", "--user", "alice", "image", "add", sid, "front", f))

    blob = (tmp_path / "data" / "blobs" / doc["storage_path"]).read_bytes()
    assert PLANT not in blob
    assert hashlib.sha256(blob).hexdigest() == doc["sha256"] and len(blob) == doc["size_bytes"]
    assert len(blob) < len(photo)
    # the same pixels, turned upright the same way
    assert np.array_equal(decode(blob), decode(photo))
    if kind == "jpeg":
        assert (doc["width"], doc["height"]) == (1800, 1200)  # stored 1200x1800, orientation 6
        apps = jpeg_app_segments(blob)
        exif = [p for m, p in apps if m == 0xE1]
        assert len(exif) == 1 and exif[0].startswith(b"Exif\0\0") and len(exif[0]) == 6 + 26
        assert struct.unpack(">H", exif[0][6 + 18:6 + 20])[0] == 6  # the Orientation value
        assert {m for m, _ in apps} <= {0xE0, 0xE1}  # JFIF and the one-tag EXIF block only
        assert blob.endswith(b"\xff\xd9")
    else:
        assert (doc["width"], doc["height"]) == (32, 32)
        for name in (b"tEXt", b"tIME", b"iTXt"):
            assert name not in blob
        assert blob.count(b"eXIf") == 1 and blob.endswith(b"IEND\xaeB`\x82")

    # the preview points at the stripped copy
    prev = ok(cli("--json", "--user", "alice", "image", "preview", sid, "front"))
    assert open(prev["path"], "rb").read() == blob


# ---- limits: bytes, pixels and images per session ---------------------------------------

def test_image_add_refuses_a_file_over_256_mib(cli, tmp_path):
    big = tmp_path / "huge.jpg"
    with open(big, "wb") as f:  # sparse: the size is what is checked, before reading
        f.write(b"\xff\xd8\xff")
        f.truncate((256 << 20) + 1)
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    r = cli("--json", "--user", "alice", "image", "add", sid, "front", big)
    assert r.rc == 7 and r.error()["code"] == "file_too_large"
    assert "limit 268435456" in r.error()["message"]
    assert not os.path.exists(tmp_path / "data" / "blobs" / sid)


def test_image_add_refuses_too_many_pixels(cli, tmp_path):
    src = os.path.join(TESTDATA, "images", "exif-orientation", "Landscape_1.jpg")  # 1800x1200
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    r = cli("--json", "--user", "alice", "image", "add", sid, "front", src, env_extra={"BCD_MAX_PIXELS": "2000000"})
    assert r.rc == 7 and r.error()["code"] == "image_too_large"
    r = cli("--json", "--user", "alice", "image", "add", sid, "front", src, env_extra={"BCD_MAX_DIMENSION": "1799"})
    assert r.rc == 7 and r.error()["code"] == "image_too_large"
    ok(cli("--json", "--user", "alice", "image", "add", sid, "front", src, env_extra={"BCD_MAX_PIXELS": "2160000"}))


def test_images_per_session_are_capped_at_60(cli, tmp_path):
    angles = ["front", "left", "right", "up", "down", "raised"]
    sid = ok(cli("--json", "--user", "alice", "session", "create"))["session_id"]
    for i in range(60):
        ok(cli("--json", "--user", "alice", "image", "register", sid, angles[i % 6], "/photos/%d.jpg" % i))
    r = cli("--json", "--user", "alice", "image", "register", sid, "front", "/photos/60.jpg")
    assert r.rc == 7 and r.error()["code"] == "too_many_images"
    assert "limit 60" in r.error()["message"]
    # a file added now is refused as well, and nothing of it is kept
    src = os.path.join(TESTDATA, "images", "jpeg", "baseline-420-testorig.jpg")
    r = cli("--json", "--user", "alice", "image", "add", sid, "front", src)
    assert r.rc == 7 and r.error()["code"] == "too_many_images"
    assert not os.path.exists(tmp_path / "data" / "blobs" / sid)
    # registering an image the session already has is still idempotent
    again = ok(cli("--json", "--user", "alice", "image", "register", sid, "left", "/photos/1.jpg"))
    assert again["created"] is False
    assert ok(cli("--json", "--user", "alice", "session", "info", sid))["session_id"] == sid
    assert len(ok(cli("--json", "--user", "alice", "session", "list"))["sessions"]) == 1
    assert ok(cli("--json", "--user", "alice", "session", "list"))["sessions"][0]["image_count"] == 60
