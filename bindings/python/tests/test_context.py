"""bcd.Context: configuration, errors, lifetime, logging."""
import gc

import pytest

import bcd


def test_keyword_config_maps_to_library_keys(tmp_path):
    with bcd.Context(load_env=False, data_dir=tmp_path, model="builtin", threads=2, max_pixels=1000) as ctx:
        assert ctx.get("data_dir") == str(tmp_path)
        assert ctx.get("BCD_DATA_DIR") == str(tmp_path)
        assert ctx.get("threads") == "2"
        cfg = ctx.config()
        assert cfg["BCD_MAX_PIXELS"] == "1000" and cfg["BCD_MODEL"] == "builtin"


def test_unknown_key_is_an_invalid_argument():
    with bcd.Context(load_env=False) as ctx:
        with pytest.raises(bcd.InvalidArgumentError) as ei:
            ctx.set("colour", "blue")
        assert ei.value.code == "unknown_config_key"
        assert isinstance(ei.value, ValueError)


def test_invalid_value_raises_with_the_library_code_and_status():
    with bcd.Context(load_env=False) as ctx:
        with pytest.raises(bcd.InvalidArgumentError) as ei:
            ctx.set("store", "floppy")
        e = ei.value
        assert e.status == bcd.status.EINVAL and e.status_name == "invalid_argument"
        assert e.code and "local" in e.message
        assert e.details == {} and e.correlation_id is None
        assert e.to_dict()["error"]["code"] == e.code


def test_none_removes_an_explicit_setting(tmp_path):
    with bcd.Context(load_env=False, data_dir=tmp_path) as ctx:
        ctx.set("data_dir", None)
        assert ctx.get("data_dir") != str(tmp_path)


def test_env_file_and_environment_precedence(tmp_path, monkeypatch):
    env = tmp_path / "x.env"
    env.write_text("BCD_MODEL=from-file.pt\nBCD_THREADS=3\nexport BCD_DEVICE='cpu'\n")
    monkeypatch.setenv("BCD_THREADS", "5")
    with bcd.Context(env, threads=7) as ctx:
        assert ctx.get("model") == "from-file.pt"
        assert ctx.get("device") == "cpu"
        assert ctx.get("threads") == "7"          # explicit wins
    with bcd.Context(str(env)) as ctx:
        assert ctx.get("threads") == "5"          # environment beats the file


def test_missing_env_file_is_not_found(tmp_path):
    with pytest.raises(bcd.NotFoundError):
        bcd.Context(tmp_path / "nope.env")


def test_malformed_env_file_is_a_format_error(tmp_path):
    env = tmp_path / "bad.env"
    env.write_text("this is not a setting\n")
    with pytest.raises(bcd.FormatError):
        bcd.Context(env)


def test_secrets_are_redacted():
    with bcd.Context(load_env=False, supabase_service_role_key="s3cret") as ctx:
        assert ctx.get("supabase_service_role_key") == "<set>"
        assert "s3cret" not in repr(ctx.config())


def test_nul_bytes_are_refused_before_reaching_c():
    with bcd.Context(load_env=False) as ctx:
        with pytest.raises(bcd.InvalidArgumentError) as ei:
            ctx.set("data_dir", "/tmp/a\0b")
        assert ei.value.code == "embedded_nul"


def test_closed_context_raises_state_error_and_close_is_idempotent():
    ctx = bcd.Context(load_env=False)
    ctx.close()
    ctx.close()
    assert ctx.closed
    with pytest.raises(bcd.StateError) as ei:
        ctx.get("data_dir")
    assert ei.value.code == "handle_closed"


def test_closing_a_context_closes_its_services_and_embedders(tmp_path):
    ctx = bcd.Context(load_env=False, data_dir=tmp_path)
    svc = bcd.Service(ctx, user="alice")
    emb = bcd.Embedder("builtin", ctx=ctx)
    ctx.close()
    assert svc.closed and emb.closed
    with pytest.raises(bcd.StateError):
        svc.create_session()


def test_handles_freed_by_garbage_collection(tmp_path):
    ctx = bcd.Context(load_env=False, data_dir=tmp_path)
    svc = bcd.Service(ctx, user="alice")
    fin = svc._finalizer, ctx._finalizer
    del ctx, svc
    gc.collect()
    assert not fin[0].alive and not fin[1].alive


def test_logger_receives_messages_and_exceptions_in_it_are_ignored(tmp_path):
    seen = []

    def log(level, msg):
        seen.append((level, msg))
        raise RuntimeError("ignored")

    with bcd.Context(load_env=False, data_dir=tmp_path) as ctx:
        ctx.set_logger(log)
        with bcd.Service(ctx, user="a") as svc:
            svc.create_session()
        ctx.set_logger(None)
    assert all(level in ("debug", "info", "warn", "error") for level, _ in seen)


def test_default_context_reads_environment(monkeypatch, tmp_path):
    import bcd._context as c
    monkeypatch.setattr(c, "_default", None)
    monkeypatch.setenv("BCD_MAX_PIXELS", "1234")
    assert bcd.default_context().get("max_pixels") == "1234"
    bcd.default_context().close()
    monkeypatch.delenv("BCD_MAX_PIXELS")
    assert bcd.default_context().get("max_pixels") != "1234"
