"""The registry every kind of named thing uses (pipeline/core/registry.py), and each kind's registry."""

import pytest

from pipeline.core.errors import PipelineError
from pipeline.core.params import REGISTRIES, registry
from pipeline.core.registry import Registry, UnknownNameError


def test_register_get_names_and_meta():
    things = Registry("thing.name")

    @things.register("b", cost=2)
    def b():
        return "b"

    @things.register("a", aliases=("old-a",))
    class A:
        pass

    things.add("c", {"plain": "data"})
    assert things.names() == ["b", "a", "c"] and list(things) == ["b", "a", "c"] and len(things) == 3
    assert things.get("b") is b and b() == "b" and things.get("a") is A and things.get("c") == {"plain": "data"}
    assert things.meta("b") == {"cost": 2} and things.meta("a") == {}
    assert "a" in things and "old-a" not in things and "z" not in things
    # an old name still resolves (old checkpoints), but is not a choice: check() names the new one
    assert things.get("old-a") is A and things.canonical("old-a") == "a" and things.canonical("z") == "z"
    assert things.check("a") == "a"
    with pytest.raises(UnknownNameError, match=r"^thing.name 'old-a' was renamed 'a'$"):
        things.check("old-a")


def test_unknown_name_is_one_line_naming_the_key_and_the_choices():
    things = Registry("thing.name")
    things.add("a", 1)
    things.add("b", 2)
    for call in (things.get, things.check, things.meta):
        with pytest.raises(UnknownNameError) as err:
            call("z")
        assert str(err.value) == "thing.name 'z' unknown; choose one of ['a', 'b']"
        # a user's error (printed as one line by the commands), a failed lookup, a bad value for pydantic
        assert isinstance(err.value, PipelineError | KeyError) and isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="registered twice"):
        things.add("a", 3)
    with pytest.raises(ValueError, match="registered twice"):
        things.add("c", 3, aliases=("b",))


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_every_kind_registers_where_it_is_defined(key):
    """Each kind's registry is filled by importing its package, names the parameter it is chosen by,
    and its entries come from the modules that define them (not from a list somewhere else)."""
    reg = registry(key)
    assert isinstance(reg, Registry) and reg.key == key and len(reg) >= 2
    if key != "compare.methods":  # methods are plain data, registered in methods.py
        package = REGISTRIES[key].split(":")[0].rsplit(".", 1)[0]  # the registry's module's package
        for name in reg:
            assert reg.get(name).__module__.startswith(package), (name, reg.get(name).__module__)


def test_encoders_register_an_image_and_a_text_encoder_under_each_name():
    from pipeline.features.encoders import IMAGE_ENCODERS, TEXT_ENCODERS, list_encoders

    assert IMAGE_ENCODERS.names() == TEXT_ENCODERS.names() == list_encoders() == registry("encoder.name").names()


def test_ocr_engines_register_a_reader_with_its_identity_and_stay_cheap_to_import():
    import subprocess
    import sys

    from pipeline.features.ocr import ENGINES

    for name in ENGINES:
        reader = ENGINES.get(name)
        assert callable(reader) and callable(reader.identity)
    # importing the engines registers them without importing the engines' own packages
    code = ("import sys; from pipeline.core.params import registry; names = registry('ocr.engine').names(); "
            "heavy = [m for m in ('easyocr', 'rapidocr_onnxruntime', 'onnxruntime', 'rapidocr_openvino', 'openvino') "
            "if m in sys.modules]; "
            "print(names, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{ENGINES.names()} []"
