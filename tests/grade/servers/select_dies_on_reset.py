# A student's select server, the tutorial's loop as written: nothing catches an error on one
# client's socket, so a client that resets its connection raises ConnectionResetError out of the
# loop and ends the server. The grader must catch that on the reset check.
import queue
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
    outputs = []
    message_queues = {}
    while inputs:
        readable, writable, exceptional = select.select(inputs, outputs, inputs)
        for s in readable:
            if s is sock:
                conn, addr = s.accept()
                print("Received new connection from ", addr)
                inputs.append(conn)
                message_queues[conn] = queue.Queue()
            else:
                data = s.recv(1024)
                if data:
                    print('Received:', data)
                    nextCount = messageCounter + 1
                    messageCounter = nextCount
                    print('Total messages received:', messageCounter)
                    message_queues[s].put(data)
                    if s not in outputs:
                        outputs.append(s)
                else:
                    if s in outputs:
                        outputs.remove(s)
                    inputs.remove(s)
                    s.close()
                    del message_queues[s]
        for s in writable:
            if s not in message_queues:
                continue
            try:
                next_msg = message_queues[s].get_nowait()
            except queue.Empty:
                outputs.remove(s)
            else:
                sent = s.send(next_msg)
                if sent < len(next_msg):
                    remaining_msg = next_msg[sent:]
                    # Put the remaining message back at the front of the queue
                    message_queues[s].queue.appendleft(remaining_msg)
        for s in exceptional:
            inputs.remove(s)
            if s in outputs:
                outputs.remove(s)
            s.close()
            del message_queues[s]


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_select(listen_socket)


start_server()
