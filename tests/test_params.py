import pytest
import yaml

from pipeline.core.params import ParamsError, load_params, parse_group
from tests.conftest import ROOT, committed_params


def test_repo_params_are_valid_and_complete(tmp_path):
    raw = committed_params()  # the committed file: a user's `dvc exp run -S ...` changes the workspace's
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params(tmp_path / "params.yaml")
    assert params["fusion"].layers == 4
    assert params["loss"].gamma_pos == 3.0 and params["loss"].gamma_neg == 4.0 and params["loss"].margin == 0.2
    assert params["train"].lr == 1e-4 and params["train"].patience == 3 and params["train"].batch_size == 32
    assert len(params["data"].genres) == 13
    # every key of every group is written out (DVC needs declared params to exist)
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
    # a blend of methods is made by the report from its members' runs: never trained, never a product candidate
    for group, key in (("compare", "methods"), ("product", "candidates")):
        with pytest.raises(ParamsError, match="moviescope-separate is not trained: the report averages the runs of "
                                              "image, plot, metadata"):
            parse_group(group, {key: ["image", "moviescope-separate"]})
    assert "moviescope-separate" not in parse_group("compare", {}).methods


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


# -- one source of defaults: the schema; params.yaml, the README and the registries agree --

import ast  # noqa: E402
import re  # noqa: E402
import types  # noqa: E402
import typing  # noqa: E402

from pipeline.core.params import GROUPS, REGISTRIES, registry  # noqa: E402

#: README rows that point elsewhere instead of repeating a long list: key -> (default cell, choices cell).
POINTERS = {"compare.methods": ("every poster-only method", "the methods of [the comparison](comparison.md)")}


def _flatten(value: dict, prefix: str) -> dict[str, typing.Any]:
    out = {}
    for k, v in value.items():
        out.update(_flatten(v, f"{prefix}.{k}") if isinstance(v, dict) else {f"{prefix}.{k}": v})
    return out


def schema_defaults() -> dict[str, typing.Any]:
    """Every key of every group (nested settings dotted) -> its schema default, as plain data."""
    out = {}
    for group, model in GROUPS.items():
        out.update(_flatten(model().model_dump(mode="json"), group))
    return out


def schema_choices() -> dict[str, list]:
    """key -> the values it may take, for keys with a fixed set: a Literal, or a registry's names."""
    out = {key: registry(key).names() for key in REGISTRIES}

    def literal(annotation) -> list | None:
        if typing.get_origin(annotation) is typing.Literal:
            return list(typing.get_args(annotation))
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            parts = [literal(a) for a in typing.get_args(annotation)]
            if any(p is not None for p in parts):
                return [v for a, p in zip(typing.get_args(annotation), parts)
                        for v in (p if p is not None else [True, False] if a is bool else [None])]
        return None

    def walk(model, prefix):
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                walk(field.annotation, f"{prefix}.{name}")
            elif (values := literal(field.annotation)) is not None:
                out[f"{prefix}.{name}"] = values

    from pydantic import BaseModel

    for group, model in GROUPS.items():
        walk(model, group)
    return out


#: The docs page of each section a test reads (the README links them).
DOC_PAGES = {"Parameters": "docs/parameters.md",
             "The comparison: every method the papers compare": "docs/comparison.md"}


def readme_section(title: str) -> str:
    """The body of a docs page (once a section of the README)."""
    text = (ROOT / DOC_PAGES[title]).read_text()
    assert text.startswith(f"# {title}\n"), f"{DOC_PAGES[title]} should open with '# {title}'"
    return text.split("\n", 1)[1]


def readme_parameters() -> dict[str, tuple[str, str]]:
    """The README's parameter table: key -> (default cell, choices cell)."""
    rows = {}
    for line in readme_section("Parameters").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        key = cells[0].strip("`")
        assert key not in rows, f"README: {key} listed twice"
        rows[key] = (cells[1], cells[2])
    return rows


def _values(cell: str) -> list:
    return [yaml.safe_load(v) for v in re.findall(r"`([^`]+)`", cell)]


def test_params_yaml_holds_exactly_the_schema_defaults():
    """The committed params.yaml (a user's `dvc exp run -S` in the workspace must not fail the tests)."""
    raw = committed_params()
    written = {k: v for group in GROUPS for k, v in _flatten(raw[group], group).items()}
    defaults = schema_defaults()
    assert set(written) == set(defaults)
    differ = {k: (written[k], defaults[k]) for k in defaults if written[k] != defaults[k]}
    assert not differ, f"params.yaml differs from the schema's defaults (params.yaml, schema): {differ}"


def test_readme_parameter_table_lists_every_key_with_its_default_and_choices():
    rows, defaults, choices = readme_parameters(), schema_defaults(), schema_choices()
    assert set(rows) == set(defaults), ("README keys missing:", sorted(set(defaults) - set(rows)),
                                        "README keys unknown:", sorted(set(rows) - set(defaults)))
    for key, (default_cell, choices_cell) in rows.items():
        if key in POINTERS:
            assert (default_cell, choices_cell) == POINTERS[key], key
            from pipeline.evaluation.methods import reads_films

            assert defaults[key] == [m for m in choices[key] if not reads_films(m)], \
                f"{key}: the default is no longer every poster-only method"
            continue
        assert re.fullmatch(r"`[^`]+`", default_cell), f"README {key}: default {default_cell!r} is not one `value`"
        assert yaml.safe_load(default_cell.strip("`")) == defaults[key], (key, default_cell, defaults[key])
        listed = _values(choices_cell)
        expected = sorted(map(str, choices.get(key, [])))
        assert sorted(map(str, listed)) == expected, f"README {key}: choices {listed}, schema/registry {expected}"
        assert len(listed) == len(set(map(str, listed))), key


def test_readme_names_every_registered_method_head_encoder_engine_and_loss():
    rows = readme_parameters()
    for key in ("fusion.head", "encoder.name", "ocr.engine", "loss.name"):
        assert sorted(_values(rows[key][1])) == sorted(registry(key).names()), key
    table = [line for line in readme_section("The comparison: every method the papers compare").splitlines()
             if line.startswith("| `")]
    listed = [name for line in table for name in re.findall(r"`([^`]+)`", line.split("|")[1])]
    assert sorted(listed) == sorted(registry("compare.methods").names())
    assert len(listed) == len(set(listed))


def test_a_stage_that_validates_a_registered_name_runs_that_registry():
    """params.py imports the registries by name (so it depends on none of them); a stage that validates
    a group with a registered name must import that registry itself, so its DVC deps cover the code."""
    from tests.test_stage_deps import imported_files, stages

    for param in stages():
        module = re.match(r"\s*python\s+-m\s+(stages\.\w+)", param.values[0]["cmd"]).group(1)
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        calls = [node for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_params"]
        groups = set()
        for call in calls:  # load_params(params, ["data", ...]); without a literal list: every group
            listed = call.args[1] if len(call.args) > 1 and isinstance(call.args[1], ast.List) else None
            groups |= {e.value for e in listed.elts} if listed else set(GROUPS)
        files = imported_files(module)
        for key, where in REGISTRIES.items():
            if key.split(".")[0] in groups:
                target = ROOT / (where.split(":")[0].replace(".", "/"))
                assert (target.with_suffix(".py") in files or target / "__init__.py" in files), (module, key)


def test_the_comparison_runs_depend_on_every_train_key_but_patience_and_seed():
    """compare.patience replaces train.patience and the matrix sets the seed; any other train key (a new one too)
    must re-run the comparison's runs when it changes."""
    from pipeline.core.params import TrainParams

    stage = yaml.safe_load((ROOT / "comparison" / "dvc.yaml").read_text())["stages"]["compare"]
    listed = {p.split(".", 1)[1] for p in stage["params"] if isinstance(p, str) and p.startswith("train.")}
    assert listed == set(TrainParams.model_fields) - {"patience", "seed"}
    assert "compare.patience" in stage["params"] and "train" not in stage["params"]
