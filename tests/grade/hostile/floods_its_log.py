# Hostile: serves, and prints as fast as it can, forever, to both streams. Its log is rotated
# (compose's logging options) and read in bounded pieces: the disk and the grader are safe.
import socket
import sys
import threading

LINE = 'Total messages received: ' + 'x' * 200 + '\n'


def flood(stream):
    while True:
        stream.write(LINE * 100)


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


threading.Thread(target=flood, args=(sys.stdout,), daemon=True).start()
threading.Thread(target=flood, args=(sys.stderr,), daemon=True).start()
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
