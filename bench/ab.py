"""A/B of Portico binaries interleaved in one run, against nginx (one hop) and nginx -> nginx,
with the harness of bench.py. See docs/dataplane-performance.md ("How to measure").

usage: bench/ab.py ROUNDS SECONDS name=BINARY[:ENV=VALUE...] ...
  CASES=httpapi,alb,tutorial (default)  FIXED=S: also S-second fixed-rate rounds at a quarter
  of nginx's req/s, with per-round paired p50 comparisons and a sign test."""
import os, sys, statistics, json, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B

rounds = int(sys.argv[1]); dur = int(sys.argv[2])
variants = [a.split("=", 1) for a in sys.argv[3:]]
cases_wanted = os.environ.get("CASES", "httpapi,alb,tutorial").split(",")
fixed = int(os.environ.get("FIXED", "0"))
procs = []
try:
    bp = B.free_port(); backend = B.start_nginx(B.NGINX_BACKEND.format(port=bp)); procs.append(backend); B.wait_port(bp)
    np_ = B.free_port(); nginx = B.start_nginx(B.NGINX_PROXY.format(port=np_, upstream=bp)); procs.append(nginx)
    n2p = B.free_port(); nginx2 = B.start_nginx(B.NGINX_PROXY.format(port=n2p, upstream=np_)); procs.append(nginx2)
    B.wait_port(np_); B.wait_port(n2p)
    cases = {"direct": (lambda: [], bp, None), "nginx": (nginx.pids, np_, None), "nginx2": (lambda: nginx.pids() + nginx2.pids(), n2p, None)}
    for name, spec in variants:
        binpath, *envs = spec.split(":")
        B.BIN = binpath
        saved = dict(os.environ)
        for e in envs:
            k, v = e.split("=", 1); os.environ[k] = v
        p = B.Portico(); procs.append(p)
        os.environ.clear(); os.environ.update(saved)
        if "httpapi" in cases_wanted:
            h = B.setup_httpapi(p, bp); B.wait_ok(p.port, h); cases[f"{name}:httpapi"] = (p.pids, p.port, h)
        if "alb" in cases_wanted or "tutorial" in cases_wanted:
            alb = B.setup_alb(p, bp); B.wait_ok(p.port, alb["dns"])
            if "alb" in cases_wanted: cases[f"{name}:alb"] = (p.pids, p.port, alb["dns"])
            if "tutorial" in cases_wanted:
                link = B.create_vpc_link(p, alb["subnets"]); h = B.setup_tutorial_path(p, alb, link); B.wait_ok(p.port, h)
                cases[f"{name}:tutorial"] = (p.pids, p.port, h)
    raw = {k: [] for k in cases}
    for rnd in range(rounds):
        for name, (pids, port, host) in cases.items():
            if name == "direct" and fixed == 0: continue
            r = B.measure(pids, port, dur, host); raw[name].append(r)
        print(f"round {rnd+1} done", file=sys.stderr, flush=True)
    ng = [r["cpu_us_per_req"] for r in raw["nginx"]]
    print(f"{'case':24} {'rps':>8} {'cpu us/req':>10} {'ratio/nginx (per-round median)':>32}")
    for name, rs in raw.items():
        if not rs: continue
        cpu = [r["cpu_us_per_req"] for r in rs]
        ratios = [c / n for c, n in zip(cpu, ng)]
        print(f"{name:24} {statistics.median([r['rps'] for r in rs]):8.0f} {statistics.median(cpu):10.1f}   {statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]")
    if fixed:
        rate = statistics.median([r["rps"] for r in raw["nginx"]]) / 4
        fx = {k: [] for k in cases}
        for rnd in range(rounds):
            for name, (pids, port, host) in cases.items():
                fx[name].append(B.openloop(port, host, rate, fixed))
        print(f"fixed rate {rate:.0f}/s, p50 added over direct (per-round), us")
        for name, rs in fx.items():
            if name == "direct": continue
            add = [r["p50_us"] - d["p50_us"] for r, d in zip(rs, fx["direct"])]
            print(f"{name:24} p50 {statistics.median([r['p50_us'] for r in rs]):7.0f}  added {statistics.median(add):6.0f} [{min(add):.0f}..{max(add):.0f}]  all={sorted(round(a) for a in add)}")
        # paired per round: this case's p50 against nginx's (and nginx2's) p50 in the same round
        from math import comb
        for name, rs in fx.items():
            if name in ("direct", "nginx"): continue
            for base in ("nginx", "nginx2"):
                if name == base: continue
                wins = sum(1 for r, b in zip(rs, fx[base]) if r["p50_us"] < b["p50_us"])
                n = len(rs)
                # one-sided sign test: P(at least `wins` of n) if it were a coin toss
                p = sum(comb(n, k) for k in range(wins, n + 1)) / 2 ** n
                ratios = sorted(round(r["p50_us"] / b["p50_us"], 2) for r, b in zip(rs, fx[base]))
                print(f"  {name:22} vs {base:6}: lower p50 in {wins}/{n} rounds (sign test p={p:.4f}); p50 ratios {ratios}")
        B.OUT.mkdir(parents=True, exist_ok=True)
        json.dump({k: [r["p50_us"] for r in v] for k, v in fx.items()}, open(B.OUT / "ab-fixed-raw.json", "w"))
finally:
    for p in procs:
        try: p.stop()
        except Exception: pass
