"""supabase/migrations/20261125010000_bcd_jobs.sql on a real PostgreSQL: the analysis job
queue's RPCs (bcd_enqueue_job, bcd_claim_job, bcd_heartbeat_job, bcd_finish_job,
bcd_get_job) called the way the supabase store calls them, as the service role.

The end-to-end test through libbcd's supabase store (4 bcd-cli workers on 40 jobs, a
worker killed with SIGKILL, a corrupt image) waits for the job operations of
lib/store/supabase.c; these tests pin the SQL side they will call."""
import threading
import time
import uuid

import psycopg2
import pytest


def conn(p):
    c = psycopg2.connect(p.dsn)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute("set role service_role")
    return c


def rpc(c, fn, *args):
    """One RPC in its own transaction, as PostgREST runs it; returns the JSON answer."""
    with c.cursor() as cur:
        cur.execute("select public.%s(%s)" % (fn, ", ".join(["%s"] * len(args))), args)
        return cur.fetchone()[0]


def sqlstate(c, fn, *args):
    with pytest.raises(psycopg2.Error) as e:
        rpc(c, fn, *args)
    return e.value.pgcode


def new_session(p, user=None):
    user = user or str(uuid.uuid4())
    sid = p.query("insert into public.sessions (user_id, status) values (%s, 'completed') returning id",
                  (user,))[0][0]
    return str(sid), user


def test_enqueue_is_idempotent_per_active_session(fresh_project):
    p = fresh_project
    c = conn(p)
    sid, user = new_session(p)
    a = rpc(c, "bcd_enqueue_job", sid, user, None, 3)
    assert a["created"] is True
    job = a["job"]
    assert job["status"] == "queued" and job["attempts"] == 0 and job["max_attempts"] == 3
    assert job["session_id"] == sid and job["user_id"] == user
    assert job["created_at"].endswith("Z") and len(job["created_at"]) == 27
    b = rpc(c, "bcd_enqueue_job", sid, user, "other", 5)
    assert b["created"] is False and b["job"]["id"] == job["id"] and b["job"]["model"] is None
    # another user's or a missing session: PT404 (HTTP 404), nothing queued
    assert sqlstate(c, "bcd_enqueue_job", sid, str(uuid.uuid4()), None, 3) == "PT404"
    assert sqlstate(c, "bcd_enqueue_job", str(uuid.uuid4()), user, None, 3) == "PT404"
    assert sqlstate(c, "bcd_enqueue_job", sid, user, None, 0) == "PT400"
    # done: a new job
    got = rpc(c, "bcd_claim_job", "w1", 60000)["job"]
    rpc(c, "bcd_finish_job", got["id"], "w1", "done", None, None, None)
    d = rpc(c, "bcd_enqueue_job", sid, user, None, 3)
    assert d["created"] is True and d["job"]["id"] != job["id"]
    assert rpc(c, "bcd_get_job", None, sid)["id"] == d["job"]["id"]  # the newest of the session
    assert rpc(c, "bcd_get_job", job["id"], None)["status"] == "done"
    assert rpc(c, "bcd_get_job", str(uuid.uuid4()), None) is None


def test_concurrent_enqueues_of_one_session_make_one_job(fresh_project):
    p = fresh_project
    sid, user = new_session(p)
    answers, errors = [], []

    def enqueue():
        c = conn(p)
        try:
            answers.append(rpc(c, "bcd_enqueue_job", sid, user, None, 3))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            c.close()
    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({a["job"]["id"] for a in answers}) == 1
    assert sum(a["created"] for a in answers) == 1
    assert p.query("select count(*) from public.bcd_jobs where session_id = %s", (sid,))[0][0] == 1


def test_lease_heartbeat_takeover_and_exactly_once_completion(fresh_project):
    p = fresh_project
    c = conn(p)
    sid, user = new_session(p)
    job = rpc(c, "bcd_enqueue_job", sid, user, None, 3)["job"]
    got = rpc(c, "bcd_claim_job", "w1", 400)
    assert got["wait_ms"] == 0
    j = got["job"]
    assert j["id"] == job["id"] and j["status"] == "running" and j["worker_id"] == "w1" and j["attempts"] == 1
    assert j["lease_expires_at"] and j["started_at"]
    # held: nobody else gets it; told how long to wait
    none = rpc(c, "bcd_claim_job", "w2", 400)
    assert none["job"] is None and 0 < none["wait_ms"] <= 400
    # only the holder renews or finishes (PT409 = HTTP 409 job_lease_lost)
    assert sqlstate(c, "bcd_heartbeat_job", job["id"], "w2", 400) == "PT409"
    assert sqlstate(c, "bcd_finish_job", job["id"], "w2", "done", None, None, None) == "PT409"
    assert sqlstate(c, "bcd_heartbeat_job", str(uuid.uuid4()), "w1", 400) == "PT404"
    for _ in range(3):  # renewals keep it past the first lease
        time.sleep(0.25)
        rpc(c, "bcd_heartbeat_job", job["id"], "w1", 400)
        assert rpc(c, "bcd_claim_job", "w2", 400)["job"] is None
    # w1 goes silent: taken over after the lease
    time.sleep(0.45)
    j = rpc(c, "bcd_claim_job", "w2", 60000)["job"]
    assert j["id"] == job["id"] and j["worker_id"] == "w2" and j["attempts"] == 2
    assert j["error_code"] == "lease_expired" and "w1" in j["error"]
    # the late worker records nothing; the holder completes once
    assert sqlstate(c, "bcd_finish_job", job["id"], "w1", "done", None, None, None) == "PT409"
    done = rpc(c, "bcd_finish_job", job["id"], "w2", "done", None, None, None)
    assert done["status"] == "done" and done["error"] is None and done["finished_at"]
    assert sqlstate(c, "bcd_finish_job", job["id"], "w2", "done", None, None, None) == "PT409"
    assert rpc(c, "bcd_claim_job", "w3", 400) == {"job": None, "wait_ms": -1}


def test_bounded_retries_with_backoff_keep_the_error(fresh_project):
    p = fresh_project
    c = conn(p)
    sid, user = new_session(p)
    job = rpc(c, "bcd_enqueue_job", sid, user, None, 3)["job"]
    for attempt in (1, 2, 3):
        j = rpc(c, "bcd_claim_job", "w1", 60000)["job"]
        assert j["attempts"] == attempt
        j = rpc(c, "bcd_finish_job", job["id"], "w1", "failed", "network_error", "hiccup %d" % attempt, 300)
        assert j["error_code"] == "network_error" and j["error"] == "hiccup %d" % attempt
        if attempt < 3:
            assert j["status"] == "queued" and j["finished_at"] is None
            wait = rpc(c, "bcd_claim_job", "w1", 60000)
            assert wait["job"] is None and 100 < wait["wait_ms"] <= 300
            time.sleep(wait["wait_ms"] / 1000 + 0.02)
        else:
            assert j["status"] == "failed" and j["finished_at"]
    assert rpc(c, "bcd_claim_job", "w1", 60000) == {"job": None, "wait_ms": -1}
    # a permanent error (no retry) fails at once
    sid2, _ = new_session(p, user)
    job2 = rpc(c, "bcd_enqueue_job", sid2, user, None, 3)["job"]
    rpc(c, "bcd_claim_job", "w1", 60000)
    j = rpc(c, "bcd_finish_job", job2["id"], "w1", "failed", "image_corrupt", "cannot be decoded", None)
    assert j["status"] == "failed" and j["attempts"] == 1
    # a worker that dies on the last attempt: failed as lease_expired, not run again
    job3 = rpc(c, "bcd_enqueue_job", sid2, user, None, 1)["job"]
    assert rpc(c, "bcd_claim_job", "w1", 100)["job"]["id"] == job3["id"]
    time.sleep(0.15)
    assert rpc(c, "bcd_claim_job", "w2", 100) == {"job": None, "wait_ms": -1}
    j = rpc(c, "bcd_get_job", job3["id"], None)
    assert j["status"] == "failed" and j["error_code"] == "lease_expired" and "w1" in j["error"]


def test_four_workers_take_forty_jobs_exactly_once(fresh_project):
    """SKIP LOCKED: four concurrent claimers never take the same job nor wait on each other."""
    p = fresh_project
    c = conn(p)
    user = str(uuid.uuid4())
    jobs = set()
    for _ in range(40):
        sid, _ = new_session(p, user)
        jobs.add(rpc(c, "bcd_enqueue_job", sid, user, None, 3)["job"]["id"])
    taken, errors, lock = [], [], threading.Lock()

    def worker(n):
        wc = conn(p)
        try:
            while True:
                got = rpc(wc, "bcd_claim_job", "worker-%d" % n, 60000)
                if got["job"] is None:
                    if got["wait_ms"] < 0:
                        return
                    time.sleep(0.01)
                    continue
                time.sleep(0.005)  # the analysis
                rpc(wc, "bcd_heartbeat_job", got["job"]["id"], "worker-%d" % n, 60000)
                rpc(wc, "bcd_finish_job", got["job"]["id"], "worker-%d" % n, "done", None, None, None)
                with lock:
                    taken.append((got["job"]["id"], n))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            wc.close()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(j for j, _ in taken) == sorted(jobs)  # each exactly once
    assert len({n for _, n in taken}) >= 2
    assert p.query("select count(*) from public.bcd_jobs where status = 'done' and attempts = 1")[0][0] == 40


def test_users_read_only_their_own_jobs(fresh_project):
    p = fresh_project
    c = conn(p)
    sid, alice = new_session(p)
    sid_b, bob = new_session(p)
    job = rpc(c, "bcd_enqueue_job", sid, alice, None, 3)["job"]
    rpc(c, "bcd_enqueue_job", sid_b, bob, None, 3)

    def seen_by(user):
        uc = psycopg2.connect(p.dsn)
        try:
            with uc, uc.cursor() as cur:
                cur.execute("set local role authenticated")
                cur.execute("select set_config('request.jwt.claims', %s, true)",
                            ('{"sub": "%s", "role": "authenticated"}' % user,))
                cur.execute("select id from public.bcd_jobs")
                rows = [str(r[0]) for r in cur.fetchall()]
                with pytest.raises(psycopg2.Error):
                    cur.execute("select public.bcd_claim_job('x', 1000)")
                return rows
        finally:
            uc.close()
    assert seen_by(alice) == [job["id"]]
    assert len(seen_by(bob)) == 1 and seen_by(bob) != [job["id"]]
