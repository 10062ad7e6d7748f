"""Run the supabase suite, or skip it (exit 77, shown as SKIP by meson) with a visible
reason when what it needs is missing: PostgreSQL server binaries, psycopg2, pytest."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def skip(why):
    print("SKIP supabase suite: " + why, flush=True)
    sys.exit(77)


try:
    import pytest
except ImportError:
    skip("pytest is missing (Debian: python3-pytest)")
try:
    import psycopg2  # noqa: F401
except ImportError:
    skip("psycopg2 is missing (Debian: python3-psycopg2)")
from conftest import pg_bindir  # noqa: E402

if not pg_bindir():
    skip("PostgreSQL server binaries not found (Debian: postgresql; or set BCD_PG_BINDIR)")
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs", HERE, *sys.argv[1:]]))
