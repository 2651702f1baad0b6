"""The report from small tables and traces: every figure and CSV, and nothing outside the folder."""

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import edit, synthetic_table, trace, write_jsonl
from sotlat.cli import app
from sotlat.report import figures as F
from sotlat.report.analysis import capacity, prefill_curves, quality, shown_batches, throughput
from sotlat.tables import save_table

FIGURES = ["fig3a_latency_vs_batch", "fig3b_decode_tflops", "fig3c_peak_memory", "decode_heatmap", "prefill_latency",
           "decode_b1_floor", "measurement_quality", "speedup_by_model", "speedup_by_category", "speedup_distribution", "latency_breakdown",
           "token_lengths", "capacity_context", "throughput_vs_batch", "sot_whatif"]


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures drawn by a test are closed after it: matplotlib keeps every open one."""
    yield
    plt.close("all")


def _tables(tmp_path):
    a = synthetic_table(prefill=(1, 300, 10), decode_max=300)
    b = synthetic_table(prefill=(1, 300, 10), decode_max=300, t_decode=lambda b, k: 2.0 + 0.05 * b + 0.002 * k,
                        status=lambda phase, b, l: "oom" if b == 4 and l > 250 else "ok")
    edit(b, {"device": {"name": "other-device", "memory_bandwidth_bytes_per_s": 1e12, "total_memory_bytes": 5000}})
    for t in (a, b):
        edit(t, {"arch.weight_bytes": 100, "arch.config": {"model_type": "llama", "num_attention_heads": 2, "hidden_size": 8,
                                                           "num_hidden_layers": 1, "num_key_value_heads": 1}})
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    save_table(a, paths[0])
    save_table(b, paths[1])
    return paths


def test_report_has_every_figure_and_csv_and_is_self_contained(tmp_path):
    paths = _tables(tmp_path)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a", category="generic", normal=(40, 200)), trace("b", category="math", normal=(30, 20),
                                                                                                       points=[(50, 60)] * 3)])
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--table", str(paths[1]), "--traces", traces,
                                      "--slo-tpot-ms", "1.3", "--slo-ttft-ms", "30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for slug in FIGURES:
        assert (out / f"{slug}.png").stat().st_size > 1000, slug
        assert len(pd.read_csv(out / f"{slug}.csv")) > 0, slug
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == len(FIGURES)
    refs = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", html)
    assert all(r.startswith("data:") or (r.endswith(".csv") and "/" not in r) for r in refs), refs
    assert "http" not in html.replace("data:image", "")
    md = (out / "report.md").read_text()
    assert all(f"({slug}.png)" in md for slug in FIGURES) and "Questions SoT slows down" in md
    per_question = pd.read_csv(out / "speedup_distribution.csv")
    assert "b" in per_question["id"].tolist()
    first = per_question[per_question["table"] == per_question["table"].iloc[0]]["speedup"]
    assert f"{len(first)} questions, mean {first.mean():.2f}x, median {first.median():.2f}x, total " in md
    assert f"x, SoT faster on {(first > 1).mean():.0%}" in md
    means = pd.read_csv(out / "latency_breakdown.csv").iloc[0]  # Fig. 6's caption: the bars' sums, in seconds
    sot = means[["skeleton_prefill_ms", "skeleton_decode_ms", "points_prefill_ms", "points_decode_ms"]].sum()
    assert (f"{means['table']}: normal {F.number((means['normal_prefill_ms'] + means['normal_decode_ms']) / 1e3)} s, SoT {F.number(sot / 1e3)} s, "
            f"of which the points' decode {means['points_decode_ms'] / sot:.0%}; mean speed-up {means['speedup']:.2f}x.") in md
    assert "2 traces, 2.5 points, skeleton 10 tokens, point 33, normal answer 110 (means)." in md  # Fig. 12: means of per-trace means
    assert "\n\n\n" not in md  # no empty caption paragraphs
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]  # no temporary folder left


def test_capacity_and_slo_arithmetic(tmp_path):
    table = synthetic_table(decode_max=300)
    edit(table, {"device.total_memory_bytes": 10_000, "arch.weight_bytes": 1000,
                 "arch.config": {"model_type": "llama", "num_attention_heads": 2, "hidden_size": 8, "num_hidden_layers": 1, "num_key_value_heads": 1}})
    cap = capacity(table, None, headroom=0.5).set_index("batch")  # usable 5000 bytes; memory = 1000 B + k
    assert cap.loc[4, "measured_max_context"] == 300 and cap.loc[1, "measured_max_context"] == 300
    per_token = 1 * 2 * 4 * 2  # layers x K,V x kv width x float16
    assert cap.loc[2, "arithmetic_max_context"] == (5000 - 1000) // (2 * per_token)
    small = capacity(table, budget_gb=800 / 1e9, headroom=0.0)  # the weights alone exceed it: nothing fits, not a negative context
    assert (small["arithmetic_max_context"] == 0).all() and small["measured_max_context"].isna().all()

    figure = F.capacity([table], 800 / 1e9, 0.0)
    assert "Nothing fits for synthetic · test-device · float16 (0.0 GB usable): the weights alone need more." in figure.caption
    assert figure.fig.axes[0].get_yscale() == "linear"  # nothing positive to draw on a log axis
    tp = throughput(table, context=100, prompt=50, slo_tpot_ms=1.25, slo_ttft_ms=36).set_index("batch")
    assert tp.loc[1, "tpot_ms"] == 1.0 + 0.1 + 0.1  # t^D_1(100)
    assert list(tp["meets_slo"]) == [True, False, False, False]  # B=1: TTFT t^P_1(51) = 35.5 ms; B=2: TPOT 1.3 ms > 1.25
    assert tp.loc[3, "tokens_per_s"] == 3 / (1.0 + 0.3 + 0.1) * 1e3



@pytest.mark.parametrize("config, per_token", [
    ({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4}, 2 * 2 * 64 * 2),  # GPT-2's own names: layers x K,V x width x float16
    ({"model_type": "no-such-model", "hidden_size": 64}, None),  # unknown to this transformers: no arithmetic, and said
])
def test_capacity_arithmetic_reads_any_config_as_the_simulator_does(config, per_token):

    table = synthetic_table()
    edit(table, {"device.total_memory_bytes": 10_000, "arch.config": config, "arch.weight_bytes": 1000})
    cap = capacity(table, None, headroom=0.0).set_index("batch")
    figure = F.capacity([table], None, 0.0)
    if per_token:
        assert cap.loc[2, "arithmetic_max_context"] == (10_000 - 1000) // (2 * per_token)
    else:
        assert cap["arithmetic_max_context"].isna().all() and cap.loc[1, "measured_max_context"] == 200
        assert "No arithmetic for synthetic · test-device · float16: this transformers cannot rebuild its config." in figure.caption

def test_many_batches_stay_legible_and_single_runs_have_no_cv():
    table = synthetic_table(batches=range(1, 88), prefill=(1, 30, 10), decode_max=3)
    shown = shown_batches(table)
    assert len(shown) == 8 and shown[0] == 1 and shown[-1] == 87 and list(shown) == sorted(set(shown))
    assert set(prefill_curves(table)["batch"]) == set(shown)
    assert list(shown_batches(synthetic_table(batches=(1, 2, 3)))) == [1, 2, 3]
    table.loc[table["phase"] == "decode", "runs_ms"] = table.loc[table["phase"] == "decode", "latency_ms"].map(lambda v: [v])
    cvs, _ = quality(table)
    assert set(cvs["phase"]) == {"prefill"} and cvs["cv"].notna().all()  # one run: no CV, not a CV of 0


def test_latency_axes_start_at_zero_unless_tables_differ_twentyfold():

    flat = synthetic_table(prefill=(1, 300, 10), decode_max=300, t_decode=lambda b, k: 40.0 + 0.01 * b)  # decode: +0.4% over B = 1..4
    import matplotlib.pyplot as plt

    fig3a = F.fig3([flat])[0].fig
    assert [ax.get_yscale() for ax in fig3a.axes] == ["linear", "linear"] and all(ax.get_ylim()[0] == 0 for ax in fig3a.axes)
    far = synthetic_table(prefill=(1, 300, 10), decode_max=300, t_decode=lambda b, k: 4000.0)
    edit(far, {"device": {"name": "slow-device"}})
    fig = F.fig3([flat, far])[0].fig
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "log"]  # prefill alike, decode 100x apart
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[1].get_yticklabels() if t.get_text()]
    assert ticks and not any("$" in t or "mathdefault" in t for t in ticks)  # plain numbers, not unrendered TeX
    plt.close("all")


def test_a_table_without_any_latency_is_left_out_of_the_latency_figures_and_alone_is_refused(tmp_path):
    paths = _tables(tmp_path)
    none = synthetic_table(prefill=(1, 300, 10), decode_max=300, status=lambda phase, b, l: "oom")
    edit(none, {"device": {"name": "small-gpu", "total_memory_bytes": 50},
                "arch": {"name": "synthetic", "weight_bytes": 100, "config": {"model_type": "llama", "num_attention_heads": 2, "hidden_size": 8,
                                                                              "num_hidden_layers": 1, "num_key_value_heads": 1}}})
    save_table(none, tmp_path / "none.parquet")
    out = tmp_path / "report"
    alone = CliRunner().invoke(app, ["report", "--table", str(tmp_path / "none.parquet"), "--out", str(out)])
    assert alone.exit_code == 2 and not out.exists()
    assert alone.output.splitlines() == [f"error: {tmp_path / 'none.parquet'}: no cell has a latency (1,320 oom): no latency to report"]
    both = CliRunner().invoke(app, ["report", "--table", str(tmp_path / "none.parquet"), "--table", str(paths[0]), "--out", str(out)])
    assert both.exit_code == 0, both.output
    assert f"note: {tmp_path / 'none.parquet'}: no cell has a latency (1,320 oom): it is left out of the latency figures" in both.output
    md = (out / "report.md").read_text()
    assert "Left out of the latency figures: synthetic · small-gpu · float16: no cell has a latency (1,320 oom)." in md
    assert "small-gpu" not in pd.read_csv(out / "fig3a_latency_vs_batch.csv")["table"].str.cat()
    assert "small-gpu" in pd.read_csv(out / "capacity_context.csv")["table"].str.cat()  # where it has something to say


def test_a_legend_of_many_long_labels_goes_under_the_axes_and_a_short_one_stays_inside():
    import matplotlib.pyplot as plt


    tables = []
    for gpu in ("first-device", "second-device", "third-device"):
        t = synthetic_table(decode_max=30)
        edit(t, {"device": {"name": gpu, "memory_bandwidth_bytes_per_s": 1e12}, "arch.read_weight_bytes": 1e9})
        tables.append(t)

    def legend_and_axes(fig):
        fig.canvas.draw()
        boxes = fig.axes[0].get_legend().get_window_extent(), fig.axes[0].get_window_extent()
        plt.close(fig)
        return boxes

    legend, axes = legend_and_axes(F.floor(tables).fig)  # six labels naming table and floor: they would hide the lines
    assert legend.y1 < axes.y0
    legend, axes = legend_and_axes(F.floor(tables[:1]).fig)
    assert axes.y0 <= legend.y0 and legend.y1 <= axes.y1
    edit(tables[0], {"device.name": "a device whose name makes a legend of two labels wider than the axes"})
    legend, axes = legend_and_axes(F.floor(tables[:1]).fig)  # inside, it would spill past the axes over the tick labels
    assert legend.y1 < axes.y0


def test_a_batch_axis_has_whole_batches_even_for_one_batch():
    import matplotlib.pyplot as plt


    for batches in ((1,), (1, 2, 3, 4)):
        for figure in F.fig3([synthetic_table(batches=batches, prefill=(1, 200, 10), decode_max=300)]):
            for ax in figure.fig.axes:
                ticks = [x for x in ax.get_xticks() if ax.get_xlim()[0] <= x <= ax.get_xlim()[1]]
                assert ticks and all(x == int(x) for x in ticks), (batches, figure.slug, ticks)
            plt.close(figure.fig)


def test_axes_with_nothing_to_draw_say_so_and_show_no_scale():
    import matplotlib.pyplot as plt


    figure = F.fig3([synthetic_table(decode_max=30)])[0]  # Fig. 3a needs a 128-token prompt and decode to k = 192
    for ax in figure.fig.axes:
        assert [t.get_text() for t in ax.texts] == ["nothing to draw (the caption says why)"]
        assert not len(ax.get_xticks()) and not len(ax.get_yticks())
    assert "Nothing to draw for synthetic" in figure.caption
    plt.close(figure.fig)


def test_a_report_whose_traces_no_table_answers_lists_them_and_draws_no_speed_up(tmp_path):
    paths = _tables(tmp_path)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("far", normal=(40, 5000))])  # past 8x the decode range on both tables
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--traces", traces, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "speedup_by_model.png").exists() and (out / "token_lengths.png").exists()
    md = (out / "report.md").read_text()
    assert "| far | - | normal stage needs t^D_1(k) up to k=5040" in md  # no model: -
    # what to profile or simulate next: batch 1 and the 2 points, the 40-token prompt on the table's grid, k = 40 + 5000
    assert "| --batches | --prefill-lengths | --decode-max |" in md and "| 1-2 | 1:42:10 | 5040 |" in md


def test_report_tables_and_captions_print_numbers_as_people_read_them():
    assert [F.number(v) for v in (21986.4, -1500.0, 0.8412, 12.345, float("nan"))] == ["21,986", "-1,500", "0.841", "12.3", "-"]


def test_a_report_out_that_names_a_file_is_refused_before_any_work(tmp_path):
    paths = _tables(tmp_path)
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--out", str(tmp_path / "report.html")])
    assert result.exit_code == 2 and not (tmp_path / "report.html").exists()
    assert result.output.splitlines() == [
        f"error: --out: {tmp_path / 'report.html'}: give a folder; the report writes index.html, report.md, figures and CSVs in it"]


def test_each_table_keeps_one_colour_in_every_figure_in_the_order_given(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from sotlat.estimator import estimate
    from sotlat.tables.stats import label

    z, a = synthetic_table(), synthetic_table(t_decode=lambda b, k: 2.0 + 0.1 * b)
    edit(z, {"device": {"name": "zeta-device"}})  # first given, last in the alphabet
    edit(a, {"device": {"name": "alpha-device"}})
    traces = [trace("q", points=[(15, 5)] * 2)]
    estimates = pd.concat([estimate(t, traces).assign(table=label(t)) for t in (z, a)], ignore_index=True)
    by_category = F.speedups(estimates, [z, a])[1]
    assert list(by_category.data.columns[1:]) == [label(z), label(a)]
    bars = [to_hex(c.patches[0].get_facecolor()) for c in by_category.fig.axes[0].containers]
    lines = [to_hex(line.get_color()) for line in F.fig3([z, a])[0].fig.axes[1].get_lines()]
    assert bars == lines == ["#1f77b4", "#ff7f0e"]  # C0, C1: the first table given, the second
    none = synthetic_table(status=lambda phase, b, l: "oom")
    edit(none, {"device": {"name": "small-device"}})
    lines = [to_hex(line.get_color()) for line in F.fig3([none, z, a])[0].fig.axes[1].get_lines()]
    assert lines == ["#ff7f0e", "#2ca02c"]  # a table with no latency draws nothing and keeps its colour: the others keep theirs
    plt.close("all")


def test_wizardlms_29_categories_get_upright_labels_and_the_width_to_hold_them():
    import matplotlib.pyplot as plt

    from sotlat.estimator import estimate
    from sotlat.sot.questions import CATEGORIES_BY_ROW
    from sotlat.tables.stats import label

    t = synthetic_table()
    for categories, rotation, at_least in ((CATEGORIES_BY_ROW["vicuna"], 30, 8), (CATEGORIES_BY_ROW["wizardlm"], 90, 8.5)):
        traces = [trace(f"q{i}", category=c, points=[(15, 5)] * 2) for i, (c, _) in enumerate(categories)]
        figure = F.speedups(estimate(t, traces).assign(table=label(t)), [t])[1]
        ax = figure.fig.axes[0]
        assert len(ax.get_xticklabels()) == len(categories)
        assert {round(tick.get_rotation()) for tick in ax.get_xticklabels()} == {rotation}
        assert figure.fig.get_figwidth() >= at_least
        plt.close(figure.fig)


def test_tables_that_read_alike_stay_apart_by_file_and_one_file_twice_is_refused(tmp_path):
    paths = _tables(tmp_path)
    twin = tmp_path / "twin.parquet"
    twin.write_bytes(paths[0].read_bytes())  # the same GPU and model profiled twice
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a")])
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--table", str(twin), "--traces", traces, "--out", str(out)])
    assert result.exit_code == 0, result.output
    columns = pd.read_csv(out / "speedup_by_model.csv").columns
    assert [c.rsplit(" [", 1)[1] for c in columns[1:]] == [f"{paths[0]}]", f"{twin}]"]
    assert set(pd.read_csv(out / "fig3a_latency_vs_batch.csv")["table"]) == set(columns[1:])
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--table", str(paths[0]), "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: --table: {paths[0]} is given twice"]
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--traces", traces, "--traces", traces, "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: --traces: {traces} is given twice"]
    assert not (tmp_path / "r2").exists()


def test_trace_text_is_shown_as_written_not_parsed_as_tex_or_a_markdown_cell_end(tmp_path):
    paths = _tables(tmp_path)
    traces = write_jsonl(tmp_path / "t.jsonl", [trace("a|b", category=r"cost $\frac$ x", model="m$1$", normal=(40, 900))])  # invalid TeX
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--traces", traces, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "r" / "speedup_by_category.csv")["category"].tolist() == [r"cost $\frac$ x"]
    md = (tmp_path / "r" / "report.md").read_text()  # extrapolated past k = 300: listed in a Markdown table, '|' escaped
    assert "| a\\|b | m$1$ | cost $\\frac$ x |" in md


def test_throughput_context_follows_the_shortest_decode_range_and_one_past_it_is_refused(tmp_path):
    short = tmp_path / "short.parquet"
    table = synthetic_table(prefill=(1, 300, 10), decode_max=100)
    edit(table, {"arch.config": {"model_type": "llama", "num_attention_heads": 2, "hidden_size": 8, "num_hidden_layers": 1}})
    save_table(table, short)
    result = CliRunner().invoke(app, ["report", "--table", str(short), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    throughput = pd.read_csv(tmp_path / "r" / "throughput_vs_batch.csv")
    assert (throughput["context"] == 100).all() and throughput["tpot_ms"].notna().all()  # the default 256 would have drawn nothing
    result = CliRunner().invoke(app, ["report", "--table", str(short), "--context", "101", "--out", str(tmp_path / "r2")])
    assert result.exit_code == 2 and result.output.splitlines() == [f"error: --context 101: past {short}'s decode range (k up to 100)"]
    assert not (tmp_path / "r2").exists()


def test_the_token_length_figure_keeps_models_apart(tmp_path):
    paths = _tables(tmp_path)
    a = write_jsonl(tmp_path / "a.jsonl", [trace("a", category="math", model="m1", normal=(40, 200))])
    b = write_jsonl(tmp_path / "b.jsonl", [trace("b", category="math", model="m2", normal=(40, 20))])
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--table", str(paths[0]), "--traces", a, "--traces", b, "--out", str(out)])
    assert result.exit_code == 0, result.output
    lengths = pd.read_csv(out / "token_lengths.csv").set_index("model")
    assert lengths.loc["m1", "normal_tokens"] == 200 and lengths.loc["m2", "normal_tokens"] == 20  # not one bar of 110


def test_a_figure_a_table_cannot_draw_says_why_in_its_caption():

    short = synthetic_table(batches=(1,), prefill=(1, 100, 10), decode_max=300)  # prompts up to 91: no t^P(121) for Fig. 3's 128
    full = synthetic_table(prefill=(1, 300, 10), decode_max=300)
    edit(full, {"device": {"name": "other-device"}})
    fig3a, fig3b, _ = F.fig3([short, full])
    why = "Nothing to draw for synthetic · test-device · float16: B=1 needs t^P_1(121) for a 128-token prompt, but the prefill grid ends at 91."
    assert fig3a.caption.endswith(why) and fig3b.caption.endswith(why) and "Nothing to draw for synthetic · other-device" not in fig3a.caption
    assert fig3a.data.set_index("table")["missing"].loc["synthetic · test-device · float16"].startswith("t^P_1(121)")
    whatif = F.sot_whatif([short, full], 400)
    assert whatif.caption.endswith("Nothing to draw for synthetic · test-device · float16: it has no batch of 2 or more, the points of a SoT answer.")
    assert whatif.data["speedup"].notna().any()  # the other table draws
    far = F.sot_whatif([full], 100_000)  # past the 8x reach of extrapolated decode
    assert far.caption.endswith("at n = 2, the normal stage needs t^D_1(k) up to k=100050, but the table's decode for batch 1 ends at k=300 "
                                "(extrapolated, it reaches k=2400 at most).")


def test_captions_quote_what_the_figures_show():
    """Each caption says the figure's numbers: Eq. 1 at the smallest and largest batch, the decode
    step at the heatmap's corners, the best throughput and the SLO's batch, the speed-up extremes."""
    t = synthetic_table(prefill=(1, 300, 10), decode_max=300)  # t^D_B(k) = 1 + 0.1 B + 0.001 k
    name = "synthetic · test-device · float16"
    fig3a = F.fig3([t])[0]
    # 64 decoded after a 128-token prompt, Eq. 1 as printed: k = 128..192, 65 terms of 1 + 0.1 B + 0.001 k
    assert f"Decoding 64 tokens: {name}: 81.9 ms at B=1, 101 at B=4 (1.24x)." in fig3a.caption
    assert F.decode_heatmaps([t]).caption == f"{name}: t^D_1(1) = 1.1 ms, t^D_1(300) = 1.4 ms; t^D_4(1) = 1.4 ms, t^D_4(300) = 1.7 ms."
    # t^P_B(l) = 10 B + 0.5 l on l = 1..291
    assert F.prefill_lines([t]).caption == f"{name}: t^P_1(1) = 10.5 ms, t^P_1(291) = 156 ms; t^P_4(1) = 40.5 ms, t^P_4(291) = 186 ms."
    # context 256: TPOT = 1.356 + 0.1 (B - 1) ms; B tokens per step
    assert F.throughput([t], 256, 128, None, None).caption == f"{name}: most 2,415 tokens/s at B=4 (TPOT 1.66 ms)."
    assert F.throughput([t], 256, 128, 1.5, None).caption.endswith("; the largest batch meeting the SLOs, B=2, gives 1,374 tokens/s.")
    assert F.throughput([t], 256, 128, 1.0, None).caption.endswith("; no batch meets the SLOs.")
    whatif = F.sot_whatif([t], 400)
    equal = whatif.data[whatif.data["imbalance"] == 0].set_index("points")["speedup"]
    assert whatif.caption.endswith(f"{name}: with equal points, at most {equal.max():.2f}x, at n = {equal.idxmax()}.") and equal.max() > equal.min()
    by = pd.DataFrame({"t": [0.5, 2.0, 1.5]}, index=["coding", "roleplay", "math"])
    assert F._bar_extremes(by) == "t: highest roleplay 2.00x, lowest coding 0.50x; above 1x for 2 of 3."
    assert F._bar_extremes(by.iloc[:1]) == "t: coding 0.50x."
    assert F._bar_extremes(by.assign(t=1.5)) == "t: 1.50x for all 3."


def test_latency_breakdown_is_per_model_where_traces_come_from_several_and_marks_the_mean_speed_up():
    from sotlat.estimator import estimate
    from sotlat.tables.stats import label

    t = synthetic_table(prefill=(1, 300, 10), decode_max=300)
    traces = [trace("q1", model="m", normal=(20, 80)), trace("q2", model="m"), trace("q1", model="n", normal=(20, 10))]
    est = estimate(t, traces).assign(table=label(t))
    figure = F.breakdown(est)
    assert figure.data["model"].tolist() == ["m", "n"]  # the models are never averaged together
    assert figure.data["speedup"].tolist() == pytest.approx([est["speedup"][:2].mean(), est["speedup"][2]])
    assert [ax.get_title() for ax in figure.fig.axes] == [f"{label(t)} · traces of m", f"{label(t)} · traces of n"]
    assert [x.get_text() for x in figure.fig.axes[0].texts] == [f"mean speed-up {est['speedup'][:2].mean():.2f}x"]
    assert "model" not in F.breakdown(est[est["model"] == "m"]).data  # one model: one panel per table, as before


def test_the_measurement_quality_section_gives_each_tables_dispersion_and_warm_up(tmp_path):
    from pathlib import Path

    h200 = Path(__file__).parents[1] / "docs" / "validation" / "h200-2026-12-04" / "llama-13b.parquet"  # no warm-up, cold first sweeps
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--table", str(h200), "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    section = md.split("## Measurement quality per table")[1].split("\n## ")[0]
    rows = [r for r in section.splitlines() if r.startswith("| llama-13b")]
    assert len(rows) == 2  # prefill, decode
    prefill, decode = ([c.strip() for c in r.strip("|").split("|")] for r in rows)
    assert prefill[1:5] == ["prefill", "42", "1", "2.9"] and decode[1:5] == ["decode", "1152", "42.2", "57.4"]  # as `tables show` says
    assert decode[5:7] == ["none recorded", "147"] and "likely cause: no warm-up sweep" in decode[7]
