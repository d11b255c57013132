"""Export's libyaml path writes byte for byte what the Python emitter writes (indented sequences
under keys, literal blocks for multi-line text), on any data a manifest can hold."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.export import _CDumper, _Dumper, _flow_items, dump_yaml

TEXT = st.one_of(st.text(alphabet=list("ab -:#{}[],&*!|>'\"%@`?ü\n~"), max_size=12),
                 st.sampled_from(["- x", "yes", "012", "~", "", "a: b", "#c"]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT.filter(bool), inner, max_size=4)), max_leaves=25)


def python_emitter(data: Any, flow: bool = False) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=flow, allow_unicode=True,
                     width=1_000_000)


def test_the_fast_path_is_taken() -> None:
    assert _CDumper is not None  # PyYAML with libyaml: what every wheel for this platform ships


@settings(max_examples=400)
@given(st.dictionaries(TEXT.filter(bool), VALUES, max_size=5))
def test_documents_match_the_python_emitter(spec: dict[str, Any]) -> None:
    document = {"apiVersion": "reconciler/v1", "kind": "Model", "metadata": {"name": "m"}, "spec": spec}
    assert dump_yaml(document) == python_emitter(document)


@settings(max_examples=200)
@given(st.lists(st.dictionaries(st.sampled_from(["provider", "model", "input", "note"]), SCALARS, min_size=1),
                min_size=1, max_size=6))
def test_catalog_lines_match_one_entry_at_a_time(entries: list[dict[str, Any]]) -> None:
    assert _flow_items(entries) == "".join("    - " + python_emitter(e, flow=True) for e in entries)
