"""K-META and the model folder: multiplier parsing, project metadata, one-line problems."""

import pytest
import yaml

from conformance.odahu.model import (
    ModelProblem,
    OtherModel,
    load_model,
    load_other_model,
    parse_multiplier,
    project_findings,
    renamed_project,
)


@pytest.mark.parametrize("text, value", [("2", 2), (" -3\n", -3), ("+7", 7), ("0", 0), ("123456789012345678901234567890", 123456789012345678901234567890)])
def test_multiplier_accepts_base10_integers(text, value):
    assert parse_multiplier(text) == value


@pytest.mark.parametrize("text", ["", "two", "2.5", "0x10", "1e3", "2 3", "٣"])
def test_multiplier_rejects_everything_else(text):
    with pytest.raises(ValueError):
        parse_multiplier(text)


def _model(tmp_path, multiplier="2\n", project="model:\n  name: multiplier\n  version: 1\n", project_name="odahuflow.project.yaml"):
    if multiplier is not None:
        (tmp_path / "multiplier.txt").write_text(multiplier)
    if project is not None:
        (tmp_path / project_name).write_text(project)
    return tmp_path


def test_a_number_version_is_read_as_a_string(tmp_path):
    model = load_model(_model(tmp_path))
    assert (model.multiplier, model.name, model.version) == (2, "multiplier", "1")


def test_yml_extension_is_accepted(tmp_path):
    assert load_model(_model(tmp_path, project_name="odahuflow.project.yml")).name == "multiplier"


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"multiplier": None}, "multiplier.txt: missing"),
        ({"multiplier": "two"}, "not a base-10 integer"),
        ({"multiplier": ""}, "is empty"),
        ({"project": None}, "odahuflow.project.yaml: missing"),
        ({"project": "model:\n  name: ''\n  version: 1\n"}, "K-META"),
        ({"project": "model:\n  name: m\n"}, "K-META"),
        ({"project": "model: [\n"}, "cannot read as YAML"),
    ],
)
def test_unusable_models_get_one_line(tmp_path, kwargs, reason):
    with pytest.raises(ModelProblem, match=reason) as info:
        load_model(_model(tmp_path, **kwargs))
    assert "\n" not in str(info.value)


def test_project_findings_name_the_pointer():
    assert [(f.requirement, f.pointer) for f in project_findings({"model": {"name": "m", "version": ""}}, "p")] == [("K-META", "/model/version")]
    assert [f.requirement for f in project_findings("just text", "p")] == ["K-META"]


def test_a_multiplier_of_5000_digits_is_read_exactly_never_a_crash(tmp_path):
    """The contract's multiplier is any base-10 integer: Python's int() limit (4,300 digits) must not refuse it."""
    from conformance.odahu.model import load_model
    from conformance.oracle.expect import expect
    from conformance.text import integer_text, short_integer

    digits = "9" * 4999 + "7"
    (tmp_path / "multiplier.txt").write_text(f"  -{digits}\r\n")
    (tmp_path / "odahuflow.project.yaml").write_text("model:\n  name: m\n  version: 1\n")
    model = load_model(tmp_path)
    assert integer_text(model.multiplier) == "-" + digits
    assert short_integer(model.multiplier).endswith("(5000 digits)")
    request = {"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [3]}]}
    assert expect(request, model).outputs[0].values.tolist() == [(3 * model.multiplier + 128) % 256 - 128]


@pytest.mark.parametrize("file", ["odahuflow.project.yaml", "odahuflow.project.yml"])
def test_a_renamed_project_changes_the_name_and_version_only(tmp_path, file):
    (tmp_path / file).write_text("# notes\nmodel:\n  name: iris\n  version: 1\n  extra: [a, b]\nother: {x: 1}\n")
    name, content = renamed_project(tmp_path, "another-model", "2.0.1")
    assert name == file
    (tmp_path / file).write_bytes(content)
    assert load_other_model(tmp_path) == OtherModel("another-model", "2.0.1", tmp_path)
    assert yaml.safe_load(content) == {"model": {"name": "another-model", "version": "2.0.1", "extra": ["a", "b"]},
                                       "other": {"x": 1}}


def test_renaming_a_missing_project_is_the_one_line_of_reading_it(tmp_path):
    with pytest.raises(ModelProblem, match="odahuflow.project.yaml: missing"):
        renamed_project(tmp_path, "x", "1")
