"""`treefix swebench report`: figures of one or several batch runs, side by side.

Reads what the runner wrote (`preds.json`, `exit_statuses.yaml`, `<id>/summary.json`) and,
when given or found under `RUN/eval/`, the harness's `report.json` for the resolve rate.
Writes `report.md` (a comparison table and a per-instance table) and `cost_hist.png`.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from treefix.evals.calibration import auc, bins
from treefix.evals.outputs import PREDS, BatchOutputs, OutputsError


class ReportError(RuntimeError):
    """A run folder or eval report that cannot be read; one clear message."""


@dataclass
class InstanceFigures:
    instance_id: str
    exit_status: str
    cost: float
    tokens: int
    turns: int
    nodes: int
    wall_time: float
    resolved: bool | None  # None: not graded
    critic: float | None = None  # the critic's value of the submitted patch (None: not judged)


@dataclass
class RunFigures:
    name: str
    path: Path
    model: str
    visible_tests: bool
    instances: dict[str, InstanceFigures] = field(default_factory=dict)
    eval_report: Path | None = None

    @property
    def graded(self) -> bool:
        return self.eval_report is not None

    def values(self, attr: str) -> list[float]:
        return [float(getattr(i, attr)) for i in self.instances.values()]

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.instances.values():
            out[i.exit_status] = out.get(i.exit_status, 0) + 1
        return dict(sorted(out.items()))


def load_run(path: Path, eval_report: Path | None = None) -> RunFigures:
    if not (path / PREDS).is_file():
        raise ReportError(f"{path}: no {PREDS}; give a folder written by `treefix swebench run`")
    try:
        state = BatchOutputs.load(path)
    except OutputsError as e:
        raise ReportError(str(e)) from None
    eval_report = eval_report or _newest_eval(path)
    resolved: set[str] | None = None
    if eval_report is not None:
        try:
            resolved = set(json.loads(eval_report.read_text())["resolved_ids"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ReportError(f"{eval_report}: not a harness report.json ({e})") from None
    run = RunFigures(path.name, path, "", False, eval_report=eval_report)
    for iid, pred in sorted(state.preds.items()):
        s = state.summary(iid)
        u = s.get("usage", {})
        run.model = run.model or pred.get("model_name_or_path", "")
        run.visible_tests = run.visible_tests or bool(s.get("visible_tests"))
        run.instances[iid] = InstanceFigures(
            iid, state.statuses.get(iid, s.get("exit_status", "?")), float(u.get("cost", 0.0)),
            int(u.get("tokens", 0)), int(u.get("turns", 0)),
            sum(v for k, v in s.get("nodes", {}).items() if k != "root"),
            float(s.get("wall_time", u.get("elapsed", 0.0))),
            None if resolved is None else iid in resolved, (s.get("choice") or {}).get("critic"),
        )  # fmt: skip
    return run


def _newest_eval(path: Path) -> Path | None:
    found = sorted((path / "eval").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def write_report(paths: list[Path], eval_reports: list[Path], output: Path | None = None) -> Path:
    if not paths:
        raise ReportError("give at least one run folder")
    if eval_reports and len(eval_reports) != len(paths):
        raise ReportError(
            f"--eval given {len(eval_reports)} time(s) for {len(paths)} run(s): give one per run, in order"
        )
    runs = [
        load_run(p.resolve(), e.resolve() if e else None)
        for p, e in zip(paths, eval_reports or [None] * len(paths), strict=True)
    ]
    _unique_names(runs)
    output = (output or (paths[0] if len(paths) == 1 else Path("report"))).resolve()
    md = output / "report.md"
    try:
        output.mkdir(parents=True, exist_ok=True)
        hist = output / "cost_hist.png"
        hist.unlink(missing_ok=True)  # an old one would show other figures
        drawn = cost_histogram(runs, hist)
        md.write_text(markdown(runs, drawn))
    except OSError as e:
        raise ReportError(f"cannot write to {output}: {e.strerror or e}") from None
    return md


def _unique_names(runs: list[RunFigures]) -> None:
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"


def markdown(runs: list[RunFigures], histogram: bool = True) -> str:
    rows: list[tuple[str, list[str]]] = [
        ("model", [r.model for r in runs]),
        ("visible tests", ["yes (opt-in)" if r.visible_tests else "no (hidden)" for r in runs]),
        ("instances", [str(len(r.instances)) for r in runs]),
        ("resolved", [_resolved(r) for r in runs]),
        (
            "agent-verified",
            [
                _share(sum(i.exit_status == "verified" for i in r.instances.values()), len(r.instances))
                for r in runs
            ],
        ),
        ("cost total", [f"${sum(r.values('cost')):.4f}" for r in runs]),
        ("cost / instance (mean, median)", [_mm(r.values("cost"), "${:.4f}") for r in runs]),
        ("tokens / instance (mean, median)", [_mm(r.values("tokens"), "{:,.0f}") for r in runs]),
        ("turns / instance (mean, median)", [_mm(r.values("turns"), "{:.1f}") for r in runs]),
        ("turns / instance (p50, p75, p90)", [_percentiles(r.values("turns")) for r in runs]),
        ("tree nodes / instance (mean, median)", [_mm(r.values("nodes"), "{:.1f}") for r in runs]),
        ("wall time / instance (mean, median)", [_mm(r.values("wall_time"), "{:.1f}s") for r in runs]),
        ("wall time total", [f"{sum(r.values('wall_time')):.1f}s" for r in runs]),
        ("exit statuses", [", ".join(f"{k}: {v}" for k, v in r.statuses().items()) or "-" for r in runs]),
    ]
    lines = [
        "# treefix batch report",
        "",
        _table(["", *[r.name for r in runs]], [[k, *v] for k, v in rows]),
        "",
    ]
    lines += calibration(runs)
    lines += ["![cost per instance](cost_hist.png)", ""] if histogram else []
    lines += ["## Per instance", ""]
    ids = sorted({i for r in runs for i in r.instances})
    per = [[i, *[_cell(r.instances.get(i)) for r in runs]] for i in ids]
    lines += [_table(["instance", *[r.name for r in runs]], per), ""]
    lines += [
        "Runs: "
        + "; ".join(
            f"`{r.name}` = {r.path}" + (f" (graded by {r.eval_report})" if r.eval_report else "")
            for r in runs
        ),
        "",
    ]
    return "\n".join(lines)


def calibration(runs: list[RunFigures]) -> list[str]:
    """Per run: the critic's AUC against the graded verdict and a calibration table."""
    lines = ["## Critic calibration", ""]
    for r in runs:
        pairs = [(i.critic, bool(i.resolved)) for i in r.instances.values() if i.critic is not None and i.resolved is not None]
        if not r.graded or not pairs:
            why = "not graded" if not r.graded else "no judged patch"
            lines += [f"`{r.name}`: {why}", ""]
            continue
        a = auc(pairs)
        lines += [f"`{r.name}`: critic AUC {'n/a (one outcome only)' if a is None else f'{a:.2f}'} "
                  f"over {len(pairs)} graded patches (0.5 = a coin)", ""]  # fmt: skip
        rows = [[label, str(n), _share(k, n) if n else "-"] for label, n, k in bins(pairs)]
        lines += [_table(["critic value", "patches", "resolved"], rows), ""]
    return lines


def _percentiles(values: list[float]) -> str:
    """For --turn-cap pNN:RUN_DIR: the caps an earlier run's lengths suggest."""
    from treefix.agent.turns import percentile

    return ", ".join(f"{percentile(values, p):.1f}" for p in (50, 75, 90)) if values else "-"


def _resolved(r: RunFigures) -> str:
    if not r.graded:
        return "not graded"
    return _share(sum(bool(i.resolved) for i in r.instances.values()), len(r.instances))


def _share(n: int, total: int) -> str:
    return f"{n}/{total} ({100 * n / total:.1f}%)" if total else "0/0"


def _mm(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    return f"{fmt.format(statistics.fmean(values))}, {fmt.format(statistics.median(values))}"


def _cell(i: InstanceFigures | None) -> str:
    if i is None:
        return "-"
    mark = {True: "resolved", False: "unresolved", None: ""}[i.resolved]
    return " ".join(p for p in (i.exit_status, mark, f"${i.cost:.4f}", f"{i.wall_time:.1f}s") if p)


def _table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *rows]]
    out = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in esc[1:]]
    return "\n".join(out)


def cost_histogram(runs: list[RunFigures], path: Path) -> bool:
    """Draw the histogram; False (and a one-line note) when matplotlib is not installed: the tables
    are the report, the figure is an extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print("note: no cost histogram: it needs matplotlib (pip install 'treefix[report]')", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    top = max([c for r in runs for c in r.values("cost")] + [0.0])
    span = top if top > 0 else 0.01  # all free (offline, replay): one bar at $0 on a readable axis
    for r in runs:
        ax.hist(r.values("cost"), bins=20, range=(0, span), alpha=0.6 if len(runs) > 1 else 0.9, label=r.name)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("cost per instance (USD)")
    ax.set_ylabel("instances")
    ax.set_title("Cost per instance" + ("" if top > 0 else " (every instance cost $0)"))
    if len(runs) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
