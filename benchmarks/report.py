"""Medians, the results table, the performance targets and the chart."""

from __future__ import annotations

import json
import os
import statistics
import textwrap
from typing import Any

QUEUE_SERVERS = (
    "msgsvc-memory",
    "msgsvc-sqlite",
    "msgsvc-redis",
    "msgsvc-redis-2nodes",
    "bare-twisted-line",
    "bare-twisted-batched",
    "redis",
    "beanstalkd",
    "reference",
)
LABELS = {
    "msgsvc-memory": "msgsvc (memory store)",
    "msgsvc-sqlite": "msgsvc (SQLite store)",
    "msgsvc-redis": "msgsvc (Redis store)",
    "msgsvc-redis-2nodes": "msgsvc (Redis store, 2 nodes)",
    "bare-twisted-line": "bare Twisted LineReceiver",
    "bare-twisted-batched": "bare Twisted, batched",
    "redis": "Redis LPUSH/RPOP",
    "beanstalkd": "beanstalkd put/reserve/delete",
    "reference": "thread-per-connection ref.",
    "c-sender": "plain C sender",
}
STORE_ROWS = ("msgsvc-sqlite", "msgsvc-redis", "msgsvc-redis-2nodes")
"""Rows shown with their ratio to the memory store ("vs mem")."""
CHAT_STORE_ROWS = ("msgsvc-redis", "msgsvc-redis-2nodes")
"""The chat rows besides the memory store's, shown with their ratio to it; on two nodes the members
alternate between the nodes, so most deliveries cross from one node to the other through Redis."""
BASELINE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baselines")
CHAT_BASELINE = os.path.join(BASELINE_DIR, "chat_fanout.json")
"""The chat fan-out figure recorded before the work on issue 16: the chat target is 1.5 times it."""


def chat_baseline(members: int, path: str = CHAT_BASELINE) -> float | None:
    """The recorded chat fan-out baseline in deliveries/s for ``members`` members, or None (none recorded, or
    recorded for another member count, as a smoke run's are)."""
    try:
        with open(path) as baseline:
            recorded = json.load(baseline)
        return float(recorded["deliveries_per_s"]) if recorded["members"] == members else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


MEASURABLE_SECONDS = 0.2
"""Shorter transfers get no server CPU share: /proc counts CPU time in 10 ms ticks."""
UDP_CASES = ("udp", "udp-loss", "tcp")
"""The UDP rows of each operation: UDP without loss, UDP through the lossy relay, TCP for the ratio."""


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def summarize(
    samples: dict[str, list[dict]],
    unavailable: dict[str, str],
    plan: Any,
    amplification: dict[str, float] | None = None,
    chat_base: float | None = None,
) -> dict:
    """Medians over the repetitions, plus the targets checked against them.

    ``amplification`` is :func:`benchmarks.amplification.factors`' result, when it was measured;
    ``chat_base`` the chat fan-out baseline (deliveries/s) the chat target is relative to.
    """
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
        summary["chat"] = {**_chat_row(chat, plan.chat_members), "baseline_deliveries_per_s": chat_base}
    chat_stores = _chat_stores(samples, unavailable, plan.chat_members, summary.get("chat"))
    if chat_stores:
        summary["chat_stores"] = chat_stores
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
    udp = _udp(samples)
    if udp:
        summary["udp"] = udp
    if amplification:
        summary["amplification"] = amplification_summary(amplification)
    summary["targets"] = targets(summary)
    return summary


def _chat_row(runs: list[dict], members: int) -> dict[str, Any]:
    """One chat row's medians; ``per_say`` is the deliveries each SAY made (members - 1 when none is lost)."""
    return {
        "members": members,
        "deliveries_per_s": _median(runs, "event_rate"),
        "says_per_s": _median(runs, "rate"),
        "per_say": statistics.median(run["events"] / run["units"] if run.get("units") else 0.0 for run in runs)
        if all("events" in run for run in runs)
        else None,
        "p99_ms": _median(runs, "p99_us") / 1000,
        "server_cpu": _median(runs, "server_cpu"),
        "reps": len(runs),
    }


def _chat_stores(
    samples: dict[str, list[dict]], unavailable: dict[str, str], members: int, memory: dict | None
) -> dict[str, dict[str, Any]]:
    """The Redis-store chat rows (one node, two nodes), each with ``vs_mem``: its deliveries/s over the
    memory-store row's of the same run; ``{"n/a": why}`` for a row that could not run."""
    rows: dict[str, dict[str, Any]] = {}
    for server in CHAT_STORE_ROWS:
        runs = samples.get(f"chat/{server}")
        if runs:
            row = _chat_row(runs, members)
            row["vs_mem"] = _ratio(row["deliveries_per_s"], memory and memory["deliveries_per_s"])
            rows[server] = row
        elif f"chat/{server}" in unavailable:
            rows[server] = {"n/a": unavailable[f"chat/{server}"]}
    return rows


def _udp(samples: dict[str, list[dict]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The UDP rows' medians: per operation (gen, send), per case (udp, udp-loss, tcp)."""
    udp: dict[str, dict[str, dict[str, Any]]] = {}
    for key, runs in samples.items():
        if not key.startswith("udp/"):
            continue
        _, op, transport, loss = key.split("/")
        case = transport if float(loss) == 0 else f"{transport}-loss"
        row = {
            "size": runs[0]["size"],
            "loss": float(loss),
            "mib_per_s": _median(runs, "mib_per_s"),
            "server_cpu": statistics.median(run["server_cpu_seconds"] / run["seconds"] for run in runs)
            if all(run["seconds"] >= MEASURABLE_SECONDS and "server_cpu_seconds" in run for run in runs)
            else None,
            "client_cpu": _median(runs, "client_cpu"),
            "reps": len(runs),
        }
        if "dropped" in runs[0]:
            row["dropped_share"] = statistics.median(
                run["dropped"] / max(1, run["dropped"] + run["forwarded"]) for run in runs
            )
        udp.setdefault(op, {})[case] = row
    for cases in udp.values():
        tcp = cases.get("tcp", {}).get("mib_per_s")
        for case, row in cases.items():
            if case != "tcp":
                row["vs_tcp"] = _ratio(row["mib_per_s"], tcp)
    return udp


def amplification_summary(by_verb: dict[str, float]) -> dict[str, Any]:
    """The amplification factors, the verbs grouped by equal factor (largest first) and the largest."""
    from benchmarks.amplification import groups

    return {
        "by_verb": dict(sorted(by_verb.items())),
        "groups": [{"factor": factor, "verbs": verbs} for factor, verbs in groups(by_verb)],
        "largest": max(by_verb.values()),
    }


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
    for row, required in (("C=50 P=32", 0.5), ("C=50 P=1", 0.5), ("C=1 P=1", 0.8)):
        check(f"queue {row} vs Redis", _ratio(_rate(summary, row, mem), _rate(summary, row, "redis")), required)
    p99 = summary["queue"].get("C=50 P=1", {}).get(mem, {}).get("p99_ms")
    check("queue C=50 P=1 p99 latency", p99, 2.0, at_least=False, unit=" ms")
    row, ratio = worst_ratio(summary, mem, "bare-twisted-line")
    check("queue vs bare Twisted LineReceiver (worst row)", ratio, 0.9)
    found[-1]["row"] = row
    row, ratio = worst_ratio(summary, "msgsvc-sqlite", mem)
    check("SQLite store vs memory store (worst row)", ratio, 0.7)
    found[-1]["row"] = row
    chat = summary.get("chat", {})
    check(
        "chat fan-out vs baseline (benchmarks/baselines)",
        _ratio(chat.get("deliveries_per_s"), chat.get("baseline_deliveries_per_s")),
        1.5,
    )
    idle = summary.get("idle", {}).get(mem)
    check("idle RSS per connection", idle["bytes_per_conn"] / 1024 if idle else None, 3.0, False, " KiB")
    check(
        "queue C=50 P=1 vs thread-per-connection",
        _ratio(_rate(summary, "C=50 P=1", mem), _rate(summary, "C=50 P=1", "reference")),
        40.0,
    )
    for kind in ("gen", "get"):
        bulk = summary.get("bulk", {}).get(kind, {})
        check(f"bulk {kind.upper()} vs C sender", _ratio(bulk.get(mem), bulk.get("c-sender")), 0.45)
    largest = summary.get("amplification", {}).get("largest")
    check("largest amplification factor for an unvalidated peer", largest, 3.0, at_least=False)
    return found


def worst_ratio(summary: dict, server: str, base: str) -> tuple[str | None, float | None]:
    """The queue row where ``server`` / ``base`` is smallest, and that ratio; (None, None) if no row has both."""
    ratios = [
        (ratio, row)
        for row in summary["queue"]
        if (ratio := _ratio(_rate(summary, row, server), _rate(summary, row, base))) is not None
    ]
    if not ratios:
        return None, None
    ratio, row = min(ratios)
    return row, ratio


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: dict) -> str:
    """The whole result as one plain-text table, then the targets."""
    summary = results["summary"]
    m = results["machine"]
    lines = [
        f"msgsvc benchmark: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, Twisted {m['twisted']}, {m['redis'] or 'no redis-server'}, "
        f"{m.get('beanstalkd') or 'no beanstalkd'}",
        f"medians of {results['plan']['reps']} repetitions; server and load generator pinned to different CPUs",
        "",
        f"{'row':<16} {'server':<30} {'units/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
        f"{'srv CPU':>7} {'vs Redis':>8} {'vs line':>7} {'vs ref':>7} {'vs mem':>6}",
    ]
    for row, servers in summary["queue"].items():
        redis = servers.get("redis", {}).get("units_per_s")
        line = servers.get("bare-twisted-line", {}).get("units_per_s")
        ref = servers.get("reference", {}).get("units_per_s")
        mem = servers.get("msgsvc-memory", {}).get("units_per_s")
        for server, data in servers.items():
            label = LABELS[server]
            if "n/a" in data:
                what = "store not available" if server == "msgsvc-sqlite" else data["n/a"][:60]
                lines.append(f"{'queue ' + row:<16} {label:<30} n/a ({what})")
                continue
            rate = data["units_per_s"]
            vs_mem = _fmt(_ratio(rate, mem)) if server in STORE_ROWS else ""
            vs_line = server.startswith("msgsvc") or server == "bare-twisted-batched"
            lines.append(
                f"{'queue ' + row:<16} {label:<30} {rate:>10,.0f} {data['p50_ms']:>8.3f} {data['p99_ms']:>8.3f} "
                f"{data['p999_ms']:>9.3f} {data['server_cpu']:>6.0%} "
                f"{_fmt(_ratio(rate, redis)) if server != 'redis' else '':>8} "
                f"{_fmt(_ratio(rate, line)) if vs_line else '':>7} "
                f"{_fmt(_ratio(rate, ref), 1) if server.startswith('msgsvc') else '':>7} {vs_mem:>6}"
            )
    lines += _chat_lines(summary)
    for server, data in summary.get("idle", {}).items():
        lines.append(
            f"{'idle conns':<16} {LABELS[server]:<30} {data['bytes_per_conn'] / 1024:>10.2f} "
            f"KiB RSS per connection at {data['conns']:,} connections"
        )
    for kind, servers in summary.get("bulk", {}).items():
        base = servers.get("c-sender")
        for server, rate in servers.items():
            ratio = f"{_fmt(_ratio(rate, base))}x the C sender" if server != "c-sender" else ""
            cmd = "GEN" if kind == "gen" else "GET file"
            lines.append(f"{'bulk ' + cmd:<16} {LABELS[server]:<30} {rate:>10,.0f} MiB/s {ratio}")
    lines += _udp_lines(summary)
    width = max(42, *(len(target["target"]) for target in summary["targets"]))
    lines += ["", f"{'target':<{width}} {'required':>10} {'measured':>10}  holds"]
    for target in summary["targets"]:
        sign = ">=" if target["at_least"] else "<="
        unit = target["unit"]
        required = f"{sign} {target['required']:g}{unit}"
        measured = "-" if target["measured"] is None else f"{target['measured']:.2f}{unit}"
        holds = {True: "yes", False: "NO", None: "n/a"}[target["holds"]]
        where = f" (at {target['row']})" if target.get("row") else ""
        lines.append(f"{target['target']:<{width}} {required:>10} {measured:>10}  {holds}{where}")
    return "\n".join(lines)


def _chat_lines(summary: dict) -> list[str]:
    """The chat fan-out rows: the memory store (against the baseline), then the Redis store on one and two
    nodes (against the memory store), or ``n/a (why)``."""
    lines = []
    rows = [("msgsvc-memory", summary["chat"])] if "chat" in summary else []
    rows += list(summary.get("chat_stores", {}).items())
    for server, chat in rows:
        label = LABELS[server]
        if "n/a" in chat:
            lines.append(f"{'chat fan-out':<16} {label:<30} n/a ({chat['n/a'][:60]})")
            continue
        if server == "msgsvc-memory":
            base = chat.get("baseline_deliveries_per_s")
            versus = f"; {_fmt(_ratio(chat['deliveries_per_s'], base))}x the baseline's {base:,.0f}" if base else ""
        else:
            versus = f"; {_fmt(chat.get('vs_mem'))}x the memory store"
        where = " on 2 nodes" if server == "msgsvc-redis-2nodes" else ""
        per_say = f", {chat['per_say']:.1f} per SAY" if chat.get("per_say") is not None else ""
        lines.append(
            f"{'chat fan-out':<16} {label:<30} {chat['deliveries_per_s']:>10,.0f} "
            f"deliveries/s of * CHAT to {chat['members']} members{where} ({chat['says_per_s']:,.0f} SAY/s{per_say}, "
            f"SAY p99 {chat['p99_ms']:.2f} ms, srv CPU {chat['server_cpu']:.0%}{versus})"
        )
    return lines


def _size(size: int) -> str:
    if size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    return f"{size / 1e6:g} MB" if size >= 1_000_000 else f"{size / 1e3:g} kB"


def _udp_lines(summary: dict) -> list[str]:
    """The UDP rows, then the amplification table."""
    lines = []
    for op, cases in summary.get("udp", {}).items():
        for case in UDP_CASES:
            row = cases.get(case)
            if row is None:
                continue
            name = f"udp {op.upper()} {_size(row['size'])}"
            label = {
                "udp": "UDP, no loss",
                "udp-loss": f"UDP, {row['loss']:.0%} loss each way",
                "tcp": "TCP (same client library)",
            }[case]
            ratio = f" {_fmt(row['vs_tcp'])}x TCP" if "vs_tcp" in row else ""
            dropped = f", {row['dropped_share']:.1%} dropped" if "dropped_share" in row else ""
            lines.append(
                f"{name:<16} {label:<30} {row['mib_per_s']:>10,.1f} MiB/s{ratio} (srv CPU "
                f"{'-' if row['server_cpu'] is None else format(row['server_cpu'], '.0%')}, "
                f"client CPU {row['client_cpu']:.0%}{dropped})"
            )
    amplification = summary.get("amplification")
    if amplification:
        lines += [
            "",
            "UDP amplification: largest bytes out / bytes in of one small request, plain and tagged,",
            "from an unvalidated address (200 queues, 50 tweets, a chat member on the server)",
            f"{'factor':>6}  verbs",
        ]
        for group in amplification["groups"]:
            wrapped = textwrap.wrap(" ".join(group["verbs"]), 90)
            lines.append(f"{group['factor']:>6.2f}  {wrapped[0]}")
            lines += [f"{'':>6}  {more}" for more in wrapped[1:]]
    return lines


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
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [3, 2]})
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
        left.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08))  # below: 9 servers
    names, measured, required = [], [], []
    for target in summary["targets"]:
        if target["measured"] is None or target["unit"] != "x" or not target["at_least"]:
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
    fig.savefig(path, dpi=80, bbox_inches="tight")  # the legend below the axes stays in
    plt.close(fig)
    return path
