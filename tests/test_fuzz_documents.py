"""Property-based test (hypothesis): a bad interface never hides another one in the same file. A native
document whose list holds any interface-like trees (tests/test_fuzz.py's strategy) beside one well-formed
interface, in YAML or JSON, must still give that interface (ARCHITECTURE.md "Bad input never stops the run":
a bad interface in a file does not hide the file's other interfaces).
`APIMON_FUZZ_EXAMPLES=3000 pytest -p no:apimon tests/test_fuzz_documents.py` hunts longer.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_fuzz import check_document, dump, interface_like, load_text

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "100")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
GOOD = {"name": "好的接口-ok", "method": "GET", "path": "/healthy", "expect": {"status": 200}}


@FUZZ
@given(others=st.lists(interface_like, max_size=4), at=st.integers(0, 4), suffix=st.sampled_from([".yaml", ".json"]),
       wrapped=st.booleans())
def test_a_bad_interface_never_hides_a_good_one(others: list[Any], at: int, suffix: str, wrapped: bool) -> None:
    items = [*others[:at], GOOD, *others[at:]]
    names = [o.get("name") for o in others if isinstance(o, dict)]
    assume(GOOD["name"] not in names)  # a duplicate name is an error of both, by design
    data = {"interfaces": items} if wrapped else items
    try:
        text = dump(data, suffix)
        text.encode("utf-8")  # a raw lone surrogate makes the whole file not UTF-8: a file error, by design
        if suffix == ".json":
            json.dumps(data, allow_nan=False)  # NaN/Infinity make the whole file invalid JSON, by design
    except (ValueError, yaml.YAMLError):
        assume(False)
        return
    with tempfile.TemporaryDirectory() as folder:
        result = load_text(Path(folder), "doc" + suffix, text)
    check_document(result)
    assert any(itf.name == GOOD["name"] and itf.path == "/healthy" for itf in result.interfaces), \
        [str(e) for e in result.errors][:5]
