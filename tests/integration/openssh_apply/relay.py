"""The test sshd's ForceCommand: hands the SSH client's command to a lab node agent.

    python relay.py --node NAME --socket PATH      (run by sshd, one process per session)

Reads `$SSH_ORIGINAL_COMMAND` (the command line the client asked for, quoted as it sent it)
and the channel's stdin up to EOF, sends both to the test's relay server over the Unix socket
`PATH` as one JSON document, and writes back the node's stdout, stderr and exit code. The
command runs as root on the node when this process runs as root (the login user is root), as the
lab's own SSH servers decide; a `sudo -n …` command line is the node's shell's business.

Standard library only: sshd starts it with `python -I -S`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

NO_COMMAND = "This lab node runs commands only: ssh NODE 'COMMAND'\n"


def _exchange(path: str, request: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode("utf-8"))
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks).decode("utf-8"))
    if not isinstance(reply, dict):
        raise ValueError("the relay server sent no reply object")
    return reply


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__.splitlines()[0])
    parser.add_argument("--node", required=True, help="the lab node this endpoint is")
    parser.add_argument("--socket", required=True, help="the relay server's Unix socket")
    args = parser.parse_args(argv)
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    if not command:  # an interactive shell: refused, as by the lab's own SSH servers
        sys.stderr.write(NO_COMMAND)
        return 1
    stdin = sys.stdin.buffer.read().decode("utf-8", "replace")
    request = {"node": args.node, "command": command, "stdin": stdin,
               "root": os.geteuid() == 0, "pid": os.getpid(),
               "connection": os.environ.get("SSH_CONNECTION", "")}
    try:
        reply = _exchange(args.socket, request)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"relay: lab node {args.node} unreachable via {args.socket}: {e}\n")
        return 255
    sys.stdout.buffer.write(str(reply.get("stdout", "")).encode("utf-8"))
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(str(reply.get("stderr", "")).encode("utf-8"))
    sys.stderr.buffer.flush()
    code = reply.get("exit_code")
    return code if isinstance(code, int) else 255


if __name__ == "__main__":
    sys.exit(main())
