"""bcd-cli auth verify: Supabase-shaped ES256 tokens minted here, checked against a JWKS file."""
import base64
import json
import shutil
import subprocess
import time

import pytest

URL = "https://abcdefghijklmnopqrst.supabase.co"
SUB = "5f0c8d2e-6b1a-4e4b-9d3c-2a7e1f9b8c01"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_ints(der):
    """r, s of a DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs)."""
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = []
    for _ in range(2):
        assert der[pos] == 0x02
        n = der[pos + 1]
        out.append(int.from_bytes(der[pos + 2:pos + 2 + n], "big"))
        pos += 2 + n
    return out


class Signer:
    """A P-256 key: with the `cryptography` module if present, else the openssl program."""

    def __init__(self, tmp_path):
        try:
            from cryptography.hazmat.primitives.asymmetric import ec
            self._key = ec.generate_private_key(ec.SECP256R1())
            nums = self._key.public_key().public_numbers()
            self.x, self.y = nums.x.to_bytes(32, "big"), nums.y.to_bytes(32, "big")
            self._pem = None
        except ImportError:
            if not shutil.which("openssl"):
                pytest.skip("neither python3-cryptography nor openssl available to mint tokens")
            self._key = None
            self._pem = tmp_path / "key.pem"
            subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                            str(self._pem)], check=True, capture_output=True)
            spki = subprocess.run(["openssl", "ec", "-in", str(self._pem), "-pubout", "-outform", "DER"],
                                  check=True, capture_output=True).stdout
            point = spki[-65:]
            assert point[0] == 4
            self.x, self.y = point[1:33], point[33:]

    def sign(self, data):
        """Raw R || S (JWS ES256)."""
        if self._key is not None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec
            der = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        else:
            der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self._pem)], input=data,
                                 check=True, capture_output=True).stdout
        r, s = der_ints(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def jwks(self, kid):
        return {"keys": [{"kty": "EC", "crv": "P-256", "x": b64url(self.x), "y": b64url(self.y), "kid": kid,
                          "alg": "ES256", "use": "sig", "key_ops": ["verify"]}]}

    def token(self, claims, kid="key-1", alg="ES256"):
        header = b64url(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims).encode())
        signing = (header + "." + payload).encode()
        return header + "." + payload + "." + b64url(self.sign(signing))


def claims(exp_in=3600, **more):
    now = int(time.time())
    c = {"iss": URL + "/auth/v1", "sub": SUB, "aud": "authenticated", "exp": now + exp_in, "iat": now - 10,
         "email": "alice@example.com", "phone": "", "role": "authenticated", "aal": "aal1",
         "session_id": "0b9d9a57-2d7b-4c6c-8f3e-9a1b2c3d4e5f", "is_anonymous": False}
    c.update(more)
    return c


@pytest.fixture
def signer(tmp_path):
    return Signer(tmp_path)


@pytest.fixture
def jwks_file(tmp_path, signer):
    p = tmp_path / "jwks.json"
    p.write_text(json.dumps(signer.jwks("key-1")))
    return p


ENV = {"SUPABASE_URL": URL}


def assert_token_absent(r, token):
    for part in [token] + token.split("."):
        if len(part) >= 8:
            assert part not in r.err and part not in r.out


def test_verify_prints_the_caller(cli, signer, jwks_file):
    tok = signer.token(claims())
    r = cli("--json", "auth", "verify", tok, "--jwks", jwks_file, env_extra=ENV)
    assert r.rc == 0, r.err
    doc = r.json()
    assert doc["user_id"] == SUB
    assert doc["role"] == "authenticated"
    assert doc["email"] == "alice@example.com"
    assert doc["aud"] == "authenticated"
    assert doc["iss"] == URL + "/auth/v1"
    assert doc["kid"] == "key-1"
    assert isinstance(doc["exp"], int)
    # readable text without --json
    r = cli("auth", "verify", tok, "--jwks", jwks_file, env_extra=ENV)
    assert r.rc == 0, r.err
    assert "user id: " + SUB in r.out


def test_expired_token_exits_12(cli, signer, jwks_file):
    tok = signer.token(claims(exp_in=-120))
    r = cli("--json", "auth", "verify", tok, "--jwks", jwks_file, env_extra=ENV)
    assert r.rc == 12
    assert r.error()["code"] == "token_expired"
    assert r.out == ""
    assert_token_absent(r, tok)


@pytest.mark.parametrize("case,code", [
    ("forged", "bad_signature"),
    ("issuer", "bad_issuer"),
    ("audience", "bad_audience"),
    ("kid", "unknown_kid"),
    ("hs256", "alg_not_allowed"),
    ("none", "alg_not_allowed"),
    ("jwe", "malformed_token"),
])
def test_rejected_tokens_exit_12(cli, signer, jwks_file, tmp_path, case, code):
    if case == "forged":
        tok = Signer(tmp_path).token(claims())
    elif case == "issuer":
        tok = signer.token(claims(iss="https://evil.supabase.co/auth/v1"))
    elif case == "audience":
        tok = signer.token(claims(aud="anon"))
    elif case == "kid":
        tok = signer.token(claims(), kid="key-2")
    elif case == "hs256":
        tok = signer.token(claims(), alg="HS256")
    elif case == "none":
        tok = signer.token(claims(), alg="none").rsplit(".", 1)[0] + "."
    else:
        tok = signer.token(claims()) + ".AAAA.BBBB"
    r = cli("--json", "auth", "verify", tok, "--jwks", jwks_file, env_extra=ENV)
    assert r.rc == 12, r.err
    assert r.error()["code"] == code
    assert_token_absent(r, tok)


def test_key_set_sources(cli, signer, jwks_file, tmp_path):
    tok = signer.token(claims())
    # no key set and no project URL
    r = cli("auth", "verify", tok)
    assert r.rc == 10
    assert r.error()["code"] == "jwks_not_configured"
    # a project URL: downloading needs the network layer (11 until it is wired, then a
    # network error from this closed port)
    r = cli("auth", "verify", tok, env_extra={"SUPABASE_URL": "http://127.0.0.1:9"})
    assert r.rc in (11, 13), r.err
    assert_token_absent(r, tok)
    # a missing or broken file
    r = cli("auth", "verify", tok, "--jwks", tmp_path / "nope.json", env_extra=ENV)
    assert r.rc == 8
    bad = tmp_path / "bad.json"
    bad.write_text("{\"keys\": 5}")
    r = cli("auth", "verify", tok, "--jwks", bad, env_extra=ENV)
    assert r.rc == 6
    assert r.error()["code"] == "jwks_invalid"
    # usage
    r = cli("auth", "verify")
    assert r.rc == 2
    r = cli("auth", "verify", "--help")
    assert r.rc == 0 and "--jwks FILE" in r.out


def test_session_commands_take_the_user_from_a_token(cli, signer, jwks_file):
    """--token: the caller is the verified subject; sessions of others stay invisible."""
    tok = signer.token(claims())
    r = cli("--json", "--token", tok, "--jwks", jwks_file, "session", "create", env_extra=ENV)
    assert r.rc == 0, r.err
    sid = r.json()["session_id"]
    # the same user through trusted mode sees it, another user does not
    assert cli("--json", "--user", SUB, "session", "info", sid).rc == 0
    assert cli("--json", "--user", "someone-else", "session", "info", sid).rc == 8
    lst = cli("--json", "session", "list", "--token", tok, "--jwks", jwks_file, env_extra=ENV)
    assert [s["session_id"] for s in lst.json()["sessions"]] == [sid]
    assert_token_absent(lst, tok)


def test_session_commands_refuse_bad_tokens(cli, signer, jwks_file):
    expired = signer.token(claims(exp_in=-3600))
    r = cli("--json", "--token", expired, "--jwks", jwks_file, "session", "create", env_extra=ENV)
    assert r.rc == 12
    assert r.error()["code"] == "token_expired"
    assert_token_absent(r, expired)
    assert cli("--json", "session", "list", env_extra={"BCD_USER": SUB}).json()["count"] == 0
    good = signer.token(claims())
    r = cli("--json", "--token", good, "--user", SUB, "--jwks", jwks_file, "session", "list", env_extra=ENV)
    assert r.rc == 2
