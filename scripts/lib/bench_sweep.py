#!/usr/bin/env python3
"""The side-by-side sweep of scripts/bench-agent.sh --sweep (issue 11 item 4).

On the Pi + Docker bed that bench-agent.sh made (namespaces PREFIX-ctr/-pi/-rtr), for each
offered rate a UDP flood goes from the container to 198.51.100.101 (each datagram crosses
vethctr, docker0 and wlan0: three frames on the board), and each contender captures it on
the board, alone, one after the other (the order turns with every rate):

  tcpdump -w /dev/null      the floor: the kernel's ring and a write that goes nowhere
  tcpdump -nn               the seed's workflow: one text line per packet (to a file)
  tcpdump -w - > TCP        how remote capture ships packets today (into a TCP sink)
  hopcap-agent              into hopcap-collector over Noise, with `timeline --follow` on
                            its database for the capture -> visible latency

Per contender and rate: CPU (every thread's schedstat run time, over the flood) per million
frames captured, the kernel's drops, peak RSS (VmHWM), bytes per frame on the wire (or on
stdout), and for hopcap the latency p50/p99. Figures only: nothing is asserted.
Writes OUT/sweep.md (the table) and OUT/sweep.svg (the plot), and prints the table.
All processes are started here and ended by their PID.
"""

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


def ns_exec(ns, argv, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns] + argv, **kw)


def cpu_ms(pid):
    """CPU time of every thread of `pid`, from schedstat (ns; /proc/PID/stat counts in 10 ms
    ticks, too coarse for the low rates)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended in between
    return total / 1e6


def hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def wait_for(path, pattern, count=1, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path, errors="replace") as f:
                if len(re.findall(pattern, f.read())) >= count:
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    with open(path, errors="replace") as f:
        sys.exit(f"bench-sweep: timed out waiting for {pattern!r} in {path}:\n{f.read()}")


def stop(proc, sig=signal.SIGTERM, timeout=15):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


LOAD = r"""
import socket, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("198.51.100.101", 9))
msg = bytearray(64)
n = 0
start = time.perf_counter()
end = start + seconds
while True:
    now = time.perf_counter()
    if now >= end:
        break
    # Paced in bursts of up to 1 ms of traffic; rate 0 sends as fast as it can.
    due = int((now - start) * rate) if rate > 0 else n + 256
    while n < due:
        msg[:4] = (n & 0xffffffff).to_bytes(4, "big")
        n += 1
        try:
            s.send(msg)
        except OSError:
            pass
    if rate > 0:
        time.sleep(0.0005)
print(n / seconds, flush=True)
"""

SINK = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(1)
print("ready", flush=True)
c, _ = srv.accept(); n = 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    n += len(d)
print(n, flush=True)
"""


class Bench:
    def __init__(self, prefix, agent, collector, seconds, work):
        self.ctr, self.pi = f"{prefix}-ctr", f"{prefix}-pi"
        self.agent, self.collector = agent, collector
        self.seconds, self.work = seconds, work
        subprocess.run([collector, "keys", "init", f"{work}/keys", "--boards", "bench"],
                       check=True, stdout=subprocess.DEVNULL)

    def flood(self, rate):
        """Sends the flood; returns the datagrams per second achieved."""
        out = ns_exec(self.ctr, ["python3", "-c", LOAD, str(rate), str(self.seconds)],
                      stdout=subprocess.PIPE, text=True)
        return float(out.communicate()[0].strip() or 0)

    def measure(self, proc, rate):
        """CPU and peak RSS of `proc` over one flood (and the settling second after it)."""
        time.sleep(0.5)
        before = cpu_ms(proc.pid)
        achieved = self.flood(rate)
        time.sleep(1.0)  # the last ring blocks retire (50 ms) and batches ship
        return achieved, cpu_ms(proc.pid) - before, hwm_kb(proc.pid)

    def tcpdump_file(self, rate, args, name):
        err = f"{self.work}/{name}.err"
        out = f"{self.work}/{name}.out"
        with open(err, "w") as e, open(out, "wb") as o:
            p = ns_exec(self.pi, ["tcpdump", "-i", "any", "-n"] + args + ["not port 7878 and not port 7879"],
                        stdout=o, stderr=e)
        size = (lambda: None) if args[-1] == "/dev/null" else (lambda: os.path.getsize(out))
        return self.tcpdump_run(p, rate, err, size)

    def tcpdump_tcp(self, rate):
        sink = ns_exec(self.pi, ["python3", "-c", SINK, "7879"], stdout=subprocess.PIPE, text=True)
        assert sink.stdout.readline().strip() == "ready"
        err = f"{self.work}/tcp.err"
        with open(err, "w") as e:
            p = ns_exec(self.pi, ["bash", "-c", "exec tcpdump -i any -n -w - 'not port 7878 and "
                                  "not port 7879' > /dev/tcp/127.0.0.1/7879"], stderr=e)
        try:
            return self.tcpdump_run(p, rate, err, lambda: int(sink.communicate(timeout=15)[0]))
        finally:
            stop(sink)

    def tcpdump_run(self, p, rate, err, out_bytes):
        try:
            wait_for(err, "listening on")
            achieved, cpu, hwm = self.measure(p, rate)
        finally:
            stop(p, signal.SIGINT)
        text = open(err, errors="replace").read()
        frames = int(re.search(r"(\d+) packets captured", text).group(1))
        drops = int(re.search(r"(\d+) packets dropped by kernel", text).group(1))
        written = out_bytes()
        return dict(achieved=achieved, cpu_ms=cpu, hwm_kb=hwm, frames=frames, drops=drops,
                    bytes_per_frame=None if written is None else written / max(frames, 1))

    def hopcap(self, rate, run):
        db = f"{self.work}/hopcap-{run}.db"
        cerr, aerr = f"{self.work}/collector-{run}.err", f"{self.work}/agent-{run}.err"
        with open(cerr, "w") as e:
            coll = ns_exec(self.pi, [self.collector, "serve", "--listen", "127.0.0.1:7878",
                                     "--db", db, "--key", f"{self.work}/keys/collector.key",
                                     "--metrics", "127.0.0.1:9187",
                                     "--trusted", f"{self.work}/keys/trusted-boards"],
                           stdout=subprocess.DEVNULL, stderr=e)
        procs = [coll]
        try:
            wait_for(cerr, "listening on")
            follow = ns_exec(self.pi, [self.collector, "timeline", "--db", db, "--follow",
                                       "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
            procs.append(follow)
            lags = []

            def read_follow():
                ts = re.compile(r'"ts":"(\d+)\.(\d{9})"')
                for line in follow.stdout:
                    now = time.time_ns()
                    m = ts.search(line)
                    if m:
                        lags.append(now - (int(m.group(1)) * 10**9 + int(m.group(2))))

            reader = threading.Thread(target=read_follow, daemon=True)
            reader.start()
            with open(aerr, "w") as e:
                agent = ns_exec(self.pi, [self.agent, "--collector", "127.0.0.1:7878", "--key",
                                          f"{self.work}/keys/boards/bench.key"],
                                stdout=subprocess.DEVNULL, stderr=e)
            procs.append(agent)
            wait_for(aerr, "capturing netns")
            achieved, cpu, hwm = self.measure(agent, rate)
            coll_cpu = cpu_ms(coll.pid)
            ack = self.ack_latency()
            stop(agent)
            time.sleep(1.0)  # the follower's last rows
        finally:
            for p in reversed(procs):
                stop(p)
        text = open(aerr, errors="replace").read()
        frames = int(re.search(r"(\d+) frames seen", text).group(1))
        drops = sum(int(d) for d in re.findall(r"kernel drops (\d+)", text))
        sent = re.search(r"\((\d+) bytes sent", text)
        connects = re.search(r"(\d+) connects", text)
        lags.sort()
        pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] / 1e6 if lags else None
        return dict(achieved=achieved, cpu_ms=cpu, hwm_kb=hwm, frames=frames, drops=drops,
                    bytes_per_frame=int(sent.group(1)) / max(frames, 1) if sent else None,
                    lag_p50_ms=pct(0.50), lag_p99_ms=pct(0.99), visible=len(lags),
                    collector_cpu_ms=coll_cpu, ack_p50_ms=ack[0], ack_p99_ms=ack[1],
                    connects=int(connects.group(1)) if connects else None)

    def ack_latency(self):
        """p50 and p99 (ms, bucket upper bounds) of the collector's ack latency histogram."""
        page = subprocess.run(["ip", "netns", "exec", self.pi, "python3", "-c",
                               "import urllib.request as u; print(u.urlopen("
                               "'http://127.0.0.1:9187/metrics', timeout=5).read().decode())"],
                              capture_output=True, text=True).stdout
        buckets = [(float("inf") if le == "+Inf" else float(le), float(n)) for le, n in
                   re.findall(r'hopcap_ack_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', page)]
        if not buckets or buckets[-1][1] == 0:
            return None, None
        total = buckets[-1][1]
        q = lambda f: next(le for le, n in buckets if n >= f * total) * 1000
        return q(0.5), q(0.99)


CONTENDERS = ["tcpdump -w /dev/null", "tcpdump -nn", "tcpdump -w - > TCP", "hopcap-agent"]
COLOURS = ["#555555", "#d62728", "#ff7f0e", "#1f77b4"]


def run_one(bench, name, rate, run):
    if name == "tcpdump -w /dev/null":
        return bench.tcpdump_file(rate, ["-w", "/dev/null"], f"floor-{run}")
    if name == "tcpdump -nn":
        return bench.tcpdump_file(rate, ["-nn"], f"nn-{run}")
    if name == "tcpdump -w - > TCP":
        return bench.tcpdump_tcp(rate)
    return bench.hopcap(rate, run)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(results):
    rows = ["| offered (datagrams/s) | contender | frames | CPU ms per M frames | x floor | "
            "kernel drops | peak RSS kB | bytes/frame out | visible p50 / p99 ms | ack p50 / p99 ms, connects |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for rate, by in results:
        floor = by["tcpdump -w /dev/null"]
        floor_cpm = floor["cpu_ms"] * 1e6 / max(floor["frames"], 1)
        for name in CONTENDERS:
            r = by[name]
            cpm = r["cpu_ms"] * 1e6 / max(r["frames"], 1)
            lag = ack = "-"
            if r.get("lag_p50_ms") is not None:
                lag = f"{r['lag_p50_ms']:.0f} / {r['lag_p99_ms']:.0f}"
            if r.get("ack_p50_ms") is not None:
                ack = f"{r['ack_p50_ms']:g} / {r['ack_p99_ms']:g}, {r['connects']}"
            rows.append(f"| {r['achieved']:,.0f} | `{name}` | {r['frames']:,} | {cpm:,.0f} | "
                        f"{cpm / floor_cpm if floor_cpm else 0:.1f} | {r['drops']:,} | "
                        f"{r['hwm_kb']:,} | {fmt(r['bytes_per_frame'], '.1f')} | {lag} | {ack} |")
    return "\n".join(rows)


def svg(results):
    """Two panels against the offered rate (log scale): CPU µs per frame, and drop %."""
    w, h, pad = 900, 360, 60
    pw = (w - 3 * pad) // 2
    rates = [r["tcpdump -w /dev/null"]["achieved"] for _, r in results]
    lo, hi = min(rates), max(rates)
    lx = lambda x: (math.log10(max(x, 1)) - math.log10(lo)) / max(math.log10(hi) - math.log10(lo), 1e-9)

    def series(metric):
        out = {}
        for name in CONTENDERS:
            out[name] = [(by[name]["achieved"], metric(by[name])) for _, by in results]
        return out

    cpu = series(lambda r: r["cpu_ms"] * 1000 / max(r["frames"], 1))
    drop = series(lambda r: 100 * r["drops"] / max(r["frames"] + r["drops"], 1))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for i, (title, data, log_y) in enumerate([("CPU µs per captured frame (log)", cpu, True),
                                              ("kernel drops, % of frames", drop, False)]):
        x0, y0 = pad + i * (pw + pad), 40
        ph = h - 110
        values = [v for s in data.values() for _, v in s]
        if log_y:
            lo_d = math.floor(math.log10(max(min(v for v in values if v > 0), 1e-3)))
            hi_d = math.ceil(math.log10(max(values)))
            ly = lambda v: (math.log10(max(v, 10 ** lo_d)) - lo_d) / max(hi_d - lo_d, 1)
            ticks = [(10 ** d, ly(10 ** d)) for d in range(lo_d, hi_d + 1)]
        else:
            top = max(values + [1e-9]) * 1.1
            ly = lambda v: v / top
            ticks = [(top * k / 4, k / 4) for k in range(5)]
        parts.append(f'<text x="{x0}" y="25" font-weight="bold">{title}</text>')
        parts.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for v, f in ticks:
            y = y0 + ph - ph * f
            parts.append(f'<text x="{x0 - 6}" y="{y + 4:.0f}" text-anchor="end">{v:.3g}</text>')
            parts.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y:.0f}" y2="{y:.0f}" stroke="#eee"/>')
        for r in rates:
            x = x0 + pw * lx(r)
            parts.append(f'<text x="{x:.0f}" y="{y0 + ph + 16}" text-anchor="middle">{r / 1000:.0f}k</text>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 34}" text-anchor="middle">'
                     'offered datagrams/s (log), 3 frames each on the board</text>')
        for name, colour in zip(CONTENDERS, COLOURS):
            pts = " ".join(f"{x0 + pw * lx(x):.1f},{y0 + ph - ph * ly(v):.1f}" for x, v in data[name])
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for x, v in data[name]:
                parts.append(f'<circle cx="{x0 + pw * lx(x):.1f}" cy="{y0 + ph - ph * ly(v):.1f}" '
                             f'r="3" fill="{colour}"/>')
    for k, (name, colour) in enumerate(zip(CONTENDERS, COLOURS)):
        x = pad + k * 200
        parts.append(f'<rect x="{x}" y="{h - 22}" width="14" height="4" fill="{colour}"/>')
        parts.append(f'<text x="{x + 20}" y="{h - 16}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        # Remakes the table and plot from a sweep.json (no capture).
        out = os.path.dirname(sys.argv[2]) or "."
        results = [(r, by) for r, by in json.load(open(sys.argv[2]))]
        open(f"{out}/sweep.svg", "w").write(svg(results) + "\n")
        print(table(results))
        return
    prefix, agent, collector, seconds, rates, work, out = sys.argv[1:8]
    bench = Bench(prefix, agent, collector, float(seconds), work)
    results = []
    for i, rate in enumerate(rates.split(",")):
        rate = 0 if rate == "max" else int(rate)
        # Alternated: each rate starts with the next contender.
        order = CONTENDERS[i % 4:] + CONTENDERS[:i % 4]
        by = {}
        for name in order:
            by[name] = run_one(bench, name, rate, f"{i}")
            r = by[name]
            print(f"  {rate or 'max'}: {name}: {r['frames']} frames, {r['cpu_ms']:.0f} ms CPU, "
                  f"{r['drops']} drops, {r['hwm_kb']} kB", file=sys.stderr, flush=True)
        results.append((rate, by))
    os.makedirs(out, exist_ok=True)
    md = table(results)
    with open(f"{out}/sweep.md", "w") as f:
        f.write(md + "\n")
    with open(f"{out}/sweep.svg", "w") as f:
        f.write(svg(results) + "\n")
    with open(f"{out}/sweep.json", "w") as f:
        json.dump(results, f, indent=1)
    print(md)
    print(f"(table and plot: {out}/sweep.md, {out}/sweep.svg)")


if __name__ == "__main__":
    main()
