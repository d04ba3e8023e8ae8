"""A run's report: one self-contained HTML file to hand over (``python -m core report RUN``).

The file needs nothing but a browser, offline: no script, no style sheet, font or image from
elsewhere; every figure is an inline SVG drawn here (no plotting library). Its sections, each
replaced by a one-line note when the run lacks what it shows (a run still at crossdomain, a run
without a sweep or without decisions):

1. the run: id, config name, created, state, versions and device, domains, key settings;
2. baselines vs universal models: test accuracy per domain with its interval, the paired
   differences from the baselines; the curated taxonomy's model appears as method ``curated``;
3. the selection: every saved method's edges, scores against the ground truth, universal classes;
4. the accuracy sweep: validation accuracy over each method's parameter (line plots);
5. the taxonomy of one method (default: the run's best, as the dashboard picks it): statistics
   and a picture of the universal classes that join two or more domains; when the run saved a
   curated taxonomy (method key ``curated``, :mod:`core.curated`) and it is not that method, its
   statistics and picture too, labelled as curated, after the chosen method's;
6. the researcher's decisions (:mod:`core.curation`) and how the method's edges score against them.

Every string read from the run (class and domain names, notes, authors) is escaped. The page
prints well (print styles: no navigation, no table or figure cut across pages).

The page's building blocks (escaping, numbers as text, tables, the style sheet) are in
:mod:`core.report_html`, the figures in :mod:`core.report_svg` (re-exported here), the colours
in :mod:`core.palette`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core.palette import DOMAIN_COLOURS, METHOD_COLOURS
from core.report_html import CSS, DASH, LABEL_CHARS, Html, cell, esc, is_number, meta, note, num, one_line, table
from core.report_svg import MAX_GRAPH_NODES, axis_range, graph_svg, line_plot_svg, nice_ticks, taxonomy_stats
from core.runs import CURATED, STEPS, F, Run

__all__ = [
    "DOMAIN_COLOURS",
    "MAX_GRAPH_NODES",
    "LABEL_CHARS",
    "build_report",
    "report_inputs",
    "chosen_method",
    "taxonomy_stats",
    "graph_svg",
    "line_plot_svg",
    "nice_ticks",
]

EDGES_PER_DECISION = 6  # edges a decision lists before "and N more"
MAX_PROBLEMS = 20  # log problems listed


# ----------------------------------------------------------------------------- which method


def _best(headline: Mapping | None, keys: Sequence[str]) -> str | None:
    """The key of ``keys`` with the best mean universal test accuracy in the headline (ties: the
    first); the same rule as ui.runview.best_method (copied: core never imports ui)."""
    scored = []
    for pos, key in enumerate(keys):
        value = (headline or {}).get(f"universal_mean/{key}")
        if is_number(value) and value == value:
            scored.append((-float(value), pos, key))
    return min(scored)[2] if scored else None


def chosen_method(run: Run, method: str | None = None) -> str | None:
    """The method key whose taxonomy and decisions the report details: ``method`` (ValueError
    when the run saved no taxonomy under it), else the run's best (its results' headline), else
    the first saved, else None."""
    keys = run.methods()
    if method is not None:
        if method not in keys:
            raise ValueError(f"method {method!r} has no saved taxonomy in run {run.id!r}; saved: {keys or 'none'}")
        return method
    results = run.results_json()
    headline = results.get("headline") if isinstance(results, dict) else None
    return _best(headline if isinstance(headline, dict) else None, keys) or (keys[0] if keys else None)


def report_inputs(run: Run) -> list[str]:
    """The run files (relative paths, core.runs.F) the report reads: their modification times
    make a cache key (the dashboard rebuilds the report when one changes)."""
    files = [F.CONFIG, F.ENVIRONMENT, F.STATUS, F.DOMAINS, F.GROUND_TRUTH, F.RESULTS_JSON, F.RESULTS_CSV]
    files += [F.SWEEP_CSV, F.CURATION, F.universal(CURATED, "metrics.json")]
    for key in run.methods():
        files += [F.taxonomy(key, n) for n in ("relationships.npz", "selection.json", "taxonomy.json")]
    return files


# ----------------------------------------------------------------------------- the sections


@dataclass
class _Ctx:
    run: Run
    method: str | None
    names: list[str]
    class_names: list[list[str]]
    status: dict
    explicit: bool = False  # the method was given (not the run's best)


def _section_run(ctx: _Ctx) -> str:
    run, status = ctx.run, ctx.status
    env, cfg = run.environment(), run.config
    done = status.get("steps_done") or []
    state = f"{status.get('state', '?')}"
    if status.get("state") != "done" and status.get("step"):
        state += f" (step {status['step']})"
    if status.get("error"):
        state += f": {status['error']}"
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    versions = ", ".join(f"{k} {v}" for k, v in packages.items() if v)
    device = env.get("device") or cfg.get("device")
    if env.get("gpu"):
        device = f"{device} ({env['gpu']})"
    parts = [
        ("run", run.id),
        ("config", cfg.get("name")),
        ("created", env.get("created") or env.get("start_time") or status.get("updated")),
        ("state", state),
        ("steps done", f"{len(done)}/{len(STEPS)}: {', '.join(done) if done else 'none'}"),
        ("seed", cfg.get("seed", env.get("seed"))),
        ("python", env.get("python")),
        ("packages", versions),
        ("device", device),
        ("platform", env.get("platform")),
    ]
    out = [meta(parts)]
    out.append("<h3>Domains</h3>")
    domains = run.domains()
    if domains:
        rows = [
            [d.get("name"), d.get("source"), d.get("shift"), len(d.get("class_names") or []),
             d.get("n_train"), d.get("n_val"), d.get("n_test")]
            for d in domains
        ]  # fmt: skip
        out.append(table(["domain", "source", "shift", "classes", "train", "val", "test"], rows))
        if run.ground_truth() is not None:
            out.append(note("The domains come from a synthetic world: its true relationships score the selection."))
    else:
        out.append(note("No domains yet: the run has not finished its domains step."))
    out.append("<h3>Key settings</h3>")
    if cfg:
        features = cfg.get("features") or {}
        methods = (cfg.get("selection") or {}).get("methods") or []
        shown = []
        for m in methods:
            if not isinstance(m, dict):
                continue
            params = ", ".join(f"{k}={v}" for k, v in (m.get("params") or {}).items())
            label = f"{m.get('name')}" + (f" ({params})" if params else "")
            if m.get("label") and m.get("label") != m.get("name"):
                label += f" as {m['label']}"
            shown.append(label)
        evaluation = cfg.get("evaluation") or {}
        out.append(
            meta(
                [
                    ("backbone", f"{features.get('backbone')} at {features.get('image_size')} px"),
                    ("cross-domain matrix", (cfg.get("crossdomain") or {}).get("matrix")),
                    ("selection methods", "; ".join(shown)),
                    ("universal loss", (cfg.get("universal") or {}).get("loss")),
                    (
                        "evaluation",
                        f"{evaluation.get('bootstrap')} bootstrap resamples, level "
                        f"{evaluation.get('level')}, {evaluation.get('seeds')} seed(s)",
                    ),
                ]  # fmt: skip
            )
        )
    else:
        out.append(note("No config in the run folder."))
    return "\n".join(out)


def _results_columns(ctx: _Ctx, results) -> tuple[list[str], list[str], dict[str, dict[str, float]]]:
    """(domains, model columns, {column: {domain|"mean": accuracy}}) of the results table, plus
    the curated model's metrics as ``universal/curated`` when the table lacks them."""
    domains = [str(d) for d in results["domain"] if str(d) != "mean"]
    cols = [c for c in results.columns if c == "baseline" or str(c).startswith("universal/")]
    values = {c: {str(d): v for d, v in zip(results["domain"], results[c])} for c in cols}
    curated = f"universal/{CURATED}"
    metrics = ctx.run.universal_metrics(CURATED) if curated not in cols else None
    if isinstance(metrics, dict) and metrics:
        per = {d: metrics.get(d) for d in domains}
        nums = [float(v) for v in per.values() if is_number(v)]
        per["mean"] = float(np.mean(nums)) if nums else None
        cols.append(curated)
        values[curated] = per
    return domains, cols, values


def _model_name(col: str) -> str:
    return col.split("/", 1)[1] if col.startswith("universal/") else col


def _section_results(ctx: _Ctx) -> str:
    run = ctx.run
    results = run.results()
    if results is None:
        return note(
            f"No results yet: the run has not finished its results step (state {ctx.status.get('state')}, "
            f"step {ctx.status.get('step') or DASH})."
        )
    if "domain" not in results.columns:
        raise ValueError(f"{F.RESULTS_CSV} has no domain column")
    summary = run.results_json() or {}
    intervals = summary.get("intervals") if isinstance(summary.get("intervals"), dict) else None
    domains, cols, values = _results_columns(ctx, results)
    heads = [*domains, "mean"]
    best = {}
    for d in heads:
        nums = [float(values[c][d]) for c in cols if is_number(values[c].get(d)) and values[c][d] == values[c][d]]
        best[d] = max(nums) if nums else None
    acc = (intervals or {}).get("accuracy") or {}
    rows, classes = [], []
    for c in cols:
        row = [_model_name(c)]
        for d in heads:
            v = values[c].get(d)
            text = esc(num(v))
            if is_number(v) and best[d] is not None and float(v) == best[d]:
                text = f"<b>{text}</b>"
            ci = (acc.get(c) or {}).get(d)
            if isinstance(ci, list) and len(ci) == 3:
                text += f' <span class="ci">[{esc(num(ci[1]))}, {esc(num(ci[2]))}]</span>'
            row.append(cell(text))
        rows.append(row)
        classes.append("chosen" if _model_name(c) == ctx.method else "")
    out = [table(["model", *heads], rows, row_class=classes)]
    caption = "Test accuracy per domain and its mean over domains; the best model per column in bold."
    if intervals:
        caption += (f" In brackets: {num(intervals.get('level', 0.95) * 100, 0)}% bootstrap intervals over the test "
                    f"images ({intervals.get('n_boot')} resamples).")  # fmt: skip
    if f"universal/{CURATED}" in cols:
        caption += " The row 'curated' is the universal model trained on the curated taxonomy."
    out.append(f'<p class="note">{esc(caption)}</p>')
    diff = (intervals or {}).get("vs_baseline") or {}
    if diff:
        out.append("<h3>Universal minus baseline (paired, same test images)</h3>")
        drows = []
        for c, per in diff.items():
            row = [_model_name(c)]
            for d in ["mean", *domains]:
                x = per.get(d) if isinstance(per, dict) else None
                if not isinstance(x, dict):
                    row.append(DASH)
                    continue
                verdict = "within noise" if x.get("within_noise") else ("better" if x.get("diff", 0) > 0 else "worse")
                row.append(cell(f"{esc(num(x.get('diff'), signed=True))} <span class=\"ci\">["
                                f"{esc(num(x.get('lo'), signed=True))}, {esc(num(x.get('hi'), signed=True))}] "
                                f"{esc(verdict)}</span>"))  # fmt: skip
            drows.append(row)
        out.append(table(["model", "mean", *domains], drows))
        out.append(note(_noise_note(intervals)))
    seeds = summary.get("seeds")
    if isinstance(seeds, dict) and seeds:
        srows = []
        for c, per in seeds.items():
            try:
                runs = np.mean([np.asarray(v, dtype=float) for v in per.values()], axis=0)
            except (TypeError, ValueError, AttributeError):
                continue
            spread = f" ± {num(runs.std(ddof=1))}" if runs.size > 1 else ""
            srows.append([_model_name(c), cell(f"{esc(num(runs.mean()))}{esc(spread)}"), int(runs.size)])
        if srows:
            out.append("<h3>Spread over training seeds (mean over domains)</h3>")
            out.append(table(["model", "mean ± std", "seeds"], srows))
    return "\n".join(out)


def _noise_note(intervals: Mapping | None) -> str:
    """The footnote of the paired differences: the rule of core.intervals.paired_difference."""
    level = (intervals or {}).get("level", 0.95)
    level = float(level) if is_number(level) else 0.95
    return (
        f"'within noise': the {num(level * 100, 0)}% interval contains 0 OR the exact McNemar test on the images "
        f"only one of the two got right does not reject (p ≥ {num(1 - level, 2)}); only when neither holds is the "
        "difference called better or worse. The mean over domains has the interval only (McNemar pools images, "
        "not domains)."
    )


def _truth(run: Run):
    """The run's true relationships ``{(a, b): W_ab}`` (Run.true_relationships: an imported truth,
    else the synthetic world's), or None."""
    if hasattr(run, "true_relationships"):
        return run.true_relationships()
    gt = run.ground_truth()
    return gt.true_relationships() if gt is not None else None


def _scores_of(run: Run, key: str, sel: Mapping, truth) -> dict | None:
    """The scores the selection saved, else computed now against ``truth`` (None without one)."""
    scores = sel.get("scores")
    if isinstance(scores, dict):
        return scores
    if truth is None:
        return None
    from core.metrics import relationship_scores

    try:
        return relationship_scores(run.relationships(key), truth, run.class_counts())
    except ValueError:
        return None


def _section_selection(ctx: _Ctx) -> str:
    run = ctx.run
    keys = run.methods()
    if not keys:
        return note("No selection yet: the run has not saved a taxonomy (its selection and taxonomy steps).")
    truth = _truth(run)
    rows, classes, any_scores = [], [], False
    for key in keys:
        sel = run.selection(key)
        sel = sel if isinstance(sel, dict) else {}
        n_edges = sel.get("n_edges")
        if not is_number(n_edges):
            n_edges = int(sum(int(np.count_nonzero(w)) for w in run.relationships(key).values()))
        tax = run.taxonomy(key)
        scores = _scores_of(run, key, sel, truth) or {}
        any_scores = any_scores or bool(scores)
        params = sel.get("params") if isinstance(sel.get("params"), dict) else {}
        method = sel.get("method") or (CURATED if key == CURATED else DASH)
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or DASH
        base = sel.get("base")
        if isinstance(base, dict):  # the curated taxonomy: the setting it corrects (core.curated)
            value = f" {base.get('param')}={base.get('value')}" if base.get("param") else ""
            shown = f"decisions on {base.get('method')}{value}"
        rows.append(
            [key, method, shown, sel.get("matrix") or (base or {}).get("matrix") or DASH,
             n_edges, tax.n_universal if tax is not None else None,
             *(scores.get(m) for m in ("edr", "precision", "recall", "f1"))]
        )  # fmt: skip
        classes.append("chosen" if key == ctx.method else "")
    header = ["key", "method", "parameters", "matrix", "edges", "universal classes"]
    if any_scores:
        header += ["EDR", "precision", "recall", "F1"]
    else:
        rows = [r[:6] for r in rows]
    out = [table(header, rows, row_class=classes)]
    text = "Every saved selection method (highlighted: the one detailed below)."
    text += (
        " Scores against the ground truth: EDR (0 = the true graph), precision, recall, F1 of the edges."
        if any_scores
        else " No ground truth in this run: no scores."
    )
    out.append(note(text))
    return "\n".join(out)


def _section_sweep(ctx: _Ctx) -> str:
    sweep = ctx.run.sweep_table()
    if sweep is None or sweep.empty:
        return note("No accuracy sweep in this run (python -m core sweep RUN trains one universal head per "
                    "selection setting and scores it on the validation images).")  # fmt: skip
    from core.sweep_summary import best_by_accuracy

    methods = list(dict.fromkeys(sweep["method"].astype(str)))
    colour = {m: METHOD_COLOURS[k % len(METHOD_COLOURS)] for k, m in enumerate(methods)}
    ok = sweep.dropna(subset=["val_acc_mean"])
    y_range = axis_range(ok["val_acc_mean"].tolist(), pad=0.08)
    curves, flat = [], []
    for m in methods:
        rows = ok[ok["method"].astype(str) == m]
        if rows.empty:
            continue
        if rows["value"].notna().any():
            curves.append((m, rows.dropna(subset=["value"]).sort_values("value")))
        else:
            y = float(rows["val_acc_mean"].iloc[0])
            flat.append({"label": f"{m}: {num(y)}", "y": y, "colour": colour[m]})
    panels = []
    for m, rows in curves:
        param = str(rows["param"].iloc[0]) if "param" in rows and rows["param"].notna().any() else "parameter"
        best = rows.loc[rows["val_acc_mean"].idxmax()]
        series = [{"label": m, "x": rows["value"].astype(float).tolist(), "y": rows["val_acc_mean"].tolist(),
                   "colour": colour[m], "best": float(best["value"])}]  # fmt: skip
        panels.append(line_plot_svg(series, hlines=flat, title=f"{m} ({param})", x_label=param,
                                    y_label="validation accuracy (mean)", y_range=y_range))  # fmt: skip
    if not panels and flat:
        panels.append(line_plot_svg([], hlines=flat, title="parameter-free methods",
                                    y_label="validation accuracy (mean)", y_range=y_range))  # fmt: skip
    out = []
    if panels:
        caption = (
            "Validation accuracy (mean over domains) of a universal head trained for every selection setting, "
            "over each method's parameter; the ring marks the best setting; dashed: parameter-free methods, for "
            "reference. The test images play no part in it."
        )
        out.append(
            f'<figure><div class="panels">{"".join(panels)}</div><figcaption>{esc(caption)}</figcaption></figure>'
        )
    else:
        out.append(note("The sweep has no scored setting yet."))
    best = best_by_accuracy(sweep)
    if len(best):
        cols = [c for c in ("method", "param", "value", "n_edges", "n_universal", "val_acc_mean", "f1")
                if c in best.columns]  # fmt: skip
        if "f1" in cols and not best["f1"].notna().any():
            cols.remove("f1")
        rows = [
            [None if (is_number(v) and v != v) else (f"{v:g}" if c == "value" else v) for c, v in zip(cols, r)]
            for r in best[cols].itertuples(index=False)
        ]
        names = {"param": "parameter", "n_edges": "edges", "n_universal": "universal classes",
                 "val_acc_mean": "val. accuracy", "f1": "F1"}  # fmt: skip
        out.append("<h3>Best setting per method (validation accuracy)</h3>")
        out.append(table([names.get(c, c) for c in cols], rows))
    return "\n".join(out)


def _taxonomy_block(run: Run, key: str, title: str) -> list[str]:
    """The statistics, the per-domain table and the picture of method ``key``'s taxonomy under
    the heading ``title`` (a note when the run saved none)."""
    tax = run.taxonomy(key)
    out = [f"<h3>{esc(title)}</h3>"]
    if tax is None:
        return [*out, note(f"Method {key} has no saved taxonomy.")]
    s = taxonomy_stats(tax)
    sizes = " · ".join(f"{k}: {v}" for k, v in s["size_counts"].items())
    out += [
        meta(
            [
                ("universal classes", s["n_universal"]),
                ("domain classes", s["n_domain_classes"]),
                ("classes joining ≥ 2 domains", f"{s['n_joining']} of {s['n_universal']}"),
                (
                    "members per universal class",
                    f"min {s['members_min']}, median {num(s['members_median'], 1)}, "
                    f"mean {num(s['members_mean'], 2)}, max {s['members_max']}",
                ),
                ("universal classes by members", f"{sizes} (members: classes)"),
                ("domain classes in > 1 universal class", s["n_split"]),
            ]  # fmt: skip
        ),
        table(
            ["domain", "classes", "universal classes it joins"],
            [[d["domain"], d["classes"], d["universal"]] for d in s["per_domain"]],
        ),  # fmt: skip
    ]
    svg, caption = graph_svg(tax)
    if svg:
        out.append(f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>")
    else:
        out.append(note(caption))
    return out


def _curated_base(run: Run) -> str:
    """The setting the curated taxonomy corrects (its selection.json ``base``), in words."""
    sel = run.selection(CURATED)
    base = sel.get("base") if isinstance(sel, dict) else None
    if not isinstance(base, dict):
        return "a selection setting"
    value = f" {base.get('param')}={base.get('value')}" if base.get("param") else ""
    matrix = f" ({base.get('matrix')} matrices)" if base.get("matrix") else ""
    return f"{base.get('method')}{value}{matrix}"


def _section_taxonomy(ctx: _Ctx) -> str:
    if ctx.method is None:
        return note("No taxonomy saved yet: the run has not finished its taxonomy step.")
    if ctx.run.taxonomy(ctx.method) is None:
        return note(f"Method {ctx.method} has no saved taxonomy.")
    how = "chosen on the command line" if ctx.explicit else "the run's best universal model, else the first saved"
    if ctx.method == CURATED:
        how = f"the curated taxonomy: decisions on {_curated_base(ctx.run)}; {how}"
    out = _taxonomy_block(ctx.run, ctx.method, f"Method {ctx.method} ({how})")
    if ctx.method != CURATED and CURATED in ctx.run.methods():
        out += _taxonomy_block(
            ctx.run, CURATED, f"Curated taxonomy (method {CURATED}: the researcher's decisions on "
                              f"{_curated_base(ctx.run)}), beside method {ctx.method}"
        )  # fmt: skip
    return "\n".join(out)


def _section_decisions(ctx: _Ctx) -> str:
    from core.curation import class_label, curation_scores, load_state

    run = ctx.run
    if not run.file(F.CURATION).exists() and not run.file(F.CURATION).is_symlink():
        return note("No decisions logged: nobody has accepted, rejected or added a relationship in this run.")
    state = load_state(run)
    names, cls = ctx.names, ctx.class_names

    def edge(e) -> str:
        return f"{class_label(e.a, e.i, names, cls)} → {class_label(e.b, e.j, names, cls)}"

    out = []
    if state.applied:
        rows = []
        for d in state.applied:
            shown = [edge(e) for e in d.edges[:EDGES_PER_DECISION]]
            more = len(d.edges) - len(shown)
            text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
            rows.append([Html(f'<span class="nw">{esc(d.time.replace("T", " "))}</span>'), d.author, d.action, text,
                         d.relation, d.note])  # fmt: skip
        out.append(table(["time", "author", "action", "edges", "relation", "note"], rows))
    out.append(note(f"{len(state.applied)} decision(s) in force, {state.n_undone} undone (not in force); "
                    f"{len(state.accepted)} edge(s) accepted, {len(state.rejected)} rejected."))  # fmt: skip
    if state.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in state.problems[:MAX_PROBLEMS])
        more = len(state.problems) - MAX_PROBLEMS
        extra = f"<li>{esc(f'and {more} more')}</li>" if more > 0 else ""
        out.append(f"<h3>Log problems ({len(state.problems)})</h3><ul>{items}{extra}</ul>")
    if ctx.method is not None:
        sc = curation_scores(run.relationships(ctx.method), state)
        out.append(f"<h3>The decisions as ground truth for {esc(ctx.method)}</h3>")
        out.append(
            table(
                ["precision", "recall", "F1", "judged", "selected", "accepted", "rejected"],
                [
                    [
                        sc["precision"],
                        sc["recall"],
                        sc["f1"],
                        sc["n_judged"],
                        sc["n_selected"],
                        sc["n_accepted"],
                        sc["n_rejected"],
                    ]
                ],
            )  # fmt: skip
        )
        out.append(note("Precision: accepted among the method's judged edges; recall: the accepted edges the "
                        "method selected. – where nothing was judged or accepted."))  # fmt: skip
    return "\n".join(out)


SECTIONS: list[tuple[str, str, Callable[[_Ctx], str]]] = [
    ("run", "The run", _section_run),
    ("results", "Baselines vs universal models", _section_results),
    ("selection", "Selection methods", _section_selection),
    ("sweep", "Accuracy sweep", _section_sweep),
    ("taxonomy", "Universal taxonomy", _section_taxonomy),
    ("decisions", "Decisions", _section_decisions),
]
SECTION_ERRORS = (ValueError, OSError, KeyError, TypeError, IndexError, AttributeError)


def build_report(run: Run | str | os.PathLike, *, method: str | None = None) -> str:
    """The run's report as one self-contained HTML page (see the module docstring).

    ``run``: a :class:`core.runs.Run` (or a run id / folder, opened with core.runs.open_run);
    ``method``: the key whose taxonomy and decisions are detailed (default :func:`chosen_method`;
    ValueError when the run saved no taxonomy under it). A section whose files cannot be read
    says so in one line; the others are still built."""
    if not isinstance(run, Run):
        from core.runs import open_run

        run = open_run(run)
    key = chosen_method(run, method)
    ctx = _Ctx(run, key, run.domain_names(), run.class_names(), run.status(), explicit=method is not None)
    body = []
    for sid, title, build in SECTIONS:
        try:
            html_ = build(ctx)
        except SECTION_ERRORS as exc:
            html_ = note(f"This section could not be built: {one_line(exc)}")
        body.append(f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{html_}\n</section>')
    toc = "".join(f'<li><a href="#{sid}">{esc(title)}</a></li>' for sid, title, _ in SECTIONS)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    config_name = run.config.get("name")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Unitax report: {esc(run.id)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>Unitax report: {esc(run.id)}</h1>\n"
        f'<p class="note">{esc(f"config {config_name}" if config_name else "no config")} · '
        f"state {esc(ctx.status.get('state', '?'))} · generated {esc(now)}</p></header>\n"
        f"<nav><ol>{toc}</ol></nav>\n" + "\n".join(body) + "\n"
        "<footer>Written by unitax (python -m core report). Self-contained: no script, nothing loaded from "
        "elsewhere. Numbers are read from the run folder as they were when the report was made.</footer>\n"
        "</body>\n</html>\n"
    )
