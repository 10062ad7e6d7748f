"""Files bcd-cli writes and reads: reports, heatmaps and preprocessed images written safely
(links followed, standard output and devices written in place, mode 0600, folders 0700),
the .env file read only when asked, and the local store's folder."""
import json
import os
import stat
import subprocess

import pytest
from conftest import CLI, EXAMPLES

ANGLES = ["front", "left", "right", "up", "down", "raised"]


def ok(r):
    assert r.rc == 0, r.err
    return r.json() if r.out.startswith(("{", "[")) else r.out


def analyzed_session(cli, user="alice", check="check1"):
    sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
    for a in ANGLES[:3]:
        ok(cli("--json", "image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg"), "--user", user))
    ok(cli("--json", "session", "complete", sid, "--user", user))
    ok(cli("--json", "analyze", sid, "--user", user))
    return sid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One analyzed check in a store shared by the tests of this module that only read it."""
    from conftest import make_runner
    root = tmp_path_factory.mktemp("files")
    run = make_runner(root)
    return run, analyzed_session(run), root


def test_report_html_to_dev_stdout_keeps_it_a_link(store):
    cli, sid, root = store
    before = os.lstat("/dev/stdout")
    r = cli("report", sid, "--user", "alice", "--html", "/dev/stdout")
    assert r.rc == 0, r.err
    assert r.out.lstrip().startswith("<!DOCTYPE html>") and r.out.rstrip().endswith("</html>")
    assert "Report written" not in r.out
    after = os.lstat("/dev/stdout")
    assert stat.S_ISLNK(after.st_mode) and after.st_ino == before.st_ino
    # '-' is standard output too; a redirection to a file stays the shell's file
    out = root / "redirected.html"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env["BCD_DATA_DIR"] = str(root / "data")
    for target in ("-", "/dev/stdout"):
        with open(out, "w") as f:
            p = subprocess.run([CLI, "report", sid, "--user", "alice", "--html", target], stdout=f,
                               stderr=subprocess.PIPE, env=env, cwd=root, timeout=300)
        assert p.returncode == 0, p.stderr
        assert out.read_text().startswith("<!DOCTYPE html>")


def test_report_html_to_a_pipe_and_a_device(store, tmp_path):
    cli, sid, _ = store
    r = cli("report", sid, "--user", "alice", "--html", "/dev/null")
    assert r.rc == 0, r.err
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env["BCD_DATA_DIR"] = str(store[2] / "data")
    p = subprocess.Popen([CLI, "report", sid, "--user", "alice", "--html", str(fifo)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(fifo) as f:
        page = f.read()
    assert p.wait(timeout=300) == 0, p.stderr.read()
    assert page.startswith("<!DOCTYPE html>")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_report_html_through_a_link_replaces_its_target(store, tmp_path):
    cli, sid, _ = store
    target = tmp_path / "real" / "report.html"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to(os.path.relpath(target, tmp_path))
    r = cli("report", sid, "--user", "alice", "--html", link)
    assert r.rc == 0, r.err
    assert link.is_symlink()
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(os.listdir(target.parent)) == ["report.html"]  # no temporary file left
    # never renamed over a folder
    folder = tmp_path / "folder"
    folder.mkdir()
    r = cli("report", sid, "--user", "alice", "--html", folder)
    assert r.rc != 0
    assert folder.is_dir()


def test_preprocess_out_follows_links_and_writes_private_files(cli, tmp_path):
    photo = os.path.join(EXAMPLES, "check1", "front.jpg")
    for ext in ("png", "f32"):
        target = tmp_path / ("t." + ext)
        target.write_text("old")
        os.chmod(target, 0o644)
        link = tmp_path / ("link." + ext)
        link.symlink_to(target)
        ok(cli("preprocess", photo, "--out", link))
        assert link.is_symlink()
        assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
        assert os.path.getsize(target) == (3 * 224 * 224 * 4 if ext == "f32" else os.path.getsize(target))
        assert os.path.getsize(target) > 3
    assert sorted(os.listdir(tmp_path)) == ["link.f32", "link.png", "t.f32", "t.png"]


def test_heatmaps_folder_is_private(cli, tmp_path):
    first = analyzed_session(cli, check="check1")
    second = analyzed_session(cli, check="check2")
    out = tmp_path / "maps" / "deep"
    ok(cli("--json", "compare", second, first, "--user", "alice", "--heatmaps", out))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(out.parent).st_mode) == 0o700
    for f in os.listdir(out):
        assert stat.S_IMODE(os.stat(out / f).st_mode) == 0o600


def test_dotenv_in_the_current_folder_is_not_read(cli, tmp_path):
    (tmp_path / ".env").write_text("BCD_STORE=mongo\nBCD_MODEL=from-dotenv.pt\n")
    r = cli("config")
    assert r.rc == 0, r.err
    cfg = json.loads(r.out)
    assert cfg["env_file"] is None and cfg["BCD_MODEL"] != "from-dotenv.pt"
    ok(cli("--json", "session", "list", "--user", "alice"))


def test_dotenv_read_when_asked_and_named_by_config(cli, tmp_path):
    env = tmp_path / "bcd.env"
    env.write_text("BCD_MODEL=from-file.pt\n")
    for args, extra in ((["--env-file", env], None), ([], {"BCD_ENV_FILE": str(env)})):
        r = cli("config", *args, env_extra=extra)
        assert r.rc == 0, r.err
        cfg = json.loads(r.out)
        assert cfg["env_file"] == str(env) and cfg["BCD_MODEL"] == "from-file.pt"
    # the option wins over the variable
    other = tmp_path / "other.env"
    other.write_text("BCD_MODEL=other.pt\n")
    cfg = json.loads(cli("config", "--env-file", other, env_extra={"BCD_ENV_FILE": str(env)}).out)
    assert cfg["env_file"] == str(other) and cfg["BCD_MODEL"] == "other.pt"


@pytest.mark.parametrize("text", ["BCD_STORE=mongo\n", "not a line\n", None])
def test_bad_dotenv_never_breaks_config_or_help(cli, tmp_path, text):
    env = tmp_path / "bad.env"
    if text is not None:
        env.write_text(text)
    r = cli("config", "--env-file", env)
    assert r.rc == 0, r.err
    cfg = json.loads(r.out)
    assert cfg["env_file"] is None and cfg["env_file_error"]
    assert "warning" in r.err and str(env) in r.err
    for args in (["--help"], ["session", "list", "--help"]):
        r = cli(*args, env_extra={"BCD_ENV_FILE": str(env)})
        assert r.rc == 0 and "Usage" in r.out
    # other commands were asked to use it: they fail, saying why
    r = cli("session", "list", "--user", "alice", env_extra={"BCD_ENV_FILE": str(env)})
    assert r.rc != 0 and r.error()["code"] in ("invalid_config_value", "invalid_dotenv", "file_not_found")


def test_a_new_store_is_announced_once(cli, tmp_path):
    r = cli("--json", "session", "list", "--user", "alice", "--data-dir", tmp_path / "typo")
    assert r.rc == 0, r.err
    assert json.loads(r.out) is not None
    assert "created a new, empty local store" in r.err and str(tmp_path / "typo") in r.err
    r = cli("--json", "session", "list", "--user", "alice", "--data-dir", tmp_path / "typo")
    assert r.rc == 0 and "created" not in r.err
    # an error keeps its envelope on the first line of stderr, the notice after it
    r = cli("session", "info", "not-a-uuid", "--user", "alice", "--data-dir", tmp_path / "other")
    assert r.rc == 3 and r.error()["code"]
    assert "created a new, empty local store" in r.err.splitlines()[-1]


def _read_only(root):
    """Make root read-only media for this process: a read-only mount when running as root
    (root ignores permissions), permissions otherwise. Returns an undo function."""
    if os.geteuid() != 0:
        for d, dirs, files in os.walk(root):
            for f in files:
                os.chmod(os.path.join(d, f), 0o400)
            os.chmod(d, 0o500)

        def undo():
            for d, dirs, files in os.walk(root):
                os.chmod(d, 0o700)
        return undo
    p = subprocess.run(["mount", "--bind", str(root), str(root)], capture_output=True)
    if p.returncode != 0:
        pytest.skip("cannot make a read-only mount here")
    p = subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], capture_output=True)
    if p.returncode != 0:
        subprocess.run(["umount", str(root)])
        pytest.skip("cannot make a read-only mount here")
    return lambda: subprocess.run(["umount", str(root)], check=True)


def test_store_on_read_only_media_can_be_read(cli, tmp_path):
    data = tmp_path / "data"
    sid = analyzed_session(cli)
    undo = _read_only(data)
    try:
        with pytest.raises(OSError):
            (data / "probe").write_text("x")
        sessions = ok(cli("--json", "session", "list", "--user", "alice"))
        assert sid in json.dumps(sessions)
        assert ok(cli("--json", "analysis", "get", sid, "--user", "alice"))
        r = cli("report", sid, "--user", "alice", "--html", tmp_path / "report.html")
        assert r.rc == 0, r.err
        assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
        assert "created" not in r.err
        # writing is refused with a clear error
        r = cli("session", "create", "--user", "alice")
        assert r.rc != 0
        assert r.error()["code"] in ("store_unwritable", "store_read_only")
    finally:
        undo()
