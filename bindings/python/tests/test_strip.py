"""bcd.strip_metadata(): metadata out, pixels and orientation kept (bcd_image_strip_metadata)."""
import os
import struct

import pytest

import bcd

from conftest import EXAMPLES


def seg(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def exif(orientation, extra):
    """EXIF APP1 payload: IFD0 with Orientation and an ImageDescription holding `extra`."""
    desc_at = 8 + 2 + 2 * 12 + 4
    tiff = (b"MM\0*\0\0\0\x08" + struct.pack(">H", 2)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
            + struct.pack(">HHII", 0x010E, 2, len(extra), desc_at) + b"\0\0\0\0" + extra)
    return b"Exif\0\0" + tiff


def test_strip_metadata_keeps_pixels_and_orientation():
    base = open(os.path.join(EXAMPLES, "check1", "front.jpg"), "rb").read()
    photo = (b"\xff\xd8" + seg(0xE1, exif(6, b"PLANTED-GPS-48.85N-2.35E\0"))
             + seg(0xFE, b"PLANTED-COMMENT") + seg(0xED, b"Photoshop 3.0\0PLANTED-IPTC") + base[2:])
    clean = bcd.strip_metadata(photo)
    assert isinstance(clean, bytes) and b"PLANTED" not in clean and len(clean) < len(photo)
    a, b = bcd.decode(photo), bcd.decode(clean)
    assert a.shape == b.shape and bytes(memoryview(a).cast("B")) == bytes(memoryview(b).cast("B"))
    h, w = bcd.decode(base).shape[:2]
    assert b.shape[:2] == (w, h)  # orientation 6 still turns the picture
    assert bcd.strip_metadata(clean) == clean


def test_strip_metadata_refuses_other_data():
    with pytest.raises(bcd.FormatError):
        bcd.strip_metadata(b"GIF89a not a photo")
    with pytest.raises(TypeError):
        bcd.strip_metadata("a str")
