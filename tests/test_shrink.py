"""Shrinking a failing request: smaller variants that keep failing the same way, within a run budget."""

from conformance.generate.shrink import shrink, variants


def request():
    return {
        "id": "r1", "parameters": {"k": 1},
        "inputs": [
            {"name": "a", "shape": [2, 3], "datatype": "INT32", "data": [[1, 2, 3], [4, 5, 6]], "parameters": {"p": "q"}},
            {"name": "b", "shape": [4], "datatype": "INT64", "data": [2**60, 7, 8, 9]},
        ],
        "outputs": [{"name": "b"}, {"name": "a"}],
    }


def test_shrinks_to_the_part_that_fails():
    # pretend the candidate gets INT64 values beyond 2**53 wrong
    def still_fails(r):
        return any(t["datatype"] == "INT64" and any(abs(x) > 2**53 for x in t["data"]) for t in r["inputs"])

    smallest, runs = shrink(request(), still_fails, max_runs=50)
    assert smallest == {"inputs": [{"name": "b", "shape": [1], "datatype": "INT64", "data": [2**60]}]}
    assert runs <= 50


def test_nesting_is_kept_when_cutting_to_one_element():
    cut = [v for v in variants(request()) if v["inputs"][0]["shape"] == [1, 1]]
    assert cut and cut[0]["inputs"][0]["data"] == [[1]]


def test_the_run_budget_is_respected_and_nothing_smaller_is_made_up():
    calls = []
    smallest, runs = shrink(request(), lambda r: calls.append(r) or False, max_runs=3)
    assert smallest == request() and runs == 3 == len(calls)
    scalar = {"inputs": [{"name": "s", "shape": [], "datatype": "FP32", "data": [1.5]}]}
    assert list(variants(scalar)) == []
