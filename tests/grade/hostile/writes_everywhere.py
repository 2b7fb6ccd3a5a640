# Hostile: tries to fill the disk (its own file, /tmp, its home) before it serves; the container's
# file system is read-only, so each write fails, and it says so.
import os
import socket
import threading

for path in ['/student/server.py', '/tmp/fill', os.path.expanduser('~/fill'), '/fill']:
    try:
        with open(path, 'ab') as out:
            out.write(b'x' * (1 << 30))
    except OSError as exc:
        print(f'{path}: {exc.strerror}')


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
