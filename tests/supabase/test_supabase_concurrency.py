"""Two bcd-cli processes adding photos to and analyzing the same Supabase session at once
end in a state the rules allow: every photo registered once, order indexes 0..n-1 per
angle without gap or duplicate, one whole analysis (all four analysis tables agree), and
no failure other than a clear conflict (or the refusal of a photo for a check whose
analysis was saved first)."""
import json
import os
import subprocess

from conftest import ANGLES, CLI, EXAMPLES, SERVICE_KEY, analysis_blobs, new_session, new_user, ok

CONFLICTS = {"slot_conflict", "registration_contention", "order_index_out_of_sequence", "duplicate_image",
             "constraint_violation"}


def spawn(env, *args):
    return subprocess.Popen([CLI, "--store", "supabase", "--json", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def finish(procs):
    out = []
    for p in procs:
        o, e = p.communicate(timeout=240)
        out.append((p.returncode, o, e))
    return out


def analysis(project, sid):
    return project.query(
        "select (select count(*) from session_analysis where session_id = %s), "
        "(select count(*) from angle_analysis where session_id = %s), "
        "(select count(*) from angle_embeddings where session_id = %s), "
        "(select count(*) from session_embeddings where session_id = %s), "
        "(select count(distinct created_at) from (select created_at from angle_analysis where session_id = %s "
        "union all select created_at from angle_embeddings where session_id = %s union all select created_at "
        "from session_analysis where session_id = %s) t)", (sid,) * 7)[0]


def test_two_processes_adding_and_analyzing_one_session(sb, project, tmp_path):
    user = new_user()
    sid = new_session(sb, user, angles=ANGLES[:3])  # completed: analyzable, photos may come until analyzed
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BCD_", "SUPABASE_"))}
    env.update(HOME=str(tmp_path), BCD_DATA_DIR=str(tmp_path / "data"), SUPABASE_URL=project.server.url,
               SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY, BCD_HTTP_TIMEOUT_MS="60000")
    failures = []
    refused = 0
    for angle in ANGLES[3:]:
        # an analyzed check takes no new photo: each round starts without an analysis, as
        # after its photo was replaced, so that the adds race the analyses again
        for t in ("angle_embeddings", "session_embeddings", "angle_analysis", "session_analysis"):
            project.query("delete from %s where session_id = %%s" % t, (sid,))
        # at once: each process adds its own photo of the angle and analyzes the session
        # (for the last angle both ask for slot 0: one wins, the other gets a slot conflict)
        slot = ["--order-index", "0"] if angle == ANGLES[-1] else []
        procs = [spawn(env, "--user", user, "image", "add", sid, angle, os.path.join(EXAMPLES, c, angle + ".jpg"),
                       *slot) for c in ("check1", "check2")]
        procs += [spawn(env, "--user", user, "analyze", sid) for _ in range(2)]
        results = finish(procs)
        for rc, out, err in results[2:]:
            assert rc == 0, err  # an analysis never fails for a photo arriving meanwhile
        for rc, out, err in results[:2]:
            if rc == 10 and json.loads(err.splitlines()[0])["error"]["code"] == "session_already_analyzed":
                refused += 1  # an analysis of this round was saved before the photo came
                continue
            if rc != 0:
                e = json.loads(err.splitlines()[0])["error"]
                failures.append(e["code"])
                assert rc == 9 and e["code"] in CONFLICTS, err  # a clear conflict, nothing else
                assert e["message"]
        # whatever the interleaving: one whole analysis of some moment
        n_sa, n_aa, n_ae, n_se, stamps = analysis(project, sid)
        assert n_sa == 1 and n_se == 1 and n_aa == n_ae and 3 <= n_aa <= 6 and stamps == 1
    rows = project.query("select image_type, order_index, sha256 from images where session_id = %s "
                         "order by 1, 2", (sid,))
    per_angle = {}
    for angle, idx, sha in rows:
        per_angle.setdefault(angle, []).append((idx, sha))
    for angle in ANGLES[3:]:
        idxs = [i for i, _ in per_angle.get(angle, [])]
        assert idxs == list(range(len(idxs))), (angle, idxs)  # contiguous, no duplicate
        assert len({s for _, s in per_angle.get(angle, [])}) == len(idxs)  # no photo twice
    assert failures in (["slot_conflict"], []) and len(failures) + refused >= 1
    # every add that succeeded is registered, every refused one is not
    assert sum(len(per_angle.get(a, [])) for a in ANGLES[3:]) == 6 - len(failures) - refused
    # the objects in the bucket are exactly those the rows name: the photos, and the
    # working copies the analysis names
    keys = {r[0] for r in project.query("select storage_path from images where session_id = %s", (sid,))}
    keys |= analysis_blobs(project, sid)
    folder = os.path.join(project.storage, "bcd-images", sid)
    stored = {sid + "/" + f for f in os.listdir(folder) if not f.endswith(".meta") and ".tmp-" not in f}
    assert keys <= stored
    # beyond those, only working copies that no analysis names: each concurrent analysis
    # reads the one it replaces before saving, so a copy of an angle that only the
    # first-saved one saw can stay behind
    for k in stored - keys:
        with open(os.path.join(folder, k.split("/", 1)[1]), "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and max(int.from_bytes(head[16:20], "big"),
                                                          int.from_bytes(head[20:24], "big")) == 512, k
    # analyzed once more at rest: every angle with a photo
    n = len(per_angle)
    d = ok(sb("--json", "--user", user, "analyze", sid))["data"]
    assert d["overwritten"] is True and len(d["session_analysis"]["per_angle"]) == n
    assert analysis(project, sid)[:4] == (1, n, n, 1)
