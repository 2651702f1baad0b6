"""The CLI's outputs on the repo's tables stay as they were: `estimate`, `latency`, `simulate` and
`tables compare` word for word (tests/golden/, written by `python tests/test_cli_outputs.py` on
purpose, when an output is meant to change), `tables show` but for the schema version."""

import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sotlat.cli import app

ROOT = Path(__file__).parents[1]
GOLDEN = Path(__file__).parent / "golden"
SMOL = "src/sotlat/data/tables/smollm2-135m__cpu-amd-epyc-2c.parquet"
TRACES = "src/sotlat/data/traces/vicuna80-smollm2-135m.jsonl"
COMMANDS = {
    "estimate": ["estimate", "--table", SMOL, "--traces", TRACES, "--extrapolate", "--skip-unanswerable"],
    "estimate_json": ["estimate", "--table", SMOL, "--traces", TRACES, "--extrapolate", "--skip-unanswerable", "--json"],
    "latency": ["latency", "--table", SMOL, "--prompt", "128", "--output", "64"],
    "latency_json": ["latency", "--table", SMOL, "--prompt", "128", "--output", "64", "--json"],
    "compare": ["tables", "compare", SMOL, "docs/validation/smollm2-135m__cpu-b1-8.parquet"],
    "compare_json": ["tables", "compare", SMOL, "docs/validation/smollm2-135m__cpu-b1-8.parquet", "--json"],
    "simulate": ["simulate", "--gpu", "h200", "--arch", "llama-7b", "--batches", "1,4", "--prefill-lengths", "1:200:50", "--decode-max", "32",
                 "--calibration", "hf-eager", "--out", "{tmp}/sim.parquet"],
    "show": ["tables", "show", SMOL],
}


def run(name: str, tmp: Path) -> str:
    args = [a.format(tmp=tmp) for a in COMMANDS[name]]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = result.output.replace(str(tmp), "TMP")
    if name == "simulate":  # the cells too, which the output line only counts
        cells = pd.read_parquet(tmp / "sim.parquet")
        text += cells.drop(columns=["runs_ms"]).to_csv(index=False, float_format="%.9g")
    if name == "show":  # the schema version and the metadata's shape may change; what is shown of them may not
        text = "\n".join(line.split("  schema ")[0] if line.startswith(SMOL) else line for line in text.splitlines()) + "\n"
    return text


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_output_is_what_it_was(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert run(name, tmp_path) == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")


if __name__ == "__main__":  # write the golden files anew: python tests/test_cli_outputs.py [NAME ...]
    import os
    import tempfile

    os.chdir(ROOT)
    for name in sys.argv[1:] or COMMANDS:
        with tempfile.TemporaryDirectory() as tmp:
            (GOLDEN / f"{name}.txt").write_text(run(name, Path(tmp)), encoding="utf-8")
            print(f"tests/golden/{name}.txt")
