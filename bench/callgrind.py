"""User-space instructions per request of one data-plane path, without wall-clock noise:
runs BIN under callgrind (one data-plane worker, instrumentation on only while measuring),
sets up CASE (httpapi | alb | tutorial) as bench.py does against an nginx backend, sends 200
warm-up and then N (env, default 2000) keep-alive requests from one client, and prints Ir per
request on the busiest thread (the data-plane worker). Kernel time is not counted.

usage: bench/callgrind.py BIN CASE OUTFILE   (callgrind_annotate OUTFILE.1-NN for the profile)
See docs/dataplane-performance.md ("Session 3")."""
import os, sys, subprocess, time, socket, re, tempfile, glob
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B
binp, case, out = sys.argv[1:4]
N = int(os.environ.get("N", "2000"))
procs = []
class VG(B.Portico):
    def __init__(self):
        self.own_state = True
        self.state = tempfile.mkdtemp(prefix="cg-portico-")
        self.p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--instr-atstart=no", "--separate-threads=yes",
                                   binp, "serve", "--port", "0", "--state-dir", self.state, "--log-level", "warn"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                                  env=dict(os.environ, PORTICO_DATAPLANE_THREADS="1"))
        line = self.p.stdout.readline().decode()
        self.port = int(re.search(r"listening on http://127.0.0.1:(\d+)", line).group(1))
        self.endpoint = f"http://127.0.0.1:{self.port}"
def run(port, host, n):
    s = socket.create_connection(("127.0.0.1", port))
    req = f"GET /bench HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cg\r\nAccept: */*\r\n\r\n".encode()
    f = s.makefile("rb")
    for _ in range(n):
        s.sendall(req)
        st = f.readline(); assert b" 200 " in st, st
        ln = 0
        while True:
            l = f.readline()
            if l in (b"\r\n", b""): break
            if l.lower().startswith(b"content-length:"): ln = int(l.split(b":")[1])
        f.read(ln)
    s.close()
try:
    bp = B.free_port(); be = B.start_nginx(B.NGINX_BACKEND.format(port=bp)); procs.append(be); B.wait_port(bp)
    p = VG(); procs.append(p)
    if case == "httpapi":
        h = B.setup_httpapi(p, bp)
    else:
        alb = B.setup_alb(p, bp); h = alb["dns"]
        if case == "tutorial":
            link = B.create_vpc_link(p, alb["subnets"]); h = B.setup_tutorial_path(p, alb, link)
    time.sleep(1)
    run(p.port, h, 200)
    subprocess.run(["callgrind_control", "-i", "on", str(p.p.pid)], capture_output=True)
    run(p.port, h, N)
    subprocess.run(["callgrind_control", "-i", "off", str(p.p.pid)], capture_output=True)
    subprocess.run(["callgrind_control", "-d", str(p.p.pid)], capture_output=True)
    time.sleep(1)
finally:
    for x in procs:
        try: x.stop()
        except Exception: pass
# Ir of the busiest thread (the data-plane worker), per request
best = (0, "")
for f in glob.glob(out + "*"):
    txt = open(f).read()
    m = re.search(r"^totals: (\d+)", txt, re.M)
    if m and int(m.group(1)) > best[0]:
        best = (int(m.group(1)), f)
print(os.path.basename(out), round(best[0] / N), "Ir/request (busiest thread:", best[1], ")")
