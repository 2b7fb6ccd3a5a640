# Hostile: sends SIGKILL to every process ID it can think of (its classmates' servers would be
# among them on a shared machine), then serves. It sees only its own container's processes.
import os
import signal
import socket

refused = 0
for pid in range(2, 40000):
    if pid == os.getpid():
        continue
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        refused += 1
print(f'{refused} processes could not be signalled')
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    conn.close()
