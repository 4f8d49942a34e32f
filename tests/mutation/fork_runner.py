"""A pytest runner for mutmut that pays the torch/pyiqa import once (``run_mutmut.py`` uses it).

``serve SOCKET`` imports the heavy third-party packages (never ``spips_pyiqa``), then for each
request forks a child that runs ``pytest.main(args)``: the child imports ``spips_pyiqa`` fresh from
disk, so it sees the mutant that mutmut just wrote. ``run SOCKET -- ARGS`` is the tiny client
mutmut calls per mutant; its exit status is 0 when pytest passes, else 1. If the client is killed (mutmut's timeout),
the child is killed too.
"""

import json
import os
import select
import signal
import socket
import sys


def serve(path: str) -> None:
    sys.dont_write_bytecode = True
    import cv2, matplotlib, numpy, PIL.Image, pyiqa, pytest, scipy.ndimage, scipy.stats  # noqa: F401,E401
    import skimage.data, torch, torchvision  # noqa: F401,E401

    assert not [m for m in sys.modules if m.startswith('spips_pyiqa.')], 'the server must not import spips_pyiqa'
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    while True:
        connection, _ = server.accept()
        args = json.loads(connection.makefile().readline())
        child = os.fork()
        if child == 0:
            server.close()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os._exit(int(pytest.main(args)))
        status = None
        while status is None:
            ready, _, _ = select.select([connection], [], [], 0.2)
            if ready and not connection.recv(1):  # client gone (mutmut timeout): stop the child
                os.kill(child, signal.SIGKILL)
            done, code = os.waitpid(child, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(code)
        try:
            connection.sendall(f'{status}\n'.encode())
        except OSError:
            pass
        connection.close()


def run(path: str, args) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall((json.dumps(args) + '\n').encode())
    reply = client.makefile().readline().strip()
    # mutmut 2 counts only exit status 1 as "tests failed": a mutant that breaks the import (pytest's
    # status 2, collection error) or kills the child would count as surviving. Any failure is 1.
    return 0 if reply == '0' else 1


if __name__ == '__main__':
    command, path, *rest = sys.argv[1:]
    if command == 'serve':
        serve(path)
    else:
        sys.exit(run(path, rest[1:] if rest[:1] == ['--'] else rest))
