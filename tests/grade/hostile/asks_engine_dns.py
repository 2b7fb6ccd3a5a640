# Hostile: serves, and asks Docker's DNS for the names a classmate's container could have (the
# compose services, the grader's own containers), sending lines to any it finds.
import socket
import threading

NAMES = ['student', 'grade-probe', 'server-lock', 'server-threads', 'host.docker.internal',
         'gateway.docker.internal'] + [f'echolab-grade-{n:02d}' for n in range(1, 40)]


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def ask():
    while True:
        for name in NAMES:
            try:
                address = socket.gethostbyname(name)
                with socket.create_connection((address, 12345), timeout=0.2) as peer:
                    peer.sendall(b'Hello, world' * 50)
                    print('reached', name, address)
            except OSError:
                pass


threading.Thread(target=ask, daemon=True).start()
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
