# Hostile: a busy loop on every core the machine has, in processes of its own, while it serves.
# Its CPU share is capped: its classmates' timed checks must not notice it.
import multiprocessing
import os
import socket
import threading


def spin():
    while True:
        pass


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            print('Received:', data)
            print('Total messages received: 1')
            conn.sendall(data)


for _ in range(2 * (os.cpu_count() or 2)):
    multiprocessing.Process(target=spin, daemon=True).start()
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    print('Received new connection from ', addr)
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
