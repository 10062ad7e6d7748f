"""bcd.Verifier: ES256 access tokens against a pinned key set (tokens signed here)."""
import base64
import json
import time

import pytest

import bcd

ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

if bcd.load_library().bcd_auth_verify is None:
    pytest.skip("this libbcd has no token verification", allow_module_level=True)

URL = "https://example.supabase.co"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key():
    k = ec.generate_private_key(ec.SECP256R1())
    n = k.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1",
           "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}
    return k, {"keys": [jwk]}


def sign(k, claims, header=None):
    h = {"alg": "ES256", "typ": "JWT", "kid": "k1"}
    h.update(header or {})
    signing_input = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    r, s = decode_dss_signature(k.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return signing_input.decode() + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def claims(**over):
    now = int(time.time())
    c = {"sub": "3f1c8a52-5b1e-4c1e-9d7a-0b5d2c9e1f00", "aud": "authenticated", "role": "authenticated",
         "iss": URL + "/auth/v1", "email": "a@example.org", "iat": now, "exp": now + 3600}
    c.update(over)
    return c


@pytest.fixture
def verifier(key):
    with bcd.Context(load_env=False) as ctx:
        with bcd.Verifier(ctx, supabase_url=URL, jwks=key[1]) as v:
            yield v


def test_valid_token_gives_the_caller(key, verifier):
    who = verifier.verify(sign(key[0], claims()))
    assert who["user_id"] == "3f1c8a52-5b1e-4c1e-9d7a-0b5d2c9e1f00"
    assert who["email"] == "a@example.org" and who["kid"] == "k1"


@pytest.mark.parametrize("token_of, code", [
    (lambda k: sign(k, claims(exp=int(time.time()) - 3600)), "token_expired"),
    (lambda k: sign(k, claims(aud="someone-else")), "bad_audience"),
    (lambda k: sign(k, claims(iss="https://evil.example/auth/v1")), "bad_issuer"),
    (lambda k: sign(k, claims(), header={"kid": "k2"}), "unknown_kid"),
    (lambda k: sign(k, claims(), header={"alg": "none"}), "alg_not_allowed"),
    (lambda k: sign(k, claims())[:-4] + "AAAA", "bad_signature"),
    (lambda k: "not.a.token!", "malformed_token"),
])
def test_rejected_tokens_raise_auth_error_without_the_token(key, verifier, token_of, code):
    token = token_of(key[0])
    with pytest.raises(bcd.AuthError) as ei:
        verifier.verify(token)
    e = ei.value
    assert e.code == code and e.status == bcd.status.EAUTH
    assert token not in str(e) and token not in json.dumps(e.details)


def test_clock_override_and_signature_only(key):
    tok = sign(key[0], claims(exp=1000, iat=900))
    with bcd.Verifier(supabase_url=URL, jwks=key[1], now=lambda: 950) as v:
        assert v.verify(tok)["exp"] == 1000
    with bcd.Verifier(supabase_url=URL, jwks=json.dumps(key[1]), signature_only=True) as v:
        v.verify(tok)


def test_jwks_file_and_errors(key, tmp_path):
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(key[1]))
    assert bcd.verify_token(sign(key[0], claims()), supabase_url=URL, jwks_file=f)["role"] == "authenticated"
    with pytest.raises(bcd.FormatError):
        bcd.Verifier(supabase_url=URL, jwks="{not json")
    with pytest.raises(bcd.NotFoundError):
        bcd.Verifier(supabase_url=URL, jwks_file=tmp_path / "missing.json")
    with pytest.raises(bcd.InvalidArgumentError):
        bcd.Verifier(supabase_url=URL, leeway_s=301)


def test_no_key_set_and_no_project_is_a_state_error(key):
    with bcd.Context(load_env=False) as ctx, bcd.Verifier(ctx) as v:
        with pytest.raises(bcd.StateError) as ei:
            v.verify(sign(key[0], claims()))
        assert ei.value.code == "jwks_not_configured"
