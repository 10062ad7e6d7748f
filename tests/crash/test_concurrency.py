"""Two bcd-cli processes adding images to and analyzing the same session of the local
store at once, many times over (seeded: BCD_CRASH_SEED replays). Every command must
succeed or fail with a clear conflict (exit 9: slot_conflict, order_index_out_of_sequence,
duplicate_image), busy message (exit 5, store_busy) or, for an add after an analysis was
saved, the refusal of a photo for an analyzed check (exit 10, session_already_analyzed);
and the session must end in a
state the rules allow:
  - per angle, the order_index values are 0..n-1, each once; a path once per session;
  - every image row has its blob, whole; no orphan or temporary file (the two processes
    add the same photos, so one may give up a blob the other one is taking);
  - every image an add reported is stored as reported;
  - a stored analysis is whole and covers only images that exist;
  - afterwards the session analyzes and completes as usual.
"""
import os
import random
import shutil
import threading

from conftest import EXAMPLES, SANITIZED, base_env, copy_store, new_session, ok, run, snapshot

SEED = int(os.environ.get("BCD_CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
SCALE = float(os.environ.get("BCD_CRASH_RUNS", "1"))
FILES = [("check1", "front"), ("check1", "left"), ("check1", "up"), ("check2", "front"), ("check2", "down")]
ANGLES = ["front", "left", "up", "down"]
CONFLICTS = {"slot_conflict", "order_index_out_of_sequence", "duplicate_image"}


def script(rng, sid, n=4):
    """n random commands on session sid: mostly adds of a few shared photos, some analyses."""
    cmds = []
    for _ in range(n):
        if rng.random() < 0.25:
            cmds.append(["--json", "analyze", sid])
            continue
        check, name = rng.choice(FILES)
        cmd = ["--json", "image", "add", sid, rng.choice(ANGLES), os.path.join(EXAMPLES, check, name + ".jpg")]
        if rng.random() < 0.3:
            cmd += ["--order-index", str(rng.randint(0, 1))]
        cmds.append(cmd)
    return cmds


def run_script(env, cmds, results):
    for c in cmds:
        results.append((c, run(env, *c)))


def check_result(cmd, r):
    if r.rc == 0:
        return "ok"
    e = r.error()
    if r.rc == 9 and e["code"] in CONFLICTS:
        return e["code"]
    if r.rc == 5 and e["code"] == "store_busy" and "try again" in e["message"]:
        return "busy"
    if r.rc == 10 and e["code"] == "session_already_analyzed" and cmd[2] == "add":
        return "analyzed"
    raise AssertionError("%s: exit %d, %s" % (cmd, r.rc, e))


def check_rules(snap, sid, adds):
    imgs = [i for i in snap["images"] if i[0] == sid]
    by_angle = {}
    for (_, angle, idx, path, ctype, size, sha) in imgs:
        by_angle.setdefault(angle, []).append(idx)
    for angle, idxs in by_angle.items():
        assert sorted(idxs) == list(range(len(idxs))), "%s: order_index %s" % (angle, sorted(idxs))
    paths = [i[3] for i in imgs]
    assert len(paths) == len(set(paths)), "a path twice in the session"
    # every add that succeeded is stored as it said
    for out in adds:
        assert (out["angle"], out["order_index"], out["storage_path"]) in \
            {(i[1], i[2], i[3]) for i in imgs}, "reported image missing: %s" % out
    # an analysis covers images that exist
    for g in snap["angles"]:
        if g[0] == sid:
            assert g[4] <= len(by_angle.get(g[1], [])), "analysis of %s counts %d images" % (g[1], g[4])


def test_two_processes_on_one_session(tmp_path):
    rng = random.Random("%d-concurrency" % SEED)
    # a completed session (3 angles) that both processes keep adding to and analyzing
    base = tmp_path / "base" / "data"
    env = base_env(base)
    sid = new_session(env, "check1", ["right", "raised", "left"])
    reps = max(1, int((6 if SANITIZED else 20) * SCALE))  # an analysis takes seconds under ASan
    tally = {}
    for rep in range(reps):
        d = tmp_path / str(rep)
        copy_store(base, d / "data")
        env = base_env(d / "data", home=d)
        scripts = [script(rng, sid), script(rng, sid)]
        results = [[], []]
        threads = [threading.Thread(target=run_script, args=(env, scripts[k], results[k])) for k in range(2)]
        label = "seed=%d rep=%d scripts=%s" % (SEED, rep, [[" ".join(c[1:3] + c[4:5] + [os.path.basename(c[5])] + c[6:]) if c[1] == "image" else "analyze" for c in s] for s in scripts])
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            adds = []
            for res in results:
                for cmd, r in res:
                    kind = check_result(cmd, r)
                    tally[kind] = tally.get(kind, 0) + 1
                    if kind == "ok" and cmd[1] == "image":
                        adds.append(r.json())
            ok(run(env, "--json", "session", "list"))
            check_rules(snapshot(str(d / "data"), unnamed_copies=True), sid, adds)
            # the session goes on as usual
            ok(run(env, "--json", "analyze", sid))
            ok(run(env, "--json", "session", "complete", sid))
            check_rules(snapshot(str(d / "data"), unnamed_copies=True), sid, adds)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (label, e)) from None
        shutil.rmtree(d)
    print("\n[concurrency] seed=%d reps=%d outcomes %s" % (SEED, reps, tally))
    assert tally.get("ok", 0) > 0
