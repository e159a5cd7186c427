"""Record the reference renderer's output for the cases in reference-inputs.json.

Run with Tinybird's own package importable (pip install tinybird==5.0.3 tornado; the renderer needs only
tornado): python gen_reference.py > reference-cases.json (INPUTS=other.json to record another input list). The Rust test `reference_recorded_cases` replays the
result. Cases where CPython's own parser rejects the expression (SyntaxError) are left out: their wording comes
from CPython, not from Tinybird, and this crate words them itself (see tests/it/errors.rs).
"""
import json
import os
import sys

from tinybird.sql_template import SQLTemplateCustomError, render_sql_template

here = os.path.dirname(os.path.abspath(__file__))
inputs = json.load(open(os.environ.get("INPUTS") or os.path.join(here, "reference-inputs.json")))
out = []
for i, case in enumerate(inputs):
    template = case["template"]
    params = dict(case.get("params", {}))
    params.update(case.get("json_params", {}))
    rec = {"id": case.get("id") or f"case_{i}", "template": template}
    if case.get("params"):
        rec["params"] = case["params"]
    if case.get("json_params"):
        rec["json_params"] = case["json_params"]
    if case.get("test_mode"):
        rec["test_mode"] = True
    try:
        sql, _, _ = render_sql_template(template, params or None, test_mode=case.get("test_mode", False))
        rec.update(ok=True, sql=sql)
    except SQLTemplateCustomError as e:
        rec.update(ok=False, error_type="SQLTemplateCustomError", error=str(e), code=e.code, err=e.err)
    except SyntaxError as e:
        print(f"skipping {rec['id']}: CPython SyntaxError {e}", file=sys.stderr)
        continue
    except Exception as e:  # noqa: BLE001 - every reference error is recorded with its type
        rec.update(ok=False, error_type=type(e).__name__, error=str(e))
    out.append(rec)
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
print()
