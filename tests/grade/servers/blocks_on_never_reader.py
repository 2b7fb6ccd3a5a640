# A student's select server that echoes with sendall() as soon as it reads, instead of waiting
# until the socket is writable. It catches errors per client, so resets are fine; but a client
# that sends and never reads fills its buffers, sendall() blocks, and the one thread serving
# everyone stops. The grader must fail it on the never-reading client.
import select
import socket

SERVER_NAME = 'localhost'
SERVER_PORT = 12345
messageCounter = 0


def initialize_server_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    print("Starting server on '%s' port %d" % (SERVER_NAME, SERVER_PORT))
    sock.bind((SERVER_NAME, SERVER_PORT))
    sock.listen(5)
    return sock


def handle_new_connections_select(sock):
    global messageCounter

    inputs = [sock]
    while inputs:
        readable, writable, exceptional = select.select(inputs, [], [])
        for s in readable:
            if s is sock:
                conn, addr = s.accept()
                print("Received new connection from ", addr)
                inputs.append(conn)
                continue
            try:
                data = s.recv(1024)
                if data:
                    print('Received:', data)
                    messageCounter = messageCounter + 1
                    print('Total messages received:', messageCounter)
                    s.sendall(data)
                    continue
            except OSError as e:
                print('Error:', e)
            inputs.remove(s)
            s.close()


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_select(listen_socket)


start_server()
