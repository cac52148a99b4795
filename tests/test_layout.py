"""The record layouts: complete metadata, agreement with the config's vocabularies, and the
kernel's shape rules (named fields instead of column numbers, narrow signatures)."""
import ast
from pathlib import Path

import numpy as np
import pytest

from sim import layout as L
from sim.config import EVENT_KINDS, FACTORS, SIGNALS
from sim.inputs import DECISION_EVENTS

SIM = Path(__file__).resolve().parent.parent / "sim"


@pytest.mark.parametrize("dtype", [L.PATH_OUT, L.CLASS_OUT, L.TIME_OUT, L.PATH_PARAM,
                                   L.CLASS_PARAM], ids=lambda d: ",".join(d.names[:2]))
def test_every_output_field_has_units_and_a_long_name(dtype):
    for f in L.fields(dtype):
        assert f.long_name and f.units, f.name
    assert [f.name for f in L.fields(dtype)] == list(dtype.names)


def test_vocabularies_match_the_config():
    assert L.SIGNAL_KINDS == tuple(str(s) for s in SIGNALS)
    assert L.OU_PROCESSES == FACTORS[:-1] and len(FACTORS) == L.N_FACTORS
    assert (set(L.ADDITIVE_EVENTS) | set(DECISION_EVENTS) | {"stress"}
            == {str(k) for k in EVENT_KINDS})
    for kind in L.ADDITIVE_EVENTS:
        assert f"ev_{kind}" in L.STEP.names


def test_float_records_view_as_columns_and_back():
    records = np.zeros((3, 4), L.TIME_OUT)
    records["usdjpy"] = np.arange(12.0).reshape(3, 4)
    cols = L.columns(records)
    assert cols.shape == (3, 4, len(L.TIME_OUT.names))
    assert np.shares_memory(cols, records)
    np.testing.assert_array_equal(cols[..., L.TIME_OUT.names.index("usdjpy")], records["usdjpy"])
    np.testing.assert_array_equal(L.as_records(cols, L.TIME_OUT)["usdjpy"], records["usdjpy"])


def _functions(path):
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)]


def test_kernel_functions_take_at_most_six_arguments():
    wide = [(f.name, len(f.args.args)) for f in _functions(SIM / "kernels.py")
            if len(f.args.args) > 6]
    assert not wide, wide


def test_no_module_declares_numbered_columns():
    """Column constants such as ``A, B, C = range(3)`` are what the layout replaced."""
    for path in sorted(SIM.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                assert not (isinstance(func, ast.Name) and func.id == "range"), (path.name, node.lineno)
