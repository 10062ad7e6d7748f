"""Loading libbcd and checking its version against the binding's."""
import ctypes
import os

import pytest

import bcd
from bcd import _lib


def test_library_version_matches_binding_major():
    assert bcd.library_version() == "%d.%d.%d" % (bcd.library_version_number() // 10000,
                                                  bcd.library_version_number() // 100 % 100,
                                                  bcd.library_version_number() % 100)
    assert bcd.library_version_number() // 10000 == bcd.BINDING_VERSION_NUMBER // 10000
    assert bcd.library_version_number() >= bcd.BINDING_VERSION_NUMBER


def test_load_library_with_the_same_explicit_path_returns_the_loaded_library():
    lib = bcd.load_library()
    assert bcd.load_library(lib.path) is lib
    assert isinstance(lib.cdll, ctypes.CDLL) and not isinstance(lib.cdll, ctypes.PyDLL)


def test_load_library_with_another_path_is_refused():
    with pytest.raises(bcd.LibraryError, match="already loaded"):
        bcd.load_library("/nonexistent/libbcd.so")


def test_a_library_of_another_major_version_is_refused(monkeypatch):
    monkeypatch.setattr(_lib, "_VMAJOR", _lib._VMAJOR + 1)
    with pytest.raises(bcd.LibraryError, match="does not match the Python binding"):
        _lib.Library(bcd.load_library().path)


def test_an_older_library_than_the_binding_is_refused(monkeypatch):
    monkeypatch.setattr(_lib, "BINDING_VERSION_NUMBER", bcd.library_version_number() + 1)
    with pytest.raises(ImportError, match="at least"):
        _lib.Library(bcd.load_library().path)


def test_a_library_that_is_not_libbcd_is_refused():
    with pytest.raises(bcd.LibraryError, match="not libbcd"):
        _lib.Library("libc.so.6")


def test_a_missing_library_gives_a_clear_error():
    with pytest.raises(bcd.LibraryError, match="cannot load"):
        _lib.Library("/nonexistent/libbcd.so.0")


def test_library_is_found_through_bcd_library_env():
    assert os.environ.get("BCD_LIBRARY"), "the tests run with BCD_LIBRARY set"
    assert os.path.realpath(bcd.load_library().path) == os.path.realpath(os.environ["BCD_LIBRARY"])


def test_strerror_and_status_values():
    assert bcd.strerror(bcd.status.ENOTFOUND) == "not found"
    assert bcd.error_class(bcd.status.ENOTFOUND) is bcd.NotFoundError
    assert bcd.error_class(-999) is bcd.Error
