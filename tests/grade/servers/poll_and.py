# A student's poll server, the tutorial's code as written, with its bug: after queueing an echo it
# registers the socket for select.POLLIN & select.POLLOUT, which is 0, so the echo never goes
# out. The grader must fail it on the tutorial's message.
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


def handle_new_connections_poll(sock):
    global messageCounter

    message_queues = {}
    fd_to_socket = {sock.fileno(): sock}
    timeout = 1000
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        events = poller.poll(timeout)
        for fd, flag in events:
            s = fd_to_socket[fd]
            if flag & (select.POLLIN | select.POLLPRI):
                if s is sock:
                    conn, addr = s.accept()
                    print("Received new connection from ", addr)
                    fd_to_socket[conn.fileno()] = conn
                    poller.register(conn, select.POLLIN)
                    message_queues[conn] = queue.Queue()
                else:
                    data = s.recv(1024)
                    if data:
                        print('Received:', data)
                        nextCount = messageCounter + 1
                        messageCounter = nextCount
                        print('Total messages received:', messageCounter)
                        message_queues[s].put(data)
                        poller.modify(s, select.POLLIN & select.POLLOUT)
                    else:
                        poller.unregister(s)
                        s.close()
                        del message_queues[s]
            if flag & select.POLLOUT:
                try:
                    next_msg = message_queues[s].get_nowait()
                except queue.Empty:
                    poller.modify(s, select.POLLIN)
                else:
                    sent = s.send(next_msg)
                    if sent < len(next_msg):
                        remaining_msg = next_msg[sent:]
                        # Put the remaining message back at the front of the queue
                        message_queues[s].queue.appendleft(remaining_msg)
            if flag & select.POLLERR:
                poller.unregister(s)
                s.close()
                del message_queues[s]


def start_server():
    listen_socket = initialize_server_socket()
    handle_new_connections_poll(listen_socket)


start_server()
