"""Medians, the results table, the performance targets and the chart."""

from __future__ import annotations

import statistics
from typing import Any

QUEUE_SERVERS = ("msgsvc-memory", "msgsvc-sqlite", "redis", "reference")
LABELS = {
    "msgsvc-memory": "msgsvc (memory store)",
    "msgsvc-sqlite": "msgsvc (SQLite store)",
    "redis": "Redis LPUSH/RPOP",
    "reference": "thread-per-connection ref.",
    "c-sender": "plain C sender",
}


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def summarize(samples: dict[str, list[dict]], unavailable: dict[str, str], plan: Any) -> dict:
    """Medians over the repetitions, plus the targets checked against them."""
    queue: dict[str, dict[str, Any]] = {}
    for conns, pipeline in plan.queue_matrix:
        row: dict[str, Any] = {}
        for server in QUEUE_SERVERS:
            runs = samples.get(f"queue/{conns}/{pipeline}/{server}")
            if runs:
                row[server] = {
                    "units_per_s": _median(runs, "rate"),
                    "p50_ms": _median(runs, "p50_us") / 1000,
                    "p99_ms": _median(runs, "p99_us") / 1000,
                    "p999_ms": _median(runs, "p999_us") / 1000,
                    "server_cpu": _median(runs, "server_cpu"),
                    "client_cpu": _median(runs, "client_cpu"),
                    "errors": sum(run["errors"] for run in runs),
                    "reps": len(runs),
                }
            elif server in unavailable:
                row[server] = {"n/a": unavailable[server]}
        queue[f"C={conns} P={pipeline}"] = row
    summary: dict[str, Any] = {"queue": queue}
    chat = samples.get("chat/msgsvc-memory")
    if chat:
        summary["chat"] = {
            "members": plan.chat_members,
            "deliveries_per_s": _median(chat, "event_rate"),
            "says_per_s": _median(chat, "rate"),
            "p99_ms": _median(chat, "p99_us") / 1000,
            "server_cpu": _median(chat, "server_cpu"),
        }
    idle = {key.split("/", 1)[1]: runs for key, runs in samples.items() if key.startswith("idle/")}
    if idle:
        summary["idle"] = {
            server: {"conns": runs[0]["conns"], "bytes_per_conn": _median(runs, "bytes_per_conn")}
            for server, runs in idle.items()
        }
    bulk: dict[str, dict[str, float]] = {}
    for key, runs in samples.items():
        if key.startswith("bulk/"):
            _, kind, server = key.split("/")
            bulk.setdefault(kind, {})[server] = _median(runs, "mib_per_s")
    if bulk:
        summary["bulk"] = bulk
    summary["targets"] = targets(summary)
    return summary


def _rate(summary: dict, row: str, server: str) -> float | None:
    return summary["queue"].get(row, {}).get(server, {}).get("units_per_s")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(summary: dict) -> list[dict]:
    """The issue's performance targets, each with the measured value and whether it holds."""
    found: list[dict] = []

    def check(name: str, measured: float | None, required: float, at_least: bool = True, unit: str = "x") -> None:
        ok = None if measured is None else (measured >= required if at_least else measured <= required)
        found.append({"target": name, "required": required, "at_least": at_least, "unit": unit, "measured": measured})
        found[-1]["holds"] = ok

    mem = "msgsvc-memory"
    for row, required in (("C=50 P=32", 1.0), ("C=50 P=1", 0.5)):
        check(f"queue {row} vs Redis", _ratio(_rate(summary, row, mem), _rate(summary, row, "redis")), required)
    p99 = summary["queue"].get("C=50 P=1", {}).get(mem, {}).get("p99_ms")
    check("queue C=50 P=1 p99 latency", p99, 2.0, at_least=False, unit=" ms")
    check(
        "queue C=50 P=1 vs thread-per-connection",
        _ratio(_rate(summary, "C=50 P=1", mem), _rate(summary, "C=50 P=1", "reference")),
        40.0,
    )
    idle = summary.get("idle", {}).get(mem)
    check("idle RSS per connection", idle["bytes_per_conn"] / 1024 if idle else None, 4.0, False, " KiB")
    for kind in ("gen", "get"):
        bulk = summary.get("bulk", {}).get(kind, {})
        check(f"bulk {kind.upper()} vs C sender", _ratio(bulk.get(mem), bulk.get("c-sender")), 0.45)
    ratios = [
        _ratio(_rate(summary, row, "msgsvc-sqlite"), _rate(summary, row, mem))
        for row in summary["queue"]
        if _rate(summary, row, "msgsvc-sqlite") is not None
    ]
    check("SQLite store vs memory store (worst row)", min(ratios) if ratios else None, 0.5)
    return found


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: dict) -> str:
    """The whole result as one plain-text table, then the targets."""
    summary = results["summary"]
    m = results["machine"]
    lines = [
        f"msgsvc benchmark: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, Twisted {m['twisted']}, {m['redis'] or 'no redis-server'}",
        f"medians of {results['plan']['reps']} repetitions; server and load generator pinned to different CPUs",
        "",
        f"{'row':<16} {'server':<28} {'units/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
        f"{'srv CPU':>7} {'vs Redis':>8} {'vs ref':>8} {'vs mem':>7}",
    ]
    for row, servers in summary["queue"].items():
        redis = servers.get("redis", {}).get("units_per_s")
        ref = servers.get("reference", {}).get("units_per_s")
        mem = servers.get("msgsvc-memory", {}).get("units_per_s")
        for server, data in servers.items():
            label = LABELS[server]
            if "n/a" in data:
                what = "store not available" if server == "msgsvc-sqlite" else data["n/a"][:60]
                lines.append(f"{'queue ' + row:<16} {label:<28} n/a ({what})")
                continue
            rate = data["units_per_s"]
            vs_mem = _fmt(_ratio(rate, mem)) if server == "msgsvc-sqlite" else ""
            lines.append(
                f"{'queue ' + row:<16} {label:<28} {rate:>10,.0f} {data['p50_ms']:>8.3f} {data['p99_ms']:>8.3f} "
                f"{data['p999_ms']:>9.3f} {data['server_cpu']:>6.0%} "
                f"{_fmt(_ratio(rate, redis)) if server != 'redis' else '':>8} "
                f"{_fmt(_ratio(rate, ref), 1) if server.startswith('msgsvc') else '':>8} {vs_mem:>7}"
            )
    if "chat" in summary:
        chat = summary["chat"]
        lines.append(
            f"{'chat fan-out':<16} {LABELS['msgsvc-memory']:<28} {chat['deliveries_per_s']:>10,.0f} "
            f"deliveries/s of * CHAT to {chat['members']} members ({chat['says_per_s']:,.0f} SAY/s, "
            f"SAY p99 {chat['p99_ms']:.2f} ms)"
        )
    for server, data in summary.get("idle", {}).items():
        lines.append(
            f"{'idle conns':<16} {LABELS[server]:<28} {data['bytes_per_conn'] / 1024:>10.2f} "
            f"KiB RSS per connection at {data['conns']:,} connections"
        )
    for kind, servers in summary.get("bulk", {}).items():
        base = servers.get("c-sender")
        for server, rate in servers.items():
            ratio = f"{_fmt(_ratio(rate, base))}x the C sender" if server != "c-sender" else ""
            cmd = "GEN" if kind == "gen" else "GET file"
            lines.append(f"{'bulk ' + cmd:<16} {LABELS[server]:<28} {rate:>10,.0f} MiB/s {ratio}")
    lines += ["", f"{'target':<42} {'required':>10} {'measured':>10}  holds"]
    for target in summary["targets"]:
        sign = ">=" if target["at_least"] else "<="
        unit = target["unit"]
        required = f"{sign} {target['required']:g}{unit}"
        measured = "-" if target["measured"] is None else f"{target['measured']:.2f}{unit}"
        holds = {True: "yes", False: "NO", None: "n/a"}[target["holds"]]
        lines.append(f"{target['target']:<42} {required:>10} {measured:>10}  {holds}")
    return "\n".join(lines)


def chart(results: dict, path: str) -> str | None:
    """A PNG of the queue throughput and the ratios; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return None
    summary = results["summary"]
    rows = list(summary["queue"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(QUEUE_SERVERS)
    for i, server in enumerate(QUEUE_SERVERS):
        values = [summary["queue"][row].get(server, {}).get("units_per_s", 0) for row in rows]
        if any(values):
            left.bar([x + i * width for x in range(len(rows))], values, width, label=LABELS[server])
    left.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], rows)
    left.set_yscale("log")
    left.set_ylabel("units/s (SEND+RECV), log scale")
    left.set_title("queue throughput")
    if left.get_legend_handles_labels()[0]:  # a partial run (--only) may have no queue rows
        left.legend(fontsize=8)
    names, measured, required = [], [], []
    for target in summary["targets"]:
        if target["measured"] is None or target["unit"] != "x":
            continue
        names.append(target["target"].replace("queue ", "").replace(" vs ", "\nvs "))
        measured.append(target["measured"] / target["required"])
        required.append(1.0)
    colors = ["tab:green" if value >= 1 else "tab:red" for value in measured]
    right.barh(range(len(names)), measured, color=colors)
    right.axvline(1.0, color="black", linewidth=1)
    right.set_yticks(range(len(names)), names, fontsize=7)
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(NullFormatter())  # the minor labels of a log axis overlap
    right.set_xlabel("measured / required ratio (>= 1 meets the target)")
    right.set_title("ratio targets")
    m = results["machine"]
    fig.suptitle(f"msgsvc benchmark on {m['cpu']} ({m['cpus']} CPUs), Python {m['python']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
