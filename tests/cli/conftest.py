import json
import os
import subprocess

import pytest

CLI = os.environ.get("BCD_CLI", "bcd-cli")
TESTDATA = os.environ.get("BCD_TESTDATA_DIR", os.path.join(os.path.dirname(__file__), "../../../shared/testdata"))
SOURCE = os.environ.get("BCD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLES = os.path.join(SOURCE, "examples", "data")


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json(self):
        return json.loads(self.out)

    def error(self):
        """The error envelope printed on stderr (its first line)."""
        return json.loads(self.err.splitlines()[0])["error"]


def make_runner(root):
    """A bcd-cli runner in a clean environment with its own data dir (root / "data")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env["BCD_DATA_DIR"] = str(root / "data")
    env["HOME"] = str(root)

    def run(*args, env_extra=None, cwd=None):
        e = dict(env)
        e.update(env_extra or {})
        p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, env=e,
                           cwd=cwd or root, timeout=300, stdin=subprocess.DEVNULL)
        return Result(p)

    return run


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run bcd-cli in a clean environment with its own data dir and working directory."""
    return make_runner(tmp_path)
