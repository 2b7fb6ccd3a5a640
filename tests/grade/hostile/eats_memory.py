# Hostile: serves, and meanwhile takes 16 MiB more memory every 50 ms, touching every page, until
# the kernel kills it. Its memory limit is its own; the grader restarts it and goes on.
import socket
import threading
import time

hoard = []


def eat():
    while True:
        hoard.append(b'x' * (16 << 20))
        time.sleep(0.05)


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


threading.Thread(target=eat, daemon=True).start()
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
