from __future__ import annotations

from pathlib import Path

from zeta_desktop.core.config import default_config_path, load_config, save_config
from zeta_desktop.core.settings import SCHEMA_VERSION, AppConfig


def test_missing_file_gives_defaults_without_problems(tmp_path: Path) -> None:
    loaded = load_config(tmp_path / "nope.toml")
    assert loaded.problems == []
    assert loaded.config == AppConfig()
    assert loaded.config.roles["embedder"].can_embed


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    config = AppConfig()
    config.roles["coder"].model_path = "/models/coder.gguf"
    config.roles["reasoner"].n_gpu_layers = -1
    path = save_config(config, tmp_path / "sub" / "config.toml")
    text = path.read_text()
    assert f"schema_version = {SCHEMA_VERSION}" in text
    loaded = load_config(path)
    assert loaded.problems == []
    assert loaded.config == config


def test_default_path_honours_environment(tmp_path: Path) -> None:
    # conftest points ZETA_CONFIG into the test's temporary folder
    assert default_config_path().is_relative_to(tmp_path)


def test_corrupt_toml_starts_on_defaults_and_keeps_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = "schema_version = 1\n[roles.coder\nmodel_path = 'x'\n"
    path.write_text(original)
    loaded = load_config(path)
    assert loaded.config == AppConfig()
    assert len(loaded.problems) == 1
    assert str(path) in loaded.problems[0] and "not valid TOML" in loaded.problems[0]
    assert loaded.backup_path is not None
    assert loaded.backup_path.read_text() == original


def test_invalid_values_fall_back_per_field_and_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "schema_version = 1\n"
        "[roles.coder]\nmodel_path = '/m/c.gguf'\nn_ctx = 'big'\nn_threads = -3\n"
        "[roles.painter]\nmodel_path = 'p.gguf'\n"
        "[roles.'Bad Name']\nmodel_path = 'b.gguf'\n"
        "[roles.reasoner]\ncan_chat = false\n"
        "[roles.embedder]\nlow_priority = 'no'\n"
    )
    loaded = load_config(path)
    coder = loaded.config.roles["coder"]
    assert coder.model_path == "/m/c.gguf"  # the good value is kept
    assert coder.n_ctx == AppConfig().roles["coder"].n_ctx
    assert coder.n_threads == 0
    text = "\n".join(loaded.problems)
    assert "roles.coder.n_ctx" in text and "'big'" in text
    assert "roles.coder.n_threads" in text
    # Roles are an open table: a new name is a role; a name unfit for one is not.
    assert loaded.config.roles["painter"].model_path == "p.gguf"
    assert "roles.Bad Name: a role's name is lower-case" in text
    assert "Bad Name" not in loaded.config.roles
    assert "roles.reasoner can neither chat nor embed" in text
    assert loaded.config.roles["reasoner"].can_chat
    assert "roles.embedder.low_priority must be bool" in text
    assert loaded.config.roles["embedder"].low_priority is True
    assert loaded.backup_path is not None and loaded.backup_path.exists()


def test_overrides_do_not_touch_the_saved_config() -> None:
    config = AppConfig()
    run = config.with_model_overrides({"coder": "~/x.gguf", "reasoner": None})
    assert run.roles["coder"].model_path.endswith("x.gguf")
    assert "~" not in run.roles["coder"].model_path
    assert config.roles["coder"].model_path == ""
    assert run.roles["reasoner"].model_path == ""


def test_router_settings_round_trip_and_validate(tmp_path: Path) -> None:
    config = AppConfig()
    config.router.policy = "least-busy"
    config.router.max_queue = 5
    config.router.cache_aware = False
    config.roles["coder"].preference = {"code": 1.0, "reasoning": 0.2}
    path = save_config(config, tmp_path / "c.toml")
    assert load_config(path).config == config

    path.write_text(
        "[router]\npolicy = 'fastest'\nmax_queue = 2.5\nmin_success_rate = 3\n"
        "speed_vs_quality = 0.9\ncache_aware = 'yes'\n"
        "[roles.coder.preference]\ncode = 2\npainting = 0.5\n"
    )
    loaded = load_config(path)
    text = "\n".join(loaded.problems)
    assert "router.policy must be one of" in text
    assert "router.max_queue must be a number" in text
    assert "router.min_success_rate must be a number from 0 to 1" in text
    assert "router.cache_aware must be true or false, got 'yes'" in text
    assert loaded.config.router.cache_aware is True
    assert "roles.coder.preference.code" in text and "roles.coder.preference.painting" in text
    assert loaded.config.router.policy == "adaptive"
    assert loaded.config.router.speed_vs_quality == 0.9  # the good value is kept
    assert loaded.config.roles["coder"].preference == {}


def test_the_shipped_default_config_matches_the_defaults() -> None:
    from zeta_desktop.core.resources import resource_path

    loaded = load_config(resource_path("default-config.toml"))
    assert loaded.problems == []
    assert loaded.config == AppConfig()


def test_watchdog_timeouts_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[router]\ntoken_timeout_s = 12\nfirst_token_timeout_s = -3\n")
    loaded = load_config(path)
    assert loaded.config.router.token_timeout_s == 12.0
    assert loaded.config.router.first_token_timeout_s == 600.0  # the default, kept
    assert any("router.first_token_timeout_s must be a number of seconds" in p
               for p in loaded.problems)


def test_the_server_table_reads_checks_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[server]\nenabled = true\nport = 9000\nhost = '0.0.0.0'\n"
                    "keep_history = 'yes'\nmax_pending = 0\ncors_origins = ['https://a.example']\n"
                    "tls = true\n")
    loaded = load_config(path)
    server = loaded.config.server
    assert (server.enabled, server.port, server.host) == (True, 9000, "0.0.0.0")
    assert server.cors_origins == ["https://a.example"]
    assert server.keep_history is False and server.max_pending == 64  # bad values: defaults
    problems = "\n".join(loaded.problems)
    assert "server.keep_history must be true or false" in problems
    assert "server.max_pending must be a whole number from 1" in problems
    assert "server.tls is not a known setting" in problems
    save_config(loaded.config, tmp_path / "saved.toml")
    again = load_config(tmp_path / "saved.toml")
    assert again.problems == [] and again.config.server == server
