"""The guest node's control agent (run by busybox init in the guest).

POST /sh with a bash script as body and the node's token in X-Token runs it as root in the guest and answers its
output, the exit code in X-Exit-Code. It listens only on the management address, which only the host's bridge reaches.
It also relays the `kubernetes` Service's ClusterIP (on the guest's lo) to the apiserver's relay on the host, as
kube-proxy's one rule that matters here would.
"""
import hmac
import http.server
import os
import socket
import subprocess
import threading

env = {}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest.env")) as f:
    for line in f:
        if "=" in line:
            k, v = line.strip().split("=", 1)
            env[k] = v.strip('"')
with open(env["TOKEN_FILE"]) as f:
    TOKEN = f.read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        if self.path != "/sh" or not hmac.compare_digest(self.headers.get("X-Token", ""), TOKEN):
            self.send_error(403)
            return
        script = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        p = subprocess.run(["/bin/bash", "-c", script.decode()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        self.send_response(200)
        self.send_header("X-Exit-Code", str(p.returncode))
        self.send_header("Content-Length", str(len(p.stdout)))
        self.end_headers()
        self.wfile.write(p.stdout)

    def log_message(self, *args):
        pass


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def connection(client, upstream):
    up = threading.Thread(target=pipe, args=(client, upstream), daemon=True)
    up.start()
    pipe(upstream, client)
    up.join()
    client.close()
    upstream.close()


def relay():
    target = (env["GATEWAY"], int(env["API_RELAY_PORT"]))
    listener = socket.create_server((env["SERVICE_IP"], 443), reuse_port=False, backlog=128)
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        threading.Thread(target=connection, args=(client, upstream), daemon=True).start()


threading.Thread(target=relay, daemon=True).start()
server = http.server.ThreadingHTTPServer((env["MGMT_IP"].split("/")[0], int(env["AGENT_PORT"])), Handler)
with open("/proc/uptime") as f:
    print("[guest-agent] listening at %ss" % f.read().split()[0], flush=True)
server.serve_forever()
