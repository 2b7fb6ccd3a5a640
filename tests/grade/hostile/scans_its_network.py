# Hostile: serves, and tries every address of the private ranges' first /24s, the Docker bridge's
# gateway and the host on port 12345, sending lines to whatever answers: a classmate reached so
# would count them. With no network of its own, it reaches nothing but itself.
import ipaddress
import socket
import threading


def echo(conn):
    with conn:
        while data := conn.recv(1024):
            print('Received:', data)
            conn.sendall(data)


def scan():
    nets = ['172.17.0.0/24', '172.18.0.0/24', '172.19.0.0/24', '172.20.0.0/24',
            '192.168.0.0/24', '10.0.0.0/24']
    while True:
        for net in nets:
            for address in ipaddress.ip_network(net).hosts():
                try:
                    with socket.create_connection((str(address), 12345), timeout=0.05) as peer:
                        peer.sendall(b'Hello, world' * 50)
                        print('reached', address)
                except OSError:
                    pass


threading.Thread(target=scan, daemon=True).start()
listener = socket.create_server(('localhost', 12345))
while True:
    conn, addr = listener.accept()
    print('Received new connection from ', addr)
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
