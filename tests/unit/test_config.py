from pathlib import Path

import pytest

from reasonbrain.config import Params, Settings, load_params, parse_override
from reasonbrain.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_repo_params_yaml_matches_the_typed_defaults() -> None:
    # params.yaml is the single source of truth; it must validate and equal the declared defaults,
    # so that a key added in code but forgotten in params.yaml (or vice versa) is caught.
    assert load_params(REPO / "params.yaml") == Params()


def test_overrides_are_typed_and_nested() -> None:
    p = load_params(REPO / "params.yaml", ["data.synth.n_train=12", "eval.guidance_scale=3.5"])
    assert p.data.synth.n_train == 12
    assert p.eval.guidance_scale == 3.5
    assert p.data.synth.n_val == Params().data.synth.n_val  # untouched siblings survive


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("data.synth.n_trian=5", "unknown key 'data.synth.n_trian'"),
        ("nosection.x=1", "unknown key 'nosection'"),
        ("data.synth.n_train=-1", "data.synth.n_train"),
        ("model.preset=huge", "model.preset"),
        ("data.synth.categories={physics: 1.0}", "unknown categories"),
    ],
)
def test_bad_overrides_name_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_params(REPO / "params.yaml", [override])
    assert needle in str(exc.value)
    assert "\n" not in exc.value.one_line()


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        parse_override("data.synth.n_train")


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text("data:\n  sourse: reasonsynth\n")
    with pytest.raises(ConfigError, match=r"unknown key 'data\.sourse'"):
        load_params(f)


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text("data:\n  dir: [unclosed\n")
    with pytest.raises(ConfigError) as exc:
        load_params(f)
    assert str(f) in str(exc.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_section_hash_changes_only_with_its_section() -> None:
    a = Params()
    b = Params.model_validate({"train": {"max_steps": 7}})
    assert a.section_hash("data") == b.section_hash("data")
    assert a.section_hash("train") != b.section_hash("train")


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REASONBRAIN_STORE_URI", raising=False)
    monkeypatch.delenv("REASONBRAIN_DB_URL", raising=False)
    monkeypatch.setenv("REASONBRAIN_HOME", str(tmp_path))
    s = Settings()
    assert s.resolved_store_uri() == (tmp_path / "store").as_uri()
    assert s.resolved_db_url() == f"sqlite:///{tmp_path}/reasonbrain.db"
    assert s.allow_network is False
    monkeypatch.setenv("REASONBRAIN_STORE_URI", "s3://bucket/prefix")
    assert Settings().resolved_store_uri() == "s3://bucket/prefix"
    assert not (tmp_path / "store").exists()  # reading settings creates nothing
