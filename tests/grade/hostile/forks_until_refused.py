# Hostile: forks until the kernel refuses (its pids limit), every child asleep, then serves.
# The limit is its container's: its classmates can still start their threads.
import os
import socket
import threading
import time

children = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        children += 1
    except OSError as exc:
        print(f'forked {children} children, then: {exc}')
        break


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    try:
        threading.Thread(target=echo, args=(conn,), daemon=True).start()
    except RuntimeError:
        conn.close()
