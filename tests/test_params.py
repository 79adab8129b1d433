import pytest
import yaml

from pipeline.core.params import ParamsError, load_params, parse_group
from tests.conftest import ROOT


def test_repo_params_are_valid_and_complete():
    params = load_params(ROOT / "params.yaml")
    assert params["fusion"].layers == 4
    assert params["loss"].gamma_pos == 3.0 and params["loss"].gamma_neg == 4.0 and params["loss"].margin == 0.2
    assert params["train"].lr == 1e-4 and params["train"].patience == 10 and params["train"].batch_size == 32
    assert len(params["data"].genres) == 13
    # every key of every group is written out (DVC needs declared params to exist)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for group, model in params.items():
        assert set(raw[group]) == set(type(model).model_fields), group


def test_unknown_key_is_one_line_naming_it(tmp_path):
    (tmp_path / "p.yaml").write_text("fusion:\n  layres: 2\n")
    with pytest.raises(ParamsError) as err:
        load_params(tmp_path / "p.yaml")
    assert "fusion.layres" in str(err.value) and "\n" not in str(err.value)


def test_wrong_type_names_parameter(tmp_path):
    (tmp_path / "p.yaml").write_text("fusion:\n  layers: four\n")
    with pytest.raises(ParamsError, match="fusion.layers"):
        load_params(tmp_path / "p.yaml")


def test_unknown_key_suggests_the_right_one(tmp_path):
    (tmp_path / "p.yaml").write_text("train:\n  loss: bce\n")
    with pytest.raises(ParamsError, match=r"unknown parameter 'train.loss' \(did you mean 'loss.name'\?\)$"):
        load_params(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text("train:\n  pateince: 3\n")
    with pytest.raises(ParamsError, match=r"'train.pateince' \(did you mean 'train.patience'\?\)$"):
        load_params(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text("train:\n  colour: red\n")
    with pytest.raises(ParamsError, match=r"unknown parameter 'train.colour'$"):
        load_params(tmp_path / "p.yaml")


def test_unknown_group(tmp_path):
    (tmp_path / "p.yaml").write_text("fusoin:\n  layers: 2\n")
    with pytest.raises(ParamsError, match="unknown parameter group 'fusoin'"):
        load_params(tmp_path / "p.yaml")


def test_cross_field_rules():
    with pytest.raises(ParamsError, match="divisible"):
        parse_group("fusion", {"dim": 30, "heads": 8})
    with pytest.raises(ParamsError, match="tokens: pooled"):
        parse_group("fusion", {"fuse": "add"})
    with pytest.raises(ParamsError, match="must be 1"):
        parse_group("split", {"train": 0.5, "val": 0.1, "test": 0.1})
    assert parse_group("fusion", {"fuse": "add", "tokens": "pooled"}).fuse == "add"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")
