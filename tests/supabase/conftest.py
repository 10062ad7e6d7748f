"""Fixtures of the supabase suite: a real PostgreSQL on loopback in a temporary folder,
supabase/migrations/ applied to it, the test server (fake_supabase.py) in front, and
bcd-cli pointed at it with --store supabase."""
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg2
import pytest

from fake_supabase import FakeSupabase

CLI = os.environ.get("BCD_CLI", "bcd-cli")
SOURCE = os.environ.get("BCD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLES = os.path.join(SOURCE, "examples", "data")
MIGRATIONS = os.path.join(SOURCE, "supabase", "migrations")
ANGLES = ["front", "left", "right", "up", "down", "raised"]
SERVICE_KEY = "sb_secret_" + uuid.uuid4().hex  # the gateway's new-style secret key
ANON_KEY = "sb_publishable_" + uuid.uuid4().hex  # what an app's users send with their access token
# A legacy service_role key is a JWT; the fake gateway compares it as an opaque string.
LEGACY_KEY = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0." + uuid.uuid4().hex

# Roles and settings a Supabase database has before any migration runs.
BOOTSTRAP = """
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
create schema storage;
grant usage on schema storage to anon, authenticated, service_role;
create table storage.buckets (id text primary key, name text not null unique, owner uuid, public boolean default false,
  file_size_limit bigint, allowed_mime_types text[], created_at timestamptz default now());
create table storage.objects (id uuid primary key default gen_random_uuid(), bucket_id text not null,
  name text not null, owner uuid, metadata jsonb, created_at timestamptz default now(), unique (bucket_id, name));
alter table storage.objects enable row level security;
grant select on storage.objects, storage.buckets to anon, authenticated;
grant all on storage.objects, storage.buckets to service_role;
"""


def pg_bindir():
    env = os.environ.get("BCD_PG_BINDIR")
    if env:
        return env if os.path.isfile(os.path.join(env, "initdb")) else None
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]) if
                  d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.path.isfile(os.path.join(d, "initdb")) and os.path.isfile(os.path.join(d, "pg_ctl")):
            return d
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """initdb + pg_ctl in a private folder; as 'postgres' (or 'nobody') when run as root."""

    def __init__(self):
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="bcd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = pw
                break
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
            os.chmod(self.dir, 0o700)

    def run(self, *cmd):
        cmd = [os.path.join(self.bindir, cmd[0]), *cmd[1:]]
        if self.user:
            uid, gid = self.user.pw_uid, self.user.pw_gid

            def demote():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            return subprocess.run(cmd, preexec_fn=demote, capture_output=True, text=True, cwd=self.dir,
                                  stdin=subprocess.DEVNULL, timeout=120)
        return subprocess.run(cmd, capture_output=True, text=True, cwd=self.dir, stdin=subprocess.DEVNULL,
                              timeout=120)

    def start(self):
        r = self.run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                     "--locale=C")
        if r.returncode:
            raise RuntimeError("initdb failed: " + r.stderr)
        opts = "-k %s -p %d -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off " \
               "-c max_connections=100" % (self.dir, self.port)
        r = self.run("pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.dir, "log"), "-w", "-t", "60",
                     "start")
        if r.returncode:
            log = open(os.path.join(self.dir, "log")).read() if os.path.exists(os.path.join(self.dir, "log")) else ""
            raise RuntimeError("pg_ctl start failed: " + r.stderr + log)
        return self

    def stop(self):
        self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, db="postgres"):
        return "host=127.0.0.1 port=%d user=postgres dbname=%s" % (self.port, db)

    def create_db(self, name, bootstrap=True, migrate=True):
        c = psycopg2.connect(self.dsn())
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute('create database "%s"' % name)
        c.close()
        if bootstrap:
            self.sql(name, BOOTSTRAP_ONCE if self.roles_made else BOOTSTRAP)
            self.roles_made = True
        if migrate:
            apply_migrations(self.dsn(name))
        return self.dsn(name)

    roles_made = False

    def sql(self, db, text):
        c = psycopg2.connect(self.dsn(db))
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute(text)
        c.close()


# roles are cluster-wide: later databases only need the grants
BOOTSTRAP_ONCE = "\n".join(l for l in BOOTSTRAP.splitlines() if not l.startswith("create role"))


def apply_migrations(dsn):
    files = sorted(glob.glob(os.path.join(MIGRATIONS, "*.sql")))
    assert files, "no migrations in " + MIGRATIONS
    c = psycopg2.connect(dsn)
    try:
        for f in files:
            with c:  # one transaction per file, as `supabase db push` does
                with c.cursor() as cur:
                    cur.execute(open(f).read())
    finally:
        c.close()


@pytest.fixture(scope="session")
def postgres():
    if not pg_bindir():
        pytest.skip("PostgreSQL server binaries not found (install Debian's postgresql)")
    pg = Postgres().start()
    yield pg
    pg.stop()


class Project:
    """One database + test server: what a Supabase project is to libbcd."""

    def __init__(self, pg, name):
        self.pg = pg
        self.name = name
        self.dsn = pg.create_db(name)
        self.storage = tempfile.mkdtemp(prefix="bcd-storage-")
        self.server = FakeSupabase(self.dsn, self.storage, SERVICE_KEY, anon_key=ANON_KEY).start()
        self.server.legacy = False

    def close(self):
        self.server.stop()
        shutil.rmtree(self.storage, ignore_errors=True)

    def query(self, sql, args=None):
        c = psycopg2.connect(self.dsn)
        try:
            with c, c.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()


@pytest.fixture(scope="session")
def project(postgres):
    p = Project(postgres, "bcd_main")
    yield p
    p.close()


@pytest.fixture
def fresh_project(postgres, request):
    p = Project(postgres, "bcd_" + uuid.uuid4().hex[:12])
    yield p
    p.close()


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json(self):
        return json.loads(self.out)

    def error(self):
        return json.loads(self.err.splitlines()[0])["error"]


def without_lesions(cli):
    """The runner with BCD_LESIONS=off, for the tests that count the requests analyze
    makes: the lesions read each angle's photos again, at full size."""
    def run(*args, env_extra=None, **kw):
        e = {"BCD_LESIONS": "off"}
        e.update(env_extra or {})
        return cli(*args, env_extra=e, **kw)
    return run


def make_cli(tmp_path, url, key, store="supabase"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env["HOME"] = str(tmp_path)
    env["BCD_DATA_DIR"] = str(tmp_path / "data")
    env["BCD_HTTP_TIMEOUT_MS"] = "20000"
    if store == "supabase":
        env["SUPABASE_URL"] = url
        env["SUPABASE_SERVICE_ROLE_KEY"] = key

    def run(*args, env_extra=None, store_opt=True):
        e = dict(env)
        e.update(env_extra or {})
        argv = [CLI, *map(str, args)]
        if store_opt:
            argv += ["--store", store]
        p = subprocess.run(argv, capture_output=True, text=True, env=e, cwd=tmp_path, timeout=300,
                           stdin=subprocess.DEVNULL)
        return Result(p)

    return run


@pytest.fixture
def sb(project, tmp_path):
    """bcd-cli on the shared project; faults and the request log are reset per test."""
    project.server.clear()
    yield make_cli(tmp_path, project.server.url, SERVICE_KEY)
    assert not project.server.bugs, project.server.bugs[0]
    project.server.clear()


@pytest.fixture
def local(tmp_path):
    return make_cli(tmp_path, None, None, store="local")


def ok(r):
    assert r.rc == 0, r.err
    return r.json()


def analysis_blobs(project, sid):
    """Object keys ("<session>/<name>") that the stored analysis of sid names: its heatmaps
    working copies and feature maps."""
    keys = set()
    for (details,) in project.query("select details from session_analysis where session_id = %s", (sid,)):
        d = details if isinstance(details, dict) else json.loads(details or "{}")
        for it in d.get("per_angle", []):
            keys |= {k for k in (it.get("heatmap"), (it.get("working_copy") or {}).get("key"),
                                 (it.get("feature_map") or {}).get("key")) if k}
    return keys


def new_user():
    return str(uuid.uuid4())


def new_session(cli, user, check="check1", angles=ANGLES, complete=True):
    sid = ok(cli("--json", "--user", user, "session", "create"))["session_id"]
    for a in angles:
        ok(cli("--json", "--user", user, "image", "add", sid, a, os.path.join(EXAMPLES, check, a + ".jpg")))
    if complete:
        ok(cli("--json", "--user", user, "session", "complete", sid))
    return sid
