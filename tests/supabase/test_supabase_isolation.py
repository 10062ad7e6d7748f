"""User isolation. A user's sessions, images, analyses, jobs and signed URLs stay theirs:
 - through Supabase itself, as the `authenticated` role with real signed access tokens
   (ES256 from the project's key set; HS256 of a legacy project), under the row-level
   security of supabase/migrations (tables, views, functions, storage.objects);
 - through bcd-cli (the C API behind it) with --token on the supabase store, and with two
   --user values on the supabase and the local store.
User B acting on user A's data gets not-found (or forbidden) and none of A's data."""
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request

import pytest
from conftest import ANGLES, ANON_KEY, EXAMPLES, new_session, new_user, ok

cryptography = pytest.importorskip("cryptography")
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

KID = "isolation-key"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Auth:
    """The project's Auth server as far as tokens go: an ES256 key in the JWKS the test
    server publishes, and an HS256 secret (legacy projects)."""

    def __init__(self, server):
        self.server = server
        self.key = ec.generate_private_key(ec.SECP256R1())
        n = self.key.public_key().public_numbers()
        self.secret = os.urandom(32)
        self.saved = (server.jwks, server.jwt_secret)
        server.jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")),
                                 "y": b64u(n.y.to_bytes(32, "big")), "kid": KID, "alg": "ES256", "use": "sig",
                                 "key_ops": ["verify"]}]}
        server.jwt_secret = self.secret

    def restore(self):
        self.server.jwks, self.server.jwt_secret = self.saved

    def token(self, user, alg="ES256", exp_in=3600, secret=None, **more):
        now = int(time.time())
        claims = {"iss": self.server.url + "/auth/v1", "sub": user, "aud": "authenticated", "role": "authenticated",
                  "exp": now + exp_in, "iat": now - 5, "email": user[:8] + "@example.com", "aal": "aal1",
                  "session_id": new_user(), "is_anonymous": False}
        claims.update(more)
        header = {"alg": alg, "typ": "JWT"}
        if alg == "ES256":
            header["kid"] = KID
        signing = (b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        if alg == "ES256":
            r, s = decode_dss_signature(self.key.sign(signing, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = hmac.new(secret or self.secret, signing, hashlib.sha256).digest()
        return signing.decode() + "." + b64u(sig)


@pytest.fixture
def auth(project):
    a = Auth(project.server)
    yield a
    a.restore()


def call(project, method, path, token=None, body=None, headers=None):
    """(status, parsed body) of one request with the publishable key and a user token."""
    h = {"apikey": ANON_KEY, "Accept": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    h.update(headers or {})
    req = urllib.request.Request(project.server.url + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req) as r:
            raw, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


@pytest.fixture
def two_users(sb, project):
    """User A: an analyzed session and a queued job on a second one; user B: a session."""
    a, b = new_user(), new_user()
    sa = new_session(sb, a)
    ok(sb("--json", "--user", a, "analyze", sa))
    sa2 = new_session(sb, a, check="check2")
    job = ok(sb("--json", "--user", a, "analyze", sa2, "--async"))["job_id"]
    sbb = new_session(sb, b, angles=ANGLES[:3])
    keys = [r[0] for r in project.query("select storage_path from images where session_id = %s order by 1", (sa,))]
    return dict(a=a, b=b, sa=sa, sa2=sa2, job=job, sb=sbb, keys=keys)


READS = [
    "/rest/v1/sessions?select=id,user_id",
    "/rest/v1/bcd_session_overview?select=id,user_id",
    "/rest/v1/images?select=session_id,storage_path",
    "/rest/v1/session_analysis?select=session_id,overall_change_score",
    "/rest/v1/angle_analysis?select=session_id,change_score",
    "/rest/v1/session_embeddings?select=session_id,user_id",
    "/rest/v1/angle_embeddings?select=session_id,angle",
    "/rest/v1/bcd_user_embeddings?select=session_id,user_id",
    "/rest/v1/bcd_jobs?select=id,session_id,user_id",
]


def sessions_seen(rows):
    return {r.get("session_id") or r.get("id") for r in rows}


def test_user_tokens_read_only_their_own_rows_and_objects(project, auth, two_users):
    u = two_users
    tok_a, tok_b = auth.token(u["a"]), auth.token(u["b"], alg="HS256")
    a_sessions = {u["sa"], u["sa2"]}
    for path in READS:
        st, rows = call(project, "GET", path, tok_a)
        assert st == 200, (path, rows)
        seen = sessions_seen(rows)
        # A sees A's rows (the positive control) and nothing of B's
        if "jobs" in path:
            assert {r["id"] for r in rows} == {u["job"]} and seen == {u["sa2"]}, path
        else:
            assert seen and seen <= a_sessions, (path, seen)
        st, rows = call(project, "GET", path, tok_b)
        assert st == 200, (path, rows)
        assert not (sessions_seen(rows) & (a_sessions | {u["job"]})), path
        assert all(r.get("user_id") in (None, u["b"]) for r in rows), path
        # naming A's session outright changes nothing
        col = "id" if path.split("?")[0].endswith(("sessions", "overview")) else "session_id"
        st, rows = call(project, "GET", path + "&%s=eq.%s" % (col, u["sa"]), tok_b)
        assert (st, rows) == (200, []), path
    # the functions a user may call run under their row-level security
    st, got = call(project, "POST", "/rest/v1/rpc/bcd_get_analysis", tok_a, {"p_session_id": u["sa"]})
    assert st == 200 and got["analysis"]["session_id"] == u["sa"] and len(got["angles"]) == 6
    st, got = call(project, "POST", "/rest/v1/rpc/bcd_get_analysis", tok_b, {"p_session_id": u["sa"]})
    assert st == 200 and got["analysis"] is None and got["angles"] == [] and got["angle_embeddings"] == []
    assert got["session_embedding"] is None
    st, got = call(project, "POST", "/rest/v1/rpc/bcd_get_job", tok_a, {"p_job_id": u["job"], "p_session_id": None})
    assert st == 200 and got["id"] == u["job"]
    for args in ({"p_job_id": u["job"], "p_session_id": None}, {"p_job_id": None, "p_session_id": u["sa2"]}):
        st, got = call(project, "POST", "/rest/v1/rpc/bcd_get_job", tok_b, args)
        assert (st, got) == (200, None), args
    # and may not write anything, through tables or functions
    before = project.query("select status, updated_at from sessions where id = %s", (u["sa"],))
    for tok in (tok_b, tok_a):  # not even the owner writes through the API
        st, got = call(project, "PATCH", "/rest/v1/sessions?id=eq.%s" % u["sa"], tok, {"status": "created"})
        assert st == 403 and got["code"] == "42501"
        st, got = call(project, "DELETE", "/rest/v1/images?session_id=eq.%s" % u["sa"], tok)
        assert st == 403 and got["code"] == "42501"
    st, got = call(project, "POST", "/rest/v1/sessions", tok_b, {"user_id": u["a"]})
    assert st == 403 and got["code"] == "42501"
    st, got = call(project, "POST", "/rest/v1/rpc/bcd_save_analysis", tok_b, {"p_session_id": u["sa"],
                                                                              "p_analysis": {}})
    assert st == 403 and got["code"] == "42501"
    st, got = call(project, "POST", "/rest/v1/rpc/bcd_enqueue_job", tok_b,
                   {"p_session_id": u["sa"], "p_user_id": u["b"], "p_model": "builtin", "p_max_attempts": 3})
    assert st == 403 and got["code"] == "42501", got
    assert project.query("select status, updated_at from sessions where id = %s", (u["sa"],)) == before
    assert project.query("select count(*) from images where session_id = %s", (u["sa"],))[0][0] == 6
    assert project.query("select count(*) from bcd_jobs where session_id = %s", (u["sa"],))[0][0] == 0
    # Storage: A reads and signs A's photos; B gets not-found for the same keys
    key = u["keys"][0]
    st, data = call(project, "GET", "/storage/v1/object/authenticated/bcd-images/" + key, tok_a)
    assert st == 200 and data[:3] == b"\xff\xd8\xff"
    st, got = call(project, "POST", "/storage/v1/object/sign/bcd-images/" + key, tok_a, {"expiresIn": 60})
    assert st == 200 and "token=" in got["signedURL"]
    st, got = call(project, "GET", "/storage/v1/object/authenticated/bcd-images/" + key, tok_b)
    assert st == 400 and got["statusCode"] == "404"
    st, got = call(project, "GET", "/storage/v1/object/bcd-images/" + key, tok_b)
    assert st == 400 and got["statusCode"] == "404"
    st, got = call(project, "POST", "/storage/v1/object/sign/bcd-images/" + key, tok_b, {"expiresIn": 60})
    assert st == 400 and got["statusCode"] == "404" and "signedURL" not in got
    st, got = call(project, "POST", "/storage/v1/object/sign/bcd-images", tok_b, {"expiresIn": 60,
                                                                                "paths": u["keys"]})
    assert st == 200 and [x["signedURL"] for x in got] == [None] * 6
    st, got = call(project, "POST", "/storage/v1/object/sign/bcd-images", tok_a, {"expiresIn": 60,
                                                                                "paths": u["keys"]})
    assert st == 200 and all(x["signedURL"] for x in got)
    photo = open(os.path.join(EXAMPLES, "check1", "front.jpg"), "rb").read()
    st, got = call(project, "POST", "/storage/v1/object/bcd-images/%s/evil.jpg" % u["sa"], tok_b, photo,
                   {"Content-Type": "image/jpeg", "x-upsert": "true"})
    assert st == 400 and got["statusCode"] == "403"
    st, got = call(project, "DELETE", "/storage/v1/object/bcd-images/" + key, tok_b)
    assert st == 400 and got["statusCode"] == "403"
    assert os.path.isfile(os.path.join(project.storage, "bcd-images", key))
    assert not os.path.exists(os.path.join(project.storage, "bcd-images", u["sa"], "evil.jpg"))


def test_forged_expired_and_missing_tokens_see_nothing(project, auth, two_users):
    u = two_users
    forged = auth.token(u["a"], alg="HS256", secret=b"not the project's secret")
    expired = auth.token(u["a"], exp_in=-60)
    other = Auth.__new__(Auth)
    other.key, other.server = ec.generate_private_key(ec.SECP256R1()), project.server
    foreign = Auth.token(other, u["a"])  # right kid, another key
    claims_a = auth.token(u["a"]).split(".")[1]
    tampered = auth.token(u["b"]).split(".")
    tampered = ".".join([tampered[0], claims_a, tampered[2]])  # B's signature on A's claims
    for tok in (forged, expired, foreign, tampered):
        st, got = call(project, "GET", READS[0], tok)
        assert st == 401 and got["code"] == "PGRST301", tok
        st, got = call(project, "GET", "/storage/v1/object/authenticated/bcd-images/" + u["keys"][0], tok)
        assert st == 401
    st, rows = call(project, "GET", READS[0])  # the publishable key alone: anon
    assert (st, rows) == (200, [])
    st, got = call(project, "POST", "/rest/v1/rpc/bcd_get_analysis", None, {"p_session_id": u["sa"]})
    assert st in (401, 403, 404) and "overall_change_score" not in json.dumps(got)


def cli_isolation_checks(cli, owner, other, sid, other_sid, job=None, supabase=True):
    """bcd-cli as `other` (a list of options) on `owner`'s session sid: not found, and no
    byte of owner's data in the output."""
    secret_bits = [owner]
    cases = [
        ("session", "info", sid), ("session", "complete", sid), ("session", "thumbnails", sid),
        ("image", "preview", sid, "front"), ("analyze", sid), ("analysis", "get", sid),
        ("compare", other_sid, sid), ("compare", sid, other_sid), ("report", sid),
        ("image", "add", sid, "raised", os.path.join(EXAMPLES, "check1", "raised.jpg")),
        ("image", "register", sid, "raised", "%s/anything.jpg" % sid),
    ]
    if supabase:
        cases += [("image", "upload-url", sid, "front", "x.jpg"), ("analyze", sid, "--async")]
    if job:
        cases += [("job", "status", job), ("job", "status", "--session", sid)]
    for args in cases:
        r = cli(*other, "--json", *args)
        assert r.rc == 8, (args, r.rc, r.err)
        code = r.error()["code"]
        assert code in ("session_not_found", "job_not_found"), (args, code)
        for bit in secret_bits:
            assert bit not in r.out + r.err, args
    lst = ok(cli(*other, "--json", "session", "list"))
    assert sid not in json.dumps(lst)
    hist = cli(*other, "--json", "history")
    assert hist.rc == 0 and sid not in hist.out


def test_cli_with_user_tokens_on_supabase(sb, project, auth, two_users):
    u = two_users
    env = {"SUPABASE_URL": project.server.url}
    tok_a, tok_b = auth.token(u["a"]), auth.token(u["b"])

    def cli(*args):
        return sb(*args, env_extra=env)
    # the positive control: A's token reaches A's analysis
    got = ok(cli("--token", tok_a, "--json", "analysis", "get", u["sa"]))
    assert u["sa"] in json.dumps(got) and len(got["data"]["session_analysis"]["per_angle"]) == 6
    cli_isolation_checks(cli, u["a"], ["--token", tok_b], u["sa"], u["sb"], job=u["job"])
    assert tok_b not in json.dumps(project.server.requests())  # a user token never travels to the API
    # nothing of A's changed
    assert project.query("select status from sessions where id = %s", (u["sa"],)) == [("completed",)]
    assert project.query("select count(*) from images where session_id = %s", (u["sa"],))[0][0] == 6
    assert project.query("select count(*) from bcd_jobs where session_id in (%s, %s)", (u["sa"], u["sa2"]))[0][0] == 1


def test_cli_with_two_users_on_supabase(sb, two_users):
    u = two_users
    cli_isolation_checks(sb, u["a"], ["--user", u["b"]], u["sa"], u["sb"], job=u["job"])


def test_cli_with_two_users_on_the_local_store(local):
    a, b = new_user(), new_user()
    sa = new_session(local, a)
    ok(local("--json", "--user", a, "analyze", sa))
    sa2 = new_session(local, a, check="check2")
    job = ok(local("--json", "--user", a, "analyze", sa2, "--async"))["job_id"]
    sbb = new_session(local, b, angles=ANGLES[:3])
    cli_isolation_checks(local, a, ["--user", b], sa, sbb, job=job, supabase=False)
    # names that are not UUIDs (the local store's trusted mode takes any id)
    sc = new_session(local, "carol", angles=ANGLES[:3])
    cli_isolation_checks(local, "carol", ["--user", "dave"], sc, sbb, supabase=False)
    assert ok(local("--json", "--user", a, "session", "info", sa))["session_id"] == sa
