"""K-GOLDEN: the kit's goldens equal the oracle; ``fixtures generate`` is deterministic and never overwrites."""

import json

import pytest

from conformance.cli import main
from conformance.generate import goldens
from conformance.odahu.model import load_model
from conformance.paths import kit_fixtures, kit_model
from conformance.v2.datatypes import NAMES


def test_the_kits_goldens_pass_fixtures_check(capsys):
    assert main(["fixtures", "check"]) == 0
    assert "all equal" in capsys.readouterr().out


def test_the_kits_goldens_cover_what_the_contract_names():
    requests = {p.name: json.loads(p.read_text()) for p in (kit_fixtures() / "input").iterdir()}
    responses = {p.name: json.loads(p.read_text()) for p in (kit_fixtures() / "output").iterdir()}
    assert len(requests) >= 40 and requests.keys() == responses.keys()
    tensors = [t for r in requests.values() for t in r["inputs"]]
    assert {t["datatype"] for t in tensors} == set(NAMES)
    assert any(t["shape"] == [] for t in tensors) and any(0 in t["shape"] for t in tensors)
    assert any(len(t["shape"]) >= 2 and t["data"] and isinstance(t["data"][0], list) for t in tensors)
    assert any(len(t["shape"]) >= 2 and t["data"] and not isinstance(t["data"][0], list) for t in tensors)
    assert any(len(r["inputs"]) >= 3 for r in requests.values())
    assert any("outputs" in r for r in requests.values()) and any("parameters" in r for r in requests.values())
    assert any("id" in r for r in requests.values()) and any("id" not in r for r in requests.values())
    assert any(isinstance(v, int) and abs(v) > 2**53 for t in tensors if t["datatype"] in ("INT64", "UINT64") for v in t["data"])
    assert requests["request.json"]["inputs"][0]["data"] == [10, 20]
    assert responses["request.json"]["outputs"][0]["data"] == [20, 40] and responses["request.json"]["model_name"] == "multiplier"
    errors = [r for r in responses.values() if "error" in r]
    assert len(errors) >= 8  # BOOL, BYTES, unknown output, overflow at each float width, invalid requests


def test_a_tampered_golden_fails_the_check(tmp_path, capsys):
    fixtures = tmp_path / "fx"
    goldens.write(goldens.plan(fixtures, goldens.curated_requests()[:8], load_model(kit_model()), False), force=False)
    assert main(["fixtures", "check", "--fixtures", str(fixtures)]) == 0
    target = fixtures / "output" / "dtype-int8.json"
    body = json.loads(target.read_text())
    body["outputs"][0]["data"][0] += 1
    target.write_text(json.dumps(body))
    (fixtures / "input" / "orphan.json").write_text('{"inputs": [{"name": "a", "shape": [], "datatype": "INT8", "data": [1]}]}')
    assert main(["fixtures", "check", "--fixtures", str(fixtures)]) == 1
    out = capsys.readouterr().out
    assert "K-GOLDEN" in out and "M-VALUE" in out and "orphan.json: K-GOLDEN: has no output twin" in out


def test_generate_is_deterministic_for_a_seed(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["fixtures", "generate", "--count", "25", "--seed", "7", "--out", str(tmp_path / name)]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    assert len(files) == 50
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert main(["fixtures", "generate", "--count", "25", "--seed", "8", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "input").iterdir() and not (tmp_path / "c" / "input" / files[0].name).exists()
    assert main(["fixtures", "check", "--fixtures", str(tmp_path / "a")]) == 0


def test_generate_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "fx"
    assert main(["fixtures", "generate", "--count", "3", "--seed", "1", "--out", str(out)]) == 0
    victim = out / "output" / "gen-1-0001.json"
    victim.write_text("mine")
    assert main(["fixtures", "generate", "--count", "3", "--seed", "1", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and victim.read_text() == "mine"
    assert main(["fixtures", "generate", "--count", "3", "--seed", "1", "--out", str(out), "--force"]) == 0
    assert victim.read_text() != "mine"
    assert not [p for p in out.rglob("*") if p.name.endswith(".partial")]


def test_another_multiplier_makes_a_self_describing_set(tmp_path, capsys):
    out = tmp_path / "neg"
    assert main(["fixtures", "generate", "--curated", "--multiplier", "-3", "--out", str(out)]) == 0
    assert load_model(out / "model").multiplier == -3
    assert main(["fixtures", "check", "--fixtures", str(out)]) == 0
    assert main(["fixtures", "check", "--fixtures", str(out), "--model", str(kit_model())]) == 1


@pytest.mark.parametrize("argv", [["fixtures", "generate"], ["fixtures", "generate", "--count", "-1"]])
def test_generate_usage_errors(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("odahu-conformance: ")


def test_generate_streams_each_pair_to_disk_before_the_next(tmp_path):
    seen = []

    def progress(done, total):
        name = goldens.generated_name(4, done - 1)
        seen.append((done, total, (tmp_path / "input" / name).is_file(), (tmp_path / "output" / name).is_file(),
                     (tmp_path / "input" / goldens.generated_name(4, done)).exists()))

    assert goldens.generate(tmp_path, load_model(kit_model()), curated_cases=False, count=5, seed=4,
                            write_model=False, force=False, progress=progress) == (5, 10)
    assert seen == [(done, 5, True, True, False) for done in range(1, 6)]


def test_generate_memory_does_not_grow_with_count(tmp_path):
    import tracemalloc

    model = load_model(kit_model())

    def peak(count: int) -> int:
        tracemalloc.start()
        try:
            goldens.generate(tmp_path / str(count), model, curated_cases=False, count=count, seed=9,
                             write_model=False, force=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(5)  # warm the caches the first pairs fill
    small, large = peak(30), peak(300)
    assert large < 2 * small + (64 << 10), (small, large)


def test_generate_prints_progress_to_stderr_at_most_once_per_interval():
    import io

    from conformance import cli

    stream = io.StringIO()
    progress = cli._Progress(stream, interval=0.0)
    progress(12000, 10000000)
    assert stream.getvalue() == "generated 12000/10000000 pairs\n"
    quiet = io.StringIO()
    progress = cli._Progress(quiet, interval=3600.0)
    for done in range(1, 100):
        progress(done, 99)
    assert quiet.getvalue() == ""
