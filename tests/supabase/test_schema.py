"""supabase/migrations/ on a real PostgreSQL: idempotence, constraints, row-level security,
seed-compatible tables, and embeddings stored the seed's way (JSON text) or as array text."""
import json

import psycopg2
import pytest
from conftest import (ANGLES, SERVICE_KEY, FakeSupabase, apply_migrations,
                      make_cli, new_session, new_user, ok)


def c_query(dsn, sql):
    c = psycopg2.connect(dsn)
    try:
        with c, c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        c.close()


def as_user(dsn, user, sql, args=None, role="authenticated"):
    c = psycopg2.connect(dsn)
    try:
        with c, c.cursor() as cur:
            cur.execute("set local role %s" % role)
            if user:
                cur.execute("select set_config('request.jwt.claims', %s, true)",
                            (json.dumps({"sub": user, "role": role}),))
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def test_migrations_apply_twice(fresh_project):
    apply_migrations(fresh_project.dsn)
    apply_migrations(fresh_project.dsn)
    names = {r[0] for r in fresh_project.query(
        "select conname from pg_constraint where conrelid in ('public.images'::regclass, 'public.sessions'::regclass)")}
    assert {"images_path_key", "images_slot_key", "images_image_type_check", "sessions_status_check"} <= names


def test_constraints(fresh_project):
    p = fresh_project
    u = new_user()
    sid = p.query("insert into sessions (user_id) values (%s) returning id", (u,))[0][0]
    p.query("insert into images (session_id, image_type, order_index, storage_path) values (%s, 'front', 0, 'a')",
            (sid,))
    for sql, code in (
        ("insert into images (session_id, image_type, order_index, storage_path) values (%s, 'front', 1, 'a')",
         "23505"),
        ("insert into images (session_id, image_type, order_index, storage_path) values (%s, 'front', 0, 'b')",
         "23505"),
        ("insert into images (session_id, image_type, order_index, storage_path) values (%s, 'sideways', 0, 'c')",
         "23514"),
        ("insert into images (session_id, image_type, order_index, storage_path) values (%s, 'left', -1, 'd')",
         "23514"),
        ("update sessions set status = 'lost' where id = %s", "23514"),
    ):
        with pytest.raises(psycopg2.Error) as e:
            p.query(sql, (sid,))
        assert e.value.pgcode == code, sql
    with pytest.raises(psycopg2.Error) as e:
        p.query("insert into images (session_id, image_type, order_index, storage_path) values "
                "(gen_random_uuid(), 'front', 0, 'x')")
    assert e.value.pgcode == "23503"
    # deleting a session takes everything of it along
    p.query("delete from sessions where id = %s", (sid,))
    assert p.query("select count(*) from images where session_id = %s", (sid,))[0][0] == 0


def test_row_level_security_shows_users_only_their_rows(sb, project):
    alice, bob = new_user(), new_user()
    sa = new_session(sb, alice, angles=ANGLES[:3])
    sbob = new_session(sb, bob, angles=ANGLES[:3])
    ok(sb("--json", "--user", alice, "analyze", sa))
    ok(sb("--json", "--user", bob, "analyze", sbob))
    dsn = project.dsn
    for table in ("sessions", "bcd_session_overview"):
        rows = as_user(dsn, alice, "select id from %s" % table)
        assert [str(r[0]) for r in rows] == [sa], table
    for table, col in (("images", "session_id"), ("session_analysis", "session_id"), ("angle_analysis", "session_id"),
                       ("session_embeddings", "session_id"), ("angle_embeddings", "session_id"),
                       ("bcd_user_embeddings", "session_id")):
        rows = as_user(dsn, alice, "select distinct %s from %s" % (col, table))
        assert [str(r[0]) for r in rows] == [sa], table
    mine = as_user(dsn, alice, "select bcd_get_analysis(%s)", (sa,))[0][0]
    assert mine["analysis"] is not None and len(mine["angles"]) == 3
    theirs = as_user(dsn, alice, "select bcd_get_analysis(%s)", (sbob,))[0][0]
    assert theirs["analysis"] is None and theirs["angles"] == [] and theirs["session_embedding"] is None
    # signed out (anon): nothing at all
    assert as_user(dsn, None, "select count(*) from sessions", role="anon")[0][0] == 0
    # users cannot write, nor save analyses
    with pytest.raises(psycopg2.Error) as e:
        as_user(dsn, alice, "insert into sessions (user_id) values (%s)", (alice,))
    assert e.value.pgcode == "42501"
    # not even through a missing policy: the API roles hold no write privilege at all
    # (TRUNCATE would bypass row-level security)
    for role in ("authenticated", "anon"):
        for sql in ("update sessions set status = 'completed' where id = %s returning id",
                    "delete from angle_analysis where session_id = %s returning id",
                    "truncate images cascade"):
            with pytest.raises(psycopg2.Error) as e:
                as_user(dsn, alice, sql, (sa,) if "%s" in sql else None, role=role)
            assert e.value.pgcode == "42501", (role, sql)
    assert len(as_user(dsn, alice, "select id from images where session_id = %s", (sa,))) == 3
    with pytest.raises(psycopg2.Error) as e:
        as_user(dsn, alice, "select bcd_save_analysis(%s, '{}'::jsonb)", (sa,))
    assert e.value.pgcode == "42501"


SEED_TABLES = """
create table public.sessions (id uuid primary key default gen_random_uuid(), user_id uuid not null,
  status text not null default 'created', created_at timestamptz not null default now());
create table public.images (id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions(id) on delete cascade, image_type text not null,
  storage_path text not null, created_at timestamptz not null default now());
create table public.session_analysis (id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions(id), overall_change_score double precision,
  created_at timestamptz not null default now());
create table public.angle_analysis (id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions(id), angle_type text not null,
  change_score double precision, summary text, created_at timestamptz not null default now());
create table public.session_embeddings (id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions(id), user_id uuid, embedding text not null,
  created_at timestamptz not null default now());
"""


def test_migrations_upgrade_the_seed_tables(postgres, tmp_path):
    name = "bcd_seed"
    postgres.create_db(name, bootstrap=True, migrate=False)
    dsn = postgres.dsn(name)
    c = psycopg2.connect(dsn)
    with c, c.cursor() as cur:
        cur.execute(SEED_TABLES)
        # a row the seed wrote: its embedding as JSON text
        cur.execute("insert into sessions (id, user_id, status) values "
                    "('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000aa', 'completed')")
        cur.execute("insert into session_embeddings (session_id, user_id, embedding) values "
                    "('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000aa', '[0.5, -1.25]')")
    c.close()
    apply_migrations(dsn)
    storage = tmp_path / "storage"
    srv = FakeSupabase(dsn, str(storage), SERVICE_KEY).start()
    try:
        cli = make_cli(tmp_path, srv.url, SERVICE_KEY)
        user = "00000000-0000-4000-8000-0000000000aa"
        lst = ok(cli("--json", "--user", user, "session", "list"))
        assert lst["count"] == 1 and lst["sessions"][0]["status"] == "completed"
        sid = new_session(cli, user)
        d = ok(cli("--json", "--user", user, "analyze", sid))["data"]
        # the seed's embedding has no model: it is not part of this model's baseline
        assert d["baseline_sessions"] == 0
        s2 = new_session(cli, user, check="check2")
        d2 = ok(cli("--json", "--user", user, "analyze", s2))["data"]
        assert d2["baseline_sessions"] == 1 and d2["scores"]["change_score"] > 0
        # the session embedding column stayed text: what libbcd wrote there reads back
        assert c_query(dsn, "select pg_typeof(embedding)::text from session_embeddings limit 1") == "text"
        cmp = ok(cli("--json", "--user", user, "compare", s2, sid))["data"]
        assert cmp["comparison_method"] == "embedding" and cmp["overall_delta"] > 0
    finally:
        assert not srv.bugs, srv.bugs
        srv.stop()


def convert_embeddings(p, how):
    """Store embeddings the way an older or other schema does: text JSON (the seed) or
    the text of an array literal."""
    expr = {"json": "array_to_json(embedding)::text", "literal": "embedding::text"}[how]
    p.query("drop view bcd_user_embeddings;"
            "alter table session_embeddings alter column embedding type text using %s;"
            "alter table angle_embeddings alter column embedding type text using %s;"
            "create view bcd_user_embeddings with (security_invoker = true) as "
            "select e.session_id, ''::text as angle, e.model, e.dim, e.checksum, to_jsonb(e.embedding) as embedding, "
            "s.user_id from session_embeddings e join sessions s on s.id = e.session_id union all "
            "select e.session_id, e.angle, e.model, e.dim, e.checksum, to_jsonb(e.embedding), s.user_id "
            "from angle_embeddings e join sessions s on s.id = e.session_id;"
            "grant select on bcd_user_embeddings to service_role, authenticated" % (expr, expr))


@pytest.mark.parametrize("how", ["json", "literal"])
def test_embeddings_stored_as_text_read_the_same(fresh_project, tmp_path, how):
    p = fresh_project
    cli = make_cli(tmp_path, p.server.url, SERVICE_KEY)
    user = new_user()
    s1 = new_session(cli, user, check="check1")
    s2 = new_session(cli, user, check="check2")
    ok(cli("--json", "--user", user, "analyze", s1))
    want = ok(cli("--json", "--user", user, "analyze", s2))["data"]
    want_cmp = ok(cli("--json", "--user", user, "compare", s2, s1))["data"]
    convert_embeddings(p, how)
    sample = p.query("select embedding from session_embeddings where session_id = %s", (s1,))[0][0]
    assert sample.startswith("[" if how == "json" else "{")
    got = ok(cli("--json", "--user", user, "analyze", s2))["data"]  # baseline read from text
    assert got["scores"]["change_score"] == pytest.approx(want["scores"]["change_score"], abs=1e-9)
    assert [a["change_score"] for a in got["session_analysis"]["per_angle"]] == pytest.approx(
        [a["change_score"] for a in want["session_analysis"]["per_angle"]], abs=1e-9)
    cmp = ok(cli("--json", "--user", user, "compare", s2, s1))["data"]  # embeddings read from text
    assert cmp["comparison_method"] == "embedding"
    assert cmp["overall_delta"] == pytest.approx(want_cmp["overall_delta"], abs=1e-9)
    # a damaged embedding is reported, not used
    p.query("update session_embeddings set embedding = '[1, 2' where session_id = %s", (s1,))
    r = cli("--user", user, "compare", s2, s1)
    assert r.rc == 6 and r.error()["code"] == "embedding_corrupt"


def test_lesions_view_lists_each_users_own_lesions(sb, project):
    """The lesions analyze stores with an analysis, one row per lesion per check in
    bcd_lesions, ids carried from check to check, row-level security as for the rest."""
    alice, bob = new_user(), new_user()
    first = new_session(sb, alice, check="check1")
    second = new_session(sb, alice, check="check2")
    other = new_session(sb, bob, check="check1")
    for user, sid in ((alice, first), (alice, second), (bob, other)):
        ok(sb("--json", "--user", user, "analyze", sid))
    table = ok(sb("--json", "--user", alice, "lesions", second))["data"]
    left = next(a for a in table["angles"] if a["angle_type"] == "left")
    assert left["status"] == "compared" and left["changed"] >= 1
    rows = as_user(project.dsn, alice, "select session_id, angle_type, lesion_id, state, changed, center_x, "
                   "previous_session_id from bcd_lesions where session_id = %s and angle_type = 'left' "
                   "order by lesion_id", (second,))
    assert [(r[2], r[3], r[4]) for r in rows] == sorted((les["id"], les["state"], les["changed"])
                                                        for les in left["lesions"])
    assert all(str(r[6]) == first for r in rows)
    # ids carried: a matched lesion of the second check has an id of the first
    firsts = {r[0] for r in as_user(project.dsn, alice, "select lesion_id from bcd_lesions where session_id = %s "
                                    "and angle_type = 'left'", (first,))}
    assert any(r[2] in firsts for r in rows if r[3] == "matched")
    # each user sees only their own; signed out, nothing
    seen = {str(r[0]) for r in as_user(project.dsn, alice, "select distinct session_id from bcd_lesions")}
    assert seen == {first, second}
    assert {str(r[0]) for r in as_user(project.dsn, bob, "select distinct session_id from bcd_lesions")} == {other}
    assert as_user(project.dsn, None, "select count(*) from bcd_lesions", role="anon")[0][0] == 0
